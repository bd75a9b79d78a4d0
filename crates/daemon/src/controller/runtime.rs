//! Runtimes that bring their own network namespace (the CNI plugin): a container is a
//! sandbox named by its container id whose namespace is the runtime's; each interface the
//! runtime asks for is an endpoint named as the runtime names it. netctl opens the
//! namespace, never makes or removes it, and collects what the runtime forgot once the
//! namespace is gone.

use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use netctl_kernel::netns::NetnsId;
use netctl_plugin_api::runtime::{
    AttachRequest, AttachedAddress, AttachedRoute, Attachment, AttachmentRef, CheckReport,
    GcReport, ReclaimedEndpoint, RuntimeGcRequest,
};

use super::effects::Effect;
use super::endpoints::{lost_address, EndpointRequest};
use super::namespaces::NamespaceSearch;
use super::specs::{endpoint_spec, network_spec};
use super::Controller;
use crate::controller::error::{EngineError, ErrorKind};
use crate::ids::{new_id, now_rfc3339, valid_name};
use crate::model::{
    format_mac, DnsConfig, EndpointRecord, NetworkRecord, SandboxMode, SandboxRecord, SandboxRole,
};

/// A concurrent ADD made the container's sandbox first, or a concurrent DEL removed it: the
/// attach looks again.
const RACED: &str = "the container's sandbox changed during the attach";

impl Controller {
    /// Attaches one interface of a runtime's container (CNI ADD). Asked again for an
    /// interface it has, it answers with that interface.
    pub async fn runtime_attach(&self, req: AttachRequest) -> Result<Attachment, EngineError> {
        if !valid_name(&req.container_id) {
            return Err(EngineError::invalid(format!(
                "invalid container id {:?}",
                req.container_id
            )));
        }
        let netns = reachable_netns(&req.netns, req.caller_pid)?;
        let netns_id = netctl_kernel::netns::id_at(&netns).ok_or_else(|| {
            EngineError::not_found(format!("no network namespace at {}", req.netns))
        })?;
        let mut wanted = EndpointRequest::parse(&req.endpoint_config)?;
        wanted.ifname = Some(req.ifname.clone());
        wanted.chained = req
            .chained_addresses
            .iter()
            .map(|a| {
                a.parse::<IpNetwork>()
                    .map_err(|_| EngineError::invalid(format!("invalid chained address {a:?}")))
            })
            .collect::<Result<_, _>>()?;
        let net_id = self.runtime_network(&req).await?;
        self.ensure_gateway_bridge_for(&net_id).await?;
        // Three rounds at most: one may clear a stale sandbox, one may lose the race to make
        // the container's sandbox to a concurrent ADD (of its other interface).
        for _ in 0..3 {
            let existing = self
                .state
                .lock()
                .await
                .sandbox_named(&req.container_id)
                .cloned();
            let result = match existing {
                Some(s) if s.mode != SandboxMode::Runtime => {
                    return Err(EngineError::conflict(format!(
                        "a sandbox named {} exists and is not a runtime's container",
                        s.name
                    )))
                }
                Some(s) if !s.netns_id().is_some_and(|known| known.matches(&netns_id)) => {
                    tracing::info!(container = %s.name, "the container has a new namespace: removing what its old one had");
                    if let Err(e) = self.remove_sandbox(&s.id).await {
                        tracing::warn!(container = %s.name, error = %e, "removing the old namespace's endpoints");
                    }
                    continue;
                }
                Some(s) => self.attach_to(&s, &net_id, &req, wanted.clone()).await,
                None => {
                    let record = runtime_sandbox(&req, netns_id);
                    self.create_runtime_sandbox(record, &netns, &net_id, wanted.clone())
                        .await
                }
            };
            match result {
                Err(e) if e.to_string() == RACED => continue,
                other => return other,
            }
        }
        Err(EngineError::unavailable(format!(
            "container {} changed while it was being attached; try again",
            req.container_id
        )))
    }

    /// The network to attach to, made from the request's settings when it does not exist
    /// (once, whoever asks at the same moment).
    async fn runtime_network(&self, req: &AttachRequest) -> Result<String, EngineError> {
        if let Ok(net) = self.state.lock().await.network(&req.network) {
            return Ok(net.id.clone());
        }
        let Some(create) = req.create.clone() else {
            return Err(EngineError::not_found(format!(
                "network {} not found: create it (netctl network create {}) or give its \
                 settings (\"subnet\", \"driver\") in the CNI config",
                req.network, req.network
            )));
        };
        match self.create_network(create).await {
            Ok(net) => Ok(net.id),
            Err(e) if e.kind() == ErrorKind::Conflict => {
                Ok(self.state.lock().await.network(&req.network)?.id.clone())
            }
            Err(e) => Err(e),
        }
    }

    async fn attach_to(
        &self,
        sandbox: &SandboxRecord,
        net_id: &str,
        req: &AttachRequest,
        wanted: EndpointRequest,
    ) -> Result<Attachment, EngineError> {
        let wanted = {
            let state = self.state.lock().await;
            if let Some(ep) = state.attachment(net_id, &sandbox.id) {
                if ep.ifname != req.ifname {
                    return Err(EngineError::conflict(format!(
                        "container {} is attached to network {} as {} already",
                        sandbox.name, req.network, ep.ifname
                    )));
                }
                return self.attachment_view(&state, &ep.id);
            }
            let published: Vec<_> = state
                .endpoints_of_sandbox(&sandbox.id)
                .flat_map(|e| e.ports.iter().cloned())
                .collect();
            wanted.without_published(&published)
        };
        let held = self.locks.hold(&[net_id], &[], &[&sandbox.id]).await;
        let (endpoint_id, _) = self
            .transact_claiming(
                |state| {
                    let net = state
                        .network_by_id(net_id)
                        .cloned()
                        .ok_or_else(|| EngineError::not_found("the network was removed"))?;
                    let sandbox = state
                        .sandbox_by_id(&sandbox.id)
                        .cloned()
                        .ok_or_else(|| EngineError::conflict(RACED))?;
                    let txn = self.plan_connect(state, &net, &sandbox, wanted.clone())?;
                    let id = state
                        .attachment(&net.id, &sandbox.id)
                        .map(|e| e.id.clone())
                        .unwrap_or_default();
                    Ok((txn, id))
                },
                lost_address,
            )
            .await?;
        let _held = self
            .lease_or_undo(
                self.lease_new_endpoint(&endpoint_id),
                held,
                self.disconnect_one(net_id, &sandbox.id),
            )
            .await?;
        self.attachment_view(&*self.state.lock().await, &endpoint_id)
    }

    /// Records the container's sandbox with its first endpoint, in one transaction. The
    /// namespace is opened at `reachable` (the runtime's path, or the same seen through the
    /// caller's root).
    async fn create_runtime_sandbox(
        &self,
        record: SandboxRecord,
        reachable: &Path,
        net_id: &str,
        wanted: EndpointRequest,
    ) -> Result<Attachment, EngineError> {
        let held = self.locks.hold(&[net_id], &[], &[&record.id]).await;
        let (endpoint_id, _) = self
            .transact_claiming(
                |state| {
                    if state.sandbox_named(&record.name).is_some() {
                        return Err(EngineError::conflict(RACED));
                    }
                    let net = state
                        .network_by_id(net_id)
                        .cloned()
                        .ok_or_else(|| EngineError::not_found("the network was removed"))?;
                    // Planned before the sandbox is recorded: should it fail, nothing changed.
                    let connect = self.plan_connect(state, &net, &record, wanted.clone())?;
                    let id = state
                        .attachment(&net.id, &record.id)
                        .map(|e| e.id.clone())
                        .unwrap_or_default();
                    let mut txn = Self::sandbox_txn(state, &record);
                    for effect in &mut txn.effects {
                        if let Effect::CreateNamespace { path, .. } = effect {
                            *path = reachable.to_path_buf();
                        }
                    }
                    Ok((txn.then(connect), id))
                },
                lost_address,
            )
            .await?;
        let _held = self
            .lease_or_undo(
                self.lease_new_endpoint(&endpoint_id),
                held,
                self.remove_sandbox(&record.id),
            )
            .await?;
        self.attachment_view(&*self.state.lock().await, &endpoint_id)
    }

    /// What the runtime is told: the interface, its addresses with their gateways, the
    /// default routes and the sandbox's DNS.
    fn attachment_view(
        &self,
        state: &super::state::State,
        endpoint_id: &str,
    ) -> Result<Attachment, EngineError> {
        let ep = state
            .endpoint(endpoint_id)
            .ok_or_else(|| EngineError::internal("the endpoint is gone"))?;
        let net = state
            .network_by_id(&ep.network_id)
            .ok_or_else(|| EngineError::internal("the network is gone"))?;
        let sandbox = ep
            .sandbox_id
            .as_deref()
            .and_then(|id| state.sandbox_by_id(id))
            .ok_or_else(|| EngineError::internal("the sandbox is gone"))?;
        let routed = !net.internal && self.capabilities(net)?.gateway && !ep.chained;
        let mut view = Attachment {
            endpoint_id: ep.id.clone(),
            ifname: ep.ifname.clone(),
            mac_address: ep.mac.as_ref().map(format_mac).unwrap_or_default(),
            mtu: ep.leased_mtu().unwrap_or(net.mtu).min(net.mtu),
            netns: sandbox.netns.display().to_string(),
            ..Attachment::default()
        };
        for address in ep.addresses() {
            let gateway = gateway_of(net, address)
                .or_else(|| ep.leased_router(address))
                .filter(|_| routed);
            view.addresses.push(AttachedAddress {
                address: address.to_string(),
                gateway: gateway.map(|g| g.to_string()),
            });
            if let Some(gateway) = gateway {
                let default = if address.is_ipv4() {
                    "0.0.0.0/0"
                } else {
                    "::/0"
                };
                view.routes.push(AttachedRoute {
                    destination: default.into(),
                    gateway: Some(gateway.to_string()),
                });
            }
        }
        if let Some(resolution) = self.dns.resolution(&sandbox.id) {
            view.nameservers = vec![netctl_dns::SERVER_ADDRESS.to_string()];
            view.search = resolution.search.clone();
            view.dns_options = resolution.options.clone();
        }
        Ok(view)
    }

    /// Detaches one interface of a runtime's container (CNI DEL): its addresses and ports
    /// given back, its interface removed, and the sandbox with its last interface. One that
    /// is not there (any more) is no error.
    pub async fn runtime_detach(&self, req: AttachmentRef) -> Result<(), EngineError> {
        let (sandbox, last) = {
            let state = self.state.lock().await;
            let Some(sandbox) = state
                .sandbox_named(&req.container_id)
                .filter(|s| s.mode == SandboxMode::Runtime)
                .cloned()
            else {
                return Ok(());
            };
            let mut endpoints = state.endpoints_of_sandbox(&sandbox.id);
            let ours = |e: &&EndpointRecord| {
                e.ifname == req.ifname
                    && state
                        .network_by_id(&e.network_id)
                        .is_none_or(|n| n.name == req.network || n.id == req.network)
            };
            if !state.endpoints_of_sandbox(&sandbox.id).any(|e| ours(&e)) {
                return Ok(());
            }
            let last = endpoints.all(|e| ours(&e));
            (sandbox, last)
        };
        if last {
            return self.remove_sandbox(&sandbox.id).await;
        }
        match self.disconnect(&req.network, &sandbox.id).await {
            Err(e) if e.is_not_found() => Ok(()),
            other => other,
        }
    }

    /// Removes every runtime attachment of `network` that the runtime does not list as
    /// valid (CNI GC).
    pub async fn runtime_gc(&self, req: RuntimeGcRequest) -> Result<GcReport, EngineError> {
        let stale: Vec<(SandboxRecord, EndpointRecord, String)> = {
            let state = self.state.lock().await;
            let net = state.network(&req.network)?.clone();
            state
                .sandboxes()
                .filter(|s| s.mode == SandboxMode::Runtime)
                .filter_map(|s| {
                    let ep = state.attachment(&net.id, &s.id)?;
                    let valid = req
                        .valid
                        .iter()
                        .any(|v| v.container_id == s.name && v.ifname == ep.ifname);
                    (!valid).then(|| (s.clone(), ep.clone(), net.name.clone()))
                })
                .collect()
        };
        let mut report = GcReport::default();
        for (sandbox, ep, network) in stale {
            report.endpoints.push(reclaimed(
                &sandbox,
                &ep,
                &network,
                "not among the runtime's valid attachments",
            ));
            let detached = self
                .runtime_detach(AttachmentRef {
                    container_id: sandbox.name.clone(),
                    ifname: ep.ifname.clone(),
                    network: network.clone(),
                    ..AttachmentRef::default()
                })
                .await;
            if let Err(e) = detached {
                report.errors.push(format!("{}: {}", sandbox.name, e));
            }
        }
        Ok(report)
    }

    /// Removes runtime containers whose namespace is gone (their runtime never said DEL):
    /// part of `netctl gc`, and the daemon at start. Keeps going past failures and reports
    /// them all.
    pub async fn collect_gone(&self, dry_run: bool) -> GcReport {
        let sandboxes: Vec<SandboxRecord> = self
            .state
            .lock()
            .await
            .sandboxes()
            .filter(|s| s.mode == SandboxMode::Runtime)
            .cloned()
            .collect();
        let mut report = GcReport {
            dry_run,
            ..GcReport::default()
        };
        let mut namespaces = NamespaceSearch::default();
        for sandbox in sandboxes.iter().filter(|s| namespaces.gone(s)) {
            {
                let state = self.state.lock().await;
                for ep in state.endpoints_of_sandbox(&sandbox.id) {
                    let network = state
                        .network_by_id(&ep.network_id)
                        .map_or(ep.network_id.clone(), |n| n.name.clone());
                    report.endpoints.push(reclaimed(
                        sandbox,
                        ep,
                        &network,
                        "the container's network namespace is gone",
                    ));
                }
            }
            if dry_run {
                continue;
            }
            tracing::info!(container = %sandbox.name, "reclaiming a container whose namespace is gone");
            if let Err(e) = self.remove_sandbox(&sandbox.id).await {
                report.errors.push(format!("{}: {}", sandbox.name, e));
            }
        }
        report
    }

    /// `netctl gc`: runtime containers whose namespace is gone, and Docker's endpoints
    /// whose container's namespace went away without a Leave (at start only the former:
    /// dockerd, when it comes back, deletes the endpoints of the sandboxes it lost); then
    /// netctl's own sandboxes that differ from their records, repaired.
    pub async fn gc(&self, dry_run: bool) -> GcReport {
        let mut report = self.collect_gone(dry_run).await;
        self.collect_vanished_docker_endpoints(&mut report).await;
        self.repair_sandboxes(&mut report).await;
        report
    }

    /// Docker's endpoints whose container's namespace went away without dockerd's Leave
    /// (dockerd killed with its containers): deleted as DeleteEndpoint would; their pool
    /// addresses are dockerd's to release.
    async fn collect_vanished_docker_endpoints(&self, report: &mut GcReport) {
        let joined: Vec<(NetworkRecord, EndpointRecord)> = {
            let state = self.state.lock().await;
            state
                .docker
                .endpoints
                .values()
                .filter(|d| d.joined)
                .filter_map(|d| {
                    let ep = state.endpoint(&d.endpoint_id)?;
                    Some((state.network_by_id(&ep.network_id)?.clone(), ep.clone()))
                })
                .collect()
        };
        for (net, ep) in joined {
            let Some(driver) = self.drivers.get(&net.driver) else {
                continue;
            };
            let spec = endpoint_spec(&net, &ep, false);
            if !driver.vanished(&network_spec(&net), &spec).await {
                continue;
            }
            report.endpoints.push(ReclaimedEndpoint {
                owner: format!("docker endpoint {}", &ep.id[..12.min(ep.id.len())]),
                ..reclaimed_endpoint(&ep, &net.name, "its container's namespace is gone")
            });
            if report.dry_run {
                continue;
            }
            if let Err(e) = self.docker_delete_endpoint(&ep.id).await {
                report
                    .errors
                    .push(format!("Docker endpoint {}: {}", ep.id, e));
            }
        }
    }

    /// Compares the kernel with the record of one attachment (CNI CHECK).
    pub async fn runtime_check(&self, req: AttachmentRef) -> Result<CheckReport, EngineError> {
        let (sandbox, ep, net) = {
            let state = self.state.lock().await;
            let unknown = || {
                EngineError::not_found(format!(
                    "container {} has no interface {} on network {}",
                    req.container_id, req.ifname, req.network
                ))
            };
            let sandbox = state
                .sandbox_named(&req.container_id)
                .filter(|s| s.mode == SandboxMode::Runtime)
                .cloned()
                .ok_or_else(unknown)?;
            let net = state.network(&req.network).map_err(|_| unknown())?.clone();
            let ep = state
                .attachment(&net.id, &sandbox.id)
                .filter(|e| e.ifname == req.ifname)
                .cloned()
                .ok_or_else(unknown)?;
            (sandbox, ep, net)
        };
        let mut differences = Vec::new();
        if let Some(given) = &req.netns {
            let path = reachable_netns(given, req.caller_pid)?;
            if !sandbox.netns_id().is_some_and(|id| id.is_at(&path)) {
                differences.push(format!(
                    "{given} is not the namespace the container was attached in"
                ));
            }
        }
        let Some(netns) = self.namespaces.get(&sandbox.id) else {
            differences.push("the daemon does not hold the container's namespace".into());
            return Ok(CheckReport { differences });
        };
        if !ep.chained {
            let routed = !net.internal && self.capabilities(&net)?.gateway;
            differences.extend(interface_differences(&netns, &net, &ep, routed).await);
        }
        differences.extend(self.port_differences(&ep).await);
        Ok(CheckReport { differences })
    }
}

/// How a collected endpoint is reported.
fn reclaimed(
    sandbox: &SandboxRecord,
    ep: &EndpointRecord,
    network: &str,
    reason: &str,
) -> ReclaimedEndpoint {
    ReclaimedEndpoint {
        owner: sandbox.name.clone(),
        ..reclaimed_endpoint(ep, network, reason)
    }
}

fn reclaimed_endpoint(ep: &EndpointRecord, network: &str, reason: &str) -> ReclaimedEndpoint {
    ReclaimedEndpoint {
        endpoint_id: ep.id.clone(),
        network: network.to_string(),
        owner: String::new(),
        addresses: ep.addresses().map(|a| a.ip().to_string()).collect(),
        ports: ep
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.host_port, p.transport.name()))
            .collect(),
        reason: reason.to_string(),
    }
}

/// What the container's side of the interface lacks: the link, its state and MAC, its
/// addresses, its default routes.
pub(super) async fn interface_differences(
    netns: &netctl_kernel::Netns,
    net: &NetworkRecord,
    ep: &EndpointRecord,
    routed: bool,
) -> Vec<String> {
    let netlink = netns.netlink();
    let link = match netlink.link_by_name(&ep.ifname).await {
        Ok(Some(link)) => link,
        Ok(None) => return vec![format!("interface {} is missing", ep.ifname)],
        Err(e) => return vec![format!("cannot read interface {}: {e}", ep.ifname)],
    };
    let mut differences = Vec::new();
    if !link.up {
        differences.push(format!("interface {} is down", ep.ifname));
    }
    if let (Some(want), Some(have)) = (ep.mac, link.mac.as_deref()) {
        if have != want.as_slice() {
            differences.push(format!(
                "interface {} has MAC {} instead of {}",
                ep.ifname,
                have.iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<Vec<_>>()
                    .join(":"),
                format_mac(&want)
            ));
        }
    }
    let addresses = netlink.addresses_of(link.index).await.unwrap_or_default();
    for address in ep.addresses().filter(|a| !addresses.contains(a)) {
        differences.push(format!("address {address} is missing from {}", ep.ifname));
    }
    if routed {
        for address in ep.addresses() {
            if gateway_of(net, address).is_none() {
                continue;
            }
            let v6 = address.is_ipv6();
            if !netlink.has_default_route(v6).await.unwrap_or(false) {
                let default = if v6 { "::/0" } else { "0.0.0.0/0" };
                differences.push(format!("the default route {default} is missing"));
            }
        }
    }
    differences
}

fn gateway_of(net: &NetworkRecord, address: IpNetwork) -> Option<std::net::IpAddr> {
    net.subnets
        .iter()
        .find(|s| s.subnet.contains(address.ip()))
        .map(|s| s.gateway)
}

/// The record of a runtime's container: named by its container id, in the runtime's
/// namespace.
fn runtime_sandbox(req: &AttachRequest, netns: NetnsId) -> SandboxRecord {
    let hostname = req
        .hostname
        .clone()
        .filter(|h| h.len() <= 64 && valid_name(h))
        .unwrap_or_else(|| req.container_id.chars().take(64).collect());
    SandboxRecord {
        id: new_id(),
        name: req.container_id.clone(),
        hostname,
        created: now_rfc3339(),
        netns: PathBuf::from(&req.netns),
        mode: SandboxMode::Runtime,
        dns: DnsConfig::default(),
        role: SandboxRole::User,
        netns_inode: Some(netns.inode),
        netns_cookie: netns.cookie,
        extra_hosts: Vec::new(),
    }
}

/// The runtime's namespace path as this daemon can open it: as given, or through the
/// caller's root when the daemon's mount namespace does not show it.
fn reachable_netns(given: &str, caller_pid: Option<u32>) -> Result<PathBuf, EngineError> {
    let path = PathBuf::from(given);
    if !path.is_absolute() {
        return Err(EngineError::invalid(format!(
            "the network namespace path {given:?} is not absolute"
        )));
    }
    if netctl_kernel::netns::exists(&path) {
        return Ok(path);
    }
    if let Some(pid) = caller_pid {
        let relative = path.strip_prefix("/").unwrap_or(&path);
        let via_caller = PathBuf::from(format!("/proc/{pid}/root")).join(relative);
        if netctl_kernel::netns::exists(&via_caller) {
            return Ok(via_caller);
        }
    }
    Err(EngineError::not_found(format!(
        "no network namespace at {given}"
    )))
}
