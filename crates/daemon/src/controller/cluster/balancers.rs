//! A node's part of the services it mirrors, recomputed from the state after every change
//! ([`Controller::refresh_services`]):
//!
//! - the names (`NAME` → the virtual IP, `tasks.NAME` → the replicas) in the DNS directory;
//! - a load-balancer sandbox `lb-NET` on each global network with services that a sandbox
//!   of this node is on: it holds the network's virtual IPs and sends each connection to a
//!   replica on any node (Docker's load-balancer endpoint);
//! - with ports published through the routing mesh, the ingress sandbox `ingress-sbox` on
//!   the ingress network and the gateway bridge: the node publishes those ports to its
//!   gateway-bridge address, and it sends each connection over the ingress network to a
//!   replica on any node (Docker's ingress sandbox), this node's replicas joined to the
//!   ingress network for it;
//! - ports published in host mode, on the gateway-bridge endpoint of this node's replicas.
//!
//! A change of replicas rewrites one nft table per balancer on each node, whatever the
//! number of client sandboxes. Replicas on a node that is down are left out.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};

use netctl_drivers::firewall::balancer::{Balancing, MeshPort, VirtualIp};
use netctl_drivers::service_balancer::{self, Balancer};
use netctl_drivers::NetworkRole;
use netctl_plugin_api::ports::PortMapping;
use netctl_plugin_api::SandboxCreateRequest;

use super::super::state::State;
use super::super::Controller;
use crate::controller::error::{EngineError, ErrorKind};
use crate::model::{
    EndpointRecord, NetworkRecord, PublishMode, PublishedPort, SandboxRecord, SandboxRole,
    ServicePort, ServiceRecord,
};

/// The name of a network's load-balancer sandbox: `lb-NET`, as Docker's endpoint.
fn load_balancer_name(net: &NetworkRecord) -> String {
    format!("lb-{}", net.name)
}

/// The name of a node's ingress sandbox, as Docker's.
const INGRESS_SANDBOX: &str = "ingress-sbox";

/// What this node last applied, to change only what differs.
#[derive(Default)]
pub(in crate::controller) struct AppliedServices {
    names: HashMap<(String, String), netctl_dns::ServiceNames>,
    /// By balancer sandbox id.
    balancers: HashMap<String, Balancer>,
}

/// One change to this node's balancer sandboxes, their endpoints or published ports.
#[derive(Debug)]
enum Step {
    CreateSandbox {
        name: String,
        role: SandboxRole,
        network: String,
    },
    RemoveSandbox(String),
    Connect {
        network: String,
        sandbox: String,
    },
    Disconnect {
        network: String,
        sandbox: String,
    },
    Publish {
        network: String,
        sandbox: String,
        service: String,
        ports: Vec<PortMapping>,
    },
    Withdraw {
        network: String,
        sandbox: String,
        ports: Vec<PublishedPort>,
    },
}

/// Rounds of steps a refresh takes at most: a sandbox made in one round is given its
/// published ports in the next.
const ROUNDS: usize = 3;

impl Controller {
    /// Brings this node's names, balancer sandboxes and their tables in step with the
    /// services.
    pub(in crate::controller) async fn refresh_services(&self) {
        let mut applied = self.services_applied.lock().await;
        self.refresh_service_names(&mut applied).await;
        // The tables first: a replica that left gets no new connection before its node
        // has taken it off the ingress network, say.
        self.refresh_balancers(&mut applied).await;
        if self.converge_balancer_sandboxes().await {
            self.refresh_balancers(&mut applied).await;
        }
    }

    /// Makes, removes, connects and publishes what the services ask of this node's
    /// balancer sandboxes and replicas, a few rounds at most; says whether it did anything.
    async fn converge_balancer_sandboxes(&self) -> bool {
        let mut changed = false;
        for _ in 0..ROUNDS {
            let steps = {
                let state = self.state.lock().await;
                self.balancer_steps(&state)
            };
            if steps.is_empty() {
                break;
            }
            changed = true;
            // A network that refused one connect (out of addresses, say) is not asked again
            // for the others in this round: one warning, not one per replica.
            let mut refused: HashSet<String> = HashSet::new();
            for step in steps {
                if let Step::Connect { network, .. } = &step {
                    if refused.contains(network) {
                        continue;
                    }
                }
                if let Err(e) = self.take_step(&step).await {
                    tracing::warn!(?step, error = %e, "cannot change a service balancer");
                    if let Step::Connect { network, .. } = step {
                        refused.insert(network);
                    }
                }
            }
        }
        changed
    }

    /// Each balancer's virtual IPs and table, where they differ from what it was given: all
    /// at once (each is an `nft` run in a namespace of its own), then the UDP flows to
    /// replicas that left forgotten behind them.
    async fn refresh_balancers(&self, applied: &mut AppliedServices) {
        let wanted = {
            let state = self.state.lock().await;
            self.wanted_balancers(&state)
        };
        let mut balancers = HashMap::new();
        let mut work = tokio::task::JoinSet::new();
        for (sandbox, mut after) in wanted {
            let before = applied.balancers.get(&sandbox).cloned();
            if let Some(before) = &before {
                after.balancing = after.balancing.in_slots_of(&before.balancing);
            }
            if before.as_ref() == Some(&after) {
                balancers.insert(sandbox, after);
                continue;
            }
            work.spawn(async move {
                let result = service_balancer::apply(before.as_ref(), &after).await;
                (sandbox, after, result)
            });
        }
        while let Some(done) = work.join_next().await {
            let Ok((sandbox, after, result)) = done else {
                continue;
            };
            match result {
                Ok(forget) => {
                    service_balancer::forget_flows(after.netns.clone(), forget);
                    balancers.insert(sandbox, after);
                }
                Err(e) => {
                    tracing::warn!(%sandbox, error = %e, "cannot set a service balancer's table");
                }
            }
        }
        applied.balancers = balancers;
    }

    async fn refresh_service_names(&self, applied: &mut AppliedServices) {
        let wanted = {
            let state = self.state.lock().await;
            self.wanted_names(&state)
        };
        let directory = self.dns.directory();
        for (key, names) in &wanted {
            if applied.names.get(key) != Some(names) {
                directory.set_service(names.clone());
            }
        }
        for (service, network) in applied.names.keys() {
            if !wanted.contains_key(&(service.clone(), network.clone())) {
                directory.remove_service(service, network);
            }
        }
        applied.names = wanted;
    }

    fn wanted_names(&self, state: &State) -> HashMap<(String, String), netctl_dns::ServiceNames> {
        let mut names = HashMap::new();
        for service in state.global.services.values() {
            let Some(net) = state.network_by_id(&service.network_id) else {
                continue;
            };
            names.insert(
                (service.id.clone(), net.id.clone()),
                netctl_dns::ServiceNames {
                    service_id: service.id.clone(),
                    network_id: net.id.clone(),
                    network_name: net.name.clone(),
                    internal: net.internal,
                    name: service.name.clone(),
                    vip: service.vip,
                    tasks: self
                        .ready_replicas(state, service)
                        .flat_map(|ep| ep.addresses())
                        .map(|a| a.ip())
                        .collect(),
                },
            );
        }
        names
    }

    /// The service's replicas whose node is up.
    fn ready_replicas<'a>(
        &'a self,
        state: &'a State,
        service: &'a ServiceRecord,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        service
            .replicas
            .iter()
            .filter_map(|id| state.endpoint(id))
            .filter(|ep| self.replica_ready(state, ep))
    }

    /// Refuses a user's change to a balancer sandbox or to who is on the ingress network:
    /// the daemon makes and takes those as the services change.
    pub async fn refuse_managed(
        &self,
        network: Option<&str>,
        sandbox: &str,
    ) -> Result<(), EngineError> {
        let state = self.state.lock().await;
        if let Ok(sbx) = state.sandbox(sandbox) {
            if !sbx.role.is_user() {
                return Err(EngineError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "sandbox {} is this node's service balancer: netctl makes and removes \
                         it as services change",
                        sbx.name
                    ),
                ));
            }
        }
        if let Some(net) = network.and_then(|n| state.network(n).ok()) {
            if self.role(net) == NetworkRole::Ingress {
                return Err(EngineError::new(
                    ErrorKind::Forbidden,
                    format!(
                        "network {} is the ingress network: the replicas of services that \
                         publish ports join and leave it by themselves",
                        net.name
                    ),
                ));
            }
        }
        Ok(())
    }

    /// What differs between this node's balancer sandboxes, endpoints and ports and what
    /// the services ask of it.
    fn balancer_steps(&self, state: &State) -> Vec<Step> {
        let in_cluster = self.cluster.membership().is_some();
        let mut steps = Vec::new();
        let mut removals = Vec::new();
        let mut creations = Vec::new();
        // Load balancers: one per network with services and a sandbox of this node on it.
        let wanted_lb: HashSet<&str> = state
            .global
            .services
            .values()
            .map(|s| s.network_id.as_str())
            .filter(|net| in_cluster && self.has_local_user(state, net))
            .collect();
        let mut served: HashSet<&str> = HashSet::new();
        for sandbox in sandboxes_of(state, SandboxRole::LoadBalancer) {
            let on = state
                .endpoints_of_sandbox(&sandbox.id)
                .map(|e| e.network_id.as_str())
                .find(|net| wanted_lb.contains(net) && !served.contains(net));
            match on {
                Some(net) => {
                    served.insert(net);
                }
                None => removals.push(Step::RemoveSandbox(sandbox.id.clone())),
            }
        }
        for net in wanted_lb.difference(&served) {
            if let Some(net) = state.network_by_id(net) {
                creations.push(Step::CreateSandbox {
                    name: load_balancer_name(net),
                    role: SandboxRole::LoadBalancer,
                    network: net.id.clone(),
                });
            }
        }
        // The ingress sandbox, while a service publishes through the mesh.
        let ingress = state
            .networks()
            .find(|n| self.role(n) == NetworkRole::Ingress);
        let meshed: Vec<&ServiceRecord> = state
            .global
            .services
            .values()
            .filter(|s| s.ports.iter().any(|p| p.mode == PublishMode::Ingress))
            .collect();
        let want_ingress = in_cluster && !meshed.is_empty();
        let mut has_ingress = false;
        for sandbox in sandboxes_of(state, SandboxRole::Ingress) {
            let on_ingress =
                ingress.is_some_and(|net| state.attachment(&net.id, &sandbox.id).is_some());
            if want_ingress && on_ingress && !has_ingress {
                has_ingress = true;
            } else {
                removals.push(Step::RemoveSandbox(sandbox.id.clone()));
            }
        }
        if let (true, false, Some(net)) = (want_ingress, has_ingress, ingress) {
            creations.push(Step::CreateSandbox {
                name: INGRESS_SANDBOX.into(),
                role: SandboxRole::Ingress,
                network: net.id.clone(),
            });
        }
        steps.extend(removals);
        steps.extend(creations);
        if let Some(net) = ingress {
            let replicas: HashSet<&str> = if want_ingress {
                self.local_replica_sandboxes(state, &meshed)
            } else {
                HashSet::new()
            };
            steps.extend(ingress_attachments(state, net, &replicas, &self.node.id));
        }
        steps.extend(self.publishing_steps(state, &meshed));
        steps
    }

    /// Whether a sandbox of a user (or a runtime's container) on this node is on `net`.
    fn has_local_user(&self, state: &State, net: &str) -> bool {
        state
            .endpoints_of_network(net)
            .any(|e| e.node == self.node.id && !e.balancer)
    }

    /// This node's sandboxes that are replicas of `services`.
    fn local_replica_sandboxes<'a>(
        &self,
        state: &'a State,
        services: &[&'a ServiceRecord],
    ) -> HashSet<&'a str> {
        services
            .iter()
            .flat_map(|s| &s.replicas)
            .filter_map(|id| state.endpoint(id))
            .filter(|ep| ep.node == self.node.id)
            .filter_map(|ep| ep.sandbox_id.as_deref())
            .filter(|s| state.sandbox_by_id(s).is_some_and(|s| s.role.is_user()))
            .collect()
    }

    /// The ports each of this node's gateway-bridge endpoints should publish for services
    /// (the ingress sandbox: every mesh port, to itself; a replica: its service's host-mode
    /// ports), against those it does.
    fn publishing_steps(&self, state: &State, meshed: &[&ServiceRecord]) -> Vec<Step> {
        let Some(gateway) = self.gateway_bridge_in(state) else {
            return Vec::new();
        };
        let host_ports = self.host_ports(state);
        let mut steps = Vec::new();
        for ep in state.endpoints_of_network(&gateway.id) {
            let Some(sandbox) = state.sandbox_of(ep) else {
                continue;
            };
            let wanted: Vec<(&str, PortMapping)> = match sandbox.role {
                SandboxRole::Ingress => meshed
                    .iter()
                    .flat_map(|s| s.ports.iter().map(move |p| (s.id.as_str(), p)))
                    .filter(|(_, p)| p.mode == PublishMode::Ingress)
                    .map(|(s, p)| (s, port_mapping(p, p.published)))
                    .collect(),
                SandboxRole::User => host_ports
                    .get(sandbox.id.as_str())
                    .cloned()
                    .unwrap_or_default(),
                SandboxRole::LoadBalancer => Vec::new(),
            };
            let held = |p: &PublishedPort, service: &str, m: &PortMapping| {
                p.service.as_deref() == Some(service)
                    && p.transport.name() == m.proto.name()
                    && p.host_port == m.host_port
                    && p.container_port == m.container_port
            };
            let stale: Vec<PublishedPort> = ep
                .ports
                .iter()
                .filter(|p| p.service.is_some())
                .filter(|p| {
                    let service = p.service.as_deref().unwrap_or_default();
                    !wanted.iter().any(|(s, m)| *s == service && held(p, s, m))
                })
                .cloned()
                .collect();
            if !stale.is_empty() {
                steps.push(Step::Withdraw {
                    network: gateway.id.clone(),
                    sandbox: sandbox.id.clone(),
                    ports: stale,
                });
            }
            let mut missing: BTreeMap<&str, Vec<PortMapping>> = BTreeMap::new();
            for (service, mapping) in wanted {
                if !ep.ports.iter().any(|p| held(p, service, &mapping)) {
                    missing.entry(service).or_default().push(mapping);
                }
            }
            for (service, ports) in missing {
                steps.push(Step::Publish {
                    network: gateway.id.clone(),
                    sandbox: sandbox.id.clone(),
                    service: service.to_string(),
                    ports,
                });
            }
        }
        steps
    }

    /// By sandbox of this node, the host-mode ports of the services it is a replica of.
    fn host_ports<'a>(&self, state: &'a State) -> HashMap<&'a str, Vec<(&'a str, PortMapping)>> {
        let mut ports: HashMap<&str, Vec<(&str, PortMapping)>> = HashMap::new();
        let published = state
            .global
            .services
            .values()
            .filter(|s| s.ports.iter().any(|p| p.mode == PublishMode::Host));
        for service in published {
            let sandboxes = service
                .replicas
                .iter()
                .filter_map(|id| state.endpoint(id))
                .filter(|ep| ep.node == self.node.id)
                .filter_map(|ep| ep.sandbox_id.as_deref());
            for sandbox in sandboxes {
                let of_sandbox = ports.entry(sandbox).or_default();
                for port in service.ports.iter().filter(|p| p.mode == PublishMode::Host) {
                    of_sandbox.push((service.id.as_str(), port_mapping(port, port.target)));
                }
            }
        }
        ports
    }

    async fn take_step(&self, step: &Step) -> Result<(), EngineError> {
        match step {
            Step::CreateSandbox {
                name,
                role,
                network,
            } => {
                let request = SandboxCreateRequest {
                    name: name.clone(),
                    network: Some(network.clone()),
                    ..Default::default()
                };
                self.create_sandbox_as(request, *role).await.map(drop)
            }
            Step::RemoveSandbox(id) => self.remove_sandbox(id).await,
            Step::Connect { network, sandbox } => {
                self.connect(network, sandbox, &Default::default()).await
            }
            Step::Disconnect { network, sandbox } => self.disconnect(network, sandbox).await,
            Step::Publish {
                network,
                sandbox,
                service,
                ports,
            } => self
                .publish_for(network, sandbox, ports, Some(service))
                .await
                .map(drop),
            Step::Withdraw {
                network,
                sandbox,
                ports,
            } => self.withdraw(network, sandbox, ports).await,
        }
    }

    /// Each balancer sandbox of this node with what it balances.
    fn wanted_balancers(&self, state: &State) -> HashMap<String, Balancer> {
        let mut wanted = HashMap::new();
        for sandbox in state.sandboxes().filter(|s| !s.role.is_user()) {
            let balancer = match sandbox.role {
                SandboxRole::LoadBalancer => self.load_balancer(state, sandbox),
                SandboxRole::Ingress => self.ingress_balancer(state, sandbox),
                SandboxRole::User => None,
            };
            if let Some(balancer) = balancer {
                wanted.insert(sandbox.id.clone(), balancer);
            }
        }
        wanted
    }

    /// A network's load balancer: its services' virtual IPs.
    fn load_balancer(&self, state: &State, sandbox: &SandboxRecord) -> Option<Balancer> {
        let ep = state.endpoints_of_sandbox(&sandbox.id).next()?;
        let vips = state
            .services_on(&ep.network_id)
            .into_iter()
            .filter_map(|service| {
                let IpAddr::V4(vip) = service.vip else {
                    return None;
                };
                Some(VirtualIp {
                    vip,
                    replicas: self.ready_replicas(state, service).filter_map(v4).collect(),
                })
            })
            .collect();
        Some(Balancer {
            netns: sandbox.netns.clone(),
            ifname: ep.ifname.clone(),
            balancing: Balancing {
                vips,
                ..Default::default()
            },
        })
    }

    /// The ingress sandbox: every mesh port, over the replicas' ingress endpoints.
    fn ingress_balancer(&self, state: &State, sandbox: &SandboxRecord) -> Option<Balancer> {
        let mut on_ingress = None;
        let mut entry = None;
        for ep in state.endpoints_of_sandbox(&sandbox.id) {
            let net = state.network_by_id(&ep.network_id)?;
            let role = self.role(net);
            if role == NetworkRole::Ingress {
                on_ingress = Some((net.id.clone(), ep.ifname.clone()));
            } else if role == NetworkRole::GatewayBridge {
                entry = v4(ep);
            }
        }
        let (ingress, ifname) = on_ingress?;
        // A replica's ingress endpoint, by its node and sandbox.
        let on_mesh: HashMap<(&str, &str), Ipv4Addr> = state
            .endpoints_of_network(&ingress)
            .filter_map(|ep| Some(((ep.node.as_str(), ep.sandbox_id.as_deref()?), v4(ep)?)))
            .collect();
        let mut ports = Vec::new();
        for service in state.global.services.values() {
            let replicas: Vec<Ipv4Addr> = self
                .ready_replicas(state, service)
                .filter_map(|ep| on_mesh.get(&(ep.node.as_str(), ep.sandbox_id.as_deref()?)))
                .copied()
                .collect();
            for port in service
                .ports
                .iter()
                .filter(|p| p.mode == PublishMode::Ingress)
            {
                ports.push(MeshPort {
                    proto: port.transport.name(),
                    published: port.published,
                    target: port.target,
                    replicas: replicas.clone(),
                });
            }
        }
        ports.sort_by_key(|p| (p.proto, p.published));
        Some(Balancer {
            netns: sandbox.netns.clone(),
            ifname,
            balancing: Balancing {
                vips: Vec::new(),
                entry,
                ports,
            },
        })
    }
}

fn sandboxes_of(state: &State, role: SandboxRole) -> impl Iterator<Item = &SandboxRecord> {
    state.sandboxes().filter(move |s| s.role == role)
}

/// This node's replicas joined to the ingress network and the others taken off it.
fn ingress_attachments(
    state: &State,
    ingress: &NetworkRecord,
    replicas: &HashSet<&str>,
    node: &str,
) -> Vec<Step> {
    let mut steps = Vec::new();
    for sandbox in replicas {
        if state.attachment(&ingress.id, sandbox).is_none() {
            steps.push(Step::Connect {
                network: ingress.id.clone(),
                sandbox: sandbox.to_string(),
            });
        }
    }
    for ep in state.endpoints_of_network(&ingress.id) {
        let Some(sandbox) = ep.sandbox_id.as_deref() else {
            continue;
        };
        if ep.node == node && !ep.balancer && !replicas.contains(sandbox) {
            steps.push(Step::Disconnect {
                network: ingress.id.clone(),
                sandbox: sandbox.to_string(),
            });
        }
    }
    steps
}

/// A service port as the node publishes it, to `to` on the endpoint.
fn port_mapping(port: &ServicePort, to: u16) -> PortMapping {
    PortMapping {
        proto: port.transport.into(),
        host_ip: None,
        host_port: port.published,
        host_port_end: port.published,
        container_port: to,
    }
}

fn v4(ep: &EndpointRecord) -> Option<Ipv4Addr> {
    match ep.ipv4?.ip() {
        IpAddr::V4(ip) => Some(ip),
        IpAddr::V6(_) => None,
    }
}
