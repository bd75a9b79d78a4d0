//! The one way state changes: a transaction.
//!
//! 1. **Plan**, under the state lock: validate, reserve (addresses, ports, names) and record
//!    the change in memory. Nothing outside the daemon has changed yet.
//! 2. **Persist** the desired state, still under the lock, so the store's order is the
//!    state's order.
//! 3. **Program the kernel**, effect by effect, with the state lock released: requests on
//!    other objects go on meanwhile (the objects' own locks keep this one's company out).
//!    The store flushes the batch to disk at the same time; the caller hears back once both
//!    are done. A crash before the flush ends loses the batch, and nobody was told it
//!    worked: the daemon's next start collects what the kernel got meanwhile, as it does
//!    for a removal cut short.
//! 4. On a failure in 3, **undo** the effects done, in reverse; put the store back as it was;
//!    and give back what the plan reserved. The request fails and nothing remains.
//!
//! Removals plan and persist the same way, but their effects are teardown: a failure there is
//! reported and the rest still runs (the store no longer wants the object, so whatever is
//! left is collected at the daemon's next start).

use std::time::{Duration, Instant};

use netctl_plugin_api::ApiError;
use netctl_store::{Batch, Revision};

use super::effects::Effect;
use super::errors::from_store;
use super::state::State;
use super::Controller;

/// What a plan asks to be done.
pub(super) struct Txn {
    /// What it does, for the log (`connect a to web`).
    pub what: String,
    /// The desired state.
    pub persist: Batch,
    /// The store as it was, should the kernel work fail.
    pub revert: Batch,
    /// Kernel work, in order.
    pub effects: Vec<Effect>,
    /// Gives back what the plan took in memory.
    pub unplan: Unplan,
}

pub(super) type Unplan = Box<dyn FnOnce(&mut State) + Send>;

impl Txn {
    pub fn new(what: impl Into<String>) -> Self {
        Self {
            what: what.into(),
            persist: Batch::new(),
            revert: Batch::new(),
            effects: Vec::new(),
            unplan: Box::new(|_| {}),
        }
    }
}

impl Txn {
    /// This transaction, then `next`, as one: persisted together, carried out in order,
    /// undone together.
    pub fn then(self, next: Txn) -> Txn {
        let (first, second) = (self.unplan, next.unplan);
        Txn {
            what: format!("{}, {}", self.what, next.what),
            persist: self.persist.and(next.persist),
            revert: next.revert.and(self.revert),
            effects: self.effects.into_iter().chain(next.effects).collect(),
            unplan: Box::new(move |state: &mut State| {
                second(state);
                first(state);
            }),
        }
    }
}

/// What a transaction that succeeded left to say: teardown steps that failed.
#[derive(Debug, Default)]
pub(super) struct Done {
    pub cleanup_errors: Vec<String>,
}

impl Done {
    /// `Ok`, or the error a removal reports when some kernel objects stayed behind.
    pub fn into_result(self, removed: impl std::fmt::Display) -> Result<(), ApiError> {
        if self.cleanup_errors.is_empty() {
            return Ok(());
        }
        Err(ApiError::internal(format!(
            "{removed}, but cleaning up some kernel objects failed (retried at the daemon's \
             next start): {}",
            self.cleanup_errors.join("; ")
        )))
    }
}

impl Controller {
    /// Runs `plan` under the state lock, then the transaction it returns; hands back what
    /// the plan returned alongside.
    pub(super) async fn transact<T>(
        &self,
        plan: impl FnOnce(&mut State) -> Result<(Txn, T), ApiError>,
    ) -> Result<(T, Done), ApiError> {
        let started = Instant::now();
        let (txn, value, revision) = {
            let mut state = self.state.lock().await;
            let (txn, value) = plan(&mut state)?;
            let revision = match self.persist(&txn.persist).await {
                Ok(revision) => revision,
                Err(e) => {
                    (txn.unplan)(&mut state);
                    return Err(e);
                }
            };
            (txn, value, revision)
        };
        let persisted = started.elapsed();
        let (carried_out, synced) =
            tokio::join!(self.carry_out(&txn.what, &txn.effects), self.sync(revision));
        let failure = match (carried_out, synced) {
            (Ok(done), Ok(())) => {
                tracing::debug!(what = %txn.what, total = ?started.elapsed(), planned_and_persisted = ?persisted, effects = ?done.took, "done");
                return Ok((value, done.done));
            }
            (Err(failed), _) => failed,
            (Ok(_), Err(e)) => Failed {
                at: txn.effects.len(),
                error: e,
            },
        };
        self.roll_back(txn, failure.at).await;
        Err(failure.error)
    }

    /// The desired state in the store, in the state's order (the caller holds the state
    /// lock); not yet flushed. `None` when there is nothing to write.
    async fn persist(&self, batch: &Batch) -> Result<Option<Revision>, ApiError> {
        if batch.is_empty() {
            return Ok(None);
        }
        let revision = self
            .store
            .apply_unsynced(batch.clone())
            .await
            .map_err(from_store)?;
        Ok(Some(revision))
    }

    async fn sync(&self, revision: Option<Revision>) -> Result<(), ApiError> {
        match revision {
            Some(revision) => self.store.sync(revision).await.map_err(from_store),
            None => Ok(()),
        }
    }

    /// Applies `effects` in order. Teardown steps that fail are noted and passed; any other
    /// failure stops here and says at which step.
    async fn carry_out(&self, what: &str, effects: &[Effect]) -> Result<CarriedOut, Failed> {
        let mut carried = CarriedOut::default();
        for (at, effect) in effects.iter().enumerate() {
            let step = Instant::now();
            let applied = self.apply(effect).await;
            carried.took.push((effect.name(), step.elapsed()));
            let Err(error) = applied else {
                continue;
            };
            if effect.is_best_effort() {
                tracing::warn!(%what, error = %error.message, "cleanup step failed; going on");
                carried.done.cleanup_errors.push(error.message);
                continue;
            }
            tracing::warn!(%what, error = %error.message, "failed; rolling back");
            return Err(Failed { at, error });
        }
        Ok(carried)
    }

    /// Undoes the effects up to and including the one at `failed_at` (it may have done part
    /// of its work), in reverse; puts the store back and flushes it; gives back what the
    /// plan took.
    async fn roll_back(&self, txn: Txn, failed_at: usize) {
        let Txn {
            what,
            revert,
            effects,
            unplan,
            ..
        } = txn;
        let end = (failed_at + 1).min(effects.len());
        for effect in effects[..end].iter().rev() {
            self.undo(effect).await;
        }
        let mut state = self.state.lock().await;
        if !revert.is_empty() {
            if let Err(e) = self.store.apply(revert).await {
                tracing::error!(%what, error = %e, "cannot put the store back; the daemon's next start will");
            }
        }
        unplan(&mut state);
    }
}

/// Effects applied, with the time each took.
#[derive(Default)]
struct CarriedOut {
    done: Done,
    took: Vec<(&'static str, Duration)>,
}

/// Where a transaction stopped, and why.
struct Failed {
    at: usize,
    error: ApiError,
}
