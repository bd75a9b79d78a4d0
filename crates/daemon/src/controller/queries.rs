//! What the engine answers without changing anything: objects as the API shows them, the
//! daemon's holdings, and who may do what. For the front ends, which keep no state.

use netctl_plugin_api::{DaemonInfo, NetworkInspect, Removed, SandboxInspect};

use super::{view, Controller};
use crate::controller::error::EngineError;
use crate::model::{NetworkRecord, SandboxRecord};

/// How much the daemon holds: `system info`'s counts and the metrics' gauges.
pub struct Holdings {
    pub networks: usize,
    pub sandboxes: usize,
    /// This node's.
    pub endpoints: usize,
    pub published_ports: usize,
    pub dhcp_clients: usize,
}

impl Controller {
    pub async fn holdings(&self) -> Holdings {
        let state = self.state.lock().await;
        let local = state.endpoints().filter(|e| e.node == self.node.id);
        let (mut endpoints, mut published_ports) = (0, 0);
        for ep in local {
            endpoints += 1;
            published_ports += ep.ports.len();
        }
        Holdings {
            networks: state.networks().count(),
            sandboxes: state.sandboxes().count(),
            endpoints,
            published_ports,
            dhcp_clients: self.leases.count(),
        }
    }

    /// The daemon's settings (the front ends read who may do what).
    pub fn config(&self) -> &crate::config::DaemonConfig {
        &self.config
    }

    /// `netctl system info`.
    pub async fn info(&self) -> DaemonInfo {
        let held = self.holdings().await;
        DaemonInfo {
            version: crate::paths::VERSION.into(),
            api_version: netctl_plugin_api::API_VERSION.into(),
            git_commit: crate::paths::GIT_COMMIT.into(),
            pid: std::process::id(),
            data_root: self.paths.data_root.display().to_string(),
            exec_root: self.paths.exec_root.display().to_string(),
            node_id: self.node.id.clone(),
            cluster_id: self.cluster.membership().map(|m| m.cluster_id.clone()),
            networks: held.networks,
            sandboxes: held.sandboxes,
            endpoints: held.endpoints,
            published_ports: held.published_ports,
            dhcp_clients: held.dhcp_clients,
            drivers: self.drivers.all().map(|d| d.name().to_string()).collect(),
            memory: crate::memory::current(),
        }
    }

    /// `net` as inspect shows it (it may be gone already: shown as it was).
    pub async fn network_view(&self, net: &NetworkRecord) -> NetworkInspect {
        let state = self.state.lock().await;
        view::network(&state, &self.drivers, net)
    }

    /// Every network as inspect shows it, by name.
    pub async fn network_views(&self) -> Vec<NetworkInspect> {
        let state = self.state.lock().await;
        let mut list: Vec<_> = state
            .networks()
            .map(|n| view::network(&state, &self.drivers, n))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// The network named (or with the id) `name`, as inspect shows it.
    pub async fn network_inspect(&self, name: &str) -> Result<NetworkInspect, EngineError> {
        let state = self.state.lock().await;
        Ok(view::network(&state, &self.drivers, state.network(name)?))
    }

    /// The network named (or with the id) `name`: its id and name.
    pub async fn network_named(&self, name: &str) -> Result<Removed, EngineError> {
        let state = self.state.lock().await;
        let net = state.network(name)?;
        Ok(Removed {
            id: net.id.clone(),
            name: net.name.clone(),
        })
    }

    /// `sandbox` as inspect shows it (it may be gone already: shown as it was).
    pub async fn sandbox_view(&self, sandbox: &SandboxRecord) -> SandboxInspect {
        let state = self.state.lock().await;
        view::sandbox(&state, &self.paths, sandbox)
    }

    /// Every sandbox as inspect shows it, by name.
    pub async fn sandbox_views(&self) -> Vec<SandboxInspect> {
        let state = self.state.lock().await;
        let mut list: Vec<_> = state
            .sandboxes()
            .map(|s| view::sandbox(&state, &self.paths, s))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// The sandbox named (or with the id) `name`, as inspect shows it.
    pub async fn sandbox_inspect(&self, name: &str) -> Result<SandboxInspect, EngineError> {
        let state = self.state.lock().await;
        Ok(view::sandbox(&state, &self.paths, state.sandbox(name)?))
    }

    /// The sandbox named (or with the id) `name`: its id and name.
    pub async fn sandbox_named(&self, name: &str) -> Result<Removed, EngineError> {
        let state = self.state.lock().await;
        let sandbox = state.sandbox(name)?;
        Ok(Removed {
            id: sandbox.id.clone(),
            name: sandbox.name.clone(),
        })
    }
}
