//! The one way state changes: a transaction.
//!
//! 1. **Plan**, under the state lock: validate, reserve (addresses, ports, names) and record
//!    the change in memory. Nothing outside the daemon has changed yet.
//! 2. **Persist** the desired state, still under the lock, so the store's order is the
//!    state's order.
//! 3. **Program the kernel**, effect by effect, with the state lock released: requests on
//!    other objects go on meanwhile (the objects' own locks keep this one's company out).
//! 4. On a failure in 3, **undo** the effects done, in reverse; put the store back as it was;
//!    and give back what the plan reserved. The request fails and nothing remains.
//!
//! Removals plan and persist the same way, but their effects are teardown: a failure there is
//! reported and the rest still runs (the store no longer wants the object, so whatever is
//! left is collected at the daemon's next start).

use netctl_plugin_api::ApiError;
use netctl_store::Batch;

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
        let started = std::time::Instant::now();
        let (txn, value) = {
            let mut state = self.state.lock().await;
            let (txn, value) = plan(&mut state)?;
            if !txn.persist.is_empty() {
                if let Err(e) = self.store.apply(txn.persist.clone()).await {
                    (txn.unplan)(&mut state);
                    return Err(from_store(e));
                }
            }
            (txn, value)
        };
        let Txn {
            what,
            revert,
            effects,
            unplan,
            ..
        } = txn;
        let persisted = started.elapsed();
        let mut done = Done::default();
        let mut took = Vec::with_capacity(effects.len());
        for (at, effect) in effects.iter().enumerate() {
            let step = std::time::Instant::now();
            let applied = self.apply(effect).await;
            took.push((effect.name(), step.elapsed()));
            let Err(e) = applied else {
                continue;
            };
            if effect.is_best_effort() {
                tracing::warn!(%what, error = %e.message, "cleanup step failed; going on");
                done.cleanup_errors.push(e.message);
                continue;
            }
            tracing::warn!(%what, error = %e.message, "failed; rolling back");
            for applied in effects[..at].iter().rev() {
                self.undo(applied).await;
            }
            // The failed step may have done part of its work.
            self.undo(effect).await;
            let mut state = self.state.lock().await;
            if !revert.is_empty() {
                if let Err(e) = self.store.apply(revert).await {
                    tracing::error!(%what, error = %e, "cannot put the store back; the daemon's next start will");
                }
            }
            unplan(&mut state);
            return Err(e);
        }
        tracing::debug!(%what, total = ?started.elapsed(), planned_and_persisted = ?persisted, effects = ?took, "done");
        Ok((value, done))
    }
}
