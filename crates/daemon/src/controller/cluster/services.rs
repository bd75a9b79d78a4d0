//! `netctl service …`: a virtual IP on a global network balanced over replicas on any node.
//!
//! A service lives in the cluster store with its name and virtual IP claimed there, so two
//! managers never make the same one. Every node mirrors it and keeps two things in step with
//! it, recomputed from the state after every change ([`Controller::refresh_services`]): the
//! names (`NAME` → the virtual IP, `tasks.NAME` → the replicas) in the DNS directory, and in
//! each of its own sandboxes on the network a table that sends connections to the virtual
//! IP to a replica ([`service_vip`]). Replicas on a node that is down are left out.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use netctl_drivers::firewall::service_vip::{self, VirtualIp};
use netctl_kernel::conntrack::UdpFlows;
use netctl_plugin_api::cluster::{
    ServiceCreateRequest, ServiceInspect, ServiceReplica, ServiceUpdateRequest,
};
use netctl_plugin_api::ApiError;
use netctl_store::{Batch, Key, Scope};

use super::super::endpoints::lost_address;
use super::super::state::State;
use super::super::txn::Txn;
use super::super::Controller;
use super::nodes::find_node;
use crate::cluster::claims::address_key;
use crate::ids::{new_id, now_rfc3339, valid_name};
use crate::model::{EndpointRecord, NetworkRecord, SandboxMode, ServiceRecord};
use crate::persist::BatchExt;

/// Sandbox tables set at once by a refresh.
const TABLES_AT_ONCE: usize = 4;

/// A service's name, unique in the cluster.
fn service_name_key(name: &str) -> Key {
    Key::new(Scope::Global, "service.name", name)
}

/// What this node last applied, to change only what differs.
#[derive(Default)]
pub(in crate::controller) struct AppliedServices {
    names: HashMap<(String, String), netctl_dns::ServiceNames>,
    /// By sandbox id: its namespace and the virtual IPs in its table.
    tables: HashMap<String, (PathBuf, Vec<VirtualIp>)>,
    /// Since the daemon started: sandboxes may hold tables of services that went meanwhile.
    started: bool,
}

/// What the services ask of this node.
struct WantedServices {
    names: HashMap<(String, String), netctl_dns::ServiceNames>,
    tables: HashMap<String, (PathBuf, Vec<VirtualIp>)>,
}

impl State {
    /// A service from the cluster: its virtual IP is taken in the network's addresses.
    pub(in crate::controller) fn put_service(&mut self, service: ServiceRecord) {
        if let Some(known) = self.global.services.get(&service.id).cloned() {
            if known == service {
                return;
            }
            self.release_vip(&known);
        }
        if let Some(net) = self.network_by_id(&service.network_id).cloned() {
            self.retake_global_address(&net, service.vip);
        }
        self.global.services.insert(service.id.clone(), service);
    }

    pub(in crate::controller) fn delete_service(&mut self, id: &str) {
        if let Some(service) = self.global.services.remove(id) {
            self.release_vip(&service);
        }
    }

    fn release_vip(&mut self, service: &ServiceRecord) {
        if let Some(net) = self.network_by_id(&service.network_id).cloned() {
            self.release_address(&net, service.vip);
        }
    }

    pub(in crate::controller) fn service(&self, key: &str) -> Result<&ServiceRecord, ApiError> {
        self.global
            .services
            .get(key)
            .or_else(|| self.global.services.values().find(|s| s.name == key))
            .ok_or_else(|| ApiError::not_found(format!("service {key} not found")))
    }

    /// The services whose virtual IP is on the network.
    pub(in crate::controller) fn services_on(&self, network_id: &str) -> Vec<&ServiceRecord> {
        self.global
            .services
            .values()
            .filter(|s| s.network_id == network_id)
            .collect()
    }
}

/// The sandbox a replica names: `SANDBOX` (unique in the cluster) or `NODE/SANDBOX`.
fn resolve_replica<'a>(
    state: &'a State,
    net: &NetworkRecord,
    replica: &str,
) -> Result<&'a EndpointRecord, ApiError> {
    let (node, sandbox) = match replica.split_once('/') {
        Some((node, sandbox)) => (Some(find_node(state, node)?.id.clone()), sandbox),
        None => (None, replica),
    };
    let on_network: Vec<&EndpointRecord> = state
        .endpoints_of_network(&net.id)
        .filter(|e| e.names.first().map(String::as_str) == Some(sandbox))
        .filter(|e| node.as_ref().is_none_or(|n| &e.node == n))
        .collect();
    match on_network.as_slice() {
        [one] => Ok(one),
        [] if state.sandbox_named(sandbox).is_some() => Err(ApiError::invalid(format!(
            "replica {replica}: sandbox {sandbox} is not on network {}",
            net.name
        ))),
        [] => Err(ApiError::not_found(format!(
            "replica {replica}: no sandbox {sandbox} on network {}",
            net.name
        ))),
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|e| format!("{}/{sandbox}", node_label(state, &e.node)))
                .collect();
            Err(ApiError::conflict(format!(
                "replica {replica}: more than one sandbox is called {sandbox}; name one as \
                 NODE/SANDBOX ({})",
                names.join(", ")
            )))
        }
    }
}

fn node_label(state: &State, node: &str) -> String {
    state
        .global
        .nodes
        .get(node)
        .map_or_else(|| node.to_string(), |n| n.hostname.clone())
}

fn resolve_replicas(
    state: &State,
    net: &NetworkRecord,
    replicas: &[String],
) -> Result<Vec<String>, ApiError> {
    let mut ids: Vec<String> = Vec::new();
    for replica in replicas {
        let id = resolve_replica(state, net, replica)?.id.clone();
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    Ok(ids)
}

impl Controller {
    pub async fn service_create(
        &self,
        req: ServiceCreateRequest,
    ) -> Result<ServiceInspect, ApiError> {
        if !valid_name(&req.name) {
            return Err(ApiError::invalid(format!(
                "invalid service name {:?}: names start with a letter or digit and contain only [a-zA-Z0-9_.-]",
                req.name
            )));
        }
        if !req.publish.is_empty() {
            return Err(ApiError::invalid(
                "--publish: publishing a service through the ingress routing mesh is not built \
                 yet; its virtual IP and names work on the service's network",
            ));
        }
        self.require_manager(&format!("service create {}", req.name))
            .await?;
        self.cluster.store()?;
        let id = new_id();
        let (service, _) = self
            .transact_claiming(
                |state| self.plan_service_create(state, &id, &req),
                lost_address,
            )
            .await?;
        tracing::info!(service = %service.name, vip = %service.vip, "service created");
        self.refresh_services().await;
        self.service_inspect(&service.id).await
    }

    fn plan_service_create(
        &self,
        state: &mut State,
        id: &str,
        req: &ServiceCreateRequest,
    ) -> Result<(Txn, ServiceRecord), ApiError> {
        if state.global.services.values().any(|s| s.name == req.name) {
            return Err(ApiError::conflict(format!(
                "service {} already exists",
                req.name
            )));
        }
        let net = state.network(&req.network)?.clone();
        if !self.is_global(&net) {
            return Err(ApiError::invalid(format!(
                "network {} is local to this node: a service's network is a global one \
                 (--driver overlay)",
                net.name
            )));
        }
        let replicas = resolve_replicas(state, &net, &req.replicas)?;
        let vip = state
            .allocate_address(&net, false, None)?
            .ok_or_else(|| ApiError::invalid(format!("network {} has no IPv4 subnet", net.name)))?
            .ip();
        let service = ServiceRecord {
            id: id.to_string(),
            name: req.name.clone(),
            network_id: net.id.clone(),
            vip,
            replicas,
            created: now_rfc3339(),
        };
        state
            .global
            .services
            .insert(service.id.clone(), service.clone());
        let mut txn = Txn::new(format!("create service {}", service.name));
        txn.persist = Batch::new()
            .create(service_name_key(&service.name), id.as_bytes().to_vec())
            .create(address_key(&net.id, vip), id.as_bytes().to_vec())
            .put_global(&service);
        let undo = service.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.global.services.remove(&undo.id);
            state.release_vip(&undo);
        });
        Ok((txn, service))
    }

    /// `service update NAME --replicas …`: the whole replica set, replaced in place.
    pub async fn service_update(
        &self,
        key: &str,
        req: ServiceUpdateRequest,
    ) -> Result<ServiceInspect, ApiError> {
        self.require_manager(&format!("service update {key}"))
            .await?;
        self.cluster.store()?;
        let (id, _) = self
            .transact(|state| {
                let known = state.service(key)?.clone();
                let net = state
                    .network_by_id(&known.network_id)
                    .cloned()
                    .ok_or_else(|| ApiError::internal("the service's network is gone"))?;
                let mut updated = known.clone();
                updated.replicas = resolve_replicas(state, &net, &req.replicas)?;
                state
                    .global
                    .services
                    .insert(updated.id.clone(), updated.clone());
                let mut txn = Txn::new(format!("update service {}", updated.name));
                txn.persist = Batch::new().put_global(&updated);
                txn.unplan = Box::new(move |state: &mut State| {
                    state.global.services.insert(known.id.clone(), known);
                });
                Ok((txn, updated.id))
            })
            .await?;
        self.refresh_services().await;
        self.service_inspect(&id).await
    }

    pub async fn service_remove(&self, key: &str) -> Result<(), ApiError> {
        self.require_manager(&format!("service rm {key}")).await?;
        self.cluster.store()?;
        let (name, _) = self
            .transact(|state| {
                let service = state.service(key)?.clone();
                state.delete_service(&service.id);
                let mut txn = Txn::new(format!("remove service {}", service.name));
                txn.persist = Batch::new()
                    .delete_global::<ServiceRecord>(&service.id)
                    .delete(service_name_key(&service.name))
                    .delete(address_key(&service.network_id, service.vip));
                let name = service.name.clone();
                txn.unplan = Box::new(move |state: &mut State| state.put_service(service));
                Ok((txn, name))
            })
            .await?;
        tracing::info!(service = %name, "service removed");
        self.refresh_services().await;
        Ok(())
    }

    pub async fn service_list(&self) -> Result<Vec<ServiceInspect>, ApiError> {
        let state = self.state.lock().await;
        let mut services: Vec<ServiceInspect> = state
            .global
            .services
            .values()
            .map(|s| self.service_view(&state, s))
            .collect();
        services.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(services)
    }

    pub async fn service_inspect(&self, key: &str) -> Result<ServiceInspect, ApiError> {
        let state = self.state.lock().await;
        Ok(self.service_view(&state, state.service(key)?))
    }

    fn service_view(&self, state: &State, service: &ServiceRecord) -> ServiceInspect {
        let replicas = service
            .replicas
            .iter()
            .map(|id| match state.endpoint(id) {
                Some(ep) => ServiceReplica {
                    sandbox: ep.names.first().cloned().unwrap_or_default(),
                    node: node_label(state, &ep.node),
                    endpoint_id: id.clone(),
                    address: ep.ipv4.map(|a| a.ip().to_string()).unwrap_or_default(),
                    ready: self.replica_ready(state, ep),
                },
                None => ServiceReplica {
                    endpoint_id: id.clone(),
                    ..Default::default()
                },
            })
            .collect();
        ServiceInspect {
            id: service.id.clone(),
            name: service.name.clone(),
            network: state
                .network_by_id(&service.network_id)
                .map_or_else(|| service.network_id.clone(), |n| n.name.clone()),
            virtual_ip: service.vip.to_string(),
            replicas,
            created: service.created.clone(),
        }
    }

    fn replica_ready(&self, state: &State, ep: &EndpointRecord) -> bool {
        ep.node == self.node.id || state.global.is_ready(&ep.node)
    }

    /// Brings the DNS names and this node's sandbox tables in step with the services.
    pub(in crate::controller) async fn refresh_services(&self) {
        let mut applied = self.services_applied.lock().await;
        let wanted = {
            let state = self.state.lock().await;
            let nothing_to_do = state.global.services.is_empty()
                && applied.names.is_empty()
                && applied.tables.is_empty();
            if nothing_to_do && applied.started {
                return;
            }
            self.wanted_services(&state, !applied.started)
        };
        applied.started = true;
        let directory = self.dns.directory();
        for (key, names) in &wanted.names {
            if applied.names.get(key) != Some(names) {
                directory.set_service(names.clone());
            }
        }
        for (service, network) in applied.names.keys() {
            if !wanted
                .names
                .contains_key(&(service.clone(), network.clone()))
            {
                directory.remove_service(service, network);
            }
        }
        applied.names = wanted.names;
        let mut wanted_tables = wanted.tables;
        // Sandboxes that had a table and need none now: emptied, unless they are gone.
        for (sandbox, (netns, _)) in &applied.tables {
            if !wanted_tables.contains_key(sandbox) && netctl_kernel::netns::exists(netns) {
                wanted_tables.insert(sandbox.clone(), (netns.clone(), Vec::new()));
            }
        }
        // A few sandboxes at a time: each is a thread in its namespace running `nft`.
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(TABLES_AT_ONCE));
        let mut work = tokio::task::JoinSet::new();
        let wanted_ids: std::collections::HashSet<String> = wanted_tables.keys().cloned().collect();
        for (sandbox, (netns, vips)) in wanted_tables {
            let before = applied.tables.get(&sandbox).map(|(_, v)| v.clone());
            if before.as_ref() == Some(&vips) {
                continue;
            }
            let forget = flows_to_forget(before.as_deref().unwrap_or_default(), &vips);
            let permits = permits.clone();
            work.spawn(async move {
                let _permit = permits.acquire_owned().await;
                let result = apply_table(netns.clone(), vips.clone(), forget).await;
                (sandbox, netns, vips, result)
            });
        }
        let mut tables: HashMap<String, (PathBuf, Vec<VirtualIp>)> = applied
            .tables
            .drain()
            .filter(|(id, _)| wanted_ids.contains(id))
            .collect();
        while let Some(done) = work.join_next().await {
            let Ok((sandbox, netns, vips, result)) = done else {
                continue;
            };
            match result {
                Err(e) => {
                    tracing::warn!(%sandbox, error = %e, "cannot set the sandbox's service table");
                    tables.remove(&sandbox);
                }
                Ok(()) if vips.is_empty() => {
                    tables.remove(&sandbox);
                }
                Ok(()) => {
                    tables.insert(sandbox, (netns, vips));
                }
            }
        }
        applied.tables = tables;
    }

    /// Every service's names, and the table of each of this node's sandboxes on a service's
    /// network. With `all_global`, also an empty table for every sandbox of this node on a
    /// global network (after a start: a service may have gone while the daemon was down).
    fn wanted_services(&self, state: &State, all_global: bool) -> WantedServices {
        let mut names = HashMap::new();
        let mut tables: HashMap<String, (PathBuf, Vec<VirtualIp>)> = HashMap::new();
        let local_sandboxes = |network_id: &str| -> Vec<(String, PathBuf)> {
            state
                .endpoints_of_network(network_id)
                .filter(|e| e.node == self.node.id)
                .filter_map(|e| state.sandbox_by_id(e.sandbox_id.as_deref()?))
                .filter(|s| s.mode == SandboxMode::Isolated)
                .map(|s| (s.id.clone(), s.netns.clone()))
                .collect()
        };
        if all_global {
            for net in state.networks().filter(|n| self.is_global(n)) {
                for (id, netns) in local_sandboxes(&net.id) {
                    tables.entry(id).or_insert((netns, Vec::new()));
                }
            }
        }
        let services: BTreeMap<&str, &ServiceRecord> = state
            .global
            .services
            .values()
            .map(|s| (s.id.as_str(), s))
            .collect();
        for service in services.values() {
            let Some(net) = state.network_by_id(&service.network_id) else {
                continue;
            };
            let replicas: Vec<&EndpointRecord> = service
                .replicas
                .iter()
                .filter_map(|id| state.endpoint(id))
                .filter(|ep| self.replica_ready(state, ep))
                .collect();
            names.insert(
                (service.id.clone(), net.id.clone()),
                netctl_dns::ServiceNames {
                    service_id: service.id.clone(),
                    network_id: net.id.clone(),
                    network_name: net.name.clone(),
                    internal: net.internal,
                    name: service.name.clone(),
                    vip: service.vip,
                    tasks: replicas
                        .iter()
                        .flat_map(|ep| ep.addresses())
                        .map(|a| a.ip())
                        .collect(),
                },
            );
            let IpAddr::V4(vip) = service.vip else {
                continue;
            };
            let replica_v4: Vec<Ipv4Addr> = replicas
                .iter()
                .filter_map(|ep| match ep.ipv4?.ip() {
                    IpAddr::V4(ip) => Some(ip),
                    IpAddr::V6(_) => None,
                })
                .collect();
            for (id, netns) in local_sandboxes(&net.id) {
                tables
                    .entry(id)
                    .or_insert((netns, Vec::new()))
                    .1
                    .push(VirtualIp {
                        vip,
                        replicas: replica_v4.clone(),
                    });
            }
        }
        WantedServices { names, tables }
    }
}

/// Past this many replicas leaving one virtual IP at once, its UDP flows are forgotten
/// wholesale (one `conntrack` run instead of one per replica; flows to the replicas that
/// stay are balanced again).
const FORGET_ONE_BY_ONE: usize = 4;

/// The UDP flows to forget when a sandbox's table goes from `before` to `after`: those to
/// replicas that left a virtual IP, or all of a virtual IP's when it went or many left.
fn flows_to_forget(before: &[VirtualIp], after: &[VirtualIp]) -> Vec<UdpFlows> {
    let mut flows = Vec::new();
    for old in before {
        let now = after.iter().find(|v| v.vip == old.vip);
        let left: Vec<Ipv4Addr> = old
            .replicas
            .iter()
            .filter(|r| now.is_none_or(|v| !v.replicas.contains(r)))
            .copied()
            .collect();
        if now.is_none() || left.len() > FORGET_ONE_BY_ONE {
            flows.push(UdpFlows::AddressedTo(IpAddr::V4(old.vip)));
        } else {
            flows.extend(left.into_iter().map(|r| UdpFlows::To(IpAddr::V4(r))));
        }
    }
    flows
}

/// `ip netns exec SANDBOX nft -f -` with the sandbox's service table, then the UDP flows to
/// replicas that left forgotten.
async fn apply_table(
    netns: PathBuf,
    vips: Vec<VirtualIp>,
    forget: Vec<UdpFlows>,
) -> Result<(), String> {
    netctl_kernel::netns::run_in(&netns, move || {
        service_vip::apply_here(&vips)
            .map_err(|e| netctl_kernel::KernelError::Nft(e.to_string()))?;
        for flows in forget {
            netctl_kernel::conntrack::forget_udp_here(flows);
        }
        Ok(())
    })
    .await
    .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vip(vip: &str, replicas: &[&str]) -> VirtualIp {
        VirtualIp {
            vip: vip.parse().unwrap(),
            replicas: replicas.iter().map(|r| r.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn flows_to_replicas_that_left_are_forgotten_or_all_of_a_vip_that_went() {
        let before = [
            vip("10.0.0.100", &["10.0.0.2", "10.0.0.3"]),
            vip("10.0.0.101", &["10.0.0.4"]),
        ];
        let after = [vip("10.0.0.100", &["10.0.0.3", "10.0.0.5"])];
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(
            flows_to_forget(&before, &after),
            [
                UdpFlows::To(ip("10.0.0.2")),
                UdpFlows::AddressedTo(ip("10.0.0.101"))
            ]
        );
        assert!(flows_to_forget(&after, &after).is_empty());
        let many: Vec<String> = (2..10).map(|i| format!("10.0.0.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let shrunk = [vip("10.0.0.100", &["10.0.0.2"])];
        assert_eq!(
            flows_to_forget(&[vip("10.0.0.100", &many)], &shrunk),
            [UdpFlows::AddressedTo(ip("10.0.0.100"))]
        );
    }
}
