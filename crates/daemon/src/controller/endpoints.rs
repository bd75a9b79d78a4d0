//! Connecting sandboxes to networks and disconnecting them.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netctl_drivers::{Capabilities, NetworkRole, SandboxNamespace};
use netctl_plugin_api::ports::PortMapping;
use netctl_plugin_api::EndpointConfig;
use netctl_store::Batch;

use super::effects::{endpoint_effects, Effect};
use super::networks::docker_managed;
use super::ports::{forwards, Reservation};
use super::specs::{endpoint_names, endpoint_spec, network_spec};
use super::state::State;
use super::txn::Txn;
use super::Controller;
use crate::cluster_store::claims::address_key;
use crate::controller::error::EngineError;
use crate::ids::{new_id, valid_dns_name, DNS_NAME_RULE};
use crate::model::{
    format_mac, generate_mac, parse_mac, EndpointRecord, NetworkRecord, PublishedPort, SandboxMode,
    SandboxRecord,
};
use crate::persist::BatchExt;

/// Route metrics start here; each further interface of a sandbox gets a higher one, so the
/// network a sandbox joined first keeps its default route.
const BASE_ROUTE_METRIC: u32 = 100;

/// What a connect request asks for, parsed before anything changes.
#[derive(Clone)]
pub(super) struct EndpointRequest {
    ipv4: Option<IpAddr>,
    ipv6: Option<IpAddr>,
    mac: Option<[u8; 6]>,
    aliases: Vec<String>,
    /// Explicit `-p` bindings, then `-P`'s exposed ports on host ports of our choosing.
    ports: Vec<PortMapping>,
    /// The interface's name in the sandbox, when the caller names it (a CNI runtime).
    pub ifname: Option<String>,
    /// The addresses of an interface another CNI plugin made (netctl chained after it).
    pub chained: Vec<IpNetwork>,
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

impl EndpointRequest {
    pub fn parse(config: &EndpointConfig) -> Result<Self, EngineError> {
        let ip = |text: &Option<String>, v6: bool| -> Result<Option<IpAddr>, EngineError> {
            let Some(text) = text.as_deref().filter(|t| !t.is_empty()) else {
                return Ok(None);
            };
            match text.parse::<IpAddr>() {
                Ok(ip) if ip.is_ipv6() == v6 => Ok(Some(ip)),
                _ => Err(EngineError::invalid(format!(
                    "invalid {} address {text:?}",
                    if v6 { "IPv6" } else { "IPv4" }
                ))),
            }
        };
        if let Some(bad) = config.aliases.iter().find(|a| !valid_dns_name(a)) {
            return Err(EngineError::invalid(format!(
                "invalid alias {bad:?}: an alias is a DNS name: {DNS_NAME_RULE}"
            )));
        }
        let ipam = config.ipam_config.clone().unwrap_or_default();
        let mac = match config.mac_address.as_deref().filter(|m| !m.is_empty()) {
            None => None,
            Some(text) => Some(parse_mac(text).ok_or_else(|| {
                EngineError::invalid(format!(
                    "invalid MAC address {text:?}: expected a unicast address such as 02:42:ac:11:00:02"
                ))
            })?),
        };
        Ok(Self {
            ipv4: ip(&ipam.ipv4_address, false)?,
            ipv6: ip(&ipam.ipv6_address, true)?,
            mac,
            aliases: config.aliases.clone(),
            ports: wanted_ports(config),
            ifname: None,
            chained: Vec::new(),
        })
    }
}

impl EndpointRequest {
    /// Leaves out the mappings the sandbox publishes already on another network: a runtime
    /// passes its container's port mappings with each network it attaches (podman does), and
    /// the host port goes to the first.
    pub fn without_published(mut self, published: &[PublishedPort]) -> Self {
        self.ports.retain(|m| {
            !published.iter().any(|p| {
                p.transport == m.proto.into()
                    && p.host_ip == m.host_ip
                    && p.container_port == m.container_port
                    && (m.host_port == 0 || (m.host_port..=m.host_port_end).contains(&p.host_port))
            })
        });
        self
    }
}

impl State {
    /// One address of the given family from the network's subnets, or `None` when the network
    /// has no subnet of that family.
    pub(super) fn allocate_address(
        &mut self,
        net: &NetworkRecord,
        v6: bool,
        preferred: Option<IpAddr>,
    ) -> Result<Option<IpNetwork>, EngineError> {
        let subnets: Vec<IpNetwork> = net
            .subnets
            .iter()
            .map(|s| s.subnet)
            .filter(|s| s.is_ipv6() == v6)
            .collect();
        let Some(first) = subnets.first().copied() else {
            return match preferred {
                Some(ip) => Err(EngineError::invalid(format!(
                    "network {} has no {} subnet for address {ip}",
                    net.name,
                    if v6 { "IPv6" } else { "IPv4" }
                ))),
                None => Ok(None),
            };
        };
        let with_prefix = |ip: IpAddr, subnet: &IpNetwork| {
            // The prefix is the subnet's own, which IpNetwork checked when it was made.
            IpNetwork::new(ip, subnet.prefix()).expect("a subnet's prefix fits its family")
        };
        let space = self.ipam.space_mut(net.address_scope.into());
        if let Some(ip) = preferred {
            let subnet = subnets
                .iter()
                .find(|s| s.contains(ip))
                .copied()
                .unwrap_or(first);
            let ip = space
                .allocate(&subnet, Some(ip))
                .map_err(EngineError::from)?;
            return Ok(Some(with_prefix(ip, &subnet)));
        }
        let spread =
            (net.address_scope == crate::model::AddressScope::Global).then_some(self.spread_seed);
        let mut last_error = None;
        for subnet in &subnets {
            let allocated = match spread {
                Some(seed) => space.allocate_spread(subnet, seed),
                None => space.allocate(subnet, None),
            };
            match allocated {
                Ok(ip) => return Ok(Some(with_prefix(ip, subnet))),
                Err(e) => last_error = Some(e),
            }
        }
        // `subnets` is not empty (its first was taken above), so one allocation failed.
        Err(EngineError::from(
            last_error.expect("a failed allocation on some subnet"),
        ))
    }

    /// Gives back an address of a network whose subnets are its own (an external IPAM
    /// driver's addresses are that driver's to release).
    pub(super) fn release_address(&mut self, net: &NetworkRecord, ip: IpAddr) {
        if let Some(s) = net.subnets.iter().find(|s| s.subnet.contains(ip)) {
            let _ = self
                .ipam
                .space_mut(net.address_scope.into())
                .release(&s.subnet, ip);
        }
    }

    /// Gives back what the endpoint held: addresses and host ports.
    pub(super) fn release_endpoint(&mut self, net: &NetworkRecord, ep: &EndpointRecord) {
        if net.subnet_owner == crate::model::SubnetOwner::Network && !ep.chained {
            for address in ep.addresses() {
                self.release_address(net, address.ip());
            }
        }
        self.ports.release_all(&ep.ports);
    }

    /// How the endpoint's host ports are reserved: a runtime's container's are left to the
    /// runtime (see [`Reservation::Probed`]).
    pub(super) fn reservation_for(&self, ep: &EndpointRecord) -> Reservation {
        ep.sandbox_id
            .as_deref()
            .and_then(|id| self.sandbox_by_id(id))
            .map_or(Reservation::Held, reservation_of)
    }

    /// Takes back what the endpoint held (after a restart, or an undone removal).
    pub(super) fn retake_endpoint(&mut self, net: &NetworkRecord, ep: &EndpointRecord) {
        let how = self.reservation_for(ep).again();
        if let Err(e) = self.ports.retake_all(&ep.ports, how) {
            tracing::error!(endpoint = %ep.id, error = %e, "cannot hold published ports again");
        }
        if net.subnet_owner != crate::model::SubnetOwner::Network || ep.chained {
            return;
        }
        for address in ep.addresses() {
            let Some(s) = net.subnets.iter().find(|s| s.subnet.contains(address.ip())) else {
                continue;
            };
            if let Err(e) = self
                .ipam
                .space_mut(net.address_scope.into())
                .allocate(&s.subnet, Some(address.ip()))
            {
                tracing::error!(endpoint = %ep.id, error = %e, "cannot restore address");
            }
        }
    }

    /// Takes the addresses of an endpoint of a global network as the cluster gives it. One
    /// this node marked taken already (after losing a race for it) is no error.
    pub(super) fn retake_global_endpoint(&mut self, net: &NetworkRecord, ep: &EndpointRecord) {
        for address in ep.addresses() {
            self.retake_global_address(net, address.ip());
        }
    }

    /// Marks an address the cluster gives a record as taken here; already taken is no error.
    pub(super) fn retake_global_address(&mut self, net: &NetworkRecord, ip: IpAddr) {
        if let Some(s) = net.subnets.iter().find(|s| s.subnet.contains(ip)) {
            let _ = self
                .ipam
                .space_mut(net.address_scope.into())
                .allocate(&s.subnet, Some(ip));
        }
    }

    /// Reserves the host ports; a binding to one family's address needs an endpoint address
    /// of that family.
    pub(super) fn take_ports(
        &mut self,
        net: &NetworkRecord,
        ports: &[PortMapping],
        has_v4: bool,
        has_v6: bool,
        how: Reservation,
    ) -> Result<Vec<PublishedPort>, EngineError> {
        for p in ports {
            if let Some(ip) = p.host_ip {
                if (ip.is_ipv6() && !has_v6) || (ip.is_ipv4() && !has_v4) {
                    return Err(EngineError::invalid(format!(
                        "cannot publish on {ip}: the endpoint has no {} address on network {}",
                        if ip.is_ipv6() { "IPv6" } else { "IPv4" },
                        net.name
                    )));
                }
            }
        }
        if let Some(taken) = ports.iter().find_map(|p| self.published_by(p)) {
            return Err(EngineError::conflict(taken));
        }
        self.ports.take_all(ports, how)
    }

    /// Who publishes the mapping's host port already (a fixed port only: a range or port 0
    /// takes a free one), said for the error.
    fn published_by(&self, wanted: &PortMapping) -> Option<String> {
        if wanted.host_port == 0 || wanted.host_port != wanted.host_port_end {
            return None;
        }
        let proto = crate::model::Transport::from(wanted.proto);
        let (ep, port) = self.endpoints().find_map(|ep| {
            let port = ep.ports.iter().find(|p| {
                p.transport == proto
                    && p.host_port == wanted.host_port
                    && (p.host_ip.is_none()
                        || wanted.host_ip.is_none()
                        || p.host_ip == wanted.host_ip)
            })?;
            Some((ep, port))
        })?;
        let network = self
            .network_by_id(&ep.network_id)
            .map_or(ep.network_id.as_str(), |n| n.name.as_str());
        let holder = match (&port.service, ep.sandbox_id.as_deref()) {
            (Some(service), _) => format!("service {service}"),
            (None, Some(id)) => match self.sandbox_by_id(id) {
                Some(s) => format!("sandbox {} on network {network}", s.name),
                None => format!("an endpoint on network {network}"),
            },
            (None, None) => format!("Docker endpoint {} on network {network}", &ep.id[..12]),
        };
        let host = match port.host_ip {
            None => "0.0.0.0".to_string(),
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
        };
        Some(format!(
            "port {host}:{}/{} is already published by {holder}",
            port.host_port,
            proto.name()
        ))
    }

    /// Docker's address-derived MAC, unless a user-given MAC already took it.
    fn generated_mac(&self, net: &NetworkRecord, ipv4: Option<IpNetwork>) -> [u8; 6] {
        let mac = generate_mac(ipv4.map(|a| a.ip()));
        if self.mac_in_use(&net.id, &mac) {
            generate_mac(None)
        } else {
            mac
        }
    }

    /// The lowest `ethN` the sandbox does not use yet.
    fn next_interface(&self, sandbox_id: &str) -> (String, u32) {
        let used: Vec<&str> = self
            .endpoints_of_sandbox(sandbox_id)
            .map(|e| e.ifname.as_str())
            .collect();
        // Among as many indexes as the sandbox has endpoints, plus one, one is free.
        let n = (0..=used.len() as u32)
            .find(|n| !used.contains(&format!("eth{n}").as_str()))
            .expect("one of len + 1 indexes is free");
        (format!("eth{n}"), BASE_ROUTE_METRIC + n)
    }

    /// The interface a caller named, with a metric after the sandbox's other interfaces'.
    fn named_interface(
        &self,
        sandbox_id: &str,
        ifname: &str,
    ) -> Result<(String, u32), EngineError> {
        let mut metric = BASE_ROUTE_METRIC;
        for ep in self.endpoints_of_sandbox(sandbox_id) {
            if ep.ifname == ifname {
                return Err(EngineError::conflict(format!(
                    "the sandbox already has an interface named {ifname}"
                )));
            }
            metric = metric.max(ep.route_metric + 1);
        }
        Ok((ifname.to_string(), metric))
    }

    /// The endpoint a connect would make, its addresses and ports taken (the caller persists
    /// it, or gives them back).
    fn new_endpoint(
        &mut self,
        net: &NetworkRecord,
        caps: &Capabilities,
        sandbox: &SandboxRecord,
        node: &str,
        wanted: EndpointRequest,
    ) -> Result<EndpointRecord, EngineError> {
        self.check_request(net, caps, &wanted)?;
        let mut endpoint = EndpointRecord {
            id: new_id(),
            names: Vec::new(),
            network_id: net.id.clone(),
            sandbox_id: Some(sandbox.id.clone()),
            node: node.to_string(),
            ifname: String::new(),
            mac: None,
            ipv4: None,
            ipv6: None,
            aliases: wanted.aliases.clone(),
            route_metric: 0,
            ports: Vec::new(),
            balancer: !sandbox.role.is_user(),
            chained: !wanted.chained.is_empty(),
            leases: Default::default(),
        };
        if endpoint.chained {
            return self.chained_endpoint(net, sandbox, endpoint, &wanted);
        }
        if !caps.addresses {
            return Ok(endpoint);
        }
        endpoint.ipv4 = self.allocate_address(net, false, wanted.ipv4)?;
        endpoint.ipv6 = self
            .allocate_address(net, true, wanted.ipv6)
            .inspect_err(|_| self.release_endpoint(net, &endpoint))?;
        endpoint.ports = self
            .take_ports(
                net,
                &wanted.ports,
                endpoint.ipv4.is_some(),
                endpoint.ipv6.is_some(),
                reservation_of(sandbox),
            )
            .inspect_err(|_| self.release_endpoint(net, &endpoint))?;
        let named = match &wanted.ifname {
            Some(name) => self.named_interface(&sandbox.id, name),
            None => Ok(self.next_interface(&sandbox.id)),
        };
        let (ifname, metric) = named.inspect_err(|_| self.release_endpoint(net, &endpoint))?;
        endpoint.ifname = ifname;
        endpoint.route_metric = metric;
        endpoint.mac = Some(
            wanted
                .mac
                .unwrap_or_else(|| self.generated_mac(net, endpoint.ipv4)),
        );
        Ok(endpoint)
    }

    /// Refuses what `net` cannot give an endpoint: addresses where its driver assigns none,
    /// what a DHCP network cannot lease, a MAC in use there, ports where none are published.
    fn check_request(
        &self,
        net: &NetworkRecord,
        caps: &Capabilities,
        wanted: &EndpointRequest,
    ) -> Result<(), EngineError> {
        if !caps.addresses
            && (wanted.ipv4.is_some() || wanted.ipv6.is_some() || wanted.mac.is_some())
        {
            return Err(EngineError::invalid(format!(
                "addresses cannot be given on the {} network",
                net.name
            )));
        }
        if net.leases_addresses() {
            check_leasable(net, wanted)?;
        }
        if let Some(mac) = wanted.mac.filter(|m| self.mac_in_use(&net.id, m)) {
            return Err(EngineError::conflict(format!(
                "MAC address {} is already in use on network {}",
                format_mac(&mac),
                net.name
            )));
        }
        if !wanted.ports.is_empty() && (!caps.publishes_ports || net.internal) {
            return Err(EngineError::invalid(format!(
                "ports cannot be published on network {}: it is {}",
                net.name,
                if net.internal {
                    "internal"
                } else {
                    "of a driver that publishes no ports"
                }
            )));
        }
        Ok(())
    }

    /// An endpoint for an interface another plugin made: its addresses as given (that
    /// plugin's to manage), its ports taken.
    fn chained_endpoint(
        &mut self,
        net: &NetworkRecord,
        sandbox: &SandboxRecord,
        mut endpoint: EndpointRecord,
        wanted: &EndpointRequest,
    ) -> Result<EndpointRecord, EngineError> {
        endpoint.ipv4 = wanted.chained.iter().find(|a| a.is_ipv4()).copied();
        endpoint.ipv6 = wanted.chained.iter().find(|a| a.is_ipv6()).copied();
        endpoint.ifname = wanted.ifname.clone().unwrap_or_default();
        endpoint.route_metric = self.named_interface(&sandbox.id, &endpoint.ifname)?.1;
        endpoint.ports = self.take_ports(
            net,
            &wanted.ports,
            endpoint.ipv4.is_some(),
            endpoint.ipv6.is_some(),
            reservation_of(sandbox),
        )?;
        Ok(endpoint)
    }

    /// The addresses a sandbox has on its networks (its hosts file's own lines).
    pub(super) fn sandbox_addresses(&self, sandbox_id: &str) -> Vec<IpAddr> {
        let mut addresses: Vec<(u32, IpAddr)> = self
            .endpoints_of_sandbox(sandbox_id)
            .flat_map(|e| e.addresses().map(move |a| (e.route_metric, a.ip())))
            .collect();
        addresses.sort();
        addresses.into_iter().map(|(_, a)| a).collect()
    }
}

impl Controller {
    /// How an endpoint is recorded, and how that is undone: in the local store, or, on a
    /// global network, in the cluster store with each of its addresses claimed (a claim
    /// another node holds fails the whole transaction).
    pub(super) fn endpoint_records(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> (Batch, Batch) {
        if !self.is_global(net) {
            return (
                Batch::new().put_record(ep),
                Batch::new().delete_record::<EndpointRecord>(&ep.id),
            );
        }
        let mut persist = Batch::new();
        for address in ep.addresses() {
            persist = persist.create(
                address_key(&net.id, address.ip()),
                ep.id.clone().into_bytes(),
            );
        }
        persist = persist.put_global(ep);
        (persist, self.endpoint_removal(net, ep))
    }

    /// Deletes what [`Controller::endpoint_records`] wrote.
    pub(super) fn endpoint_removal(&self, net: &NetworkRecord, ep: &EndpointRecord) -> Batch {
        if !self.is_global(net) {
            return Batch::new().delete_record::<EndpointRecord>(&ep.id);
        }
        let mut batch = Batch::new().delete_global(ep);
        for address in ep.addresses() {
            batch = batch.delete(address_key(&net.id, address.ip()));
        }
        batch
    }

    pub(super) fn capabilities(&self, net: &NetworkRecord) -> Result<Capabilities, EngineError> {
        self.drivers
            .get(&net.driver)
            .map(|d| d.capabilities())
            .ok_or_else(|| {
                EngineError::internal(format!(
                    "network {} has driver {:?}, which this daemon does not have",
                    net.name, net.driver
                ))
            })
    }

    /// What `net` is for, as its driver says.
    pub(super) fn role(&self, net: &NetworkRecord) -> NetworkRole {
        self.capabilities(net).map(|c| c.role).unwrap_or_default()
    }

    pub async fn connect(
        &self,
        network: &str,
        sandbox: &str,
        config: &EndpointConfig,
    ) -> Result<(), EngineError> {
        let wanted = EndpointRequest::parse(config)?;
        self.ensure_gateway_bridge_for(network).await?;
        let (net_id, sandbox_id) = {
            let state = self.state.lock().await;
            (
                state.network(network)?.id.clone(),
                state.sandbox(sandbox)?.id.clone(),
            )
        };
        let held = self.locks.hold(&[&net_id], &[], &[&sandbox_id]).await;
        self.transact_claiming(
            |state| {
                let (net, sbx) = found(state, &net_id, network, &sandbox_id, sandbox)?;
                Ok((self.plan_connect(state, &net, &sbx, wanted.clone())?, ()))
            },
            lost_address,
        )
        .await?;
        self.lease_or_undo(
            self.lease_attachment(&net_id, &sandbox_id),
            held,
            self.disconnect_one(&net_id, &sandbox_id),
        )
        .await
        .map(drop)
    }

    /// Takes the endpoint's addresses and ports, records it, and returns the transaction
    /// that plugs it in (also used by `sandbox create --network`).
    pub(super) fn plan_connect(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        sandbox: &SandboxRecord,
        wanted: EndpointRequest,
    ) -> Result<Txn, EngineError> {
        let caps = self.capabilities(net)?;
        self.check_connectable(state, net, &caps, sandbox)?;
        let mut endpoint = state.new_endpoint(net, &caps, sandbox, &self.node.id, wanted)?;
        if self.is_global(net) {
            endpoint.names = endpoint_names(net, sandbox, &endpoint).names;
        }
        state.insert_endpoint(endpoint.clone());
        let mut txn = Txn::new(format!("connect {} to {}", sandbox.name, net.name));
        (txn.persist, txn.revert) = self.endpoint_records(net, &endpoint);
        txn.effects = endpoint_effects(net, &caps, sandbox, &endpoint);
        let published = forwards(&endpoint);
        if !published.is_empty() {
            txn.effects.push(Effect::Publish(published));
        }
        if sandbox.mode.has_own_namespace() {
            txn.effects.push(Effect::WriteHosts {
                sandbox: sandbox.clone(),
                addresses: state.sandbox_addresses(&sandbox.id),
            });
        }
        let net_record = net.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.remove_endpoint(&endpoint.id);
            state.release_endpoint(&net_record, &endpoint);
        });
        match self.plan_gateway_bridge(state, net, sandbox) {
            Ok(Some(gateway)) => Ok(txn.then(gateway)),
            Ok(None) => Ok(txn),
            Err(e) => {
                (txn.unplan)(state);
                Err(e)
            }
        }
    }

    fn check_connectable(
        &self,
        state: &State,
        net: &NetworkRecord,
        caps: &Capabilities,
        sandbox: &SandboxRecord,
    ) -> Result<(), EngineError> {
        if state.is_docker_network(&net.id) {
            return Err(docker_managed(net));
        }
        if state.attachment(&net.id, &sandbox.id).is_some() {
            return Err(EngineError::conflict(format!(
                "sandbox {} is already connected to network {}",
                sandbox.name, net.name
            )));
        }
        let in_host_namespace = sandbox.mode == SandboxMode::Host;
        if caps.namespace == SandboxNamespace::Host && !in_host_namespace {
            return Err(EngineError::conflict(format!(
                "a sandbox joins the {0} network only when it is created (--network {0})",
                net.name
            )));
        }
        let has_endpoints = state.endpoints_of_sandbox(&sandbox.id).next().is_some();
        if caps.exclusive && has_endpoints {
            return Err(EngineError::conflict(format!(
                "sandbox {} is connected to other networks and cannot join the {} network",
                sandbox.name, net.name
            )));
        }
        let on_exclusive = state.endpoints_of_sandbox(&sandbox.id).any(|e| {
            state
                .network_by_id(&e.network_id)
                .and_then(|n| self.drivers.get(&n.driver))
                .is_some_and(|d| d.capabilities().exclusive)
        });
        if !caps.exclusive && (in_host_namespace || on_exclusive) {
            return Err(EngineError::conflict(format!(
                "sandbox {} uses the {} network and cannot be connected to other networks",
                sandbox.name,
                self.exclusive_networks()
            )));
        }
        Ok(())
    }

    /// `host or none`: the networks a sandbox must have to itself.
    fn exclusive_networks(&self) -> String {
        let names: Vec<&str> = self
            .drivers
            .all()
            .map(|d| d.capabilities())
            .filter(|c| c.exclusive)
            .filter_map(|c| c.singleton)
            .collect();
        names.join(" or ")
    }

    /// Disconnects the sandbox, and from the gateway bridge too when `network` was the last
    /// that needed it.
    pub async fn disconnect(&self, network: &str, sandbox: &str) -> Result<(), EngineError> {
        let result = self.disconnect_one(network, sandbox).await;
        // Also after a disconnect whose kernel cleanup reported errors: the endpoint is
        // gone from the state all the same. A refused one leaves the need as it was.
        let sandbox_id = match &result {
            Ok(id) => Some(id.clone()),
            Err(_) => self
                .state
                .lock()
                .await
                .sandbox(sandbox)
                .ok()
                .map(|s| s.id.clone()),
        };
        let released = match sandbox_id {
            Some(id) => self.release_gateway_bridge(&id).await,
            None => Ok(()),
        };
        result?;
        released
    }

    /// Disconnects the sandbox from this one network; returns the sandbox's id.
    pub(super) async fn disconnect_one(
        &self,
        network: &str,
        sandbox: &str,
    ) -> Result<String, EngineError> {
        let (net_id, sandbox_id) = {
            let state = self.state.lock().await;
            (
                state.network(network)?.id.clone(),
                state.sandbox(sandbox)?.id.clone(),
            )
        };
        let _held = self.locks.hold(&[&net_id], &[], &[&sandbox_id]).await;
        let (_, done) = self
            .transact(|state| {
                let (net, sbx) = found(state, &net_id, network, &sandbox_id, sandbox)?;
                let endpoint = state.attachment(&net.id, &sbx.id).cloned().ok_or_else(|| {
                    EngineError::not_found(format!(
                        "sandbox {} is not connected to network {}",
                        sbx.name, net.name
                    ))
                })?;
                if self.capabilities(&net)?.exclusive {
                    return Err(EngineError::conflict(format!(
                        "a sandbox cannot be disconnected from the {} network; remove the sandbox instead",
                        net.name
                    )));
                }
                let mut txn = Txn::new(format!("disconnect {} from {}", sbx.name, net.name));
                txn.persist = self.endpoint_removal(&net, &endpoint);
                txn.effects = self.plan_leave(state, &net, Some(&sbx), &endpoint);
                let addresses = state.sandbox_addresses(&sbx.id);
                if sbx.mode.has_own_namespace() {
                    txn.effects.push(Effect::WriteHosts {
                        sandbox: sbx,
                        addresses,
                    });
                }
                txn.unplan = Box::new(move |state: &mut State| {
                    state.retake_endpoint(&net, &endpoint);
                    state.insert_endpoint(endpoint);
                });
                Ok((txn, ()))
            })
            .await?;
        done.into_result("disconnected")?;
        Ok(sandbox_id)
    }

    /// Takes the endpoint out of the state (its addresses and ports given back) and returns
    /// the teardown that unplugs it: names, published ports, interface.
    pub(super) fn plan_leave(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        sandbox: Option<&SandboxRecord>,
        endpoint: &EndpointRecord,
    ) -> Vec<Effect> {
        state.remove_endpoint(&endpoint.id);
        state.release_endpoint(net, endpoint);
        let with_gateway = self.capabilities(net).is_ok_and(|c| c.gateway);
        let mut effects = Vec::new();
        if net.leases_addresses() {
            effects.push(Effect::ReleaseLeases(endpoint.id.clone()));
        }
        if sandbox.is_some() {
            effects.push(Effect::RemoveNames(endpoint.id.clone()));
        }
        let published = forwards(endpoint);
        if !published.is_empty() {
            effects.push(Effect::Unpublish(published));
        }
        if !endpoint.chained {
            effects.push(Effect::Leave {
                driver: net.driver.clone(),
                net: network_spec(net),
                ep: endpoint_spec(net, endpoint, with_gateway),
            });
        }
        effects
    }
}

/// On a DHCP network the server picks the addresses, and the endpoints are on the LAN
/// itself: there is nothing to publish a port through.
fn check_leasable(net: &NetworkRecord, wanted: &EndpointRequest) -> Result<(), EngineError> {
    if wanted.ipv4.is_some() || wanted.ipv6.is_some() {
        return Err(EngineError::invalid(format!(
            "addresses on network {} come from its DHCP server: --ip and --ip6 cannot be given",
            net.name
        )));
    }
    if !wanted.ports.is_empty() {
        return Err(EngineError::invalid(format!(
            "ports cannot be published on network {}: its endpoints are on the LAN itself, \
             reachable at their leased addresses",
            net.name
        )));
    }
    Ok(())
}

/// A runtime reserves its containers' host ports itself; netctl holds everyone else's.
fn reservation_of(sandbox: &SandboxRecord) -> Reservation {
    match sandbox.mode {
        SandboxMode::Runtime => Reservation::Probed,
        _ => Reservation::Held,
    }
}

/// After another node took the address this node picked (at the same moment): marks it
/// taken here, so the next plan picks another. The winner's endpoint, once mirrored,
/// holds it for good.
pub(super) fn lost_address(state: &mut State, key: &netctl_store::Key) -> Result<(), EngineError> {
    if key.kind != "address" {
        return Ok(());
    }
    let Some((net_id, ip)) = key.id.split_once('/') else {
        return Ok(());
    };
    let (Some(net), Ok(ip)) = (state.network_by_id(net_id).cloned(), ip.parse::<IpAddr>()) else {
        return Ok(());
    };
    if let Some(subnet) = net.subnets.iter().find(|s| s.subnet.contains(ip)) {
        let _ = state
            .ipam
            .space_mut(net.address_scope.into())
            .allocate(&subnet.subnet, Some(ip));
    }
    Ok(())
}

/// The network and sandbox by the ids looked up before their locks were taken (named as
/// the user named them, should they be gone since).
fn found(
    state: &State,
    net_id: &str,
    network: &str,
    sandbox_id: &str,
    sandbox: &str,
) -> Result<(NetworkRecord, SandboxRecord), EngineError> {
    let net = state
        .network_by_id(net_id)
        .cloned()
        .ok_or_else(|| EngineError::not_found(format!("network {network} not found")))?;
    let sbx = state
        .sandbox_by_id(sandbox_id)
        .cloned()
        .ok_or_else(|| EngineError::not_found(format!("sandbox {sandbox} not found")))?;
    Ok((net, sbx))
}

#[cfg(test)]
mod tests {
    use netctl_plugin_api::ports::parse_publish;

    use super::*;
    use crate::controller::test_records::{endpoint, network};
    use crate::controller::ErrorKind;
    use crate::model::SubnetOwner;

    async fn refusal(net: &NetworkRecord, config: EndpointConfig) -> (ErrorKind, String) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let controller = Controller::for_unit_tests(dir.path());
        let caps = controller.capabilities(net).expect("the driver");
        let mut state = State::new(netctl_ipam::Ipam::new(Vec::new(), Vec::new()));
        let mut taken = endpoint("e0", &net.id, "s0");
        taken.mac = Some([2, 0, 0, 0, 0, 9]);
        state.insert_endpoint(taken);
        let wanted = EndpointRequest::parse(&config).expect("parsed");
        let e = state
            .check_request(net, &caps, &wanted)
            .expect_err("refused");
        (e.kind(), e.to_string())
    }

    #[tokio::test]
    async fn an_internal_network_publishes_no_ports() {
        let mut net = network("n1", "web", "bridge", SubnetOwner::Network);
        net.internal = true;
        let config = EndpointConfig {
            port_bindings: parse_publish("8080:80").unwrap(),
            ..Default::default()
        };
        let (kind, said) = refusal(&net, config).await;
        assert_eq!(kind, ErrorKind::Invalid);
        assert!(said.contains("it is internal"), "{said}");
    }

    #[tokio::test]
    async fn a_mac_in_use_on_the_network_is_a_conflict() {
        let net = network("n1", "web", "bridge", SubnetOwner::Network);
        let config = EndpointConfig {
            mac_address: Some("02:00:00:00:00:09".into()),
            ..Default::default()
        };
        let (kind, said) = refusal(&net, config).await;
        assert_eq!(kind, ErrorKind::Conflict);
        assert!(said.contains("already in use"), "{said}");
    }

    #[tokio::test]
    async fn the_host_network_takes_no_addresses() {
        let net = network("h", "host", "host", SubnetOwner::Network);
        let config = EndpointConfig {
            mac_address: Some("02:00:00:00:00:01".into()),
            ..Default::default()
        };
        let (kind, said) = refusal(&net, config).await;
        assert_eq!(kind, ErrorKind::Invalid);
        assert!(said.contains("addresses cannot be given"), "{said}");
    }
}
