//! Creating and removing networks.

use std::sync::Arc;

use ipnetwork::IpNetwork;
use netctl_drivers::{Driver, NetworkDefaults, NetworkSettings, DEFAULT_DRIVER};
use netctl_ipam::Scope;
use netctl_plugin_api::NetworkCreateRequest;
use netctl_store::Batch;

use super::effects::Effect;
use super::specs::network_spec;
use super::state::State;
use super::subnets::{subnet_requests, SubnetRequest};
use super::txn::Txn;
use super::Controller;
use crate::controller::error::EngineError;
use crate::ids::{new_id, now_rfc3339, valid_name};
use crate::model::{AddressScope, NetworkRecord, SubnetOwner};
use crate::persist::BatchExt;

/// Docker's networks are changed through dockerd, which would not know otherwise.
pub(super) fn docker_managed(net: &NetworkRecord) -> EngineError {
    EngineError::conflict(format!(
        "network {} is managed by Docker: use docker network commands",
        net.name
    ))
}

impl Controller {
    pub(super) fn network_defaults(&self) -> NetworkDefaults {
        NetworkDefaults {
            mtu: self.config.mtu(),
        }
    }

    /// The driver a request names (Docker's default when it names none), checked: users
    /// make networks of drivers that have no predefined one.
    fn driver_for_new_network(&self, name: Option<&str>) -> Result<&Arc<dyn Driver>, EngineError> {
        let name = name.unwrap_or(DEFAULT_DRIVER);
        let driver = self.drivers.get(name).ok_or_else(|| {
            EngineError::invalid(format!(
                "unknown network driver {name:?} (netctl has {})",
                self.drivers.names()
            ))
        })?;
        let caps = driver.capabilities();
        if caps.singleton.is_some() {
            return Err(EngineError::conflict(format!(
                "only one instance of the {name:?} network is allowed; it is predefined"
            )));
        }
        if caps.needs_cluster && self.cluster.membership().is_none() {
            return Err(EngineError::invalid(format!(
                "the {name} driver needs a cluster, and this node is in none: run `netctl \
                 cluster init` or `netctl cluster join` first"
            )));
        }
        Ok(driver)
    }

    pub async fn create_network(
        &self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkRecord, EngineError> {
        if !valid_name(&req.name) {
            return Err(EngineError::invalid(format!(
                "invalid network name {:?}: names start with a letter or digit and contain only [a-zA-Z0-9_.-]",
                req.name
            )));
        }
        let driver = self.driver_for_new_network(req.driver.as_deref())?;
        let settings = driver
            .parse_options(&req.options, &self.network_defaults())
            .map_err(EngineError::from)?;
        let owner = ipam_owner(&req)?;
        let requests = match owner {
            SubnetOwner::Dhcp => dhcp_network_check(&req, &driver.capabilities())?,
            _ => subnet_requests(&req)?,
        };
        if driver.capabilities().scope == netctl_drivers::Scope::Global {
            return self
                .create_global_network(driver.as_ref(), settings, requests, req)
                .await;
        }
        let host_routes = if requests.iter().any(|r| r.pool.subnet.is_none()) {
            self.host
                .route_destinations()
                .await
                .map_err(EngineError::from)?
        } else {
            Vec::new()
        };
        let new = NewNetwork {
            id: new_id(),
            owner,
            driver: driver.name(),
            settings,
            requests,
            host_routes,
            req,
        };
        let _held = self.locks.hold(&[], &[&new.id], &[]).await;
        let (record, _) = self
            .transact(|state| {
                self.check_claims_free(state, driver.as_ref(), &new.settings.config)?;
                new.plan(state)
            })
            .await?;
        tracing::info!(network = %record.name, driver = %record.driver, "network created");
        Ok(record)
    }

    /// The transaction that makes `record` (subnets reserved already), with `also` persisted
    /// alongside (Docker's binding of the network, say).
    pub(super) fn network_txn(record: &NetworkRecord, also: Batch) -> Txn {
        let mut txn = Txn::new(format!("create network {}", record.name));
        txn.persist = Batch::new().put_record(record).and(also.clone());
        txn.revert = Batch::new().delete_record::<NetworkRecord>(&record.id);
        for op in &also.ops {
            txn.revert = txn.revert.delete(op.key().clone());
        }
        txn.effects = vec![Effect::CreateNetwork {
            driver: record.driver.clone(),
            net: network_spec(record),
        }];
        let taken = record.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.remove_network(&taken.id);
            state.release_network_subnets(&taken);
        });
        txn
    }

    pub async fn remove_network(&self, key: &str) -> Result<(), EngineError> {
        let net = self.state.lock().await.network(key)?.clone();
        if self.is_global(&net) {
            return self.remove_global_network(net).await;
        }
        let id = net.id;
        let _held = self.locks.hold(&[], &[&id], &[]).await;
        let (name, done) = self
            .transact(|state| {
                let net = state
                    .network_by_id(&id)
                    .cloned()
                    .ok_or_else(|| EngineError::not_found(format!("network {key} not found")))?;
                self.check_removable(state, &net)?;
                Ok((self.removal_txn(state, net.clone()), net.name))
            })
            .await?;
        tracing::info!(network = %name, "network removed");
        done.into_result(format!("network {name} removed"))
    }

    fn check_removable(&self, state: &State, net: &NetworkRecord) -> Result<(), EngineError> {
        let predefined = self
            .drivers
            .get(&net.driver)
            .is_some_and(|d| d.capabilities().singleton.is_some());
        if predefined {
            // The caller's mistake, not a lack of rights: `forbidden` is for roles.
            return Err(EngineError::invalid(format!(
                "{} is a pre-defined network and cannot be removed",
                net.name
            )));
        }
        if state.is_docker_network(&net.id) {
            return Err(docker_managed(net));
        }
        let users: Vec<_> = state
            .endpoints_of_network(&net.id)
            .filter(|e| !e.balancer)
            .filter_map(|e| state.sandbox_by_id(e.sandbox_id.as_deref()?))
            .map(|s| s.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(EngineError::conflict(format!(
                "network {} has active endpoints (sandboxes: {})",
                net.name,
                users.join(", ")
            )));
        }
        Ok(())
    }

    /// Takes the network out of the state (its subnets released) and returns the
    /// transaction that deletes it.
    pub(super) fn removal_txn(&self, state: &mut State, net: NetworkRecord) -> Txn {
        state.remove_network(&net.id);
        state.release_network_subnets(&net);
        let mut txn = Txn::new(format!("remove network {}", net.name));
        txn.persist = Batch::new().delete_record::<NetworkRecord>(&net.id);
        txn.effects = vec![Effect::DeleteNetwork {
            driver: net.driver.clone(),
            net: network_spec(&net),
        }];
        txn.unplan = Box::new(move |state: &mut State| {
            state.restore_network_subnets(&net);
            state.insert_network(net);
        });
        txn
    }
}

/// Who gives the network's endpoints their addresses: netctl's pools (`default`, Docker's
/// name, or `netctl`), or the LAN's DHCP server (`dhcp`).
fn ipam_owner(req: &NetworkCreateRequest) -> Result<SubnetOwner, EngineError> {
    if let Some(key) = req.ipam.as_ref().and_then(|i| i.options.keys().next()) {
        return Err(EngineError::invalid(format!(
            "unknown IPAM option {key:?}: netctl's IPAM drivers take none"
        )));
    }
    match req.ipam.as_ref().and_then(|i| i.driver.as_deref()) {
        None | Some("" | "default" | "netctl") => Ok(SubnetOwner::Network),
        Some("dhcp") => Ok(SubnetOwner::Dhcp),
        Some(other) => Err(EngineError::invalid(format!(
            "unknown IPAM driver {other:?} (netctl has default and dhcp)"
        ))),
    }
}

/// A DHCP network takes its subnets from the server: none may be given, and its driver must
/// give endpoints an interface of their own on a local network.
fn dhcp_network_check(
    req: &NetworkCreateRequest,
    caps: &netctl_drivers::Capabilities,
) -> Result<Vec<SubnetRequest>, EngineError> {
    let given = req.ipam.as_ref().is_some_and(|i| !i.config.is_empty());
    if given {
        return Err(EngineError::invalid(
            "a DHCP network's subnets, gateways and ranges are its server's: --subnet, \
             --gateway, --ip-range and --aux-address cannot be given with --ipam-driver dhcp",
        ));
    }
    if !caps.addresses
        || caps.scope != netctl_drivers::Scope::Local
        || caps.exits_via_gateway_bridge
    {
        return Err(EngineError::invalid(
            "the dhcp IPAM driver serves local networks whose endpoints have an interface of \
             their own (--driver bridge)",
        ));
    }
    Ok(Vec::new())
}

/// A network asked for, checked by its driver, not yet planned.
struct NewNetwork {
    id: String,
    owner: SubnetOwner,
    driver: &'static str,
    settings: NetworkSettings,
    requests: Vec<SubnetRequest>,
    host_routes: Vec<IpNetwork>,
    req: NetworkCreateRequest,
}

impl NewNetwork {
    fn plan(self, state: &mut State) -> Result<(Txn, NetworkRecord), EngineError> {
        if state.network_named(&self.req.name).is_some() {
            return Err(EngineError::conflict(format!(
                "network with name {} already exists",
                self.req.name
            )));
        }
        let subnets = state.reserve_subnets(Scope::Local, &self.requests, &self.host_routes)?;
        let record = NetworkRecord {
            id: self.id,
            name: self.req.name,
            driver: self.driver.to_string(),
            created: now_rfc3339(),
            address_scope: AddressScope::Local,
            mtu: self.settings.mtu,
            internal: self.req.internal || self.settings.internal,
            ipv6: self.req.enable_ipv6,
            subnets,
            subnet_owner: self.owner,
            options: self.req.options,
            driver_config: self.settings.config,
            labels: self.req.labels,
        };
        state.insert_network(record.clone());
        Ok((Controller::network_txn(&record, Batch::new()), record))
    }
}

impl Controller {
    /// Refuses a network that claims a host object another network holds (a bridge's
    /// parent interface).
    pub(super) fn check_claims_free(
        &self,
        state: &State,
        driver: &dyn Driver,
        config: &serde_json::Value,
    ) -> Result<(), EngineError> {
        for claim in driver.exclusive_claims(config) {
            let holder = state.networks().find(|n| {
                self.drivers
                    .get(&n.driver)
                    .is_some_and(|d| d.exclusive_claims(&n.driver_config).contains(&claim))
            });
            if let Some(holder) = holder {
                return Err(EngineError::conflict(format!(
                    "{claim} is already used by network {}",
                    holder.name
                )));
            }
        }
        Ok(())
    }
}
