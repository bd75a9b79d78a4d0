//! Desired state as it is persisted: networks, sandboxes, endpoints and this node, and
//! Docker's bookkeeping in records of its own. Address allocations are not stored separately;
//! they are rebuilt from these records. Every type here is the daemon's own: no wire or DNS
//! type is persisted, so those crates can change without touching stored data.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

/// Whose address space a network's subnets come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressScope {
    Local,
    Global,
}

impl From<AddressScope> for netctl_ipam::Scope {
    fn from(scope: AddressScope) -> Self {
        match scope {
            AddressScope::Local => netctl_ipam::Scope::Local,
            AddressScope::Global => netctl_ipam::Scope::Global,
        }
    }
}

impl From<netctl_ipam::Scope> for AddressScope {
    fn from(scope: netctl_ipam::Scope) -> Self {
        match scope {
            netctl_ipam::Scope::Local => AddressScope::Local,
            netctl_ipam::Scope::Global => AddressScope::Global,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubnetRecord {
    pub subnet: IpNetwork,
    pub gateway: IpAddr,
    #[serde(default)]
    pub ip_range: Option<IpNetwork>,
    #[serde(default)]
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// Whether the user named the gateway (inspect shows what was asked for).
    #[serde(default)]
    pub explicit: bool,
}

/// Who reserved a network's subnets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubnetOwner {
    /// The network itself, from netctl's address spaces: released with the network.
    Network,
    /// An IPAM driver outside the network (Docker's, netctl's own serving Docker): the
    /// network only uses them.
    External,
    /// The LAN's DHCP server (`--ipam-driver dhcp`): the network has no subnets of its
    /// own, and each endpoint leases its addresses.
    Dhcp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// The registered driver's name.
    pub driver: String,
    pub created: String,
    pub address_scope: AddressScope,
    pub mtu: u32,
    pub internal: bool,
    pub ipv6: bool,
    pub subnets: Vec<SubnetRecord>,
    pub subnet_owner: SubnetOwner,
    /// As the user gave them.
    pub options: BTreeMap<String, String>,
    /// What the driver made of them, handed back to it on every call.
    pub driver_config: serde_json::Value,
    pub labels: BTreeMap<String, String>,
}

/// Which namespace a sandbox has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// A namespace of its own.
    Isolated,
    /// The host's (the daemon's) namespace.
    Host,
    /// A runtime's (a CNI runtime's container): netctl opens it at the runtime's path, and
    /// never makes or removes it.
    Runtime,
}

/// A sandbox's own DNS settings (`--dns`, `--dns-search`, `--dns-option`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsConfig {
    #[serde(default)]
    pub servers: Vec<String>,
    #[serde(default)]
    pub search: Vec<String>,
    #[serde(default)]
    pub options: Vec<String>,
}

impl From<&DnsConfig> for netctl_dns::DnsSettings {
    fn from(config: &DnsConfig) -> Self {
        netctl_dns::DnsSettings {
            servers: config.servers.clone(),
            search: config.search.clone(),
            options: config.options.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub created: String,
    pub netns: PathBuf,
    pub mode: SandboxMode,
    #[serde(default)]
    pub dns: DnsConfig,
    #[serde(default, skip_serializing_if = "SandboxRole::is_user")]
    pub role: SandboxRole,
    /// A runtime's namespace: its inode, which tells it from a later one at the same path
    /// (a restarted container) and finds it where the path does not lead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_inode: Option<u64>,
    /// With the inode, what tells the namespace from a later one that got its inode once it
    /// was freed (see `NetnsId`). Absent in records of a netctl that kept no cookies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns_cookie: Option<u64>,
    /// `--add-host` lines of its hosts file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<ExtraHost>,
}

impl SandboxRecord {
    /// A runtime's namespace as it was when the container was attached.
    pub fn netns_id(&self) -> Option<netctl_kernel::netns::NetnsId> {
        self.netns_inode.map(|inode| netctl_kernel::netns::NetnsId {
            inode,
            cookie: self.netns_cookie,
        })
    }
}

/// One `--add-host NAME:ADDRESS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtraHost {
    pub name: String,
    pub address: std::net::IpAddr,
}

impl ExtraHost {
    /// Docker's `NAME:ADDRESS` (an IPv6 address after the first colon, bracketed or not)
    /// or `NAME=ADDRESS`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let bad = || format!("invalid --add-host {spec:?}: NAME:ADDRESS, such as db:192.0.2.10");
        let (name, address) = spec
            .split_once('=')
            .or_else(|| spec.split_once(':'))
            .ok_or_else(bad)?;
        let address = address.trim_start_matches('[').trim_end_matches(']');
        if address == "host-gateway" {
            return Err(format!(
                "--add-host {spec}: host-gateway is Docker's own; give the address (the gateway of the sandbox's network, say)"
            ));
        }
        let address = address.parse().map_err(|_| bad())?;
        if !crate::ids::valid_dns_name(name) {
            return Err(format!(
                "invalid --add-host {spec:?}: {name:?} is not a host name (letters, digits and hyphens, in dot-separated labels of at most 63)"
            ));
        }
        Ok(Self {
            name: name.to_string(),
            address,
        })
    }
}

impl std::fmt::Display for ExtraHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.name, self.address)
    }
}

/// Who a sandbox is for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SandboxRole {
    /// Made by a user or a runtime.
    #[default]
    User,
    /// `lb-NET`: where this node balances the virtual IPs of the services on NET (Docker's
    /// load-balancer endpoint). Made and removed by the daemon.
    LoadBalancer,
    /// `ingress-sbox`: where this node balances the ports services publish through the
    /// routing mesh (Docker's ingress sandbox). Made and removed by the daemon.
    Ingress,
}

impl SandboxMode {
    /// Whether the sandbox has a namespace to itself (its own DNS server, hosts file and
    /// interfaces), as opposed to sharing the host's.
    pub fn has_own_namespace(self) -> bool {
        self != Self::Host
    }
}

impl SandboxRole {
    pub fn is_user(&self) -> bool {
        *self == Self::User
    }
}

/// A transport protocol with ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Tcp,
    Udp,
    Sctp,
}

impl Transport {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

impl From<netctl_plugin_api::ports::Protocol> for Transport {
    fn from(proto: netctl_plugin_api::ports::Protocol) -> Self {
        use netctl_plugin_api::ports::Protocol;
        match proto {
            Protocol::Tcp => Self::Tcp,
            Protocol::Udp => Self::Udp,
            Protocol::Sctp => Self::Sctp,
        }
    }
}

impl From<Transport> for netctl_plugin_api::ports::Protocol {
    fn from(transport: Transport) -> Self {
        match transport {
            Transport::Tcp => Self::Tcp,
            Transport::Udp => Self::Udp,
            Transport::Sctp => Self::Sctp,
        }
    }
}

/// One published port, its host port decided.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PublishedPort {
    pub transport: Transport,
    /// `None`: every address of the host, both families.
    #[serde(default)]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub container_port: u16,
    /// The service whose published port this is (host mode, or a node's ingress sandbox);
    /// the daemon publishes and withdraws it as the service changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
}

/// A service: a virtual IP on a global network that leads to its replicas, which are
/// endpoints of sandboxes on that network, on any node. Lives in the cluster store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub id: String,
    pub name: String,
    pub network_id: String,
    pub vip: IpAddr,
    /// The replicas' endpoint ids.
    pub replicas: Vec<String>,
    pub created: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ServicePort>,
}

/// A port a service publishes on the nodes (`--publish`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicePort {
    pub transport: Transport,
    pub published: u16,
    pub target: u16,
    pub mode: PublishMode,
}

/// Where a published port answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// On every node, balanced over every replica through the ingress network (the
    /// routing mesh); the client's address is lost on the way.
    Ingress,
    /// Only on the nodes that run a replica, straight to it, client address kept.
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: String,
    pub network_id: String,
    /// The sandbox it joins; `None` for a runtime's container (dockerd's), whose runtime
    /// moves and configures the interface itself.
    pub sandbox_id: Option<String>,
    /// The node it lives on.
    pub node: String,
    /// The interface's name where the container sees it (`eth0`), or the one a runtime
    /// takes; empty on networks that give none (host, none).
    pub ifname: String,
    pub mac: Option<[u8; 6]>,
    pub ipv4: Option<IpNetwork>,
    pub ipv6: Option<IpNetwork>,
    pub aliases: Vec<String>,
    pub route_metric: u32,
    pub ports: Vec<PublishedPort>,
    /// The names it answers to (its sandbox's name and hostname, then its aliases): kept
    /// with endpoints on global networks, whose sandbox other nodes do not know.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// The endpoint of a node's load-balancer or ingress sandbox: it has no names and does
    /// not keep its network from being removed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub balancer: bool,
    /// Its interface and addresses are another CNI plugin's (netctl chained after it):
    /// netctl publishes its ports and serves its names, and leaves the interface alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chained: bool,
    /// On a network whose addresses come from the LAN's DHCP server: the leases behind its
    /// addresses, kept so a restart confirms them instead of asking anew.
    #[serde(default, skip_serializing_if = "Leases::is_empty")]
    pub leases: Leases,
}

/// An endpoint's DHCP leases, one per family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Leases {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v4: Option<LeaseRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub v6: Option<LeaseRecord>,
}

impl Leases {
    pub fn is_empty(&self) -> bool {
        self.v4.is_none() && self.v6.is_none()
    }
}

/// A lease as the server granted it, with its clock in wall time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseRecord {
    /// With its prefix: the subnet mask's (IPv4), or /128 (IPv6: the on-link prefix comes
    /// from router advertisements).
    pub address: IpNetwork,
    /// The server: its address (IPv4), or its DUID in hex (IPv6).
    pub server: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routers: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dns_servers: Vec<IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u16>,
    /// Milliseconds since the Unix epoch.
    pub acquired_ms: u64,
    pub renew_after_s: u64,
    pub rebind_after_s: u64,
    pub valid_s: u64,
    /// IPv6's preferred lifetime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_s: Option<u64>,
}

impl EndpointRecord {
    pub fn addresses(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        self.ipv4.iter().chain(self.ipv6.iter()).copied()
    }

    /// The router the lease behind `address` names (a DHCP network's gateway).
    pub fn leased_router(&self, address: IpNetwork) -> Option<IpAddr> {
        [&self.leases.v4, &self.leases.v6]
            .into_iter()
            .flatten()
            .find(|l| l.address == address)
            .and_then(|l| l.routers.first().copied())
    }

    /// The MTU the DHCPv4 lease asked for, if any.
    pub fn leased_mtu(&self) -> Option<u32> {
        self.leases.v4.as_ref()?.mtu.map(u32::from)
    }
}

/// This daemon's node: who it is in a cluster, and what endpoints record as theirs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: String,
    pub hostname: String,
    pub created: String,
}

/// This node's place in a cluster, kept locally so a restart finds its cluster, its store
/// and its lease again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipRecord {
    pub cluster_id: String,
    /// The cluster store's client URLs.
    pub store: Vec<String>,
    pub advertise_addr: IpAddr,
    pub vxlan_port: u16,
    /// The node's liveness lease, taken up again after a restart within its TTL.
    #[serde(default)]
    pub lease: Option<i64>,
    /// Join tokens this node made, in the clear (the cluster keeps only their hashes), by
    /// role name.
    #[serde(default)]
    pub tokens: BTreeMap<String, String>,
    pub joined: String,
    /// This node's credentials for a TLS store (its etcd user's certificate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_tls: Option<StoreCredentials>,
}

/// The CA a TLS store's members are verified against, and this node's certificate and key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreCredentials {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for StoreCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreCredentials").finish_non_exhaustive()
    }
}

impl StoreCredentials {
    pub fn tls(&self) -> netctl_store::StoreTls {
        netctl_store::StoreTls {
            ca_pem: self.ca_pem.clone(),
            cert_pem: self.cert_pem.clone(),
            key_pem: self.key_pem.clone(),
        }
    }
}

/// A network dockerd made through the remote plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerNetworkRecord {
    /// Docker's network id.
    pub docker_id: String,
    /// The netctl network it is.
    pub network_id: String,
    /// The netctl network is a global one the Docker network stands for (`-o
    /// netctl.overlay=NAME`): it was not made for dockerd, and outlives the binding.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub bound: bool,
}

/// An endpoint dockerd made through the remote plugin (the endpoint's id is Docker's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerEndpointRecord {
    pub endpoint_id: String,
    /// dockerd has taken the interface into a container (after Join).
    pub joined: bool,
}

/// A pool netctl's IPAM driver gave dockerd, and the addresses it handed out from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerPoolRecord {
    pub id: String,
    pub address_scope: AddressScope,
    pub subnet: IpNetwork,
    /// `--ip-range`: where addresses dockerd does not name come from.
    pub ip_range: Option<IpNetwork>,
    pub addresses: BTreeSet<IpAddr>,
    /// `--ipam-opt netctl.dhcp=true`: the subnet is a LAN's, and its addresses are leased
    /// from the LAN's DHCP server; none is reserved in netctl's address spaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dhcp: Option<DockerDhcpPool>,
}

/// A pool of a LAN's DHCP server, as dockerd was given it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerDhcpPool {
    /// The LAN's router: the network's gateway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router: Option<IpAddr>,
    /// The netctl network made for the pool (at CreateNetwork), whose bridge leases go out
    /// of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network_id: Option<String>,
    /// The leases behind the addresses dockerd holds.
    #[serde(default)]
    pub leases: BTreeMap<IpAddr, DockerLease>,
}

/// A lease handed to dockerd (RequestAddress), before and after a container takes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerLease {
    /// Who the client is to the server (its client id comes from this).
    pub id: String,
    /// The hardware address the lease was asked with, which the endpoint then gets.
    pub mac: [u8; 6],
    pub lease: LeaseRecord,
    /// The container's namespace (Join's SandboxKey), where the client renews from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox_key: Option<PathBuf>,
    /// Given back at Leave, from the container (before ReleaseAddress, when the
    /// container's namespace and the route to the server from it may be gone).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released: bool,
}

pub fn format_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// `02:42:ac:1e:00:82`; must be a unicast address.
pub fn parse_mac(text: &str) -> Option<[u8; 6]> {
    let parts: Vec<_> = text.split(':').collect();
    if parts.len() != 6 {
        return None;
    }
    let mut mac = [0u8; 6];
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    (mac[0] & 1 == 0 && mac != [0; 6]).then_some(mac)
}

/// Docker's scheme: `02:42` and the IPv4 address; random and locally administered otherwise.
pub fn generate_mac(ipv4: Option<IpAddr>) -> [u8; 6] {
    match ipv4 {
        Some(IpAddr::V4(a)) => {
            let o = a.octets();
            [0x02, 0x42, o[0], o[1], o[2], o[3]]
        }
        _ => {
            let mut mac = [0u8; 6];
            getrandom::fill(&mut mac).expect("the kernel's random source");
            mac[0] = (mac[0] & 0xfe) | 0x02;
            mac
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn macs_round_trip_and_follow_docker() {
        let mac = generate_mac(Some("172.30.0.130".parse().unwrap()));
        assert_eq!(format_mac(&mac), "02:42:ac:1e:00:82");
        assert_eq!(parse_mac("02:42:ac:1e:00:82"), Some(mac));
        assert_eq!(parse_mac("01:00:5e:00:00:01"), None, "multicast");
        assert_eq!(parse_mac("02:42:ac:1e:00"), None);
        assert_eq!(parse_mac("zz:42:ac:1e:00:82"), None);
        let random = generate_mac(None);
        assert_eq!(random[0] & 0x03, 0x02);
    }
}
