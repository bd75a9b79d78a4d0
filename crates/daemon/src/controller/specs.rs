//! From records to what drivers, the firewall and the DNS server are given.

use std::net::IpAddr;

use netctl_drivers::{EndpointSpec, NetworkSpec, SubnetSpec};

use crate::model::{EndpointRecord, NetworkRecord, SandboxRecord};

pub(super) fn network_spec(net: &NetworkRecord) -> NetworkSpec {
    NetworkSpec {
        id: net.id.clone(),
        name: net.name.clone(),
        mtu: net.mtu,
        internal: net.internal,
        subnets: net
            .subnets
            .iter()
            .map(|s| SubnetSpec {
                subnet: s.subnet,
                gateway: s.gateway,
            })
            .collect(),
        config: net.driver_config.clone(),
    }
}

/// The gateway of the subnet `address` is in, unless the network is internal (or the
/// driver gives no gateway).
pub(super) fn gateway_for(net: &NetworkRecord, address: IpAddr) -> Option<IpAddr> {
    if net.internal {
        return None;
    }
    net.subnets
        .iter()
        .find(|s| s.subnet.contains(address))
        .map(|s| s.gateway)
}

pub(super) fn endpoint_spec(
    net: &NetworkRecord,
    ep: &EndpointRecord,
    with_gateway: bool,
) -> EndpointSpec {
    let addresses: Vec<_> = ep.addresses().collect();
    let gateways = if with_gateway {
        addresses
            .iter()
            .filter_map(|a| gateway_for(net, a.ip()))
            .collect()
    } else {
        Vec::new()
    };
    EndpointSpec {
        id: ep.id.clone(),
        ifname: ep.ifname.clone(),
        mac: ep.mac.unwrap_or_default(),
        addresses,
        gateways,
        route_metric: ep.route_metric,
    }
}

/// The names an endpoint answers to on its network: the sandbox's name, its hostname and
/// the endpoint's aliases.
pub(super) fn endpoint_names(
    net: &NetworkRecord,
    sandbox: &SandboxRecord,
    ep: &EndpointRecord,
) -> netctl_dns::EndpointNames {
    let mut names = vec![sandbox.name.clone()];
    for name in std::iter::once(&sandbox.hostname).chain(&ep.aliases) {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.clone());
        }
    }
    // As Docker's load-balancer endpoints: nobody resolves a node's balancer.
    if !sandbox.role.is_user() {
        names.clear();
    }
    netctl_dns::EndpointNames {
        endpoint_id: ep.id.clone(),
        network_id: net.id.clone(),
        network_name: net.name.clone(),
        internal: net.internal,
        sandbox_id: sandbox.id.clone(),
        names,
        addresses: ep.addresses().map(|a| a.ip()).collect(),
    }
}
