//! Docker's remote plugin protocol (NetworkDriver and IpamDriver, plugin API v1.2), as a
//! real dockerd 20.10 speaks it: every call is `POST /Iface.Method` with a JSON body that may
//! be empty and has no Content-Type. Failures answer a non-200 status with `{"Err": "…"}`,
//! which both APIs read (the IPAM side ignores `Err` on a 200).
//!
//! This module holds the wire types; [`router`] (feature `http`) serves them.

pub mod checks;
#[cfg(feature = "http")]
mod router;

#[cfg(feature = "http")]
pub use router::{router, DockerPlugin};

use std::collections::BTreeMap;

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

pub const LOCAL_SPACE: &str = "local";
pub const GLOBAL_SPACE: &str = "global";

/// NetworkDriver.GetCapabilities' answer: where the driver's networks exist.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCapabilities {
    /// `local` or `global`.
    pub scope: String,
    pub connectivity_scope: String,
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
