//! Serving the remote plugin API: every call dockerd makes, decoded, handed to a
//! [`DockerPlugin`], and its answer encoded.

use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::*;

/// What dockerd calls; every method must be idempotent where dockerd swallows errors
/// (DeleteNetwork, Leave, DeleteEndpoint).
pub trait DockerPlugin: Send + Sync + 'static {
    /// Where the networks dockerd makes through the plugin exist, as their driver says.
    fn network_capabilities(&self) -> NetworkCapabilities;
    fn request_pool(
        &self,
        req: RequestPool,
    ) -> impl Future<Output = PluginResult<PoolResponse>> + Send;
    fn release_pool(&self, req: ReleasePool) -> impl Future<Output = PluginResult<()>> + Send;
    fn request_address(
        &self,
        req: RequestAddress,
    ) -> impl Future<Output = PluginResult<AddressResponse>> + Send;
    fn release_address(&self, req: ReleaseAddress)
        -> impl Future<Output = PluginResult<()>> + Send;
    fn create_network(&self, req: CreateNetwork) -> impl Future<Output = PluginResult<()>> + Send;
    fn delete_network(&self, req: NetworkRef) -> impl Future<Output = PluginResult<()>> + Send;
    fn create_endpoint(
        &self,
        req: CreateEndpoint,
    ) -> impl Future<Output = PluginResult<CreateEndpointResponse>> + Send;
    fn delete_endpoint(&self, req: EndpointRef) -> impl Future<Output = PluginResult<()>> + Send;
    fn join(&self, req: Join) -> impl Future<Output = PluginResult<JoinResponse>> + Send;
    fn leave(&self, req: EndpointRef) -> impl Future<Output = PluginResult<()>> + Send;
    fn program_external_connectivity(
        &self,
        req: Connectivity,
    ) -> impl Future<Output = PluginResult<()>> + Send;
    fn revoke_external_connectivity(
        &self,
        req: EndpointRef,
    ) -> impl Future<Output = PluginResult<()>> + Send;
}

/// Every call dockerd makes, on `POST /Iface.Method`. Unknown methods get 404.
pub fn router<P: DockerPlugin>(plugin: Arc<P>) -> Router {
    Router::new()
        .route("/{method}", post(dispatch::<P>))
        .with_state(plugin)
}

async fn dispatch<P: DockerPlugin>(
    State(p): State<Arc<P>>,
    Path(method): Path<String>,
    body: Bytes,
) -> Response {
    let started = std::time::Instant::now();
    let response = answer(p, &method, &body).await;
    tracing::debug!(%method, status = %response.status(), elapsed = ?started.elapsed(), "Docker plugin call");
    response
}

async fn answer<P: DockerPlugin>(p: Arc<P>, method: &str, body: &[u8]) -> Response {
    let result = match method {
        "Plugin.Activate" => Ok(serde_json::json!({"Implements": ["NetworkDriver", "IpamDriver"]})),
        "NetworkDriver.GetCapabilities" => {
            serde_json::to_value(p.network_capabilities()).map_err(PluginError::from)
        }
        // The plugin keeps its pools and addresses itself: nothing to replay.
        "IpamDriver.GetCapabilities" => Ok(serde_json::json!({
            "RequiresMACAddress": false,
            "RequiresRequestReplay": false
        })),
        "IpamDriver.GetDefaultAddressSpaces" => Ok(serde_json::json!({
            "LocalDefaultAddressSpace": LOCAL_SPACE,
            "GlobalDefaultAddressSpace": GLOBAL_SPACE
        })),
        "IpamDriver.RequestPool" => call(body, |r| p.request_pool(r)).await,
        "IpamDriver.ReleasePool" => call(body, |r| p.release_pool(r)).await,
        "IpamDriver.RequestAddress" => call(body, |r| p.request_address(r)).await,
        "IpamDriver.ReleaseAddress" => call(body, |r| p.release_address(r)).await,
        "NetworkDriver.CreateNetwork" => call(body, |r| p.create_network(r)).await,
        "NetworkDriver.DeleteNetwork" => call(body, |r| p.delete_network(r)).await,
        "NetworkDriver.CreateEndpoint" => call(body, |r| p.create_endpoint(r)).await,
        "NetworkDriver.DeleteEndpoint" => call(body, |r| p.delete_endpoint(r)).await,
        "NetworkDriver.Join" => call(body, |r| p.join(r)).await,
        "NetworkDriver.Leave" => call(body, |r| p.leave(r)).await,
        "NetworkDriver.ProgramExternalConnectivity" => {
            call(body, |r| p.program_external_connectivity(r)).await
        }
        "NetworkDriver.RevokeExternalConnectivity" => {
            call(body, |r| p.revoke_external_connectivity(r)).await
        }
        // Operational data dockerd would show nowhere; swarm-only calls have nothing to do.
        "NetworkDriver.EndpointOperInfo" => Ok(serde_json::json!({"Value": {}})),
        "NetworkDriver.DiscoverNew"
        | "NetworkDriver.DiscoverDelete"
        | "NetworkDriver.AllocateNetwork"
        | "NetworkDriver.FreeNetwork" => Ok(serde_json::json!({})),
        other => {
            return (
                StatusCode::NOT_FOUND,
                Json(serde_json::json!({"Err": format!("netctl: unknown method {other}")})),
            )
                .into_response()
        }
    };
    match result {
        Ok(value) => Json(value).into_response(),
        Err(PluginError(message)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(serde_json::json!({"Err": message})),
        )
            .into_response(),
    }
}

/// Decodes the body (empty is `{}`), calls, and encodes the answer (`()` is `{}`).
async fn call<Req, Res, F, Fut>(body: &[u8], f: F) -> PluginResult<Value>
where
    Req: DeserializeOwned + Default,
    Res: Serialize,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = PluginResult<Res>>,
{
    let request: Req = if body.iter().all(u8::is_ascii_whitespace) {
        Req::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| PluginError(format!("netctl: malformed request: {e}")))?
    };
    let response = f(request).await?;
    match serde_json::to_value(response)? {
        Value::Null => Ok(serde_json::json!({})),
        value => Ok(value),
    }
}
