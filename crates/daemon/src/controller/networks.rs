//! Creating and removing networks.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipam::{PoolRequest, Scope};
use ipnetwork::IpNetwork;
use plugin_api::{ApiError, IpamConfig, NetworkCreateRequest};

use super::errors::{from_daemon, from_driver, from_ipam};
use super::state::State;
use super::Controller;
use crate::config::check_mtu;
use crate::ids::{new_id, now_rfc3339, valid_name};
use crate::model::{DriverKind, NetworkRecord, SubnetRecord};
use crate::store::Change;

/// Driver options of a bridge network, by netctl's name or Docker's.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct BridgeOptions {
    pub mtu: u32,
    pub icc: bool,
    pub internal: bool,
}

const OPT_MTU: [&str; 2] = ["mtu", "com.docker.network.driver.mtu"];
const OPT_ICC: [&str; 2] = ["icc", "com.docker.network.bridge.enable_icc"];
const OPT_INTERNAL: [&str; 1] = ["internal"];
/// Reserved: a local network (a Docker one, say) standing for a netctl global network.
const OPT_OVERLAY: &str = "netctl.overlay";

impl BridgeOptions {
    pub(super) fn parse(
        options: &BTreeMap<String, String>,
        default_mtu: u32,
    ) -> Result<Self, ApiError> {
        let mut parsed = Self {
            mtu: default_mtu,
            icc: true,
            internal: false,
        };
        for (key, value) in options {
            let key = key.as_str();
            if OPT_MTU.contains(&key) {
                parsed.mtu = value
                    .parse()
                    .map_err(|_| ApiError::invalid(format!("invalid MTU {value:?}")))?;
                check_mtu(parsed.mtu).map_err(ApiError::invalid)?;
            } else if OPT_ICC.contains(&key) {
                parsed.icc = parse_bool(key, value)?;
            } else if OPT_INTERNAL.contains(&key) {
                parsed.internal = parse_bool(key, value)?;
            } else if key == OPT_OVERLAY {
                return Err(ApiError::invalid(format!(
                    "{OPT_OVERLAY}: binding a network to a netctl overlay is not supported by                      this version"
                )));
            } else {
                return Err(ApiError::invalid(format!(
                    "unknown option {key:?} for the bridge driver (known: mtu, icc, internal, \
                     com.docker.network.driver.mtu, com.docker.network.bridge.enable_icc)"
                )));
            }
        }
        Ok(parsed)
    }
}

/// Docker's networks are changed through dockerd, which would not know otherwise.
pub(super) fn docker_managed(net: &NetworkRecord) -> ApiError {
    ApiError::conflict(format!(
        "network {} is managed by Docker: use docker network commands",
        net.name
    ))
}

fn parse_bool(key: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ApiError::invalid(format!(
            "option {key}: {value:?} is not a boolean (true or false)"
        ))),
    }
}

/// One subnet as asked for, parsed but not yet reserved.
#[derive(Debug, Default)]
struct SubnetRequest {
    pool: PoolRequest,
    gateway: Option<IpAddr>,
}

fn parse_ip<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid {what} {text:?}")))
}

fn parse_subnet_config(config: &IpamConfig) -> Result<SubnetRequest, ApiError> {
    let subnet: Option<IpNetwork> = config
        .subnet
        .as_deref()
        .map(|s| parse_ip("subnet (expected CIDR such as 172.30.0.0/24)", s))
        .transpose()?;
    let Some(subnet) = subnet else {
        if config.gateway.is_some() || config.ip_range.is_some() {
            return Err(ApiError::invalid("a gateway or ip range needs a subnet"));
        }
        return Ok(SubnetRequest::default());
    };
    let mut aux_addresses = BTreeMap::new();
    for (name, address) in &config.auxiliary_addresses {
        aux_addresses.insert(name.clone(), parse_ip("auxiliary address", address)?);
    }
    Ok(SubnetRequest {
        pool: PoolRequest {
            subnet: Some(subnet),
            ip_range: config
                .ip_range
                .as_deref()
                .map(|r| parse_ip("ip range", r))
                .transpose()?,
            aux_addresses,
            v6: subnet.is_ipv6(),
        },
        gateway: config
            .gateway
            .as_deref()
            .map(|g| parse_ip("gateway", g))
            .transpose()?,
    })
}

/// The subnets to reserve: those asked for, plus an automatic IPv4 one when none was given,
/// and an automatic IPv6 one for `--ipv6` without an IPv6 subnet.
fn subnet_requests(req: &NetworkCreateRequest) -> Result<Vec<SubnetRequest>, ApiError> {
    let configs = req
        .ipam
        .as_ref()
        .map(|i| i.config.as_slice())
        .unwrap_or(&[]);
    let mut requests = configs
        .iter()
        .map(parse_subnet_config)
        .collect::<Result<Vec<_>, _>>()?;
    let has = |v6: bool, r: &[SubnetRequest]| {
        r.iter().any(|s| s.pool.subnet.is_some() && s.pool.v6 == v6)
    };
    if requests.iter().any(|s| s.pool.v6) && !req.enable_ipv6 {
        return Err(ApiError::invalid(
            "an IPv6 subnet was given but IPv6 is not enabled (add --ipv6)",
        ));
    }
    requests.retain(|s| s.pool.subnet.is_some());
    if !has(false, &requests) {
        requests.insert(0, SubnetRequest::default());
    }
    if req.enable_ipv6 && !has(true, &requests) {
        requests.push(SubnetRequest {
            pool: PoolRequest {
                v6: true,
                ..Default::default()
            },
            gateway: None,
        });
    }
    Ok(requests)
}

impl State {
    /// Reserves every subnet and its gateway, or nothing at all.
    fn reserve_subnets(
        &mut self,
        scope: Scope,
        requests: &[SubnetRequest],
        host_routes: &[IpNetwork],
    ) -> Result<Vec<SubnetRecord>, ApiError> {
        let mut reserved: Vec<SubnetRecord> = Vec::new();
        for request in requests {
            match self.reserve_subnet(scope, request, host_routes) {
                Ok(record) => reserved.push(record),
                Err(e) => {
                    self.release_subnets(scope, &reserved);
                    return Err(e);
                }
            }
        }
        Ok(reserved)
    }

    fn reserve_subnet(
        &mut self,
        scope: Scope,
        request: &SubnetRequest,
        host_routes: &[IpNetwork],
    ) -> Result<SubnetRecord, ApiError> {
        let space = self.ipam.space_mut(scope);
        let subnet = space
            .request_pool(&request.pool, host_routes)
            .map_err(from_ipam)?;
        let gateway = match request.gateway {
            Some(gw) if !(gw.is_ipv6() == subnet.is_ipv6() && subnet.contains(gw)) => {
                Err(ipam::IpamError::GatewayOutsideSubnet {
                    gateway: gw,
                    subnet,
                })
            }
            preferred => space.allocate(&subnet, preferred),
        };
        let gateway = match gateway {
            Ok(gw) => gw,
            Err(e) => {
                let _ = space.release_pool(&subnet);
                return Err(from_ipam(e));
            }
        };
        Ok(SubnetRecord {
            subnet,
            gateway,
            ip_range: request.pool.ip_range,
            aux_addresses: request.pool.aux_addresses.clone(),
            explicit: request.gateway.is_some(),
        })
    }

    /// A Docker network's subnets are its IPAM driver's to release (ReleasePool).
    pub(super) fn release_network_subnets(&mut self, net: &NetworkRecord) {
        if net.docker_id.is_none() {
            self.release_subnets(net.scope, &net.subnets);
        }
    }

    pub(super) fn release_subnets(&mut self, scope: Scope, subnets: &[SubnetRecord]) {
        for s in subnets {
            let _ = self.ipam.space_mut(scope).release_pool(&s.subnet);
        }
    }
}

impl Controller {
    pub async fn create_network(
        &self,
        req: NetworkCreateRequest,
    ) -> Result<NetworkRecord, ApiError> {
        let mut state = self.state.lock().await;
        if !valid_name(&req.name) {
            return Err(ApiError::invalid(format!(
                "invalid network name {:?}: names start with a letter or digit and contain only [a-zA-Z0-9_.-]",
                req.name
            )));
        }
        if state.network_by_name(&req.name).is_some() {
            return Err(ApiError::conflict(format!(
                "network with name {} already exists",
                req.name
            )));
        }
        let driver_name = req.driver.as_deref().unwrap_or("bridge");
        let driver = DriverKind::parse(driver_name).ok_or_else(|| {
            ApiError::invalid(format!(
                "unknown network driver {driver_name:?} (netctl has bridge, host and none)"
            ))
        })?;
        if driver != DriverKind::Bridge {
            return Err(ApiError::conflict(format!(
                "only one instance of the {driver_name:?} network is allowed; it is predefined"
            )));
        }
        let options = BridgeOptions::parse(&req.options, self.config.mtu())?;
        let requests = subnet_requests(&req)?;
        let host_routes = if requests.iter().any(|r| r.pool.subnet.is_none()) {
            self.host.route_destinations().await.map_err(from_driver)?
        } else {
            Vec::new()
        };
        let subnets = state.reserve_subnets(Scope::Local, &requests, &host_routes)?;

        let id = new_id();
        let record = NetworkRecord {
            bridge: format!("{}{}", ::drivers::BRIDGE_PREFIX, &id[..12]),
            id,
            name: req.name,
            driver,
            created: now_rfc3339(),
            mtu: options.mtu,
            icc: options.icc,
            internal: req.internal || options.internal,
            ipv6: req.enable_ipv6,
            subnets,
            scope: Scope::Local,
            options: req.options,
            labels: req.labels,
            builtin: false,
            docker_id: None,
        };
        self.install_network(&mut state, record).await
    }

    /// Persists the network, then builds it in the kernel; on failure nothing remains.
    pub(super) async fn install_network(
        &self,
        state: &mut State,
        record: NetworkRecord,
    ) -> Result<NetworkRecord, ApiError> {
        if let Err(e) = self.store.apply(&[Change::PutNetwork(&record)]) {
            state.release_network_subnets(&record);
            return Err(from_daemon(e));
        }
        if let Err(e) = self.drivers.create_network(&record).await {
            tracing::warn!(network = %record.name, error = %e, "creating network failed; rolling back");
            let _ = self.drivers.delete_network(&record).await;
            let _ = self.store.apply(&[Change::DeleteNetwork(&record.id)]);
            state.release_network_subnets(&record);
            return Err(from_driver(e));
        }
        tracing::info!(network = %record.name, bridge = %record.bridge, "network created");
        state.networks.insert(record.id.clone(), record.clone());
        Ok(record)
    }

    pub async fn remove_network(&self, key: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let net = state.network(key)?.clone();
        if net.builtin {
            return Err(ApiError::new(
                plugin_api::ErrorCode::Forbidden,
                format!(
                    "{} is a pre-defined network and cannot be removed",
                    net.name
                ),
            ));
        }
        if net.docker_id.is_some() {
            return Err(docker_managed(&net));
        }
        let users: Vec<_> = state
            .endpoints_of_network(&net.id)
            .filter_map(|e| state.sandboxes.get(&e.sandbox_id))
            .map(|s| s.record.name.clone())
            .collect();
        if !users.is_empty() {
            return Err(ApiError::conflict(format!(
                "network {} has active endpoints (sandboxes: {})",
                net.name,
                users.join(", ")
            )));
        }
        self.store
            .apply(&[Change::DeleteNetwork(&net.id)])
            .map_err(from_daemon)?;
        state.networks.remove(&net.id);
        state.release_network_subnets(&net);
        self.drivers.delete_network(&net).await.map_err(|e| {
            ApiError::internal(format!(
                "network {} removed, but cleaning up its kernel objects failed (retried at the \
                 daemon's next start): {e}",
                net.name
            ))
        })?;
        tracing::info!(network = %net.name, "network removed");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn options_take_netctl_and_docker_names() {
        let o = BridgeOptions::parse(&opts(&[("mtu", "1400"), ("icc", "false")]), 1500).unwrap();
        assert_eq!((o.mtu, o.icc), (1400, false));
        let o = BridgeOptions::parse(
            &opts(&[
                ("com.docker.network.driver.mtu", "9000"),
                ("com.docker.network.bridge.enable_icc", "true"),
            ]),
            1500,
        )
        .unwrap();
        assert_eq!((o.mtu, o.icc), (9000, true));
        assert!(BridgeOptions::parse(&opts(&[("mtu", "20")]), 1500).is_err());
        assert!(BridgeOptions::parse(&opts(&[("icc", "maybe")]), 1500).is_err());
        let e = BridgeOptions::parse(&opts(&[("colour", "blue")]), 1500).unwrap_err();
        assert!(e.message.contains("unknown option \"colour\""));
    }

    #[test]
    fn subnet_requests_add_automatic_ones() {
        let req = NetworkCreateRequest {
            name: "n".into(),
            enable_ipv6: true,
            ..Default::default()
        };
        let r = subnet_requests(&req).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r[0].pool.subnet.is_none() && !r[0].pool.v6);
        assert!(r[1].pool.subnet.is_none() && r[1].pool.v6);
    }

    #[test]
    fn ipv6_subnet_needs_ipv6_enabled() {
        let req = NetworkCreateRequest {
            name: "n".into(),
            ipam: Some(plugin_api::IpamRequest {
                config: vec![IpamConfig {
                    subnet: Some("fd00:1::/64".into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(subnet_requests(&req)
            .unwrap_err()
            .message
            .contains("--ipv6"));
    }

    #[test]
    fn bad_addresses_name_the_field() {
        let e = parse_subnet_config(&IpamConfig {
            subnet: Some("172.30.0.0/33".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.message.contains("invalid subnet"), "{}", e.message);
        let e = parse_subnet_config(&IpamConfig {
            subnet: Some("172.30.0.0/24".into()),
            gateway: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.message.contains("invalid gateway"), "{}", e.message);
    }
}
