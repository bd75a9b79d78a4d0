//! A network's subnets: parsed from the request, reserved in an address space, released
//! with the network, and reserved again (after a restart, or an undone removal).

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netctl_ipam::{PoolRequest, Scope};
use netctl_plugin_api::{IpamConfig, NetworkCreateRequest};

use super::state::State;
use crate::controller::error::EngineError;
use crate::model::{NetworkRecord, SubnetOwner, SubnetRecord};

/// One subnet as asked for, parsed but not yet reserved.
#[derive(Debug, Clone, Default)]
pub(super) struct SubnetRequest {
    pub pool: PoolRequest,
    pub gateway: Option<IpAddr>,
}

fn parse_ip<T: std::str::FromStr>(what: &str, text: &str) -> Result<T, EngineError> {
    text.trim()
        .parse()
        .map_err(|_| EngineError::invalid(format!("invalid {what} {text:?}")))
}

fn parse_subnet_config(config: &IpamConfig) -> Result<SubnetRequest, EngineError> {
    let subnet: Option<IpNetwork> = config
        .subnet
        .as_deref()
        .map(|s| parse_ip("subnet (expected CIDR such as 172.30.0.0/24)", s))
        .transpose()?;
    let Some(subnet) = subnet else {
        if config.gateway.is_some() || config.ip_range.is_some() {
            return Err(EngineError::invalid("a gateway or ip range needs a subnet"));
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
pub(super) fn subnet_requests(
    req: &NetworkCreateRequest,
) -> Result<Vec<SubnetRequest>, EngineError> {
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
        return Err(EngineError::invalid(
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
    pub(super) fn reserve_subnets(
        &mut self,
        scope: Scope,
        requests: &[SubnetRequest],
        host_routes: &[IpNetwork],
    ) -> Result<Vec<SubnetRecord>, EngineError> {
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
    ) -> Result<SubnetRecord, EngineError> {
        let space = self.ipam.space_mut(scope);
        let subnet = space
            .request_pool(&request.pool, host_routes)
            .map_err(EngineError::from)?;
        let gateway = match request.gateway {
            Some(gw) if !(gw.is_ipv6() == subnet.is_ipv6() && subnet.contains(gw)) => {
                Err(netctl_ipam::IpamError::GatewayOutsideSubnet {
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
                return Err(EngineError::from(e));
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

    /// Gives back the subnets the network reserved (an external IPAM driver's are that
    /// driver's to release: Docker's ReleasePool).
    pub(super) fn release_network_subnets(&mut self, net: &NetworkRecord) {
        if net.subnet_owner == SubnetOwner::Network {
            self.release_subnets(net.address_scope.into(), &net.subnets);
        }
    }

    /// Reserves the network's subnets and gateways again, as they were.
    pub(super) fn restore_network_subnets(&mut self, net: &NetworkRecord) {
        if net.subnet_owner != SubnetOwner::Network {
            return;
        }
        for s in &net.subnets {
            let request = PoolRequest {
                subnet: Some(s.subnet),
                ip_range: s.ip_range,
                aux_addresses: s.aux_addresses.clone(),
                v6: s.subnet.is_ipv6(),
            };
            let space = self.ipam.space_mut(net.address_scope.into());
            let restored = space
                .request_pool(&request, &[])
                .and_then(|subnet| space.allocate(&subnet, Some(s.gateway)));
            if let Err(e) = restored {
                tracing::error!(network = %net.name, subnet = %s.subnet, error = %e, "cannot restore pool");
            }
        }
    }

    pub(super) fn release_subnets(&mut self, scope: Scope, subnets: &[SubnetRecord]) {
        for s in subnets {
            let _ = self.ipam.space_mut(scope).release_pool(&s.subnet);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ipam: Some(netctl_plugin_api::IpamRequest {
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
            .to_string()
            .contains("--ipv6"));
    }

    #[test]
    fn bad_addresses_name_the_field() {
        let e = parse_subnet_config(&IpamConfig {
            subnet: Some("172.30.0.0/33".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid subnet"),
            "{}",
            e.to_string()
        );
        let e = parse_subnet_config(&IpamConfig {
            subnet: Some("172.30.0.0/24".into()),
            gateway: Some("nope".into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            e.to_string().contains("invalid gateway"),
            "{}",
            e.to_string()
        );
    }
}
