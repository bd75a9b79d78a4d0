//! Docker's remote plugin protocol (NetworkDriver and IpamDriver, plugin API v1.2), as a
//! real dockerd 20.10 speaks it (`../shared/reference/docker-remote-protocol.md`): every call
//! is `POST /Iface.Method` with a JSON body that may be empty and has no Content-Type.
//! Failures answer a non-200 status with `{"Err": "…"}`, which both APIs read (the IPAM side
//! ignores `Err` on a 200).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An error for dockerd: its message reaches the docker CLI as
/// `Error response from daemon: Iface.Method: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginError(pub String);

impl<E: std::fmt::Display> From<E> for PluginError {
    fn from(e: E) -> Self {
        Self(e.to_string())
    }
}

pub type PluginResult<T> = Result<T, PluginError>;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestPool {
    pub address_space: String,
    pub pool: String,
    pub sub_pool: String,
    pub options: Option<BTreeMap<String, String>>,
    #[serde(rename = "V6")]
    pub v6: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PoolResponse {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub pool: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReleasePool {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestAddress {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    /// Empty: the IPAM chooses.
    pub address: String,
    pub options: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AddressResponse {
    /// `ip/prefix-length-of-the-pool`.
    pub address: String,
    pub data: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ReleaseAddress {
    #[serde(rename = "PoolID")]
    pub pool_id: String,
    pub address: String,
}

/// Option key dockerd uses to mark the gateway's address request.
pub const GATEWAY_REQUEST: &str = "com.docker.network.gateway";
pub const REQUEST_ADDRESS_TYPE: &str = "RequestAddressType";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpamData {
    pub address_space: String,
    pub pool: String,
    /// `ip/len`.
    pub gateway: String,
    pub aux_addresses: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateNetwork {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    /// `com.docker.network.generic` (the `-o` options), `…enable_ipv6`, `…internal`.
    pub options: BTreeMap<String, Value>,
    #[serde(rename = "IPv4Data")]
    pub ipv4_data: Vec<IpamData>,
    #[serde(rename = "IPv6Data")]
    pub ipv6_data: Vec<IpamData>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointInterface {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub address: String,
    #[serde(rename = "AddressIPv6", skip_serializing_if = "String::is_empty")]
    pub address_ipv6: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub mac_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CreateEndpoint {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub interface: Option<EndpointInterface>,
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateEndpointResponse {
    /// Only fields dockerd left empty (it refuses changes to the others).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface: Option<EndpointInterface>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct EndpointRef {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Join {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub sandbox_key: String,
    pub options: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceName {
    /// A link in dockerd's namespace, which dockerd moves into the container.
    pub src_name: String,
    pub dst_prefix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinResponse {
    pub interface_name: InterfaceName,
    /// Empty only on internal networks: without a gateway dockerd adds docker_gwbridge.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(rename = "GatewayIPv6", skip_serializing_if = "String::is_empty")]
    pub gateway_ipv6: String,
    pub disable_gateway_service: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Connectivity {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub options: BTreeMap<String, Value>,
}

/// `com.docker.network.portmap` entries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortBinding {
    /// IANA protocol number: 6 TCP, 17 UDP, 132 SCTP.
    pub proto: u8,
    #[serde(rename = "IP")]
    pub ip: String,
    pub port: u16,
    #[serde(rename = "HostIP")]
    pub host_ip: String,
    /// 0: the plugin chooses.
    pub host_port: u16,
    pub host_port_end: u16,
}

pub const PORTMAP_OPTION: &str = "com.docker.network.portmap";

/// What dockerd calls; every method must be idempotent where dockerd swallows errors
/// (DeleteNetwork, Leave, DeleteEndpoint).
pub trait DockerPlugin: Send + Sync + 'static {
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
            Ok(serde_json::json!({"Scope": "local", "ConnectivityScope": "local"}))
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

pub const LOCAL_SPACE: &str = "local";
pub const GLOBAL_SPACE: &str = "global";

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_decode_as_dockerd_sends_them() {
        let pool: RequestPool = serde_json::from_str(
            r#"{"AddressSpace":"local","Pool":"10.20.0.0/16","SubPool":"10.20.5.0/24","Options":{},"V6":false}"#,
        )
        .unwrap();
        assert_eq!(pool.sub_pool, "10.20.5.0/24");
        let ep: CreateEndpoint = serde_json::from_str(
            r#"{"NetworkID":"n","EndpointID":"e","Interface":{"Address":"10.20.5.10/16","AddressIPv6":"","MacAddress":""},
                "Options":{"com.docker.network.portmap":[{"Proto":6,"IP":"","Port":80,"HostIP":"","HostPort":8080,"HostPortEnd":8080}],
                           "com.docker.network.endpoint.macaddress":"AkIKFAUy"}}"#,
        )
        .unwrap();
        let ports: Vec<PortBinding> =
            serde_json::from_value(ep.options[PORTMAP_OPTION].clone()).unwrap();
        assert_eq!((ports[0].proto, ports[0].host_port), (6, 8080));
        let net: CreateNetwork = serde_json::from_str(
            r#"{"NetworkID":"n","Options":{"com.docker.network.enable_ipv6":false,"com.docker.network.generic":{"mtu":"1400"}},
                "IPv4Data":[{"AddressSpace":"local","Pool":"10.20.0.0/16","Gateway":"10.20.0.1/16","AuxAddresses":{"host1":"10.20.0.5/16"}}],"IPv6Data":[]}"#,
        )
        .unwrap();
        assert_eq!(net.ipv4_data[0].aux_addresses["host1"], "10.20.0.5/16");
    }

    #[test]
    fn responses_leave_out_what_dockerd_must_not_see() {
        let empty = serde_json::to_value(CreateEndpointResponse::default()).unwrap();
        assert_eq!(empty, serde_json::json!({}));
        let mac_only = CreateEndpointResponse {
            interface: Some(EndpointInterface {
                mac_address: "02:42:0a:14:05:0a".into(),
                ..Default::default()
            }),
        };
        assert_eq!(
            serde_json::to_value(mac_only).unwrap(),
            serde_json::json!({"Interface": {"MacAddress": "02:42:0a:14:05:0a"}})
        );
        let internal = JoinResponse {
            interface_name: InterfaceName {
                src_name: "ncs1".into(),
                dst_prefix: "eth".into(),
            },
            ..Default::default()
        };
        let json = serde_json::to_value(internal).unwrap();
        assert!(json.get("Gateway").is_none());
    }
}
