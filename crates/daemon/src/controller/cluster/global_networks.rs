//! Global networks: made and removed by managers, in the cluster store, each with the
//! cluster-wide unique keys it needs (name, VNI, subnets) taken in the same transaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use netctl_drivers::{ClusterDriver, Driver, NetworkRole, NetworkSettings};
use netctl_ipam::Scope;
use netctl_plugin_api::NetworkCreateRequest;
use netctl_store::{Batch, Key};

use super::super::effects::Effect;
use super::super::specs::network_spec;
use super::super::state::State;
use super::super::subnets::SubnetRequest;
use super::super::txn::Txn;
use super::super::Controller;
use crate::cluster_store::claims::{
    ingress_key, network_name_key, subnet_key, vni_key, FIRST_AUTO_VNI, MAX_VNI,
};
use crate::cluster_store::members::Role;
use crate::controller::error::{EngineError, ErrorKind};
use crate::ids::{new_id, now_rfc3339};
use crate::model::{AddressScope, EndpointRecord, NetworkRecord, PublishMode, SubnetOwner};
use crate::persist::BatchExt;

impl Controller {
    /// Whether the network is the cluster's (its record lives in the cluster store).
    pub(in crate::controller) fn is_global(&self, net: &NetworkRecord) -> bool {
        self.drivers
            .get(&net.driver)
            .is_some_and(|d| d.capabilities().needs_cluster)
    }

    /// The VNIs of the cluster's networks known here.
    fn vnis_in_use(&self, state: &State) -> BTreeSet<u32> {
        state
            .networks()
            .filter(|n| self.is_global(n))
            .map(|n| self.vni(n))
            .collect()
    }

    /// Refuses a change to global networks on a node that is not a manager.
    pub(in crate::controller) async fn require_manager(
        &self,
        what: &str,
    ) -> Result<(), EngineError> {
        self.require_manager_to(what, "change global networks")
            .await
    }

    /// Refuses `what` (which would `change`, as the refusal says) on a node that is not a
    /// manager.
    pub(in crate::controller) async fn require_manager_to(
        &self,
        what: &str,
        change: &str,
    ) -> Result<(), EngineError> {
        let membership = self
            .cluster
            .membership()
            .ok_or_else(super::not_in_cluster)?;
        let state = self.state.lock().await;
        let role = state.global.nodes.get(&self.node.id).map(|n| n.role);
        if role != Some(Role::Manager) {
            return Err(EngineError::new(
                ErrorKind::Forbidden,
                format!(
                    "{what}: only managers {change} (this node is a {} of cluster {})",
                    role.map_or("node", |r| r.name()),
                    membership.cluster_id
                ),
            ));
        }
        Ok(())
    }

    pub(in crate::controller) async fn create_global_network(
        &self,
        driver: &dyn Driver,
        settings: NetworkSettings,
        requests: Vec<SubnetRequest>,
        req: NetworkCreateRequest,
    ) -> Result<NetworkRecord, EngineError> {
        self.require_manager(&format!("network create {}", req.name))
            .await?;
        self.cluster.store()?;
        let cluster_driver = self
            .drivers
            .cluster_driver(driver.name())
            .cloned()
            .ok_or_else(|| {
                EngineError::internal(format!("{} is not a cluster-wide driver", driver.name()))
            })?;
        let requested_vni = cluster_driver.vni(&settings.config);
        let id = new_id();
        let _held = self.locks.hold(&[], &[&id], &[]).await;
        // VNIs lost to other nodes in this request's races.
        let mut lost_vnis: BTreeSet<u32> = BTreeSet::new();
        let lost = parking_lot::Mutex::new(&mut lost_vnis);
        let (record, _) = self
            .transact_claiming(
                |state| {
                    let lost = lost.lock();
                    let plan = GlobalNetwork {
                        id: id.clone(),
                        driver: cluster_driver.clone(),
                        settings: settings.clone(),
                        requests: requests.clone(),
                        req: req.clone(),
                        vni: requested_vni,
                        ingress: driver.capabilities().role == NetworkRole::Ingress,
                        vnis_in_use: self.vnis_in_use(state),
                    };
                    plan.plan(state, &lost)
                },
                |_state, key| {
                    if key.kind == "network.ingress" {
                        return Err(ingress_exists("made meanwhile by another manager"));
                    }
                    taken(key, &req.name, requested_vni, &requests)?;
                    if key.kind == "vni" {
                        if let Ok(v) = key.id.parse() {
                            lost.lock().insert(v);
                        }
                    }
                    Ok(())
                },
            )
            .await?;
        tracing::info!(network = %record.name, driver = %record.driver, vni = self.vni(&record), "global network created");
        Ok(record)
    }

    pub(in crate::controller) async fn remove_global_network(
        &self,
        net: NetworkRecord,
    ) -> Result<(), EngineError> {
        self.require_manager(&format!("network rm {}", net.name))
            .await?;
        let _held = self.locks.hold(&[], &[&net.id], &[]).await;
        let (name, done) = self
            .transact(|state| {
                let net = state.network_by_id(&net.id).cloned().ok_or_else(|| {
                    EngineError::not_found(format!("network {} not found", net.name))
                })?;
                let ingress = self.role(&net) == NetworkRole::Ingress;
                in_use_anywhere(state, &net, ingress)?;
                let mut txn = Txn::new(format!("remove network {}", net.name));
                txn.persist = Batch::new()
                    .delete_global(&net)
                    .delete(vni_key(self.vni(&net)))
                    .delete(network_name_key(&net.name));
                if ingress {
                    txn.persist = txn.persist.delete(ingress_key());
                }
                for s in &net.subnets {
                    txn.persist = txn.persist.clone().delete(subnet_key(s.subnet));
                }
                // The nodes' balancers go with it: each node unplugs its own when it
                // mirrors the removal; this node's are unplugged here.
                let balancers: Vec<EndpointRecord> = state
                    .endpoints_of_network(&net.id)
                    .filter(|e| e.balancer)
                    .cloned()
                    .collect();
                for ep in &balancers {
                    for op in self.endpoint_removal(&net, ep).ops {
                        txn.persist.ops.push(op);
                    }
                    if ep.node == self.node.id {
                        let sandbox = state.sandbox_of(ep).cloned();
                        let leave = self.plan_leave(state, &net, sandbox.as_ref(), ep);
                        txn.effects.extend(leave);
                    } else {
                        state.remove_endpoint(&ep.id);
                        state.release_endpoint(&net, ep);
                    }
                }
                state.remove_network(&net.id);
                state.release_network_subnets(&net);
                txn.effects.push(Effect::DeleteNetwork {
                    driver: net.driver.clone(),
                    net: network_spec(&net),
                });
                let name = net.name.clone();
                txn.unplan = Box::new(move |state: &mut State| {
                    state.restore_network_subnets(&net);
                    for ep in &balancers {
                        state.retake_endpoint(&net, ep);
                        state.insert_endpoint(ep.clone());
                    }
                    state.insert_network(net);
                });
                Ok((txn, name))
            })
            .await?;
        tracing::info!(network = %name, "global network removed");
        done.into_result(format!("network {name} removed"))
    }
}

/// A refusal for a key another node holds, or `Ok` when picking again may do (a VNI or a
/// subnet this node chose, which the other node's network, once mirrored, rules out).
fn taken(
    key: &Key,
    name: &str,
    requested_vni: u32,
    requests: &[SubnetRequest],
) -> Result<(), EngineError> {
    let asked_subnet = |id: &str| {
        requests
            .iter()
            .any(|r| r.pool.subnet.is_some_and(|s| s.to_string() == id))
    };
    match key.kind.as_str() {
        "network.name" => Err(EngineError::conflict(format!(
            "network with name {name} already exists"
        ))),
        "vni" if requested_vni != 0 => Err(EngineError::conflict(format!(
            "vxlan-id {requested_vni} is in use by another network"
        ))),
        "subnet" if asked_subnet(&key.id) => Err(EngineError::conflict(format!(
            "subnet {} is in use by another global network",
            key.id
        ))),
        _ => Ok(()),
    }
}

/// Endpoints on any node keep a global network.
fn in_use_anywhere(state: &State, net: &NetworkRecord, ingress: bool) -> Result<(), EngineError> {
    let mut services: Vec<&str> = state
        .services_on(&net.id)
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    if ingress {
        services.extend(
            state
                .global
                .services
                .values()
                .filter(|s| s.ports.iter().any(|p| p.mode == PublishMode::Ingress))
                .map(|s| s.name.as_str()),
        );
    }
    if !services.is_empty() {
        services.sort();
        return Err(EngineError::conflict(format!(
            "network {} is used by service(s) {}: remove them first",
            net.name,
            services.join(", ")
        )));
    }
    let mut users: Vec<String> = state
        .endpoints_of_network(&net.id)
        .filter(|e| !e.balancer)
        .map(|e| endpoint_label(state, e))
        .collect();
    if users.is_empty() {
        return Ok(());
    }
    users.sort();
    Err(EngineError::conflict(format!(
        "network {} has active endpoints ({})",
        net.name,
        users.join(", ")
    )))
}

/// `web on node-2`.
pub(in crate::controller) fn endpoint_label(state: &State, ep: &EndpointRecord) -> String {
    let name = ep
        .names
        .first()
        .cloned()
        .or_else(|| {
            let sandbox = state.sandbox_by_id(ep.sandbox_id.as_deref()?)?;
            Some(sandbox.name.clone())
        })
        .unwrap_or_else(|| ep.id[..12.min(ep.id.len())].to_string());
    let node = state
        .global
        .nodes
        .get(&ep.node)
        .map_or(ep.node.clone(), |n| n.hostname.clone());
    format!("{name} on {node}")
}

/// A global network asked for, not yet planned.
struct GlobalNetwork {
    id: String,
    driver: Arc<dyn ClusterDriver>,
    settings: NetworkSettings,
    requests: Vec<SubnetRequest>,
    req: NetworkCreateRequest,
    /// Asked for with `-o vxlan-id`; 0 for the next free one.
    vni: u32,
    /// The cluster's ingress network, of which there is one.
    ingress: bool,
    /// The VNIs of the networks known here.
    vnis_in_use: BTreeSet<u32>,
}

fn ingress_exists(name: &str) -> EngineError {
    EngineError::conflict(format!(
        "the cluster has an ingress network already ({name}): remove it first, which is \
         allowed while no service publishes through it"
    ))
}

impl GlobalNetwork {
    fn plan(
        self,
        state: &mut State,
        lost_vnis: &BTreeSet<u32>,
    ) -> Result<(Txn, NetworkRecord), EngineError> {
        if state.network_named(&self.req.name).is_some() {
            return Err(EngineError::conflict(format!(
                "network with name {} already exists",
                self.req.name
            )));
        }
        if self.ingress {
            if let Some(other) = state.networks().find(|n| n.driver == self.driver.name()) {
                return Err(ingress_exists(&other.name));
            }
        }
        let vni = match self.vni {
            0 => free_vni(&self.vnis_in_use, lost_vnis)?,
            asked => {
                if self.vnis_in_use.contains(&asked) {
                    return Err(EngineError::conflict(format!(
                        "vxlan-id {asked} is in use by another network"
                    )));
                }
                asked
            }
        };
        // The cluster's address space: a node's own routes say nothing about other nodes.
        let subnets = state.reserve_subnets(Scope::Global, &self.requests, &[])?;
        let driver_config = self.driver.with_vni(&self.settings.config, vni);
        let record = NetworkRecord {
            id: self.id,
            name: self.req.name,
            driver: self.driver.name().to_string(),
            created: now_rfc3339(),
            address_scope: AddressScope::Global,
            mtu: self.settings.mtu,
            internal: self.req.internal || self.settings.internal,
            ipv6: self.req.enable_ipv6,
            subnets,
            subnet_owner: SubnetOwner::Network,
            options: self.req.options,
            driver_config,
            labels: self.req.labels,
        };
        state.insert_network(record.clone());
        let mut txn = Txn::new(format!("create network {}", record.name));
        let mut claims = Batch::new()
            .create(vni_key(vni), record.id.clone().into_bytes())
            .create(
                network_name_key(&record.name),
                record.id.clone().into_bytes(),
            );
        for s in &record.subnets {
            claims = claims.create(subnet_key(s.subnet), record.id.clone().into_bytes());
        }
        if self.ingress {
            claims = claims.create(ingress_key(), record.id.clone().into_bytes());
        }
        let mut revert = Batch::new().delete_global(&record);
        for op in &claims.ops {
            revert = revert.delete(op.key().clone());
        }
        txn.persist = claims.put_global(&record);
        txn.revert = revert;
        txn.effects = vec![Effect::CreateNetwork {
            driver: record.driver.clone(),
            net: network_spec(&record),
        }];
        let taken = record.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.remove_network(&taken.id);
            state.release_network_subnets(&taken);
        });
        Ok((txn, record))
    }
}

/// The lowest VNI from [`FIRST_AUTO_VNI`] no known network has and no race was lost for.
fn free_vni(used: &BTreeSet<u32>, lost: &BTreeSet<u32>) -> Result<u32, EngineError> {
    (FIRST_AUTO_VNI..=MAX_VNI)
        .find(|v| !used.contains(v) && !lost.contains(v))
        .ok_or_else(|| EngineError::new(ErrorKind::Exhausted, "no free VXLAN id left"))
}
