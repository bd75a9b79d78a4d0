//! Dispatch from a network's driver kind to the driver, and from records to driver specs.

use std::net::IpAddr;

use drivers::bridge::BridgeDriver;
use drivers::netns::Netns;
use drivers::passive::PassiveDriver;
use drivers::{DriverError, EndpointSpec, NetworkDriver, NetworkSpec};
use ipnetwork::IpNetwork;

use crate::model::{DriverKind, EndpointRecord, NetworkRecord};

pub(super) struct Drivers {
    pub bridge: BridgeDriver,
    pub passive: PassiveDriver,
}

impl Drivers {
    pub async fn create_network(&self, net: &NetworkRecord) -> Result<(), DriverError> {
        let spec = network_spec(net);
        match net.driver {
            DriverKind::Bridge => self.bridge.create_network(&spec).await,
            DriverKind::Host | DriverKind::None => self.passive.create_network(&spec).await,
        }
    }

    pub async fn delete_network(&self, net: &NetworkRecord) -> Result<(), DriverError> {
        let spec = network_spec(net);
        match net.driver {
            DriverKind::Bridge => self.bridge.delete_network(&spec).await,
            DriverKind::Host | DriverKind::None => self.passive.delete_network(&spec).await,
        }
    }

    pub async fn join(
        &self,
        net: &NetworkRecord,
        ep: &EndpointRecord,
        sandbox: &Netns,
    ) -> Result<(), DriverError> {
        let (net_spec, ep_spec) = (network_spec(net), endpoint_spec(net, ep));
        match net.driver {
            DriverKind::Bridge => self.bridge.join(&net_spec, &ep_spec, sandbox).await,
            DriverKind::Host | DriverKind::None => {
                self.passive.join(&net_spec, &ep_spec, sandbox).await
            }
        }
    }

    pub async fn leave(&self, net: &NetworkRecord, ep: &EndpointRecord) -> Result<(), DriverError> {
        let (net_spec, ep_spec) = (network_spec(net), endpoint_spec(net, ep));
        match net.driver {
            DriverKind::Bridge => self.bridge.leave(&net_spec, &ep_spec).await,
            DriverKind::Host | DriverKind::None => self.passive.leave(&net_spec, &ep_spec).await,
        }
    }
}

pub(super) fn network_spec(net: &NetworkRecord) -> NetworkSpec {
    NetworkSpec {
        id: net.id.clone(),
        bridge: net.bridge.clone(),
        bridge_mac: bridge_mac(&net.id),
        mtu: net.mtu,
        icc: net.icc,
        internal: net.internal,
        gateways: net
            .subnets
            .iter()
            .map(|s| IpNetwork::new(s.gateway, s.subnet.prefix()).expect("valid prefix"))
            .collect(),
    }
}

pub(super) fn endpoint_spec(net: &NetworkRecord, ep: &EndpointRecord) -> EndpointSpec {
    let addresses: Vec<IpNetwork> = ep.ipv4.iter().chain(ep.ipv6.iter()).copied().collect();
    let gateways: Vec<IpAddr> = if net.internal {
        Vec::new()
    } else {
        addresses
            .iter()
            .filter_map(|a| net.subnets.iter().find(|s| s.subnet.contains(a.ip())))
            .map(|s| s.gateway)
            .collect()
    };
    EndpointSpec {
        host_ifname: ep.host_ifname.clone(),
        ifname: ep.ifname.clone(),
        mac: ep.mac.unwrap_or_default(),
        mtu: net.mtu,
        addresses,
        gateways,
        route_metric: ep.route_metric,
    }
}

/// `02:6e:` and four bytes of the network id: stable across re-creation, and never equal to a
/// container MAC (those start `02:42:` or are random).
fn bridge_mac(network_id: &str) -> [u8; 6] {
    let byte = |i: usize| {
        u8::from_str_radix(network_id.get(2 * i..2 * i + 2).unwrap_or("00"), 16).unwrap_or(0)
    };
    [0x02, 0x6e, byte(0), byte(1), byte(2), byte(3)]
}
