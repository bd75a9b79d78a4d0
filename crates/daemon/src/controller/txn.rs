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
//! A batch may hold keys of both scopes: the `global` ones go to the cluster store first (one
//! etcd transaction, where a `Create` of a taken key fails it whole and is reported as
//! [`TxnError::Taken`] so a planner can pick again), then the `local` ones.
//!
//! Removals plan and persist the same way, but their effects are teardown: a failure there is
//! reported and the rest still runs (the store no longer wants the object, so whatever is
//! left is collected at the daemon's next start).

use std::time::{Duration, Instant};

use netctl_plugin_api::ApiError;
use netctl_store::{Batch, Key, Revision, Scope, Store, StoreError};

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

/// Why a transaction did not happen.
pub(super) enum TxnError {
    /// A key it had to create in the cluster store was taken (by another node, most
    /// likely at the same moment): nothing was done.
    Taken(Key),
    Api(ApiError),
}

impl From<ApiError> for TxnError {
    fn from(e: ApiError) -> Self {
        Self::Api(e)
    }
}

/// How many times a claiming transaction picks again after losing a race.
const CLAIM_RACES: usize = 16;

impl Controller {
    /// Runs `plan` under the state lock, then the transaction it returns; hands back what
    /// the plan returned alongside.
    pub(super) async fn transact<T>(
        &self,
        plan: impl FnOnce(&mut State) -> Result<(Txn, T), ApiError>,
    ) -> Result<(T, Done), ApiError> {
        self.try_transact(plan).await.map_err(|e| match e {
            TxnError::Taken(key) => ApiError::conflict(format!("{key} is taken")),
            TxnError::Api(e) => e,
        })
    }

    /// [`Controller::transact`] for plans that take cluster-wide unique keys: when another
    /// node took one first, `lost` hears which (under the state lock, to mark it or to
    /// refuse), and the plan runs again.
    pub(super) async fn transact_claiming<T>(
        &self,
        mut plan: impl FnMut(&mut State) -> Result<(Txn, T), ApiError>,
        mut lost: impl FnMut(&mut State, &Key) -> Result<(), ApiError>,
    ) -> Result<(T, Done), ApiError> {
        for attempt in 0..CLAIM_RACES {
            match self.try_transact(&mut plan).await {
                Ok(done) => return Ok(done),
                Err(TxnError::Api(e)) => return Err(e),
                Err(TxnError::Taken(key)) => {
                    tracing::debug!(%key, "lost a race for a cluster-wide key; planning again");
                    lost(&mut *self.state.lock().await, &key)?;
                    // Room for the watch to bring the winner's records, which rule out
                    // what this node would otherwise pick again.
                    if attempt > 0 {
                        tokio::time::sleep(Duration::from_millis(5 * attempt as u64)).await;
                    }
                }
            }
        }
        Err(ApiError::unavailable(format!(
            "lost {CLAIM_RACES} races in a row to other nodes; try again"
        )))
    }

    async fn try_transact<T>(
        &self,
        plan: impl FnOnce(&mut State) -> Result<(Txn, T), ApiError>,
    ) -> Result<(T, Done), TxnError> {
        let started = Instant::now();
        let (txn, value, revision) = {
            let mut state = self.state.lock().await;
            let (txn, value) = plan(&mut state)?;
            let revision = match self.persist(&txn.persist, &txn.revert).await {
                Ok(Persisted { local, global }) => {
                    if let Some(global) = global {
                        // A listing of the cluster older than this write is listed again.
                        state.global.written = state.global.written.max(global);
                    }
                    local
                }
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
        Err(failure.error.into())
    }

    /// The desired state in the stores, in the state's order (the caller holds the state
    /// lock): the cluster's part applied, the local part not yet flushed.
    async fn persist(&self, batch: &Batch, revert: &Batch) -> Result<Persisted, TxnError> {
        let (global, local) = split(batch);
        let mut persisted = Persisted::default();
        if !global.is_empty() {
            let store = self.cluster.store()?;
            match store.apply(global.clone()).await {
                Ok(revision) => persisted.global = Some(revision),
                Err(StoreError::Exists(key)) => return Err(TxnError::Taken(key)),
                Err(e @ StoreError::Unavailable { .. }) => {
                    // The write may still land once quorum is back: see that it is undone.
                    super::cluster::settle_unknown_write(store, global, split(revert).0);
                    return Err(from_store(e).into());
                }
                Err(e) => return Err(from_store(e).into()),
            }
        }
        if local.is_empty() {
            return Ok(persisted);
        }
        match self.store.apply_unsynced(local).await {
            Ok(revision) => Ok(Persisted {
                local: Some(revision),
                ..persisted
            }),
            Err(e) => {
                let (global_revert, _) = split(revert);
                if !global_revert.is_empty() {
                    self.apply_global_revert(global_revert).await;
                }
                Err(from_store(e).into())
            }
        }
    }

    async fn apply_global_revert(&self, revert: Batch) {
        let reverted = match self.cluster.store() {
            Ok(store) => store.apply(revert).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.message),
        };
        if let Err(e) = reverted {
            tracing::error!(error = %e, "cannot put the cluster store back");
        }
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
        let (global, local) = split(&revert);
        if !global.is_empty() {
            self.apply_global_revert(global).await;
        }
        if !local.is_empty() {
            if let Err(e) = self.store.apply(local).await {
                tracing::error!(%what, error = %e, "cannot put the store back; the daemon's next start will");
            }
        }
        unplan(&mut state);
    }
}

/// A batch's cluster part and its local part, each in its order.
pub(super) fn split(batch: &Batch) -> (Batch, Batch) {
    let (global, local): (Vec<_>, Vec<_>) = batch
        .ops
        .iter()
        .cloned()
        .partition(|op| op.key().scope == Scope::Global);
    (Batch { ops: global }, Batch { ops: local })
}

/// Effects applied, with the time each took.
#[derive(Default)]
struct CarriedOut {
    done: Done,
    took: Vec<(&'static str, Duration)>,
}

/// The revisions a transaction's batch made: the local one still to be flushed.
#[derive(Default)]
struct Persisted {
    local: Option<Revision>,
    global: Option<Revision>,
}

/// Where a transaction stopped, and why.
struct Failed {
    at: usize,
    error: ApiError,
}
