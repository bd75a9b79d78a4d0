//! Kernel work a transaction does, each kind with its undo. Building effects are undone in
//! reverse when a later step fails; teardown effects are best effort and never undone.

use std::net::IpAddr;
use std::path::PathBuf;

use netctl_drivers::cluster::Remote;
use netctl_drivers::firewall::PortForward;
use netctl_drivers::{Capabilities, EndpointSpec, NetworkSpec, Wanted};

use netctl_dns::DnsSettings;

use super::lease_datapath::LeaseOnLink;
use super::specs::{endpoint_names, endpoint_spec, network_spec};
use crate::model::{EndpointRecord, NetworkRecord, SandboxMode, SandboxRecord};

pub(super) enum Effect {
    /// The network's kernel objects. Undo: [`Effect::DeleteNetwork`].
    CreateNetwork {
        driver: String,
        net: NetworkSpec,
    },
    DeleteNetwork {
        driver: String,
        net: NetworkSpec,
    },
    /// A recorded network's kernel objects made whole again at start (what exists is kept).
    RestoreNetwork {
        driver: String,
        net: NetworkSpec,
    },
    /// What `driver` made and no record wants removed (at start, once every wanted object
    /// is known).
    CollectGarbage {
        driver: String,
        wanted: Wanted,
    },
    /// A namespace bound under the exec root that no sandbox has.
    RemoveStrayNamespace(PathBuf),
    /// The sandbox's namespace, made or (for the host network) the daemon's own, bound at
    /// `path` and kept open; a runtime's is only opened. Undo: [`Effect::RemoveNamespace`].
    CreateNamespace {
        sandbox: String,
        path: PathBuf,
        mode: SandboxMode,
    },
    /// Closed, and unmounted unless it is a runtime's.
    RemoveNamespace {
        sandbox: String,
        path: PathBuf,
        mode: SandboxMode,
    },
    /// The sandbox's DNS server, resolv.conf and hosts file. Undo: [`Effect::StopDns`].
    ServeDns(SandboxRecord),
    StopDns(SandboxRecord),
    /// An endpoint plugged in: into its sandbox's namespace, or (no sandbox) left for a
    /// runtime. Undo: [`Effect::Leave`].
    Join {
        driver: String,
        net: NetworkSpec,
        ep: EndpointSpec,
        sandbox: Option<String>,
    },
    Leave {
        driver: String,
        net: NetworkSpec,
        ep: EndpointSpec,
    },
    /// As [`Effect::Leave`], without waiting for it (the kernel takes a while to unregister a
    /// link, and a runtime waiting for the answer has no use for the wait).
    LeaveLater {
        driver: String,
        net: NetworkSpec,
        ep: EndpointSpec,
    },
    /// Published ports. Undo: [`Effect::Unpublish`].
    Publish(Vec<PortForward>),
    /// Withdrawn ports, and their UDP flows forgotten.
    Unpublish(Vec<PortForward>),
    /// An endpoint's DHCP leases given back to their servers, and its clients stopped
    /// (before its interface goes: the release is sent from its address).
    ReleaseLeases(String),
    /// A remote endpoint's FDB and neighbour entries in its overlay segment. Undo:
    /// [`Effect::RemoveRemote`].
    AddRemote {
        driver: String,
        vni: u32,
        endpoint: String,
        remote: Remote,
    },
    RemoveRemote {
        driver: String,
        vni: u32,
        endpoint: String,
    },
    /// IPv6 on a leasing interface that has no address yet: a link-local address, and
    /// router advertisements heard (DHCPv6 needs both).
    SpeakIpv6 {
        sandbox: String,
        ifname: String,
    },
    /// A DHCP lease on an endpoint's interface (its address withdrawn when it has none).
    ConfigureLease {
        sandbox: String,
        on: LeaseOnLink,
    },
    /// The sandbox's DNS settings: its resolver's upstreams and search domains, and its
    /// resolv.conf.
    SetSandboxDns {
        sandbox: SandboxRecord,
        settings: DnsSettings,
    },
    /// An endpoint's names in the DNS directory. Undo: [`Effect::RemoveNames`].
    AddNames(netctl_dns::EndpointNames),
    RemoveNames(String),
    /// The sandbox's hosts file rewritten with its addresses (best effort: it is a
    /// courtesy to the container, and a transaction puts it last).
    WriteHosts {
        sandbox: SandboxRecord,
        addresses: Vec<IpAddr>,
    },
}

impl Effect {
    /// For the log.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateNetwork { .. } => "create network",
            Self::DeleteNetwork { .. } => "delete network",
            Self::RestoreNetwork { .. } => "restore network",
            Self::CollectGarbage { .. } => "collect garbage",
            Self::RemoveStrayNamespace(_) => "remove stray namespace",
            Self::CreateNamespace { .. } => "create namespace",
            Self::RemoveNamespace { .. } => "remove namespace",
            Self::ServeDns(_) => "serve dns",
            Self::StopDns(_) => "stop dns",
            Self::Join { .. } => "join",
            Self::Leave { .. } => "leave",
            Self::LeaveLater { .. } => "leave later",
            Self::Publish(_) => "publish",
            Self::Unpublish(_) => "unpublish",
            Self::ReleaseLeases(_) => "release leases",
            Self::AddRemote { .. } => "add remote",
            Self::SpeakIpv6 { .. } => "speak ipv6",
            Self::ConfigureLease { .. } => "configure lease",
            Self::SetSandboxDns { .. } => "set sandbox dns",
            Self::RemoveRemote { .. } => "remove remote",
            Self::AddNames(_) => "add names",
            Self::RemoveNames(_) => "remove names",
            Self::WriteHosts { .. } => "write hosts",
        }
    }

    /// Whether a failure of this effect is reported and passed over (teardown, and what
    /// has no undo) rather than undoing the transaction.
    pub fn is_best_effort(&self) -> bool {
        matches!(
            self,
            Self::DeleteNetwork { .. }
                | Self::RestoreNetwork { .. }
                | Self::CollectGarbage { .. }
                | Self::RemoveStrayNamespace(_)
                | Self::RemoveNamespace { .. }
                | Self::StopDns(_)
                | Self::Leave { .. }
                | Self::LeaveLater { .. }
                | Self::Unpublish(_)
                | Self::RemoveNames(_)
                | Self::RemoveRemote { .. }
                | Self::ReleaseLeases(_)
                | Self::WriteHosts { .. }
        )
    }

    /// The effect that reverses this building one; `None` for teardown and for what has no
    /// undo.
    pub fn inverse(&self) -> Option<Effect> {
        Some(match self {
            Self::CreateNetwork { driver, net } => Self::DeleteNetwork {
                driver: driver.clone(),
                net: net.clone(),
            },
            Self::CreateNamespace {
                sandbox,
                path,
                mode,
            } => Self::RemoveNamespace {
                sandbox: sandbox.clone(),
                path: path.clone(),
                mode: *mode,
            },
            Self::ServeDns(sandbox) => Self::StopDns(sandbox.clone()),
            Self::Join {
                driver, net, ep, ..
            } => Self::Leave {
                driver: driver.clone(),
                net: net.clone(),
                ep: ep.clone(),
            },
            Self::Publish(forwards) => Self::Unpublish(forwards.clone()),
            Self::AddNames(names) => Self::RemoveNames(names.endpoint_id.clone()),
            Self::AddRemote {
                driver,
                vni,
                endpoint,
                ..
            } => Self::RemoveRemote {
                driver: driver.clone(),
                vni: *vni,
                endpoint: endpoint.clone(),
            },
            _ => return None,
        })
    }

    /// The object the effect is about, for the log and for tests: a network's, sandbox's
    /// or endpoint's id, or the published ports.
    pub fn subject(&self) -> String {
        match self {
            Self::CreateNetwork { net, .. }
            | Self::DeleteNetwork { net, .. }
            | Self::RestoreNetwork { net, .. } => net.id.clone(),
            Self::CollectGarbage { driver, .. } => driver.clone(),
            Self::RemoveStrayNamespace(path) => path.display().to_string(),
            Self::CreateNamespace { sandbox, .. } | Self::RemoveNamespace { sandbox, .. } => {
                sandbox.clone()
            }
            Self::ServeDns(sandbox)
            | Self::StopDns(sandbox)
            | Self::SetSandboxDns { sandbox, .. } => sandbox.id.clone(),
            Self::SpeakIpv6 { sandbox, ifname }
            | Self::ConfigureLease {
                sandbox,
                on: LeaseOnLink { ifname, .. },
            } => {
                format!("{sandbox}/{ifname}")
            }
            Self::WriteHosts { sandbox, .. } => sandbox.id.clone(),
            Self::Join { ep, .. } | Self::Leave { ep, .. } | Self::LeaveLater { ep, .. } => {
                ep.id.clone()
            }
            Self::Publish(forwards) | Self::Unpublish(forwards) => forwards
                .iter()
                .map(|f| match f.host_ip {
                    Some(ip) => format!("{ip}:{}/{}", f.host_port, f.proto),
                    None => format!("{}/{}", f.host_port, f.proto),
                })
                .collect::<Vec<_>>()
                .join(","),
            Self::ReleaseLeases(endpoint)
            | Self::RemoveNames(endpoint)
            | Self::AddRemote { endpoint, .. }
            | Self::RemoveRemote { endpoint, .. } => endpoint.clone(),
            Self::AddNames(names) => names.endpoint_id.clone(),
        }
    }
}

/// A sandbox's endpoint put in place: its interface joined into the sandbox (unless another
/// CNI plugin made it: a chained endpoint), and its names served where the driver serves
/// DNS. The one recipe for attach, restart and the cluster mirror; each adds what is its
/// own (published ports at attach, the hosts file once per sandbox).
pub(super) fn endpoint_effects(
    net: &NetworkRecord,
    caps: &Capabilities,
    sandbox: &SandboxRecord,
    ep: &EndpointRecord,
) -> Vec<Effect> {
    let mut effects = Vec::new();
    if !ep.chained {
        effects.push(Effect::Join {
            driver: net.driver.clone(),
            net: network_spec(net),
            ep: endpoint_spec(net, ep, caps.gateway),
            sandbox: Some(sandbox.id.clone()),
        });
    }
    if caps.serves_dns {
        effects.push(Effect::AddNames(endpoint_names(net, sandbox, ep)));
    }
    effects
}
