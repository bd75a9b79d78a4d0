//! A node's liveness: its `node.alive` key on an etcd lease, kept alive by the daemon.
//!
//! A daemon restarted within the lease's TTL takes the same lease up again (its id is kept
//! in the local store), so nothing changes anywhere else: no node sees it go down and come
//! back. A lease that did expire (the node was away longer than its TTL) is replaced by a
//! new one and the node announces itself again.

use std::time::Duration;

use netctl_store::{ClusterStore, LeaseId};
use tokio::task::JoinHandle;

use super::members::{announce, MembershipError};

/// Keeps one node's lease alive until dropped; dropping it lets the lease expire.
pub struct Liveness {
    task: JoinHandle<()>,
}

impl Liveness {
    /// Takes `previous` up again if it still lives, else grants a lease of `ttl`; announces
    /// the node on it, and keeps it alive every third of `ttl`. `on_new_lease` hears of each
    /// lease granted, to keep its id for the next start.
    pub async fn start(
        store: ClusterStore,
        node_id: String,
        ttl: Duration,
        previous: Option<LeaseId>,
        on_new_lease: impl Fn(LeaseId) + Send + 'static,
    ) -> Result<Self, MembershipError> {
        let lease = match previous {
            Some(lease) if store.keep_alive(lease).await? => lease,
            _ => {
                let lease = store.grant_lease(ttl).await?;
                on_new_lease(lease);
                lease
            }
        };
        announce(&store, &node_id, lease).await?;
        let task = tokio::spawn(keep(store, node_id, ttl, lease, on_new_lease));
        Ok(Self { task })
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn keep(
    store: ClusterStore,
    node_id: String,
    ttl: Duration,
    mut lease: LeaseId,
    on_new_lease: impl Fn(LeaseId) + Send + 'static,
) {
    let period = ttl / 3;
    loop {
        tokio::time::sleep(period).await;
        match store.keep_alive(lease).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(node = %node_id, "the node's lease expired; announcing it again");
                match store.grant_lease(ttl).await {
                    Ok(new) => {
                        lease = new;
                        on_new_lease(new);
                        if let Err(e) = announce(&store, &node_id, lease).await {
                            tracing::warn!(error = %e, "cannot announce the node");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot grant the node a lease"),
                }
            }
            // The store is away: try again next period; the lease may outlive the outage.
            Err(e) => tracing::warn!(error = %e, "cannot keep the node's lease alive"),
        }
    }
}
