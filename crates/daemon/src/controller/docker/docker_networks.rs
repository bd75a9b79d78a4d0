//! NetworkDriver.CreateNetwork / DeleteNetwork: a netctl network per Docker network.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netctl_plugin_api::docker::{CreateNetwork, IpamData};
use netctl_store::Batch;
use serde_json::Value;

use super::DOCKER_DRIVER;
use crate::controller::error::EngineError;
use crate::controller::state::State;
use crate::controller::txn::Txn;
use crate::controller::Controller;
use crate::ids::{new_id, now_rfc3339};
use crate::model::{
    AddressScope, DockerEndpointRecord, DockerNetworkRecord, EndpointRecord, NetworkRecord,
    SubnetOwner, SubnetRecord,
};
use crate::persist::BatchExt;

const GENERIC: &str = "com.docker.network.generic";
const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
const INTERNAL: &str = "com.docker.network.internal";
/// The label that marks a network as Docker's in `netctl network ls/inspect`.
pub const DOCKER_ID_LABEL: &str = "com.docker.network.id";
/// A Docker network standing for a netctl global network (`-o netctl.overlay=NAME`).
const OPT_OVERLAY: &str = "netctl.overlay";

/// `-o key=value`: strings, though dockerd sends what JSON it was given.
fn generic_options(options: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = options.get(GENERIC) else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect()
}

fn flag(options: &BTreeMap<String, Value>, key: &str) -> bool {
    match options.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// `10.20.0.1/16` → the address.
fn address(text: &str) -> Result<IpAddr, EngineError> {
    text.split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| EngineError::invalid(format!("invalid address {text:?}")))
}

fn subnet_record(data: &IpamData) -> Result<SubnetRecord, EngineError> {
    let subnet: IpNetwork = data
        .pool
        .parse()
        .map_err(|_| EngineError::invalid(format!("invalid pool {:?}", data.pool)))?;
    let gateway = match data.gateway.as_str() {
        "" => super::ipam::first_host(&subnet).unwrap_or(subnet.ip()),
        text => address(text)?,
    };
    let aux_addresses = data
        .aux_addresses
        .iter()
        .map(|(name, a)| Ok((name.clone(), address(a)?)))
        .collect::<Result<_, EngineError>>()?;
    Ok(SubnetRecord {
        subnet,
        gateway,
        ip_range: None,
        aux_addresses,
        explicit: true,
    })
}

/// The pools dockerd's IPAM gave the network: at least an IPv4 one, none of them the null
/// IPAM driver's everything (that stands for a netctl global network: `-o netctl.overlay`).
fn docker_subnets(req: &CreateNetwork) -> Result<Vec<SubnetRecord>, EngineError> {
    if req.ipv4_data.is_empty() {
        return Err(EngineError::invalid(
            "CreateNetwork carries no IPv4 pool (IPv4Data is empty)",
        ));
    }
    let subnets = req
        .ipv4_data
        .iter()
        .chain(&req.ipv6_data)
        .map(subnet_record)
        .collect::<Result<Vec<SubnetRecord>, _>>()?;
    if let Some(all) = subnets.iter().find(|s| s.subnet.prefix() == 0) {
        return Err(EngineError::invalid(format!(
            "pool {} is the null IPAM driver's: a network of netctl's own needs a pool \
             (--ipam-driver netctl), or -o {OPT_OVERLAY}=NAME to stand for a global network",
            all.subnet
        )));
    }
    Ok(subnets)
}

impl Controller {
    pub async fn docker_create_network(&self, req: CreateNetwork) -> Result<(), EngineError> {
        let options = generic_options(&req.options);
        if let Some(name) = options.get(OPT_OVERLAY) {
            return self.docker_bind_network(&req, name, &options).await;
        }
        let driver = self
            .drivers
            .get(DOCKER_DRIVER)
            .ok_or_else(|| EngineError::internal("no driver for Docker's networks"))?;
        let settings = driver
            .parse_options(&options, &self.network_defaults())
            .map_err(EngineError::from)?;
        // A pool of the LAN's DHCP server: the network leases, and reserves no subnet.
        let dhcp_pool = match req.ipv4_data.first() {
            Some(data) => Self::dhcp_pool_of(&*self.state.lock().await, &data.pool),
            None => None,
        };
        let subnets = match dhcp_pool {
            Some(_) => Vec::new(),
            None => docker_subnets(&req)?,
        };
        let id = new_id();
        let short = &req.network_id[..req.network_id.len().min(12)];
        let record = NetworkRecord {
            id: id.clone(),
            name: format!("docker-{short}"),
            driver: driver.name().into(),
            created: now_rfc3339(),
            address_scope: AddressScope::Local,
            mtu: settings.mtu,
            internal: settings.internal || flag(&req.options, INTERNAL),
            ipv6: flag(&req.options, ENABLE_IPV6),
            subnets,
            subnet_owner: match dhcp_pool {
                Some(_) => SubnetOwner::Dhcp,
                None => SubnetOwner::External,
            },
            options,
            driver_config: settings.config,
            labels: BTreeMap::from([(DOCKER_ID_LABEL.to_string(), req.network_id.clone())]),
        };
        let binding = DockerNetworkRecord {
            docker_id: req.network_id.clone(),
            network_id: id.clone(),
            bound: false,
        };
        let _held = self.locks.hold(&[], &[&id], &[]).await;
        self.transact(|state| {
            if state.docker_network(&req.network_id).is_some() {
                return Ok((Txn::new("nothing to do"), ()));
            }
            self.check_claims_free(state, driver.as_ref(), &record.driver_config)?;
            state.insert_network(record.clone());
            state
                .docker
                .networks
                .insert(binding.docker_id.clone(), binding.clone());
            let mut txn = Controller::network_txn(&record, Batch::new().put_record(&binding));
            let first = txn.unplan;
            txn.unplan = Box::new(move |state: &mut State| {
                state.docker.networks.remove(&binding.docker_id);
                first(state);
            });
            Ok((txn, ()))
        })
        .await?;
        if let Some(pool) = dhcp_pool {
            self.bind_dhcp_pool(&pool.id, &record).await?;
        }
        Ok(())
    }

    /// `-o netctl.overlay=NAME`: the Docker network stands for the global network NAME, its
    /// containers' addresses come from the cluster (so Docker's IPAM must hand out none:
    /// `--ipam-driver null`), and it stays local to this dockerd (which needs no cluster
    /// store of its own).
    async fn docker_bind_network(
        &self,
        req: &CreateNetwork,
        name: &str,
        options: &BTreeMap<String, String>,
    ) -> Result<(), EngineError> {
        if let Some(other) = options.keys().find(|k| k.as_str() != OPT_OVERLAY) {
            return Err(EngineError::invalid(format!(
                "{other}: a network bound with {OPT_OVERLAY} takes its settings from the \
                 global network {name}"
            )));
        }
        let docker_gave_addresses = req
            .ipv4_data
            .iter()
            .chain(&req.ipv6_data)
            .any(|d| !d.pool.is_empty() && d.pool != "0.0.0.0/0" && d.pool != "::/0");
        if docker_gave_addresses {
            return Err(EngineError::invalid(format!(
                "{OPT_OVERLAY}={name}: addresses on a global network come from the cluster; \
                 create the Docker network with --ipam-driver null"
            )));
        }
        let _held = self.locks.hold(&[], &[], &[&req.network_id]).await;
        self.transact(|state| {
            if state.docker_network(&req.network_id).is_some() {
                return Ok((Txn::new("nothing to do"), ()));
            }
            let net = state
                .network(name)
                .ok()
                .filter(|n| self.is_global(n))
                .ok_or_else(|| {
                    EngineError::not_found(format!(
                        "{OPT_OVERLAY}: no global network {name} in this node's cluster"
                    ))
                })?;
            let binding = DockerNetworkRecord {
                docker_id: req.network_id.clone(),
                network_id: net.id.clone(),
                bound: true,
            };
            state
                .docker
                .networks
                .insert(binding.docker_id.clone(), binding.clone());
            let mut txn = Txn::new(format!("bind Docker network to {name}"));
            txn.persist = Batch::new().put_record(&binding);
            txn.revert = Batch::new().delete_record::<DockerNetworkRecord>(&binding.docker_id);
            txn.unplan = Box::new(move |state: &mut State| {
                state.docker.networks.remove(&binding.docker_id);
            });
            Ok((txn, ()))
        })
        .await?;
        tracing::info!(docker_network = %req.network_id, network = %name, "Docker network bound to a global network");
        Ok(())
    }

    /// Idempotent: dockerd swallows this call's errors. Endpoints dockerd did not delete
    /// (the plugin was down) go with the network.
    pub async fn docker_delete_network(&self, docker_id: &str) -> Result<(), EngineError> {
        let Some((id, bound)) = ({
            let state = self.state.lock().await;
            let bound = state
                .docker
                .networks
                .get(docker_id)
                .is_some_and(|b| b.bound);
            state
                .docker_network(docker_id)
                .map(|n| (n.id.clone(), bound))
        }) else {
            return Ok(());
        };
        if bound {
            return self.docker_unbind_network(docker_id, &id).await;
        }
        let _held = self.locks.hold(&[], &[&id], &[]).await;
        let (_, done) = self
            .transact(|state| {
                let Some(net) = state.network_by_id(&id).cloned() else {
                    return Ok((Txn::new("nothing to do"), ()));
                };
                let binding = state.docker.networks.remove(docker_id);
                let leftovers: Vec<EndpointRecord> =
                    state.endpoints_of_network(&net.id).cloned().collect();
                let mut effects = Vec::new();
                let mut persist = Batch::new().delete_record::<DockerNetworkRecord>(docker_id);
                let mut docker_endpoints = Vec::new();
                for ep in &leftovers {
                    persist = persist
                        .delete_record::<EndpointRecord>(&ep.id)
                        .delete_record::<DockerEndpointRecord>(&ep.id);
                    docker_endpoints.extend(state.docker.endpoints.remove(&ep.id));
                    effects.extend(self.plan_leave(state, &net, None, ep));
                }
                let mut txn = self.removal_txn(state, net.clone());
                txn.persist = persist.and(txn.persist);
                effects.append(&mut txn.effects);
                txn.effects = effects;
                let then = txn.unplan;
                txn.unplan = Box::new(move |state: &mut State| {
                    then(state);
                    for ep in leftovers {
                        state.retake_endpoint(&net, &ep);
                        state.insert_endpoint(ep);
                    }
                    for d in docker_endpoints {
                        state.docker.endpoints.insert(d.endpoint_id.clone(), d);
                    }
                    if let Some(binding) = binding {
                        state
                            .docker
                            .networks
                            .insert(binding.docker_id.clone(), binding);
                    }
                });
                Ok((txn, ()))
            })
            .await?;
        tracing::info!(docker_network = %docker_id, "Docker network removed");
        done.into_result("Docker network removed")
    }

    /// A bound Docker network goes; the global network stays. Its endpoints dockerd did not
    /// delete go with the binding.
    async fn docker_unbind_network(
        &self,
        docker_id: &str,
        net_id: &str,
    ) -> Result<(), EngineError> {
        let _held = self.locks.hold(&[net_id], &[], &[docker_id]).await;
        let (_, done) = self
            .transact(|state| {
                let Some(binding) = state.docker.networks.remove(docker_id) else {
                    return Ok((Txn::new("nothing to do"), ()));
                };
                let mut txn = Txn::new(format!("unbind Docker network {docker_id}"));
                txn.persist = Batch::new().delete_record::<DockerNetworkRecord>(docker_id);
                let net = state.network_by_id(net_id).cloned();
                let leftovers: Vec<EndpointRecord> = state
                    .endpoints_of_network(net_id)
                    .filter(|e| e.node == self.node.id && e.sandbox_id.is_none())
                    .filter(|e| state.docker.endpoints.contains_key(&e.id))
                    .cloned()
                    .collect();
                if let Some(net) = &net {
                    for ep in &leftovers {
                        state.docker.endpoints.remove(&ep.id);
                        txn.persist = txn
                            .persist
                            .and(self.endpoint_removal(net, ep))
                            .delete_record::<DockerEndpointRecord>(&ep.id);
                        txn.effects.extend(self.plan_leave(state, net, None, ep));
                    }
                }
                txn.unplan = Box::new(move |state: &mut State| {
                    if let Some(net) = net {
                        for ep in leftovers {
                            state.docker.endpoints.insert(
                                ep.id.clone(),
                                DockerEndpointRecord {
                                    endpoint_id: ep.id.clone(),
                                    joined: true,
                                },
                            );
                            state.retake_endpoint(&net, &ep);
                            state.insert_endpoint(ep);
                        }
                    }
                    state
                        .docker
                        .networks
                        .insert(binding.docker_id.clone(), binding);
                });
                Ok((txn, ()))
            })
            .await?;
        done.into_result("Docker network removed")
    }
}
