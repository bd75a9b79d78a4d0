//! Connecting sandboxes to networks and disconnecting them.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use plugin_api::{ApiError, EndpointConfig};

use super::errors::{from_daemon, from_driver, from_ipam};
use super::state::State;
use super::{conntrack, ports, Controller, NetnsRef};
use crate::ids::new_id;
use crate::model::{
    format_mac, generate_mac, parse_mac, DriverKind, EndpointRecord, NetworkRecord, SandboxMode,
    SandboxRecord,
};
use crate::store::Change;
use drivers::firewall::Firewall;
use plugin_api::ports::PortMapping;

/// Route metrics start here; each further interface of a sandbox gets a higher one, so the
/// network a sandbox joined first keeps its default route.
const BASE_ROUTE_METRIC: u32 = 100;

/// What a connect request asks for, parsed before anything changes.
struct Wanted {
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    mac: Option<[u8; 6]>,
    aliases: Vec<String>,
    /// Explicit `-p` bindings, then `-P`'s exposed ports on host ports of our choosing.
    ports: Vec<PortMapping>,
}

fn wanted_ports(config: &EndpointConfig) -> Vec<PortMapping> {
    let mut ports = config.port_bindings.clone();
    if config.publish_all_ports {
        for exposed in &config.exposed_ports {
            let bound = ports
                .iter()
                .any(|p| p.container_port == exposed.port && p.proto == exposed.proto);
            if !bound {
                ports.push(PortMapping {
                    proto: exposed.proto,
                    host_ip: None,
                    host_port: 0,
                    host_port_end: 0,
                    container_port: exposed.port,
                });
            }
        }
    }
    ports
}

fn parse_wanted(config: &EndpointConfig) -> Result<Wanted, ApiError> {
    let ip = |text: &Option<String>, v6: bool| -> Result<Option<IpAddr>, ApiError> {
        let Some(text) = text.as_deref().filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        match text.parse::<IpAddr>() {
            Ok(ip) if ip.is_ipv6() == v6 => Ok(Some(ip)),
            _ => Err(ApiError::invalid(format!(
                "invalid {} address {text:?}",
                if v6 { "IPv6" } else { "IPv4" }
            ))),
        }
    };
    let ipam = config.ipam_config.clone().unwrap_or_default();
    let mac = match config.mac_address.as_deref().filter(|m| !m.is_empty()) {
        None => None,
        Some(text) => Some(parse_mac(text).ok_or_else(|| {
            ApiError::invalid(format!(
                "invalid MAC address {text:?}: expected a unicast address such as 02:42:ac:11:00:02"
            ))
        })?),
    };
    Ok(Wanted {
        ipv4: ip(&ipam.ipv4_address, false)?,
        ipv6: ip(&ipam.ipv6_address, true)?,
        mac,
        aliases: config.aliases.clone(),
        ports: wanted_ports(config),
    })
}

impl State {
    /// One address of the given family from the network's subnets, or `None` when the network
    /// has no subnet of that family.
    fn allocate_address(
        &mut self,
        net: &NetworkRecord,
        v6: bool,
        preferred: Option<IpAddr>,
    ) -> Result<Option<IpNetwork>, ApiError> {
        let subnets: Vec<IpNetwork> = net
            .subnets
            .iter()
            .map(|s| s.subnet)
            .filter(|s| s.is_ipv6() == v6)
            .collect();
        let Some(first) = subnets.first().copied() else {
            return match preferred {
                Some(ip) => Err(ApiError::invalid(format!(
                    "network {} has no {} subnet for address {ip}",
                    net.name,
                    if v6 { "IPv6" } else { "IPv4" }
                ))),
                None => Ok(None),
            };
        };
        let with_prefix = |ip: IpAddr, subnet: &IpNetwork| {
            IpNetwork::new(ip, subnet.prefix()).expect("valid prefix")
        };
        if let Some(ip) = preferred {
            let subnet = subnets
                .iter()
                .find(|s| s.contains(ip))
                .copied()
                .unwrap_or(first);
            let space = self.ipam.space_mut(net.scope);
            let ip = space.allocate(&subnet, Some(ip)).map_err(from_ipam)?;
            return Ok(Some(with_prefix(ip, &subnet)));
        }
        let mut last_error = None;
        for subnet in &subnets {
            match self.ipam.space_mut(net.scope).allocate(subnet, None) {
                Ok(ip) => return Ok(Some(with_prefix(ip, subnet))),
                Err(e) => last_error = Some(e),
            }
        }
        Err(from_ipam(last_error.expect("at least one subnet")))
    }

    fn release_address(&mut self, net: &NetworkRecord, ip: IpAddr) {
        if let Some(s) = net.subnets.iter().find(|s| s.subnet.contains(ip)) {
            let _ = self.ipam.space_mut(net.scope).release(&s.subnet, ip);
        }
    }

    /// Gives back what the endpoint held: addresses and host ports.
    pub(super) fn release_endpoint(&mut self, net: &NetworkRecord, ep: &EndpointRecord) {
        for address in ep.ipv4.iter().chain(ep.ipv6.iter()) {
            self.release_address(net, address.ip());
        }
        self.ports.release_all(&ep.ports);
    }

    /// The endpoint a connect would make, its addresses allocated (the caller persists it, or
    /// releases them).
    fn new_endpoint(
        &mut self,
        net: &NetworkRecord,
        sandbox: &SandboxRecord,
        wanted: Wanted,
    ) -> Result<EndpointRecord, ApiError> {
        let bridged = net.driver == DriverKind::Bridge;
        if !bridged && (wanted.ipv4.is_some() || wanted.ipv6.is_some() || wanted.mac.is_some()) {
            return Err(ApiError::invalid(format!(
                "addresses cannot be given on the {} network",
                net.name
            )));
        }
        if let Some(mac) = wanted.mac.filter(|m| self.mac_in_use(net, m)) {
            return Err(ApiError::conflict(format!(
                "MAC address {} is already in use on network {}",
                format_mac(&mac),
                net.name
            )));
        }
        if !wanted.ports.is_empty() && (!bridged || net.internal) {
            return Err(ApiError::invalid(format!(
                "ports cannot be published on network {}: it is {}",
                net.name,
                if net.internal {
                    "internal"
                } else {
                    "not a bridge network"
                }
            )));
        }
        let ipv4 = self.allocate_address(net, false, wanted.ipv4)?;
        let ipv6 = self
            .allocate_address(net, true, wanted.ipv6)
            .inspect_err(|_| {
                if let Some(v4) = ipv4 {
                    self.release_address(net, v4.ip());
                }
            })?;
        let ports = self
            .take_ports(net, &wanted.ports, ipv4.is_some(), ipv6.is_some())
            .inspect_err(|_| {
                for a in ipv4.iter().chain(ipv6.iter()) {
                    self.release_address(net, a.ip());
                }
            })?;
        let id = new_id();
        let (ifname, host_ifname, route_metric, mac) = if bridged {
            let (ifname, metric) = self.next_interface(&sandbox.id);
            let host_ifname = format!("{}{}", ::drivers::VETH_PREFIX, &id[..12]);
            let mac = wanted.mac.unwrap_or_else(|| self.generated_mac(net, ipv4));
            (ifname, host_ifname, metric, Some(mac))
        } else {
            (String::new(), String::new(), 0, None)
        };
        Ok(EndpointRecord {
            id,
            network_id: net.id.clone(),
            sandbox_id: sandbox.id.clone(),
            ifname,
            host_ifname,
            mac,
            ipv4,
            ipv6,
            aliases: wanted.aliases,
            route_metric,
            ports,
            docker: false,
            joined: false,
        })
    }

    /// Reserves the host ports; a binding to one family's address needs an endpoint address
    /// of that family.
    pub(super) fn take_ports(
        &mut self,
        net: &NetworkRecord,
        ports: &[PortMapping],
        has_v4: bool,
        has_v6: bool,
    ) -> Result<Vec<PortMapping>, ApiError> {
        for p in ports {
            if let Some(ip) = p.host_ip {
                if (ip.is_ipv6() && !has_v6) || (ip.is_ipv4() && !has_v4) {
                    return Err(ApiError::invalid(format!(
                        "cannot publish on {ip}: the endpoint has no {} address on network {}",
                        if ip.is_ipv6() { "IPv6" } else { "IPv4" },
                        net.name
                    )));
                }
            }
        }
        self.ports.take_all(ports)
    }

    fn mac_in_use(&self, net: &NetworkRecord, mac: &[u8; 6]) -> bool {
        self.endpoints_of_network(&net.id)
            .any(|e| e.mac.as_ref() == Some(mac))
    }

    /// Docker's address-derived MAC, unless a user-given MAC already took it.
    fn generated_mac(&self, net: &NetworkRecord, ipv4: Option<IpNetwork>) -> [u8; 6] {
        let mac = generate_mac(ipv4.map(|a| a.ip()));
        if self.mac_in_use(net, &mac) {
            generate_mac(None)
        } else {
            mac
        }
    }

    /// The lowest `ethN` the sandbox does not use yet.
    fn next_interface(&self, sandbox_id: &str) -> (String, u32) {
        let used: Vec<String> = self
            .endpoints_of_sandbox(sandbox_id)
            .map(|e| e.ifname.clone())
            .collect();
        let n = (0..)
            .find(|n| !used.contains(&format!("eth{n}")))
            .expect("a free index");
        (format!("eth{n}"), BASE_ROUTE_METRIC + n)
    }
}

impl Controller {
    pub async fn connect(
        &self,
        network: &str,
        sandbox: &str,
        config: &EndpointConfig,
    ) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let net = state.network(network)?.clone();
        let sbx = state.sandbox(sandbox)?;
        let (record, netns) = (sbx.record.clone(), sbx.netns.clone());
        self.connect_locked(&mut state, &net, &record, netns, config)
            .await
    }

    /// Connects under the caller's lock (also used by `sandbox create --network`).
    pub(super) async fn connect_locked(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        sandbox: &SandboxRecord,
        netns: Option<NetnsRef>,
        config: &EndpointConfig,
    ) -> Result<(), ApiError> {
        self.check_connectable(state, net, sandbox)?;
        let wanted = parse_wanted(config)?;
        let netns = netns.ok_or_else(|| {
            ApiError::internal(format!(
                "sandbox {}'s network namespace is not available",
                sandbox.name
            ))
        })?;
        let endpoint = state.new_endpoint(net, sandbox, wanted)?;
        if let Err(e) = self.store.apply(&[Change::PutEndpoint(&endpoint)]) {
            state.release_endpoint(net, &endpoint);
            return Err(from_daemon(e));
        }
        let forwards = ports::forwards(&endpoint);
        let joined = match self.drivers.join(net, &endpoint, &netns).await {
            Ok(()) => Firewall.publish(&forwards).await,
            Err(e) => Err(e),
        };
        if let Err(e) = joined {
            tracing::warn!(network = %net.name, sandbox = %sandbox.name, error = %e, "join failed; rolling back");
            let _ = self.drivers.leave(net, &endpoint).await;
            let _ = self.store.apply(&[Change::DeleteEndpoint(&endpoint.id)]);
            state.release_endpoint(net, &endpoint);
            return Err(from_driver(e));
        }
        tracing::debug!(network = %net.name, sandbox = %sandbox.name, ip = ?endpoint.ipv4, "connected");
        if let Some(names) = super::dns::endpoint_names(net, sandbox, &endpoint) {
            self.dns.directory().add_endpoint(names);
        }
        state.endpoints.insert(endpoint.id.clone(), endpoint);
        Ok(())
    }

    /// Unpublishes the endpoint's ports and forgets UDP flows through them, so that traffic
    /// does not keep going to the old container. Best effort: reconcile rebuilds the table.
    pub(super) async fn withdraw_ports(&self, ep: &EndpointRecord) {
        if let Err(e) = Firewall.unpublish(&ports::forwards(ep)).await {
            tracing::warn!(endpoint = %ep.id, error = %e, "cannot unpublish ports");
        }
        for forward in ports::forwards(ep).iter().filter(|f| f.proto == "udp") {
            conntrack::forget_udp(forward.target.is_ipv6(), forward.host_port).await;
        }
    }

    fn check_connectable(
        &self,
        state: &State,
        net: &NetworkRecord,
        sandbox: &SandboxRecord,
    ) -> Result<(), ApiError> {
        if net.docker_id.is_some() {
            return Err(super::networks::docker_managed(net));
        }
        if state.endpoint(&net.id, &sandbox.id).is_some() {
            return Err(ApiError::conflict(format!(
                "sandbox {} is already connected to network {}",
                sandbox.name, net.name
            )));
        }
        let has_endpoints = state.endpoints_of_sandbox(&sandbox.id).next().is_some();
        match net.driver {
            DriverKind::Host if sandbox.mode != SandboxMode::Host => Err(ApiError::conflict(
                "a sandbox joins the host network only when it is created (--network host)",
            )),
            DriverKind::Host | DriverKind::None if has_endpoints => Err(ApiError::conflict(format!(
                "sandbox {} is connected to other networks and cannot join the {} network",
                sandbox.name, net.name
            ))),
            DriverKind::Bridge if sandbox.mode == SandboxMode::Host || self.on_special_network(state, sandbox) => {
                Err(ApiError::conflict(format!(
                    "sandbox {} uses the host or none network and cannot be connected to other networks",
                    sandbox.name
                )))
            }
            _ => Ok(()),
        }
    }

    fn on_special_network(&self, state: &State, sandbox: &SandboxRecord) -> bool {
        state.endpoints_of_sandbox(&sandbox.id).any(|e| {
            state
                .networks
                .get(&e.network_id)
                .is_some_and(|n| n.driver != DriverKind::Bridge)
        })
    }

    pub async fn disconnect(&self, network: &str, sandbox: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let net = state.network(network)?.clone();
        let sbx = state.sandbox(sandbox)?.record.clone();
        let endpoint = state.endpoint(&net.id, &sbx.id).cloned().ok_or_else(|| {
            ApiError::not_found(format!(
                "sandbox {} is not connected to network {}",
                sbx.name, net.name
            ))
        })?;
        if net.driver != DriverKind::Bridge {
            return Err(ApiError::conflict(format!(
                "a sandbox cannot be disconnected from the {} network; remove the sandbox instead",
                net.name
            )));
        }
        self.store
            .apply(&[Change::DeleteEndpoint(&endpoint.id)])
            .map_err(from_daemon)?;
        self.dns.directory().remove_endpoint(&endpoint.id);
        state.endpoints.remove(&endpoint.id);
        state.release_endpoint(&net, &endpoint);
        self.withdraw_ports(&endpoint).await;
        self.drivers.leave(&net, &endpoint).await.map_err(|e| {
            ApiError::internal(format!(
                "disconnected, but removing the interface failed (retried at the daemon's next \
                 start): {e}"
            ))
        })
    }
}
