//! The management API, served by the controller.

use netctl_plugin_api::access::Rule;
use netctl_plugin_api::cluster::{
    ClusterInitRequest, ClusterInspect, ClusterJoinRequest, ClusterLeaveRequest,
    ClusterRestoreRequest, ClusterRestored, JoinToken, JoinTokenRequest, NodeInspect,
    NodeRemoveRequest, ServiceCreateRequest, ServiceInspect, ServiceUpdateRequest,
};
use netctl_plugin_api::management::{Caller, Management};
use netctl_plugin_api::ports::PortMapping;
use netctl_plugin_api::runtime::{
    AttachRequest, Attachment, AttachmentRef, CheckReport, GcReport, GcRequest, RuntimeGcRequest,
};
use netctl_plugin_api::{
    ApiError, ConnectRequest, DaemonInfo, DisconnectRequest, NetworkCreateRequest, NetworkInspect,
    PublishRequest, Removed, SandboxCreateRequest, SandboxInspect,
};

use super::{view, Controller};
use crate::metrics::{timed, Operation, Via};

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
}

impl Management for Controller {
    fn authorize(&self, caller: &Caller, rule: Rule) -> Result<(), ApiError> {
        self.config.roles.check(caller, rule)
    }

    async fn info(&self) -> Result<DaemonInfo, ApiError> {
        let held = self.holdings().await;
        Ok(DaemonInfo {
            version: crate::VERSION.into(),
            api_version: netctl_plugin_api::API_VERSION.into(),
            git_commit: crate::GIT_COMMIT.into(),
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
        })
    }

    async fn network_create(&self, req: NetworkCreateRequest) -> Result<NetworkInspect, ApiError> {
        let net = timed(Operation::NetworkCreate, Via::Api, self.create_network(req)).await?;
        let state = self.state.lock().await;
        Ok(view::network(&state, &self.drivers, &net))
    }

    async fn network_list(&self) -> Result<Vec<NetworkInspect>, ApiError> {
        let state = self.state.lock().await;
        let mut list: Vec<_> = state
            .networks()
            .map(|n| view::network(&state, &self.drivers, n))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn network_inspect(&self, name: String) -> Result<NetworkInspect, ApiError> {
        let state = self.state.lock().await;
        Ok(view::network(&state, &self.drivers, state.network(&name)?))
    }

    async fn network_remove(&self, name: String) -> Result<Removed, ApiError> {
        let removed = {
            let state = self.state.lock().await;
            let net = state.network(&name)?;
            Removed {
                id: net.id.clone(),
                name: net.name.clone(),
            }
        };
        timed(
            Operation::NetworkRemove,
            Via::Api,
            self.remove_network(&removed.id),
        )
        .await?;
        Ok(removed)
    }

    async fn network_connect(&self, network: String, req: ConnectRequest) -> Result<(), ApiError> {
        self.refuse_managed(Some(&network), &req.container).await?;
        let connect = self.connect(&network, &req.container, &req.endpoint_config);
        timed(Operation::Attach, Via::Api, connect).await
    }

    async fn network_disconnect(
        &self,
        network: String,
        req: DisconnectRequest,
    ) -> Result<(), ApiError> {
        self.refuse_managed(Some(&network), &req.container).await?;
        timed(
            Operation::Detach,
            Via::Api,
            self.disconnect(&network, &req.container),
        )
        .await
    }

    async fn sandbox_create(&self, req: SandboxCreateRequest) -> Result<SandboxInspect, ApiError> {
        if let Some(network) = &req.network {
            self.refuse_managed(Some(network), &req.name).await?;
        }
        let sandbox = timed(Operation::SandboxCreate, Via::Api, self.create_sandbox(req)).await?;
        let state = self.state.lock().await;
        Ok(view::sandbox(&state, &self.paths, &sandbox))
    }

    async fn sandbox_list(&self) -> Result<Vec<SandboxInspect>, ApiError> {
        let state = self.state.lock().await;
        let mut list: Vec<_> = state
            .sandboxes()
            .map(|s| view::sandbox(&state, &self.paths, s))
            .collect();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(list)
    }

    async fn sandbox_inspect(&self, name: String) -> Result<SandboxInspect, ApiError> {
        let state = self.state.lock().await;
        Ok(view::sandbox(&state, &self.paths, state.sandbox(&name)?))
    }

    async fn network_publish(
        &self,
        network: String,
        req: PublishRequest,
    ) -> Result<Vec<PortMapping>, ApiError> {
        self.refuse_managed(Some(&network), &req.container).await?;
        let publish = self.publish(&network, &req.container, &req.port_bindings);
        timed(Operation::Publish, Via::Api, publish).await
    }

    async fn network_unpublish(
        &self,
        network: String,
        req: PublishRequest,
    ) -> Result<(), ApiError> {
        self.refuse_managed(Some(&network), &req.container).await?;
        let unpublish = self.unpublish(&network, &req.container, &req.port_bindings);
        timed(Operation::Unpublish, Via::Api, unpublish).await
    }

    async fn firewall_reload(&self) -> Result<(), ApiError> {
        self.reload_firewall().await
    }

    async fn sandbox_remove(&self, name: String) -> Result<Removed, ApiError> {
        self.refuse_managed(None, &name).await?;
        let removed = {
            let state = self.state.lock().await;
            let sandbox = state.sandbox(&name)?;
            Removed {
                id: sandbox.id.clone(),
                name: sandbox.name.clone(),
            }
        };
        timed(
            Operation::SandboxRemove,
            Via::Api,
            self.remove_sandbox(&removed.id),
        )
        .await?;
        Ok(removed)
    }

    async fn sandbox_dns(&self, name: String) -> Result<netctl_plugin_api::DnsExplain, ApiError> {
        self.explain_dns(&name).await
    }

    async fn cluster_init(&self, req: ClusterInitRequest) -> Result<ClusterInspect, ApiError> {
        Controller::cluster_init(self, req).await
    }

    async fn cluster_join(&self, req: ClusterJoinRequest) -> Result<ClusterInspect, ApiError> {
        Controller::cluster_join(self, req).await
    }

    async fn cluster_leave(&self, req: ClusterLeaveRequest) -> Result<(), ApiError> {
        Controller::cluster_leave(self, req).await
    }

    async fn cluster_inspect(&self) -> Result<ClusterInspect, ApiError> {
        Controller::cluster_inspect(self).await
    }

    async fn cluster_join_token(&self, req: JoinTokenRequest) -> Result<JoinToken, ApiError> {
        Controller::cluster_join_token(self, req).await
    }

    async fn cluster_backup(&self) -> Result<serde_json::Value, ApiError> {
        Controller::cluster_backup(self).await
    }

    async fn cluster_restore(
        &self,
        req: ClusterRestoreRequest,
    ) -> Result<ClusterRestored, ApiError> {
        Controller::cluster_restore(self, req).await
    }

    async fn node_list(&self) -> Result<Vec<NodeInspect>, ApiError> {
        Controller::node_list(self).await
    }

    async fn node_inspect(&self, node: String) -> Result<NodeInspect, ApiError> {
        Controller::node_inspect(self, &node).await
    }

    async fn node_set_role(&self, node: String, role: String) -> Result<NodeInspect, ApiError> {
        Controller::node_set_role(self, &node, &role).await
    }

    async fn node_remove(&self, node: String, req: NodeRemoveRequest) -> Result<(), ApiError> {
        Controller::node_remove(self, &node, req).await
    }

    async fn service_create(&self, req: ServiceCreateRequest) -> Result<ServiceInspect, ApiError> {
        Controller::service_create(self, req).await
    }

    async fn service_list(&self) -> Result<Vec<ServiceInspect>, ApiError> {
        Controller::service_list(self).await
    }

    async fn service_inspect(&self, name: String) -> Result<ServiceInspect, ApiError> {
        Controller::service_inspect(self, &name).await
    }

    async fn service_update(
        &self,
        name: String,
        req: ServiceUpdateRequest,
    ) -> Result<ServiceInspect, ApiError> {
        Controller::service_update(self, &name, req).await
    }

    async fn service_remove(&self, name: String) -> Result<Removed, ApiError> {
        Controller::service_remove(self, &name).await
    }

    async fn runtime_attach(&self, req: AttachRequest) -> Result<Attachment, ApiError> {
        timed(
            Operation::Attach,
            Via::Runtime,
            Controller::runtime_attach(self, req),
        )
        .await
    }

    async fn runtime_detach(&self, req: AttachmentRef) -> Result<(), ApiError> {
        timed(
            Operation::Detach,
            Via::Runtime,
            Controller::runtime_detach(self, req),
        )
        .await
    }

    async fn runtime_check(&self, req: AttachmentRef) -> Result<CheckReport, ApiError> {
        Controller::runtime_check(self, req).await
    }

    async fn runtime_gc(&self, req: RuntimeGcRequest) -> Result<GcReport, ApiError> {
        Controller::runtime_gc(self, req).await
    }

    async fn gc(&self, req: GcRequest) -> Result<GcReport, ApiError> {
        Ok(Controller::gc(self, req.dry_run).await)
    }
}
