//! The bridge driver: one Linux bridge per network, one veth pair per endpoint.
//!
//! Everything it makes is named from the ids it is given, with a fixed prefix, so it can be
//! found again after a restart: the bridge `ncb` + 12 digits of the network id, an
//! endpoint's host end `ncv` + 12 digits of its id, and the end a runtime takes `ncs` + the
//! same digits.

mod options;
mod parent;
mod port;

pub(crate) use self::port::{inside_requests, stale_pair};

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use netctl_kernel::{sysctl, Netlink};
use parking_lot::Mutex;

use self::options::BridgeConfig;
use crate::firewall::{docker_user, Firewall, FirewallNetwork};
use crate::{
    Capabilities, Claim, Driver, DriverError, EndpointSpec, JoinKind, JoinTarget, NetworkDefaults,
    NetworkRole, NetworkSettings, NetworkSpec, SandboxNamespace, Scope, Wanted,
};

/// Prefix of every bridge the driver makes.
pub const BRIDGE_PREFIX: &str = "ncb";
/// Prefix of the host end of every veth it makes.
pub const HOST_END_PREFIX: &str = "ncv";
/// Prefix of the end of a veth a runtime takes, until the runtime moves and renames it.
pub const RUNTIME_END_PREFIX: &str = "ncs";

/// Works in the namespace its netlink connection was opened in (the daemon's).
#[derive(Debug, Clone)]
pub struct BridgeDriver {
    host: Netlink,
    firewall: Firewall,
    /// Turn on IP forwarding where a network needs it (daemon.json `ip-forward`).
    manage_forwarding: bool,
    /// Bridge name → index, to save a netlink round trip per join; checked by the kernel on
    /// use (a stale index makes the veth creation fail, and the join looks it up again).
    bridge_indexes: Arc<Mutex<HashMap<String, u32>>>,
}

/// The first 12 characters of an id: enough to tell objects apart in a 15-byte link name.
fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn bridge_name(network_id: &str) -> String {
    format!("{BRIDGE_PREFIX}{}", short(network_id))
}

/// The network's bridge device: the name the user gave (`com.docker.network.bridge.name`),
/// else netctl's own.
fn bridge_of(net: &NetworkSpec) -> String {
    BridgeConfig::of(net)
        .name
        .unwrap_or_else(|| bridge_name(&net.id))
}

pub(crate) fn host_end(endpoint_id: &str) -> String {
    format!("{HOST_END_PREFIX}{}", short(endpoint_id))
}

pub(crate) fn runtime_end(endpoint_id: &str) -> String {
    format!("{RUNTIME_END_PREFIX}{}", short(endpoint_id))
}

/// `02:6e:` and four bytes of the network id: stable across re-creation, and never equal to a
/// container MAC (those start `02:42:` or are random).
fn bridge_mac(network_id: &str) -> [u8; 6] {
    let byte = |i: usize| {
        u8::from_str_radix(network_id.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0)
    };
    [0x02, 0x6e, byte(0), byte(1), byte(2), byte(3)]
}

/// A bridge network's settings with inter-container communication off unless the options
/// turn it on (the gateway bridge's default).
pub(crate) fn parse_options_icc_off(
    options: &BTreeMap<String, String>,
    defaults: &NetworkDefaults,
) -> Result<NetworkSettings, DriverError> {
    options::parse_with_icc(options, defaults, false)
}

impl BridgeDriver {
    pub fn new(host: Netlink, manage_forwarding: bool) -> Self {
        Self {
            host,
            firewall: Firewall,
            manage_forwarding,
            bridge_indexes: Arc::default(),
        }
    }

    /// `ip link add … type bridge`, `ip addr replace GATEWAY dev BRIDGE`, forwarding and
    /// `route_localnet` on.
    async fn ensure_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        let name = bridge_of(net);
        // Checked before anything is made: a parent refused changes nothing.
        let parent = match &BridgeConfig::of(net).parent {
            Some(parent) => {
                let existing = self.host.link_by_name(&name).await?.map(|l| l.index);
                Some(parent::check(&self.host, parent, &name, existing).await?)
            }
            None => None,
        };
        let index = self.ensure_bridge(net, &name).await?;
        for subnet in &net.subnets {
            self.host
                .replace_address(index, subnet.gateway_cidr())
                .await?;
        }
        if let Some(parent) = parent {
            parent::take_over(&self.host, &parent, index).await?;
        }
        if self.manage_forwarding {
            let ipv6 = net.subnets.iter().any(|s| s.gateway.is_ipv6());
            sysctl::enable_forwarding(ipv6)?;
        }
        // Ports published on 127.0.0.1 are DNAT'd to this bridge with a loopback source.
        sysctl::ensure(&format!("net.ipv4.conf.{name}.route_localnet"), "1")?;
        Ok(())
    }

    /// The bridge, without multicast snooping: nothing on a container bridge sends multicast
    /// queries, so snooped memberships expire after a few minutes and multicast between
    /// containers silently stops; snooping also makes bringing a port up cost time in
    /// proportion to the bridge's ports. Without it, multicast is flooded to the ports, as on
    /// a plain switch.
    async fn ensure_bridge(&self, net: &NetworkSpec, name: &str) -> Result<u32, DriverError> {
        // Bridged traffic crosses netfilter only where it has to: ICC off needs the forward
        // hook to see frames between ports of the same bridge.
        let filter_bridged = !BridgeConfig::of(net).icc;
        let index = match self.host.link_by_name(name).await? {
            Some(link) => {
                self.host.set_bridge(link.index, filter_bridged).await?;
                link.index
            }
            None => {
                let index = self
                    .host
                    .add_bridge(name, bridge_mac(&net.id), net.mtu, filter_bridged)
                    .await?;
                // Its MAC is unique (from the network id), and while a new link-local address
                // is tentative (a second) the host cannot resolve containers' IPv6 addresses
                // for traffic it forwards: skip duplicate address detection.
                sysctl::ensure_ipv6(&format!("net.ipv6.conf.{name}.accept_dad"), "0")?;
                self.host.set_up(index).await?;
                index
            }
        };
        self.cache_index(name, Some(index));
        Ok(index)
    }

    fn cache_index(&self, bridge: &str, index: Option<u32>) {
        let mut cache = self.bridge_indexes.lock();
        match index {
            Some(i) => cache.insert(bridge.to_string(), i),
            None => cache.remove(bridge),
        };
    }

    async fn bridge_index(&self, net: &NetworkSpec, fresh: bool) -> Result<u32, DriverError> {
        let name = bridge_of(net);
        let cached = self.bridge_indexes.lock().get(&name).copied();
        if let Some(index) = cached.filter(|_| !fresh) {
            return Ok(index);
        }
        let index = self
            .host
            .link_by_name(&name)
            .await?
            .map(|l| l.index)
            .ok_or(netctl_kernel::KernelError::LinkNotFound(name.clone()))?;
        self.cache_index(&name, Some(index));
        Ok(index)
    }

    fn firewall_network(net: &NetworkSpec) -> FirewallNetwork {
        FirewallNetwork {
            bridge: bridge_of(net),
            icc: BridgeConfig::of(net).icc,
            internal: net.internal,
            masquerade: BridgeConfig::of(net).masquerade,
            subnets: net
                .subnets
                .iter()
                .map(|s| {
                    ipnetwork::IpNetwork::new(s.subnet.network(), s.subnet.prefix())
                        .expect("the subnet's own prefix")
                })
                .collect(),
        }
    }
}

#[async_trait]
impl Driver for BridgeDriver {
    fn name(&self) -> &'static str {
        "bridge"
    }

    fn host_link_prefixes(&self) -> &'static [&'static str] {
        &[BRIDGE_PREFIX, HOST_END_PREFIX, RUNTIME_END_PREFIX]
    }

    /// A parent interface is a port of one bridge only.
    fn exclusive_claims(&self, config: &serde_json::Value) -> Vec<Claim> {
        let parent = BridgeConfig::from_value(config).parent;
        parent
            .map(|p| Claim(format!("parent interface {p}")))
            .into_iter()
            .collect()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            addresses: true,
            gateway: true,
            publishes_ports: true,
            serves_dns: true,
            needs_cluster: false,
            namespace: SandboxNamespace::Own,
            exclusive: false,
            singleton: None,
            exits_via_gateway_bridge: false,
            role: NetworkRole::User,
        }
    }

    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError> {
        options::parse(options, defaults)
    }

    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        if let Some(name) = BridgeConfig::of(net).name {
            if self.host.link_by_name(&name).await?.is_some() {
                return Err(DriverError::InvalidOption(format!(
                    "bridge name {name}: a link of that name exists already"
                )));
            }
        }
        self.ensure_network(net).await?;
        self.firewall
            .add_network(&Self::firewall_network(net))
            .await?;
        docker_user::admit_bridge(&bridge_of(net)).await
    }

    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        let name = bridge_of(net);
        let mut errors = Vec::new();
        self.cache_index(&name, None);
        if let Some(parent) = &BridgeConfig::of(net).parent {
            let gateways: Vec<_> = net.subnets.iter().map(|s| s.gateway_cidr()).collect();
            if let Err(e) = parent::give_back(&self.host, parent, &name, &gateways).await {
                errors.push(e);
            }
        }
        if let Err(e) = self.host.delete_link_by_name(&name).await {
            errors.push(e.into());
        }
        if let Err(e) = self
            .firewall
            .remove_network(&Self::firewall_network(net))
            .await
        {
            errors.push(e);
        }
        if let Err(e) = docker_user::forget_bridge(&name).await {
            errors.push(e);
        }
        DriverError::collect(errors)
    }

    async fn restore_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.ensure_network(net).await?;
        if let Err(e) = docker_user::admit_bridge(&bridge_of(net)).await {
            tracing::warn!(network = %net.name, error = %e, "cannot admit the bridge in dockerd's DOCKER-USER chain");
        }
        Ok(())
    }

    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        target: JoinTarget<'_>,
    ) -> Result<(), DriverError> {
        match target {
            JoinTarget::Sandbox(netns) => self.join_sandbox(net, ep, netns).await,
            JoinTarget::Runtime => self.join_runtime(net, ep).await,
        }
    }

    fn runtime_interface(&self, ep: &EndpointSpec) -> Option<String> {
        Some(runtime_end(&ep.id))
    }

    async fn leave(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), DriverError> {
        // Deleting one end of a veth deletes both.
        self.host.delete_link_by_name(&host_end(&ep.id)).await?;
        Ok(())
    }

    /// Deletes links that carry the driver's prefixes but that nothing wanted names.
    async fn collect_garbage(&self, wanted: &Wanted) -> Result<(), DriverError> {
        let mut keep: HashSet<String> = wanted.networks.iter().map(bridge_of).collect();
        for (ep, kind) in &wanted.endpoints {
            keep.insert(host_end(&ep.id));
            if *kind == JoinKind::Runtime {
                keep.insert(runtime_end(&ep.id));
            }
        }
        let mut errors = Vec::new();
        for link in self.host.links().await? {
            let ours = [BRIDGE_PREFIX, HOST_END_PREFIX, RUNTIME_END_PREFIX]
                .iter()
                .any(|prefix| link.name.starts_with(prefix));
            if ours && !keep.contains(&link.name) {
                tracing::info!(link = %link.name, "removing unwanted link");
                metrics::counter!("netctl_reconcile_repairs_total", "what" => "link").increment(1);
                if let Err(e) = self.host.delete_link_by_name(&link.name).await {
                    errors.push(e.into());
                }
            }
        }
        DriverError::collect(errors)
    }

    /// dockerd takes the runtime end into the container at Join and hands it back to this
    /// namespace before DeleteEndpoint.
    async fn released_by_runtime(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> bool {
        matches!(
            self.host.link_by_name(&runtime_end(&ep.id)).await,
            Ok(Some(_))
        )
    }

    /// The host end stays on the bridge for as long as the pair lives.
    async fn vanished(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> bool {
        matches!(self.host.link_by_name(&host_end(&ep.id)).await, Ok(None))
    }

    fn firewall(&self, net: &NetworkSpec) -> Option<FirewallNetwork> {
        Some(Self::firewall_network(net))
    }

    fn device(&self, net: &NetworkSpec) -> Option<String> {
        Some(bridge_of(net))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_ids_and_fit_a_link_name() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(bridge_name(id), "ncb0123456789ab");
        assert_eq!(host_end(id), "ncv0123456789ab");
        assert_eq!(runtime_end(id), "ncs0123456789ab");
        assert!(bridge_name(id).len() <= 15);
        assert_eq!(bridge_mac(id), [0x02, 0x6e, 0x01, 0x23, 0x45, 0x67]);
        assert_eq!(host_end("abc"), "ncvabc");
    }
}
