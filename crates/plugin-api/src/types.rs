//! Management API bodies. Addresses travel as strings so that the daemon, not the JSON
//! decoder, reports a bad one, with a message that names the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ports::{ExposedPort, PortMapping};

/// `POST /v1/networks`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkCreateRequest {
    pub name: String,
    /// `bridge` (the default), `host` or `none`.
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default, rename = "IPAM")]
    pub ipam: Option<IpamRequest>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default, rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    /// Driver options (`-o mtu=1400`, `-o icc=false`).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamRequest {
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default)]
    pub config: Vec<IpamConfig>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// One subnet of a network, as in `docker network inspect`'s `IPAM.Config[]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(default, rename = "IPRange", skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(
        default,
        alias = "AuxAddress",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub auxiliary_addresses: BTreeMap<String, String>,
}

/// `GET /v1/networks/NAME`, shaped like `docker network inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkInspect {
    pub name: String,
    pub id: String,
    pub created: String,
    pub scope: String,
    pub driver: String,
    #[serde(rename = "EnableIPv6")]
    pub enable_ipv6: bool,
    #[serde(rename = "IPAM")]
    pub ipam: IpamInspect,
    pub internal: bool,
    /// Keyed by sandbox id.
    pub containers: BTreeMap<String, NetworkEndpoint>,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Kernel bridge device (netctl's own field).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bridge: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IpamInspect {
    pub driver: String,
    pub options: BTreeMap<String, String>,
    pub config: Vec<IpamConfig>,
}

/// One entry of a network's `Containers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkEndpoint {
    pub name: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub mac_address: String,
    #[serde(rename = "IPv4Address")]
    pub ipv4_address: String,
    #[serde(rename = "IPv6Address")]
    pub ipv6_address: String,
    /// The cluster node it is on (global networks only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// On a DHCP network: the leases behind its addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub leases: Vec<LeaseInspect>,
}

/// One DHCP lease of an endpoint (netctl's own field).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct LeaseInspect {
    pub address: String,
    /// The server's address (DHCPv4) or DUID (DHCPv6).
    pub server: String,
    /// RFC 3339.
    pub expires: String,
    pub renews: String,
}

/// What a sandbox asks of one network, as Docker's `EndpointConfig`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointConfig {
    #[serde(
        default,
        rename = "IPAMConfig",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipam_config: Option<EndpointIpamConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Ports to publish on the host (`-p`), after Docker's `HostConfig.PortBindings`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub port_bindings: Vec<PortMapping>,
    /// Ports the sandbox offers (`--expose`), published by `PublishAllPorts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exposed_ports: Vec<ExposedPort>,
    /// `-P`: publish every exposed port on a host port of the daemon's choosing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub publish_all_ports: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointIpamConfig {
    #[serde(
        default,
        rename = "IPv4Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv4_address: Option<String>,
    #[serde(
        default,
        rename = "IPv6Address",
        skip_serializing_if = "Option::is_none"
    )]
    pub ipv6_address: Option<String>,
}

/// `POST /v1/networks/NAME/connect`, as Docker's `NetworkConnect`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ConnectRequest {
    /// Sandbox name or id.
    pub container: String,
    #[serde(default)]
    pub endpoint_config: EndpointConfig,
}

/// `POST /v1/networks/NAME/disconnect`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DisconnectRequest {
    pub container: String,
}

/// `POST /v1/networks/NAME/publish` and `…/unpublish`: ports of an existing endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PublishRequest {
    pub container: String,
    /// For unpublish, empty means every published port of the endpoint.
    #[serde(default)]
    pub port_bindings: Vec<PortMapping>,
}

/// `POST /v1/sandboxes`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SandboxCreateRequest {
    pub name: String,
    #[serde(default)]
    pub hostname: Option<String>,
    /// A network to join at once: a bridge network's name, `host` or `none`.
    #[serde(default)]
    pub network: Option<String>,
    #[serde(default)]
    pub endpoint_config: EndpointConfig,
    /// Upstream DNS servers (`--dns`), before daemon.json's and the host's.
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_options: Vec<String>,
    /// Lines for its hosts file, `NAME:ADDRESS` (`--add-host`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
}

/// `GET /v1/sandboxes/NAME`, shaped like the network part of `docker container inspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SandboxInspect {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub created: String,
    /// The sandbox's resolv.conf, for a runtime to mount at /etc/resolv.conf.
    #[serde(default)]
    pub resolv_conf_path: String,
    /// The sandbox's hosts file, for a runtime to mount at /etc/hosts.
    #[serde(default)]
    pub hosts_path: String,
    /// Its `--add-host` lines, `NAME:ADDRESS`, as Docker's `HostConfig.ExtraHosts`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    pub network_settings: NetworkSettings,
}

/// `GET /v1/sandboxes/NAME/dns`: what the sandbox resolves with, and why.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DnsExplain {
    pub sandbox: String,
    /// The nameservers in its resolv.conf: 127.0.0.11, or the upstreams themselves for a
    /// sandbox in the host's namespace.
    pub nameservers: Vec<String>,
    pub resolv_conf_path: String,
    pub upstreams: Vec<String>,
    /// `sandbox`, `daemon-config`, `host` or `nowhere`.
    pub upstreams_from: String,
    /// Entries that cannot be used, with the reason.
    pub unusable: Vec<String>,
    pub search: Vec<String>,
    pub search_from: String,
    pub options: Vec<String>,
    pub options_from: String,
    /// Whether names that are not local are forwarded at all.
    pub forwarding: bool,
    /// Upstreams the daemon's network namespace has no route to, and why: forwarded
    /// queries to them fail (SERVFAIL when none is left).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unreachable: Vec<String>,
    /// One line per decision, for people.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NetworkSettings {
    /// Path of the sandbox's network namespace.
    pub sandbox_key: String,
    /// Keyed by network name.
    pub networks: BTreeMap<String, EndpointSettings>,
    /// Its published ports in Docker's shape: `"80/tcp": [{"HostIp": "0.0.0.0",
    /// "HostPort": "8080"}, {"HostIp": "::", "HostPort": "8080"}]`.
    #[serde(default)]
    pub ports: BTreeMap<String, Vec<PortBinding>>,
}

/// One host side of a published port, as in Docker's `NetworkSettings.Ports`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortBinding {
    #[serde(rename = "HostIp")]
    pub host_ip: String,
    #[serde(rename = "HostPort")]
    pub host_port: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EndpointSettings {
    #[serde(rename = "NetworkID")]
    pub network_id: String,
    #[serde(rename = "EndpointID")]
    pub endpoint_id: String,
    pub gateway: String,
    #[serde(rename = "IPAddress")]
    pub ip_address: String,
    #[serde(rename = "IPPrefixLen")]
    pub ip_prefix_len: u8,
    #[serde(rename = "IPv6Gateway")]
    pub ipv6_gateway: String,
    #[serde(rename = "GlobalIPv6Address")]
    pub global_ipv6_address: String,
    #[serde(rename = "GlobalIPv6PrefixLen")]
    pub global_ipv6_prefix_len: u8,
    pub mac_address: String,
    pub aliases: Vec<String>,
    /// Interface name inside the sandbox (netctl's own field).
    pub interface: String,
    /// Published ports, with the host ports chosen.
    #[serde(default)]
    pub ports: Vec<PortMapping>,
}

/// What a `DELETE` removed: a key may be an id prefix, so the answer names the object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Removed {
    pub id: String,
    pub name: String,
}

/// `GET /v1/info`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DaemonInfo {
    pub version: String,
    /// The management API's version (`v1`).
    #[serde(default)]
    pub api_version: String,
    /// The commit the daemon was built from.
    #[serde(default)]
    pub git_commit: String,
    pub pid: u32,
    pub data_root: String,
    pub exec_root: String,
    /// This node's id (the one endpoints record).
    #[serde(default, rename = "NodeID")]
    pub node_id: String,
    /// The cluster this node is in, if any.
    #[serde(default, rename = "ClusterID", skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
    #[serde(default)]
    pub networks: usize,
    #[serde(default)]
    pub sandboxes: usize,
    /// This node's endpoints.
    #[serde(default)]
    pub endpoints: usize,
    #[serde(default)]
    pub published_ports: usize,
    /// DHCP clients running for endpoints and Docker's leases.
    #[serde(default, rename = "DHCPClients")]
    pub dhcp_clients: usize,
    /// The drivers this daemon has.
    #[serde(default)]
    pub drivers: Vec<String>,
    /// What the daemon's memory is made of, where the platform can say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<MemoryUse>,
}

/// The daemon's memory: what the kernel counts (RSS) and what the allocator says of it. A
/// resident set that grows while `heap_in_use` stays flat is the allocator keeping freed
/// memory, not a leak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct MemoryUse {
    /// Resident set size (`VmRSS`), bytes.
    #[serde(rename = "RSS")]
    pub rss: u64,
    /// Bytes the allocator has handed out and not had back.
    pub heap_in_use: u64,
    /// Bytes in the allocator's free chunks, ready for reuse (a trim gives their whole pages
    /// back to the kernel, but they stay counted here).
    pub heap_free: u64,
}
