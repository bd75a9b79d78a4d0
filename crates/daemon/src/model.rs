//! Desired state as it is persisted: one record per network, sandbox and endpoint.
//! Address allocations are not stored separately; they are rebuilt from these records.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipam::Scope;
use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriverKind {
    Bridge,
    Host,
    None,
}

impl DriverKind {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "bridge" => Some(Self::Bridge),
            "host" => Some(Self::Host),
            "null" | "none" => Some(Self::None),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Bridge => "bridge",
            Self::Host => "host",
            Self::None => "null",
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub driver: DriverKind,
    pub created: String,
    /// Kernel bridge name (bridge driver only).
    pub bridge: String,
    pub mtu: u32,
    pub icc: bool,
    pub internal: bool,
    pub ipv6: bool,
    pub subnets: Vec<SubnetRecord>,
    /// Which address space the subnets come from.
    #[serde(default = "local_scope")]
    pub scope: Scope,
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// `host` and `none`, made by the daemon itself and never removed.
    #[serde(default)]
    pub builtin: bool,
    /// The Docker network ID when dockerd made the network through the remote plugin. Its
    /// subnets then belong to Docker's IPAM driver (netctl's, with its own pools, or
    /// Docker's), not to this record.
    #[serde(default)]
    pub docker_id: Option<String>,
}

fn local_scope() -> Scope {
    Scope::Local
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// A namespace of its own.
    Isolated,
    /// The host's (the daemon's) namespace.
    Host,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxRecord {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub created: String,
    pub netns: PathBuf,
    pub mode: SandboxMode,
    /// The sandbox's own DNS settings (`--dns`, `--dns-search`, `--dns-option`).
    #[serde(default)]
    pub dns: dns::DnsSettings,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: String,
    pub network_id: String,
    pub sandbox_id: String,
    /// Interface inside the sandbox; empty on host and none networks.
    pub ifname: String,
    pub host_ifname: String,
    pub mac: Option<[u8; 6]>,
    pub ipv4: Option<IpNetwork>,
    pub ipv6: Option<IpNetwork>,
    pub aliases: Vec<String>,
    pub route_metric: u32,
    /// Published ports, host ports decided.
    #[serde(default)]
    pub ports: Vec<plugin_api::ports::PortMapping>,
    /// Made for dockerd: the sandbox is a container's, `sandbox_id` is empty, and `ifname`
    /// is the veth end handed to dockerd (it moves it into the container and renames it).
    #[serde(default)]
    pub docker: bool,
    /// A Docker endpoint whose veth dockerd has taken into a container (after Join).
    #[serde(default)]
    pub joined: bool,
}

/// A pool netctl's IPAM driver gave dockerd, and the addresses it handed out from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerPoolRecord {
    pub id: String,
    pub scope: Scope,
    pub subnet: IpNetwork,
    /// `--ip-range`: where addresses dockerd does not name come from.
    pub ip_range: Option<IpNetwork>,
    pub addresses: std::collections::BTreeSet<IpAddr>,
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
