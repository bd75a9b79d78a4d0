//! The management API's front end: each call of the CLI's (and the CNI plugin's, which
//! speaks it too) checked against the caller's role, timed for the metrics, and handed to
//! the engine. It holds no state and plans nothing.

use std::sync::Arc;

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

use crate::controller::Controller;
use crate::metrics::{timed, Operation, Via};

/// The management API over the engine.
pub struct ManagementApi {
    engine: Arc<Controller>,
}

impl ManagementApi {
    pub fn new(engine: Arc<Controller>) -> Self {
        Self { engine }
    }
}

impl Management for ManagementApi {
    fn authorize(&self, caller: &Caller, rule: Rule) -> Result<(), ApiError> {
        self.engine.config().roles.check(caller, rule)
    }

    async fn info(&self) -> Result<DaemonInfo, ApiError> {
        Ok(self.engine.info().await)
    }

    async fn network_create(&self, req: NetworkCreateRequest) -> Result<NetworkInspect, ApiError> {
        let created = self.engine.create_network(req);
        let net = timed(Operation::NetworkCreate, Via::Api, created).await?;
        Ok(self.engine.network_view(&net).await)
    }

    async fn network_list(&self) -> Result<Vec<NetworkInspect>, ApiError> {
        Ok(self.engine.network_views().await)
    }

    async fn network_inspect(&self, name: String) -> Result<NetworkInspect, ApiError> {
        self.engine
            .network_inspect(&name)
            .await
            .map_err(ApiError::from)
    }

    async fn network_remove(&self, name: String) -> Result<Removed, ApiError> {
        let removed = self.engine.network_named(&name).await?;
        timed(
            Operation::NetworkRemove,
            Via::Api,
            self.engine.remove_network(&removed.id),
        )
        .await?;
        Ok(removed)
    }

    async fn network_connect(&self, network: String, req: ConnectRequest) -> Result<(), ApiError> {
        self.engine
            .refuse_managed(Some(&network), &req.container)
            .await?;
        let connect = self
            .engine
            .connect(&network, &req.container, &req.endpoint_config);
        timed(Operation::Attach, Via::Api, connect).await
    }

    async fn network_disconnect(
        &self,
        network: String,
        req: DisconnectRequest,
    ) -> Result<(), ApiError> {
        self.engine
            .refuse_managed(Some(&network), &req.container)
            .await?;
        timed(
            Operation::Detach,
            Via::Api,
            self.engine.disconnect(&network, &req.container),
        )
        .await
    }

    async fn sandbox_create(&self, req: SandboxCreateRequest) -> Result<SandboxInspect, ApiError> {
        if let Some(network) = &req.network {
            self.engine.refuse_managed(Some(network), &req.name).await?;
        }
        let created = self.engine.create_sandbox(req);
        let sandbox = timed(Operation::SandboxCreate, Via::Api, created).await?;
        Ok(self.engine.sandbox_view(&sandbox).await)
    }

    async fn sandbox_list(&self) -> Result<Vec<SandboxInspect>, ApiError> {
        Ok(self.engine.sandbox_views().await)
    }

    async fn sandbox_inspect(&self, name: String) -> Result<SandboxInspect, ApiError> {
        self.engine
            .sandbox_inspect(&name)
            .await
            .map_err(ApiError::from)
    }

    async fn network_publish(
        &self,
        network: String,
        req: PublishRequest,
    ) -> Result<Vec<PortMapping>, ApiError> {
        self.engine
            .refuse_managed(Some(&network), &req.container)
            .await?;
        let publish = self
            .engine
            .publish(&network, &req.container, &req.port_bindings);
        timed(Operation::Publish, Via::Api, publish).await
    }

    async fn network_unpublish(
        &self,
        network: String,
        req: PublishRequest,
    ) -> Result<(), ApiError> {
        self.engine
            .refuse_managed(Some(&network), &req.container)
            .await?;
        let unpublish = self
            .engine
            .unpublish(&network, &req.container, &req.port_bindings);
        timed(Operation::Unpublish, Via::Api, unpublish).await
    }

    async fn firewall_reload(&self) -> Result<(), ApiError> {
        self.engine.reload_firewall().await.map_err(ApiError::from)
    }

    async fn sandbox_remove(&self, name: String) -> Result<Removed, ApiError> {
        self.engine.refuse_managed(None, &name).await?;
        let removed = self.engine.sandbox_named(&name).await?;
        timed(
            Operation::SandboxRemove,
            Via::Api,
            self.engine.remove_sandbox(&removed.id),
        )
        .await?;
        Ok(removed)
    }

    async fn sandbox_dns(&self, name: String) -> Result<netctl_plugin_api::DnsExplain, ApiError> {
        self.engine.explain_dns(&name).await.map_err(ApiError::from)
    }

    async fn cluster_init(&self, req: ClusterInitRequest) -> Result<ClusterInspect, ApiError> {
        self.engine.cluster_init(req).await.map_err(ApiError::from)
    }

    async fn cluster_join(&self, req: ClusterJoinRequest) -> Result<ClusterInspect, ApiError> {
        self.engine.cluster_join(req).await.map_err(ApiError::from)
    }

    async fn cluster_leave(&self, req: ClusterLeaveRequest) -> Result<(), ApiError> {
        self.engine.cluster_leave(req).await.map_err(ApiError::from)
    }

    async fn cluster_inspect(&self) -> Result<ClusterInspect, ApiError> {
        self.engine.cluster_inspect().await.map_err(ApiError::from)
    }

    async fn cluster_join_token(&self, req: JoinTokenRequest) -> Result<JoinToken, ApiError> {
        self.engine
            .cluster_join_token(req)
            .await
            .map_err(ApiError::from)
    }

    async fn cluster_backup(&self) -> Result<serde_json::Value, ApiError> {
        self.engine.cluster_backup().await.map_err(ApiError::from)
    }

    async fn cluster_restore(
        &self,
        req: ClusterRestoreRequest,
    ) -> Result<ClusterRestored, ApiError> {
        self.engine
            .cluster_restore(req)
            .await
            .map_err(ApiError::from)
    }

    async fn node_list(&self) -> Result<Vec<NodeInspect>, ApiError> {
        self.engine.node_list().await.map_err(ApiError::from)
    }

    async fn node_inspect(&self, node: String) -> Result<NodeInspect, ApiError> {
        self.engine
            .node_inspect(&node)
            .await
            .map_err(ApiError::from)
    }

    async fn node_set_role(&self, node: String, role: String) -> Result<NodeInspect, ApiError> {
        self.engine
            .node_set_role(&node, &role)
            .await
            .map_err(ApiError::from)
    }

    async fn node_remove(&self, node: String, req: NodeRemoveRequest) -> Result<(), ApiError> {
        self.engine
            .node_remove(&node, req)
            .await
            .map_err(ApiError::from)
    }

    async fn service_create(&self, req: ServiceCreateRequest) -> Result<ServiceInspect, ApiError> {
        self.engine
            .service_create(req)
            .await
            .map_err(ApiError::from)
    }

    async fn service_list(&self) -> Result<Vec<ServiceInspect>, ApiError> {
        self.engine.service_list().await.map_err(ApiError::from)
    }

    async fn service_inspect(&self, name: String) -> Result<ServiceInspect, ApiError> {
        self.engine
            .service_inspect(&name)
            .await
            .map_err(ApiError::from)
    }

    async fn service_update(
        &self,
        name: String,
        req: ServiceUpdateRequest,
    ) -> Result<ServiceInspect, ApiError> {
        self.engine
            .service_update(&name, req)
            .await
            .map_err(ApiError::from)
    }

    async fn service_remove(&self, name: String) -> Result<Removed, ApiError> {
        self.engine
            .service_remove(&name)
            .await
            .map_err(ApiError::from)
    }

    async fn runtime_attach(&self, req: AttachRequest) -> Result<Attachment, ApiError> {
        timed(
            Operation::Attach,
            Via::Runtime,
            self.engine.runtime_attach(req),
        )
        .await
    }

    async fn runtime_detach(&self, req: AttachmentRef) -> Result<(), ApiError> {
        timed(
            Operation::Detach,
            Via::Runtime,
            self.engine.runtime_detach(req),
        )
        .await
    }

    async fn runtime_check(&self, req: AttachmentRef) -> Result<CheckReport, ApiError> {
        self.engine.runtime_check(req).await.map_err(ApiError::from)
    }

    async fn runtime_gc(&self, req: RuntimeGcRequest) -> Result<GcReport, ApiError> {
        self.engine.runtime_gc(req).await.map_err(ApiError::from)
    }

    async fn gc(&self, req: GcRequest) -> Result<GcReport, ApiError> {
        Ok(self.engine.gc(req.dry_run).await)
    }
}
