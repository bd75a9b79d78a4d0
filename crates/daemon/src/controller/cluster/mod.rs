//! The controller in a cluster: the link to the cluster store, kept by one supervisor task.
//!
//! The node's membership (cluster, store URLs, advertise address, lease) is kept in the
//! local store, so a restarted daemon finds its cluster again. The supervisor connects to
//! the store — retrying in the background while it is unreachable, with local networks
//! served meanwhile — keeps the node's lease alive, and mirrors the cluster's state into
//! the controller ([`mirror`]): it lists once, then follows etcd's watch from that
//! revision; a compacted revision or a lost member makes it list again.

mod admission;
mod balancers;
mod global_networks;
mod membership;
mod mirror;
mod nodes;
mod services;

pub(in crate::controller) use self::balancers::AppliedServices;

use std::sync::Arc;

use std::time::Duration;

use netctl_drivers::cluster::Underlay;
use netctl_store::{Batch, ClusterStore, Prefix, Scope, Store, StoreError};
use parking_lot::Mutex;
use tokio::sync::watch;

use super::Controller;
use crate::cluster_store::join_service::JoinService;
use crate::cluster_store::liveness::Liveness;
use crate::config::DEFAULT_LEASE_TTL;
use crate::controller::error::EngineError;
use crate::model::{MembershipRecord, StoreCredentials};
use crate::persist::BatchExt;

pub(super) use self::mirror::GlobalView;

/// How long a node waits between attempts to reach an unreachable cluster store.
const RETRY: Duration = Duration::from_secs(1);

/// The node's membership and, while the store answers, its connection.
pub(super) struct ClusterLink {
    membership: Mutex<Option<MembershipRecord>>,
    store: Mutex<Option<ClusterStore>>,
    /// Bumped at every join and leave: the supervisor starts over.
    generation: watch::Sender<u64>,
    /// The generation whose first listing is mirrored.
    synced: watch::Sender<u64>,
    /// A manager's answerer of joins, on a TLS store.
    join_service: Mutex<Option<JoinService>>,
}

impl Default for ClusterLink {
    fn default() -> Self {
        Self {
            membership: Mutex::default(),
            store: Mutex::default(),
            join_service: Mutex::default(),
            generation: watch::Sender::new(0),
            synced: watch::Sender::new(0),
        }
    }
}

impl ClusterLink {
    pub fn membership(&self) -> Option<MembershipRecord> {
        self.membership.lock().clone()
    }

    /// The cluster store, or why there is none to use now.
    pub fn store(&self) -> Result<ClusterStore, EngineError> {
        if let Some(store) = self.store.lock().clone() {
            return Ok(store);
        }
        match self.membership() {
            Some(m) => Err(EngineError::unavailable(format!(
                "cluster store unavailable: no quorum among {} (not reached since the daemon \
                 started; retrying in the background)",
                m.store.join(", ")
            ))),
            None => Err(not_in_cluster()),
        }
    }

    /// Whether this node runs a join service (a manager of a TLS store).
    fn answers_joins(&self) -> bool {
        self.join_service.lock().is_some()
    }

    fn set_store(&self, store: Option<ClusterStore>) {
        *self.store.lock() = store;
    }

    /// A new membership (or none): the supervisor drops the old connection and starts over.
    fn replace(&self, membership: Option<MembershipRecord>, store: Option<ClusterStore>) {
        *self.membership.lock() = membership;
        self.set_store(store);
        *self.join_service.lock() = None;
        self.generation.send_modify(|g| *g += 1);
    }

    fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// Waits until the current generation's first listing is mirrored (or `limit` passes).
    async fn wait_synced(&self, limit: Duration) -> bool {
        let generation = self.generation();
        let mut synced = self.synced.subscribe();
        tokio::time::timeout(limit, synced.wait_for(|s| *s >= generation))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

pub(super) fn not_in_cluster() -> EngineError {
    EngineError::invalid(
        "this node is in no cluster: run `netctl cluster init` or `netctl cluster join` first",
    )
}

impl Controller {
    fn lease_ttl(&self) -> Duration {
        self.config
            .cluster_lease_ttl
            .map_or(DEFAULT_LEASE_TTL, Duration::from_secs)
    }

    /// The membership stored locally (daemon.json's `cluster-store`, when given, says where
    /// the store is now).
    pub(super) fn restore_membership(&self, mut membership: MembershipRecord) {
        if let Some(urls) = &self.config.cluster_store {
            membership.store = urls.list();
        }
        self.cluster.replace(Some(membership), None);
    }

    async fn save_membership(&self, membership: &MembershipRecord) -> Result<(), EngineError> {
        self.store
            .apply(Batch::new().put_record(membership))
            .await
            .map_err(EngineError::from)?;
        if let Some(credentials) = &membership.store_tls {
            self.export_credentials(credentials)?;
        }
        Ok(())
    }

    /// Where this node's etcd credentials are, as files (for `etcdctl --cacert ca.pem
    /// --cert node.pem --key node-key.pem`); the daemon itself reads them from its store.
    pub(super) fn credentials_dir(&self) -> std::path::PathBuf {
        self.paths.data_root.join("cluster")
    }

    fn export_credentials(&self, credentials: &StoreCredentials) -> Result<(), EngineError> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = self.credentials_dir();
        let failed = |e: std::io::Error| {
            EngineError::internal(format!(
                "writing the node's credentials in {}: {e}",
                dir.display()
            ))
        };
        std::fs::create_dir_all(&dir).map_err(failed)?;
        for (name, text, mode) in [
            ("ca.pem", &credentials.ca_pem, 0o644),
            ("node.pem", &credentials.cert_pem, 0o644),
            ("node-key.pem", &credentials.key_pem, 0o600),
        ] {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(mode)
                .open(dir.join(name))
                .map_err(failed)?;
            file.write_all(text.as_bytes()).map_err(failed)?;
        }
        Ok(())
    }

    /// Every cluster-wide datapath told this node's underlay (`None`: it left the cluster).
    pub(in crate::controller) fn set_underlay(&self, underlay: Option<Underlay>) {
        for datapath in self.drivers.cluster_datapaths() {
            datapath.set_underlay(underlay);
        }
    }

    /// The overlay's view of this node's underlay: its address, the cluster's port, and the
    /// MTU of the interface that carries the address.
    pub(super) async fn underlay(
        &self,
        membership: &MembershipRecord,
    ) -> Result<Underlay, EngineError> {
        let mtu = self
            .host
            .mtu_of_address(membership.advertise_addr)
            .await
            .map_err(EngineError::from)?
            .ok_or_else(|| {
                EngineError::invalid(format!(
                    "advertise address {} is not an address of this node",
                    membership.advertise_addr
                ))
            })?;
        Ok(Underlay {
            local: membership.advertise_addr,
            port: membership.vxlan_port,
            mtu,
        })
    }
}

/// The supervisor: connects while the node has a membership, keeps its lease, mirrors the
/// cluster; starts over at every join or leave. Runs for the daemon's life.
pub async fn run_cluster(controller: Arc<Controller>) {
    let mut generations = controller.cluster.generation.subscribe();
    loop {
        let generation = *generations.borrow_and_update();
        if let Some(membership) = controller.cluster.membership() {
            let session = controller.session(generation, membership);
            tokio::select! {
                () = session => {}
                _ = generations.changed() => {}
            }
            controller.cluster.set_store(None);
        } else if generations.changed().await.is_err() {
            return;
        }
    }
}

impl Controller {
    /// One membership's life: connect (until it works), lease, mirror (until it fails;
    /// then connect again).
    async fn session(self: &Arc<Self>, generation: u64, membership: MembershipRecord) {
        let mut logged = false;
        loop {
            // Fresh each time: the lease may have been replaced since.
            let membership = self
                .cluster
                .membership()
                .unwrap_or_else(|| membership.clone());
            let store = match self.connect_store(&membership).await {
                Ok(store) => store,
                Err(e) => {
                    if !logged {
                        tracing::warn!(error = %e, "cannot reach the cluster store; local networks are served, retrying every {RETRY:?}");
                        logged = true;
                    }
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            if logged {
                tracing::info!("cluster store reached");
                logged = false;
            }
            let liveness = match self.keep_alive(&store, &membership).await {
                Ok(liveness) => liveness,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot announce this node; retrying");
                    tokio::time::sleep(RETRY).await;
                    continue;
                }
            };
            self.cluster.set_store(Some(store.clone()));
            self.after_connect(&store, &membership).await;
            let followed = self.follow(&store, generation).await;
            drop(liveness);
            tracing::warn!(error = %followed, "lost the cluster store's watch; listing again");
            tokio::time::sleep(RETRY / 4).await;
        }
    }

    async fn connect_store(
        &self,
        membership: &MembershipRecord,
    ) -> Result<ClusterStore, StoreError> {
        let existing = self.cluster.store.lock().clone();
        match existing {
            Some(store) => Ok(store),
            None => {
                let tls = membership.store_tls.as_ref().map(|c| c.tls());
                ClusterStore::connect_with(&membership.store, tls.as_ref()).await
            }
        }
    }

    /// The node's lease, taken up again if it still lives (a restart within its TTL goes
    /// unseen), its id kept in the local store for the next start.
    async fn keep_alive(
        self: &Arc<Self>,
        store: &ClusterStore,
        membership: &MembershipRecord,
    ) -> Result<Liveness, EngineError> {
        let controller = Arc::downgrade(self);
        let on_new_lease = move |lease: i64| {
            let Some(controller) = controller.upgrade() else {
                return;
            };
            tokio::spawn(async move {
                let Some(mut membership) = controller.cluster.membership() else {
                    return;
                };
                membership.lease = Some(lease);
                *controller.cluster.membership.lock() = Some(membership.clone());
                if let Err(e) = controller.save_membership(&membership).await {
                    tracing::warn!(error = %e, "cannot keep the node's lease id");
                }
            });
        };
        Liveness::start(
            store.clone(),
            self.node.id.clone(),
            self.lease_ttl(),
            membership.lease,
            on_new_lease,
        )
        .await
        .map_err(|e| EngineError::unavailable(e.to_string()))
    }

    /// Lists, mirrors, then follows the watch from the listing's revision; returns why it
    /// stopped.
    async fn follow(self: &Arc<Self>, store: &ClusterStore, generation: u64) -> StoreError {
        let prefix = Prefix::scope(Scope::Global);
        loop {
            let snapshot = match store.load(&prefix).await {
                Ok(snapshot) => snapshot,
                Err(e) => return e,
            };
            if !self
                .mirror_snapshot(snapshot.entries, snapshot.revision)
                .await
            {
                continue;
            }
            self.cluster.synced.send_replace(generation);
            let mut watch = match store.watch(&prefix, snapshot.revision) {
                Ok(watch) => watch,
                Err(e) => return e,
            };
            loop {
                match watch.next().await {
                    Ok(changes) => self.mirror_changes(changes.events).await,
                    Err(StoreError::Compacted { .. }) => break,
                    Err(e) => return e,
                }
            }
        }
    }
}
