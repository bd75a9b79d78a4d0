//! The one way state changes: a transaction.
//!
//! 1. **Plan**, under the state lock: validate, reserve (addresses, ports, names) and record
//!    the change in memory. Nothing outside the daemon has changed yet.
//! 2. **Persist** the desired state, still under the lock, so the store's order is the
//!    state's order. The cluster's part is the exception: the lock is let go for the etcd
//!    round trip, so that one node's attaches do not queue behind each other's writes
//!    (per-object locks keep an object's own requests in order; the cluster mirror waits
//!    for writes in flight, see `Controller::cluster_writes`).
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

use netctl_store::{Batch, Key, Revision, Scope, Store, StoreError};
use tokio::sync::{Mutex, RwLock};

use super::cluster::ClusterLink;
use super::effects::Effect;
use super::executor::{self, CarriedOut, Effector, Failed, Policy};
use super::state::State;
use super::Controller;
use crate::controller::error::EngineError;

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
    pub fn into_result(self, removed: impl std::fmt::Display) -> Result<(), EngineError> {
        if self.cleanup_errors.is_empty() {
            return Ok(());
        }
        Err(EngineError::internal(format!(
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
    /// Anything else: refused, or undone.
    Failed(EngineError),
}

impl From<EngineError> for TxnError {
    fn from(e: EngineError) -> Self {
        Self::Failed(e)
    }
}

/// How many times a claiming transaction picks again after losing a race.
const CLAIM_RACES: usize = 16;

/// What transactions work on: the state and its lock, the stores, and who carries the
/// effects out (the daemon's kernel effector, or an in-memory one in unit tests).
pub(super) struct Engine<'a> {
    pub state: &'a Mutex<State>,
    /// See `Controller::cluster_writes`.
    pub cluster_writes: &'a RwLock<()>,
    pub store: &'a dyn Store,
    pub cluster: &'a ClusterLink,
    pub effector: &'a dyn Effector,
}

impl Controller {
    pub(super) fn engine(&self) -> Engine<'_> {
        Engine {
            state: &self.state,
            cluster_writes: &self.cluster_writes,
            store: self.store.as_ref(),
            cluster: &self.cluster,
            effector: self,
        }
    }

    /// See [`Engine::transact`].
    pub(super) async fn transact<T>(
        &self,
        plan: impl FnOnce(&mut State) -> Result<(Txn, T), EngineError>,
    ) -> Result<(T, Done), EngineError> {
        self.engine().transact(plan).await
    }

    /// See [`Engine::transact_claiming`].
    pub(super) async fn transact_claiming<T>(
        &self,
        plan: impl FnMut(&mut State) -> Result<(Txn, T), EngineError>,
        lost: impl FnMut(&mut State, &Key) -> Result<(), EngineError>,
    ) -> Result<(T, Done), EngineError> {
        self.engine().transact_claiming(plan, lost).await
    }
}

impl Engine<'_> {
    /// Runs `plan` under the state lock, then the transaction it returns; hands back what
    /// the plan returned alongside.
    pub(super) async fn transact<T>(
        &self,
        plan: impl FnOnce(&mut State) -> Result<(Txn, T), EngineError>,
    ) -> Result<(T, Done), EngineError> {
        self.try_transact(plan).await.map_err(|e| match e {
            TxnError::Taken(key) => EngineError::conflict(format!("{key} is taken")),
            TxnError::Failed(e) => e,
        })
    }

    /// [`Engine::transact`] for plans that take cluster-wide unique keys: when another
    /// node took one first, `lost` hears which (under the state lock, to mark it or to
    /// refuse), and the plan runs again.
    pub(super) async fn transact_claiming<T>(
        &self,
        mut plan: impl FnMut(&mut State) -> Result<(Txn, T), EngineError>,
        mut lost: impl FnMut(&mut State, &Key) -> Result<(), EngineError>,
    ) -> Result<(T, Done), EngineError> {
        for attempt in 0..CLAIM_RACES {
            match self.try_transact(&mut plan).await {
                Ok(done) => return Ok(done),
                Err(TxnError::Failed(e)) => return Err(e),
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
        Err(EngineError::unavailable(format!(
            "lost {CLAIM_RACES} races in a row to other nodes; try again"
        )))
    }

    async fn try_transact<T>(
        &self,
        plan: impl FnOnce(&mut State) -> Result<(Txn, T), EngineError>,
    ) -> Result<(T, Done), TxnError> {
        let started = Instant::now();
        // Before the state lock, as the mirror takes them: see `Controller::cluster_writes`.
        let writing = self.cluster_writes.read().await;
        let mut state = self.state.lock().await;
        let (txn, value) = plan(&mut state)?;
        let (global, local) = split(&txn.persist);
        if !global.is_empty() {
            // A round trip to etcd's leader and its disk: other plans go on meanwhile (what
            // this one took is in the state already, so none takes it twice).
            drop(state);
            let written = self.persist_global(global, &txn.revert).await;
            state = self.state.lock().await;
            match written {
                // A listing of the cluster older than this write is listed again.
                Ok(revision) => state.global.written = state.global.written.max(revision),
                Err(e) => {
                    (txn.unplan)(&mut state);
                    return Err(e);
                }
            }
        }
        let revision = match self.persist_local(local, &txn.revert).await {
            Ok(revision) => revision,
            Err(e) => {
                (txn.unplan)(&mut state);
                return Err(e);
            }
        };
        drop(state);
        drop(writing);
        let persisted = started.elapsed();
        let (carried_out, synced) = tokio::join!(
            executor::carry_out(self.effector, &txn.what, &txn.effects, Policy::AllOrUndo),
            self.sync(revision)
        );
        let failure = match (carried_out, synced) {
            (Ok(CarriedOut { errors, took }), Ok(())) => {
                tracing::debug!(what = %txn.what, total = ?started.elapsed(), planned_and_persisted = ?persisted, effects = ?took, "done");
                let cleanup_errors = errors.into_iter().map(|e| e.message).collect();
                return Ok((value, Done { cleanup_errors }));
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

    /// The plan's cluster part, in one etcd transaction (a taken key fails it whole).
    async fn persist_global(&self, global: Batch, revert: &Batch) -> Result<Revision, TxnError> {
        let store = self.cluster.store()?;
        match store.apply(global.clone()).await {
            Ok(revision) => Ok(revision),
            Err(StoreError::Exists(key)) => Err(TxnError::Taken(key)),
            Err(e @ StoreError::Unavailable { .. }) => {
                // The write may still land once quorum is back: see that it is undone.
                crate::cluster_store::unknown_writes::settle_unknown_write(
                    store,
                    global,
                    split(revert).0,
                );
                Err(EngineError::from(e).into())
            }
            Err(e) => Err(EngineError::from(e).into()),
        }
    }

    /// The plan's local part, in the state's order (the caller holds the state lock), not
    /// yet flushed. When it fails, the cluster part already written is put back.
    async fn persist_local(
        &self,
        local: Batch,
        revert: &Batch,
    ) -> Result<Option<Revision>, TxnError> {
        if local.is_empty() {
            return Ok(None);
        }
        match self.store.apply_unsynced(local).await {
            Ok(revision) => Ok(Some(revision)),
            Err(e) => {
                let (global_revert, _) = split(revert);
                if !global_revert.is_empty() {
                    self.apply_global_revert(global_revert).await;
                }
                Err(EngineError::from(e).into())
            }
        }
    }

    async fn apply_global_revert(&self, revert: Batch) {
        let reverted = match self.cluster.store() {
            Ok(store) => store.apply(revert).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = reverted {
            tracing::error!(error = %e, "cannot put the cluster store back");
        }
    }

    async fn sync(&self, revision: Option<Revision>) -> Result<(), EngineError> {
        match revision {
            Some(revision) => self.store.sync(revision).await.map_err(EngineError::from),
            None => Ok(()),
        }
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
        executor::undo(self.effector, &effects, failed_at).await;
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

#[cfg(test)]
mod tests {
    //! The engine with an in-memory effector over a real local store: what a transaction
    //! leaves in the store, the state and the effector, when it succeeds and when a step
    //! fails.

    use netctl_ipam::{Ipam, PoolTemplate};
    use netctl_store::{LocalStore, Prefix};

    use super::super::executor::test::{names, Recorder};
    use super::*;

    struct Fixture {
        _dir: tempfile::TempDir,
        state: Mutex<State>,
        cluster_writes: RwLock<()>,
        store: LocalStore,
        cluster: ClusterLink,
        recorder: Recorder,
    }

    impl Fixture {
        fn new(recorder: Recorder) -> Self {
            let dir = tempfile::tempdir().expect("temporary directory");
            let store = LocalStore::open(&dir.path().join("netctl.redb")).expect("store");
            let ipam = Ipam::new(
                PoolTemplate::from_table(netctl_ipam::DEFAULT_LOCAL_POOLS),
                PoolTemplate::from_table(netctl_ipam::DEFAULT_GLOBAL_POOLS),
            );
            Self {
                _dir: dir,
                state: Mutex::new(State::new(ipam)),
                cluster_writes: RwLock::new(()),
                store,
                cluster: ClusterLink::default(),
                recorder,
            }
        }

        fn engine(&self) -> Engine<'_> {
            Engine {
                state: &self.state,
                cluster_writes: &self.cluster_writes,
                store: &self.store,
                cluster: &self.cluster,
                effector: &self.recorder,
            }
        }

        async fn stored(&self) -> Vec<String> {
            let snapshot = self
                .store
                .load(&Prefix::kind(Scope::Local, "test"))
                .await
                .expect("load");
            snapshot.entries.iter().map(|e| e.key.id.clone()).collect()
        }
    }

    fn key(id: &str) -> Key {
        Key::new(Scope::Local, "test", id)
    }

    /// Writes `id`, marks the state (its spread seed), and adds two endpoints' names.
    fn plan_adding(id: &'static str) -> impl FnOnce(&mut State) -> Result<(Txn, ()), EngineError> {
        move |state: &mut State| {
            state.spread_seed = 7;
            let mut txn = Txn::new(format!("add {id}"));
            txn.persist = Batch::new().create(key(id), b"{}".to_vec());
            txn.revert = Batch::new().delete(key(id));
            txn.effects = vec![
                Effect::AddNames(names("ep1")),
                Effect::AddNames(names("ep2")),
            ];
            txn.unplan = Box::new(|state: &mut State| state.spread_seed = 0);
            Ok((txn, ()))
        }
    }

    #[tokio::test]
    async fn a_transaction_that_succeeds_is_stored_planned_and_carried_out() {
        let fixture = Fixture::new(Recorder::default());
        let ((), done) = fixture.engine().transact(plan_adding("a")).await.unwrap();
        assert!(done.cleanup_errors.is_empty());
        assert_eq!(fixture.stored().await, ["a"]);
        assert_eq!(fixture.state.lock().await.spread_seed, 7);
        assert_eq!(fixture.recorder.done(), ["add names ep1", "add names ep2"]);
    }

    #[tokio::test]
    async fn a_failed_step_undoes_the_steps_the_store_and_the_plan() {
        let fixture = Fixture::new(Recorder::failing(&["add names ep2"]));
        let error = fixture
            .engine()
            .transact(plan_adding("a"))
            .await
            .unwrap_err();
        assert!(
            error.to_string().contains("add names ep2 failed"),
            "{error:?}"
        );
        assert!(fixture.stored().await.is_empty(), "the store is put back");
        assert_eq!(fixture.state.lock().await.spread_seed, 0, "unplanned");
        assert_eq!(
            fixture.recorder.done(),
            [
                "add names ep1",
                "!add names ep2",
                "remove names ep2",
                "remove names ep1"
            ]
        );
    }

    #[tokio::test]
    async fn a_plan_that_refuses_changes_nothing() {
        let fixture = Fixture::new(Recorder::default());
        let error = fixture
            .engine()
            .transact(|_: &mut State| -> Result<(Txn, ()), EngineError> {
                Err(EngineError::invalid("no"))
            })
            .await
            .unwrap_err();
        assert_eq!(error.to_string(), "no");
        assert!(fixture.stored().await.is_empty());
        assert!(fixture.recorder.done().is_empty());
    }

    #[tokio::test]
    async fn a_store_refusal_unplans_and_carries_nothing_out() {
        let fixture = Fixture::new(Recorder::default());
        fixture.engine().transact(plan_adding("a")).await.unwrap();
        // Creating "a" again is refused by the store, before any step.
        let recorded = fixture.recorder.done().len();
        let error = fixture
            .engine()
            .transact(|state: &mut State| {
                let (txn, value) = plan_adding("a")(state)?;
                state.spread_seed = 9;
                let unplan = txn.unplan;
                Ok((
                    Txn {
                        unplan: Box::new(move |state: &mut State| {
                            unplan(state);
                            state.spread_seed = 7;
                        }),
                        ..txn
                    },
                    value,
                ))
            })
            .await
            .unwrap_err();
        assert!(error.to_string().contains("exists already"), "{error:?}");
        assert_eq!(fixture.state.lock().await.spread_seed, 7);
        assert_eq!(fixture.recorder.done().len(), recorded);
    }

    #[tokio::test]
    async fn a_teardown_step_that_fails_is_reported_and_the_rest_runs() {
        let fixture = Fixture::new(Recorder::failing(&["remove names ep1"]));
        fixture.engine().transact(plan_adding("a")).await.unwrap();
        let ((), done) = fixture
            .engine()
            .transact(|_: &mut State| {
                let mut txn = Txn::new("remove a");
                txn.persist = Batch::new().delete(key("a"));
                txn.revert = Batch::new().put(key("a"), b"{}".to_vec());
                txn.effects = vec![
                    Effect::RemoveNames("ep1".into()),
                    Effect::RemoveNames("ep2".into()),
                ];
                Ok((txn, ()))
            })
            .await
            .unwrap();
        assert_eq!(done.cleanup_errors, ["remove names ep1 failed"]);
        assert!(fixture.stored().await.is_empty());
        assert!(fixture.recorder.done().ends_with(&[
            "!remove names ep1".to_string(),
            "remove names ep2".to_string()
        ]));
        let said = done.into_result("a removed").unwrap_err().to_string();
        assert!(said.starts_with("a removed, but cleaning up"), "{said}");
    }
}
