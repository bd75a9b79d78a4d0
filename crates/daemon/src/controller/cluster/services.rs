//! `netctl service …`: a virtual IP on a global network balanced over replicas on any node.
//!
//! A service lives in the cluster store with its name, virtual IP and published ports
//! claimed there, so two managers never make the same one. Every node mirrors it and keeps
//! its own part in step with it ([`super::balancers`]).

use netctl_drivers::NetworkRole;
use netctl_plugin_api::cluster::{
    ServiceCreateRequest, ServiceInspect, ServiceReplica, ServiceUpdateRequest,
};
use netctl_plugin_api::service_ports::{
    PublishMode as ApiMode, ServicePort as ApiPort, AUTO_PORTS,
};
use netctl_plugin_api::Removed;
use netctl_store::{Batch, Key, Scope};

use super::super::endpoints::lost_address;
use super::super::state::{Lookup, State};
use super::super::txn::Txn;
use super::super::Controller;
use super::nodes::find_node;
use crate::cluster_store::claims::address_key;
use crate::controller::error::EngineError;
use crate::ids::{new_id, now_rfc3339, valid_name};
use crate::model::{
    EndpointRecord, NetworkRecord, PublishMode, ServicePort, ServiceRecord, Transport,
};
use crate::persist::BatchExt;

/// A service's name, unique in the cluster.
fn service_name_key(name: &str) -> Key {
    Key::new(Scope::Global, "service.name", name)
}

/// A port a service publishes, unique in the cluster (`8080/tcp`): an ingress port answers
/// on every node, and a host port is one a replica may be given on any node.
fn service_port_key(port: &ServicePort) -> Key {
    Key::new(
        Scope::Global,
        "service.port",
        format!("{}/{}", port.published, port.transport.name()),
    )
}

fn api_port(port: &ServicePort) -> ApiPort {
    ApiPort {
        protocol: port.transport.into(),
        published_port: port.published,
        target_port: port.target,
        publish_mode: match port.mode {
            PublishMode::Ingress => ApiMode::Ingress,
            PublishMode::Host => ApiMode::Host,
        },
    }
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

    pub(in crate::controller) fn service(&self, key: &str) -> Result<&ServiceRecord, EngineError> {
        let services = &self.global.services;
        if let Some(service) = services
            .get(key)
            .or_else(|| services.values().find(|s| s.name == key))
        {
            return Ok(service);
        }
        let mut prefixed = services
            .range(key.to_string()..)
            .take_while(|(id, _)| !key.is_empty() && id.starts_with(key));
        match (prefixed.next(), prefixed.count()) {
            (Some((_, service)), 0) => Ok(service),
            (Some(_), others) => Err(Lookup::Ambiguous(others + 1).error("service", key)),
            (None, _) => Err(Lookup::NotFound.error("service", key)),
        }
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
) -> Result<&'a EndpointRecord, EngineError> {
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
        [] if state.sandbox_named(sandbox).is_some() => Err(EngineError::invalid(format!(
            "replica {replica}: sandbox {sandbox} is not on network {}",
            net.name
        ))),
        [] => Err(EngineError::not_found(format!(
            "replica {replica}: no sandbox {sandbox} on network {}",
            net.name
        ))),
        several => {
            let names: Vec<String> = several
                .iter()
                .map(|e| format!("{}/{sandbox}", node_label(state, &e.node)))
                .collect();
            Err(EngineError::conflict(format!(
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
) -> Result<Vec<String>, EngineError> {
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
    ) -> Result<ServiceInspect, EngineError> {
        if !valid_name(&req.name) {
            return Err(EngineError::invalid(format!(
                "invalid service name {:?}: names start with a letter or digit and contain only [a-zA-Z0-9_.-]",
                req.name
            )));
        }
        let ports = req
            .publish
            .iter()
            .map(|spec| ApiPort::parse(spec).map_err(EngineError::invalid))
            .collect::<Result<Vec<_>, _>>()?;
        self.require_manager(&format!("service create {}", req.name))
            .await?;
        self.cluster.store()?;
        let id = new_id();
        let (service, _) = self
            .transact_claiming(
                |state| self.plan_service_create(state, &id, &req, &ports),
                |state, key| {
                    if key.kind == "service.port" {
                        return Err(EngineError::conflict(format!(
                            "published port {} is taken by another service",
                            key.id
                        )));
                    }
                    lost_address(state, key)
                },
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
        ports: &[ApiPort],
    ) -> Result<(Txn, ServiceRecord), EngineError> {
        if state.global.services.values().any(|s| s.name == req.name) {
            return Err(EngineError::conflict(format!(
                "service {} already exists",
                req.name
            )));
        }
        let net = state.network(&req.network)?.clone();
        if !self.is_global(&net) {
            return Err(EngineError::invalid(format!(
                "network {} is local to this node: a service's network is a global one \
                 (--driver overlay)",
                net.name
            )));
        }
        if self.capabilities(&net)?.role == NetworkRole::Ingress {
            return Err(EngineError::invalid(format!(
                "network {} is the ingress network, which carries published ports: give the \
                 service an overlay network, and --publish",
                net.name
            )));
        }
        let replicas = resolve_replicas(state, &net, &req.replicas)?;
        let ports = self.plan_ports(state, ports)?;
        let vip = state
            .allocate_address(&net, false, None)?
            .ok_or_else(|| {
                EngineError::invalid(format!("network {} has no IPv4 subnet", net.name))
            })?
            .ip();
        let service = ServiceRecord {
            id: id.to_string(),
            name: req.name.clone(),
            network_id: net.id.clone(),
            vip,
            replicas,
            created: now_rfc3339(),
            ports,
        };
        state
            .global
            .services
            .insert(service.id.clone(), service.clone());
        let mut txn = Txn::new(format!("create service {}", service.name));
        txn.persist = Batch::new()
            .create(service_name_key(&service.name), id.as_bytes().to_vec())
            .create(address_key(&net.id, vip), id.as_bytes().to_vec());
        for port in &service.ports {
            txn.persist = txn
                .persist
                .create(service_port_key(port), id.as_bytes().to_vec());
        }
        txn.persist = txn.persist.put_global(&service);
        let undo = service.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.global.services.remove(&undo.id);
            state.release_vip(&undo);
        });
        Ok((txn, service))
    }

    /// The ports asked for, each checked free in the cluster (and on this node, which has
    /// the other nodes' view of local publishing: none), and those without a number given
    /// one from Docker's range.
    fn plan_ports(
        &self,
        state: &mut State,
        asked: &[ApiPort],
    ) -> Result<Vec<ServicePort>, EngineError> {
        let mut ports: Vec<ServicePort> = Vec::new();
        let taken = |state: &State, ports: &[ServicePort], transport: Transport, port: u16| {
            ports
                .iter()
                .chain(state.global.services.values().flat_map(|s| &s.ports))
                .any(|p| p.transport == transport && p.published == port)
        };
        let mesh = asked.iter().any(|p| p.publish_mode == ApiMode::Ingress);
        if mesh
            && !state
                .networks()
                .any(|n| self.role(n) == NetworkRole::Ingress)
        {
            return Err(EngineError::invalid(
                "--publish: the cluster has no ingress network; make one with \
                 `netctl network create ingress --driver ingress`, or publish with mode=host",
            ));
        }
        for port in asked {
            let transport = Transport::from(port.protocol);
            let published = match port.published_port {
                0 => {
                    let mut free = None;
                    for candidate in AUTO_PORTS {
                        if !taken(state, &ports, transport, candidate)
                            && state.ports.is_free(transport, candidate)
                        {
                            free = Some(candidate);
                            break;
                        }
                    }
                    free.ok_or_else(|| EngineError::conflict("no free port left to publish on"))?
                }
                asked => asked,
            };
            if taken(state, &ports, transport, published) {
                return Err(EngineError::conflict(format!(
                    "published port {published}/{} is taken by another service",
                    transport.name()
                )));
            }
            if !state.ports.is_free(transport, published) {
                return Err(EngineError::conflict(format!(
                    "published port {published}/{} is in use on this node",
                    transport.name()
                )));
            }
            ports.push(ServicePort {
                transport,
                published,
                target: port.target_port,
                mode: match port.publish_mode {
                    ApiMode::Ingress => PublishMode::Ingress,
                    ApiMode::Host => PublishMode::Host,
                },
            });
        }
        Ok(ports)
    }

    /// `service update NAME --replicas …`: the whole replica set, replaced in place.
    pub async fn service_update(
        &self,
        key: &str,
        req: ServiceUpdateRequest,
    ) -> Result<ServiceInspect, EngineError> {
        self.require_manager(&format!("service update {key}"))
            .await?;
        self.cluster.store()?;
        let (id, _) = self
            .transact(|state| {
                let known = state.service(key)?.clone();
                let net = state
                    .network_by_id(&known.network_id)
                    .cloned()
                    .ok_or_else(|| EngineError::internal("the service's network is gone"))?;
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

    pub async fn service_remove(&self, key: &str) -> Result<Removed, EngineError> {
        self.require_manager(&format!("service rm {key}")).await?;
        self.cluster.store()?;
        let (removed, _) = self
            .transact(|state| {
                let service = state.service(key)?.clone();
                state.delete_service(&service.id);
                let mut txn = Txn::new(format!("remove service {}", service.name));
                txn.persist = Batch::new()
                    .delete_global(&service)
                    .delete(service_name_key(&service.name))
                    .delete(address_key(&service.network_id, service.vip));
                for port in &service.ports {
                    txn.persist = txn.persist.delete(service_port_key(port));
                }
                let removed = Removed {
                    id: service.id.clone(),
                    name: service.name.clone(),
                };
                txn.unplan = Box::new(move |state: &mut State| state.put_service(service));
                Ok((txn, removed))
            })
            .await?;
        tracing::info!(service = %removed.name, "service removed");
        self.refresh_services().await;
        Ok(removed)
    }

    pub async fn service_list(&self) -> Result<Vec<ServiceInspect>, EngineError> {
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

    pub async fn service_inspect(&self, key: &str) -> Result<ServiceInspect, EngineError> {
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
            ports: service.ports.iter().map(api_port).collect(),
            created: service.created.clone(),
        }
    }

    pub(in crate::controller) fn replica_ready(&self, state: &State, ep: &EndpointRecord) -> bool {
        ep.node == self.node.id || state.global.is_ready(&ep.node)
    }
}
