//! `netctl cluster inspect|backup|restore` and `netctl node …`: the cluster as this node
//! mirrors it, and managers' changes to its nodes.

use netctl_plugin_api::cluster::{
    ClusterInspect, ClusterRestoreRequest, ClusterRestored, NodeInspect, NodeRemoveRequest,
};
use netctl_store::{Batch, ClusterStore, Store};

use super::super::state::State;
use super::super::Controller;
use crate::cluster_store::backup::{self, Backup, BackupError};
use crate::cluster_store::credentials;
use crate::cluster_store::members::{self, ClusterNode, Role};
use crate::controller::error::EngineError;
use crate::model::EndpointRecord;

fn node_view(state: &State, node: &ClusterNode, this: &str) -> NodeInspect {
    NodeInspect {
        id: node.id.clone(),
        hostname: node.hostname.clone(),
        address: node.address.clone(),
        role: node.role.name().into(),
        status: if state.global.is_ready(&node.id) {
            "ready"
        } else {
            "down"
        }
        .into(),
        endpoints: state.endpoints().filter(|e| e.node == node.id).count(),
        joined: node.joined.clone(),
        this_node: node.id == this,
    }
}

/// A node by id, unique id prefix or hostname.
pub(super) fn find_node<'a>(state: &'a State, key: &str) -> Result<&'a ClusterNode, EngineError> {
    let nodes = &state.global.nodes;
    if let Some(node) = nodes.get(key) {
        return Ok(node);
    }
    let matches: Vec<&ClusterNode> = nodes
        .values()
        .filter(|n| n.hostname == key || (!key.is_empty() && n.id.starts_with(key)))
        .collect();
    match matches.as_slice() {
        [node] => Ok(node),
        [] => Err(EngineError::not_found(format!("node {key} not found"))),
        _ => Err(EngineError::conflict(format!(
            "node {key} is ambiguous: give its id"
        ))),
    }
}

fn from_backup(e: BackupError) -> EngineError {
    match e {
        BackupError::NotEmpty(_) => EngineError::conflict(e.to_string()),
        BackupError::Malformed(_) => EngineError::invalid(e.to_string()),
        BackupError::Membership(e) => EngineError::from(e),
        BackupError::Store(e) => EngineError::from(e),
    }
}

impl Controller {
    pub async fn cluster_inspect(&self) -> Result<ClusterInspect, EngineError> {
        let membership = self
            .cluster
            .membership()
            .ok_or_else(super::not_in_cluster)?;
        let reachable = self.cluster.store().is_ok();
        let state = self.state.lock().await;
        let this = state
            .global
            .nodes
            .get(&self.node.id)
            .cloned()
            .unwrap_or(ClusterNode {
                id: self.node.id.clone(),
                hostname: self.node.hostname.clone(),
                address: membership.advertise_addr.to_string(),
                role: Role::Worker,
                joined: membership.joined.clone(),
            });
        let count = |role| {
            state
                .global
                .nodes
                .values()
                .filter(|n| n.role == role)
                .count()
        };
        Ok(ClusterInspect {
            id: membership.cluster_id.clone(),
            created: state
                .global
                .cluster
                .as_ref()
                .map(|c| c.created.clone())
                .unwrap_or_default(),
            vxlan_port: membership.vxlan_port,
            store: membership.store.clone(),
            store_reachable: reachable,
            store_user: membership
                .store_tls
                .as_ref()
                .map(|_| credentials::node_user(&self.node.id)),
            this_node: node_view(&state, &this, &self.node.id),
            managers: count(Role::Manager),
            workers: count(Role::Worker),
            global_networks: state.networks().filter(|n| self.is_global(n)).count(),
        })
    }

    pub async fn node_list(&self) -> Result<Vec<NodeInspect>, EngineError> {
        self.cluster
            .membership()
            .ok_or_else(super::not_in_cluster)?;
        let state = self.state.lock().await;
        let mut nodes: Vec<NodeInspect> = state
            .global
            .nodes
            .values()
            .map(|n| node_view(&state, n, &self.node.id))
            .collect();
        nodes.sort_by(|a, b| (&a.hostname, &a.id).cmp(&(&b.hostname, &b.id)));
        Ok(nodes)
    }

    pub async fn node_inspect(&self, key: &str) -> Result<NodeInspect, EngineError> {
        self.cluster
            .membership()
            .ok_or_else(super::not_in_cluster)?;
        let state = self.state.lock().await;
        let node = find_node(&state, key)?;
        Ok(node_view(&state, node, &self.node.id))
    }

    /// `node promote|demote`: managers only; the last manager is not demoted.
    pub async fn node_set_role(&self, key: &str, role: &str) -> Result<NodeInspect, EngineError> {
        let role = match role {
            "manager" => Role::Manager,
            _ => Role::Worker,
        };
        self.require_manager_for("node promote/demote").await?;
        let id = {
            let state = self.state.lock().await;
            let node = find_node(&state, key)?;
            let managers = state
                .global
                .nodes
                .values()
                .filter(|n| n.role == Role::Manager)
                .count();
            if role == Role::Worker && node.role == Role::Manager && managers == 1 {
                return Err(EngineError::conflict(format!(
                    "node {} is the cluster's last manager: promote another node first",
                    node.hostname
                )));
            }
            node.id.clone()
        };
        let store = self.cluster.store()?;
        if self.store_is_tls() {
            // Its etcd user first: a worker's record never says manager before its
            // user may act as one.
            credentials::admit(&store, &id, role)
                .await
                .map_err(EngineError::from)?;
        }
        let node = members::set_role(&store, &id, role)
            .await
            .map_err(EngineError::from)?;
        let mut state = self.state.lock().await;
        state.global.nodes.insert(node.id.clone(), node.clone());
        Ok(node_view(&state, &node, &self.node.id))
    }

    /// `node rm`: managers only; a ready node only with `--force`; its endpoints and their
    /// addresses go with it (every node unplugs them as it sees the change).
    pub async fn node_remove(&self, key: &str, req: NodeRemoveRequest) -> Result<(), EngineError> {
        self.require_manager_for("node rm").await?;
        let (node, batch) = {
            let state = self.state.lock().await;
            let node = find_node(&state, key)?.clone();
            if node.id == self.node.id {
                return Err(EngineError::conflict(
                    "this is the node answering: use `netctl cluster leave` on it instead",
                ));
            }
            if state.global.is_ready(&node.id) && !req.force {
                return Err(EngineError::conflict(format!(
                    "node {} is ready: stop its daemon first, or remove it with --force",
                    node.hostname
                )));
            }
            let endpoints: Vec<&EndpointRecord> =
                state.endpoints().filter(|e| e.node == node.id).collect();
            let mut batch = Batch::new();
            for ep in endpoints {
                if let Some(net) = state.network_by_id(&ep.network_id) {
                    batch = batch.and(self.endpoint_removal(net, ep));
                }
            }
            (node, batch)
        };
        let store = self.cluster.store()?;
        apply_in_chunks(&store, batch).await?;
        members::remove_node(&store, &node.id)
            .await
            .map_err(EngineError::from)?;
        if self.store_is_tls() {
            // Its certificate opens nothing any more.
            store
                .remove_user(&credentials::node_user(&node.id))
                .await
                .map_err(EngineError::from)?;
        }
        tracing::info!(node = %node.hostname, "node removed from the cluster");
        Ok(())
    }

    async fn require_manager_for(&self, what: &str) -> Result<(), EngineError> {
        self.require_manager_to(what, "change the cluster's nodes")
            .await
    }

    pub async fn cluster_backup(&self) -> Result<serde_json::Value, EngineError> {
        let store = self.cluster.store()?;
        let backup = backup::backup(&store).await.map_err(from_backup)?;
        serde_json::to_value(backup).map_err(|e| EngineError::internal(e.to_string()))
    }

    /// Restores a backup into an empty store: this node's (when it is in a cluster whose
    /// store was emptied), or the one named.
    pub async fn cluster_restore(
        &self,
        req: ClusterRestoreRequest,
    ) -> Result<ClusterRestored, EngineError> {
        let backup: Backup = serde_json::from_value(req.backup)
            .map_err(|e| EngineError::invalid(format!("not a netctl cluster backup: {e}")))?;
        let urls = match (req.store.is_empty(), self.cluster.membership()) {
            (true, Some(m)) => m.store,
            _ => self.store_urls(&req.store)?,
        };
        let tls = self
            .cluster
            .membership()
            .and_then(|m| m.store_tls)
            .map(|c| c.tls());
        let store = ClusterStore::connect_with(&urls, tls.as_ref())
            .await
            .map_err(EngineError::from)?;
        let keys = backup::restore(&store, &backup)
            .await
            .map_err(from_backup)?;
        tracing::info!(keys, "cluster store restored from a backup");
        Ok(ClusterRestored { keys })
    }
}

/// etcd takes at most 128 operations per transaction.
pub(super) async fn apply_in_chunks(store: &ClusterStore, batch: Batch) -> Result<(), EngineError> {
    for chunk in batch.ops.chunks(100) {
        store
            .apply(Batch {
                ops: chunk.to_vec(),
            })
            .await
            .map_err(EngineError::from)?;
    }
    Ok(())
}
