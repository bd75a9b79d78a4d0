//! Docker's remote plugin front end: dockerd's calls checked (ids, sandbox keys), timed for
//! the metrics, handed to the engine, and its errors said as dockerd shows them. It holds
//! no state and plans nothing.

use std::sync::Arc;

use netctl_plugin_api::docker::{
    checks, AddressResponse, Connectivity, CreateEndpoint, CreateEndpointResponse, CreateNetwork,
    DockerPlugin, EndpointRef, Join, JoinResponse, NetworkCapabilities, NetworkRef, PluginError,
    PluginResult, PoolResponse, ReleaseAddress, ReleasePool, RequestAddress, RequestPool,
};
use netctl_plugin_api::ApiError;

use crate::controller::Controller;
use crate::metrics::{timed, Operation, Via};

/// The Docker plugin over the engine.
pub struct DockerFront {
    engine: Arc<Controller>,
}

impl DockerFront {
    pub fn new(engine: Arc<Controller>) -> Self {
        Self { engine }
    }
}

/// dockerd prints the message after `Iface.Method: `; say who is speaking.
fn plugin_error(e: impl Into<ApiError>) -> PluginError {
    PluginError(format!("netctl: {}", e.into().message))
}

impl DockerPlugin for DockerFront {
    fn network_capabilities(&self) -> NetworkCapabilities {
        let scope = self.engine.docker_scope();
        NetworkCapabilities {
            scope: scope.into(),
            connectivity_scope: scope.into(),
        }
    }

    async fn request_pool(&self, req: RequestPool) -> PluginResult<PoolResponse> {
        self.engine
            .docker_request_pool(req)
            .await
            .map_err(plugin_error)
    }

    async fn release_pool(&self, req: ReleasePool) -> PluginResult<()> {
        checks::pool_id(&req.pool_id).map_err(plugin_error)?;
        self.engine
            .docker_release_pool(&req.pool_id)
            .await
            .map_err(plugin_error)
    }

    async fn request_address(&self, req: RequestAddress) -> PluginResult<AddressResponse> {
        checks::pool_id(&req.pool_id).map_err(plugin_error)?;
        self.engine
            .docker_request_address(req)
            .await
            .map_err(plugin_error)
    }

    async fn release_address(&self, req: ReleaseAddress) -> PluginResult<()> {
        checks::pool_id(&req.pool_id).map_err(plugin_error)?;
        self.engine
            .docker_release_address(req)
            .await
            .map_err(plugin_error)
    }

    async fn create_network(&self, req: CreateNetwork) -> PluginResult<()> {
        checks::docker_id("NetworkID", &req.network_id).map_err(plugin_error)?;
        timed(
            Operation::NetworkCreate,
            Via::Docker,
            self.engine.docker_create_network(req),
        )
        .await
        .map_err(plugin_error)
    }

    async fn delete_network(&self, req: NetworkRef) -> PluginResult<()> {
        checks::docker_id("NetworkID", &req.network_id).map_err(plugin_error)?;
        timed(
            Operation::NetworkRemove,
            Via::Docker,
            self.engine.docker_delete_network(&req.network_id),
        )
        .await
        .map_err(plugin_error)
    }

    async fn create_endpoint(&self, req: CreateEndpoint) -> PluginResult<CreateEndpointResponse> {
        checks::endpoint_ids(&req.network_id, &req.endpoint_id).map_err(plugin_error)?;
        timed(
            Operation::Attach,
            Via::Docker,
            self.engine.docker_create_endpoint(req),
        )
        .await
        .map_err(plugin_error)
    }

    async fn delete_endpoint(&self, req: EndpointRef) -> PluginResult<()> {
        checks::endpoint_ids(&req.network_id, &req.endpoint_id).map_err(plugin_error)?;
        timed(
            Operation::Detach,
            Via::Docker,
            self.engine.docker_delete_endpoint(&req.endpoint_id),
        )
        .await
        .map_err(plugin_error)
    }

    async fn join(&self, req: Join) -> PluginResult<JoinResponse> {
        checks::endpoint_ids(&req.network_id, &req.endpoint_id)
            .and_then(|()| checks::sandbox_key(&req.sandbox_key))
            .map_err(plugin_error)?;
        timed(
            Operation::Join,
            Via::Docker,
            self.engine.docker_join(&req.endpoint_id, &req.sandbox_key),
        )
        .await
        .map_err(plugin_error)
    }

    /// The veth is deleted in DeleteEndpoint: at Leave its container end is still in the
    /// container, from where a DHCP lease is given back.
    async fn leave(&self, req: EndpointRef) -> PluginResult<()> {
        checks::endpoint_ids(&req.network_id, &req.endpoint_id).map_err(plugin_error)?;
        let leave = async {
            self.engine.docker_leave(&req.endpoint_id).await;
            Ok::<(), ApiError>(())
        };
        timed(Operation::Leave, Via::Docker, leave)
            .await
            .map_err(plugin_error)
    }

    async fn program_external_connectivity(&self, req: Connectivity) -> PluginResult<()> {
        checks::endpoint_ids(&req.network_id, &req.endpoint_id).map_err(plugin_error)?;
        timed(
            Operation::Publish,
            Via::Docker,
            self.engine.docker_publish(req),
        )
        .await
        .map_err(plugin_error)
    }

    async fn revoke_external_connectivity(&self, req: EndpointRef) -> PluginResult<()> {
        checks::endpoint_ids(&req.network_id, &req.endpoint_id).map_err(plugin_error)?;
        timed(
            Operation::Unpublish,
            Via::Docker,
            self.engine.docker_unpublish(&req.endpoint_id),
        )
        .await
        .map_err(plugin_error)
    }
}
