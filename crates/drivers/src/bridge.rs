//! The bridge driver: one Linux bridge per network, one veth per endpoint.

use crate::firewall::{Firewall, FirewallNetwork};
use crate::netlink::Netlink;
use crate::netns::Netns;
use crate::{sysctl, DriverError, EndpointSpec, NetworkDriver, NetworkSpec};

/// Works in the namespace its netlink connection was opened in (the daemon's).
#[derive(Debug, Clone)]
pub struct BridgeDriver {
    host: Netlink,
    firewall: Firewall,
    /// Turn on IP forwarding where a network needs it (daemon.json `ip-forward`).
    manage_forwarding: bool,
}

impl BridgeDriver {
    pub fn new(host: Netlink, firewall: Firewall, manage_forwarding: bool) -> Self {
        Self {
            host,
            firewall,
            manage_forwarding,
        }
    }

    /// The network's kernel objects without its firewall elements (reconcile rebuilds the
    /// whole table at once): `ip link add … type bridge`, `ip addr replace GATEWAY dev BRIDGE`.
    pub async fn ensure_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        let index = self.ensure_bridge(net).await?;
        for gateway in &net.gateways {
            self.host.replace_address(index, *gateway).await?;
        }
        if self.manage_forwarding {
            sysctl::enable_forwarding(net.gateways.iter().any(|g| g.is_ipv6()))?;
        }
        Ok(())
    }

    async fn ensure_bridge(&self, net: &NetworkSpec) -> Result<u32, DriverError> {
        // Bridged traffic crosses netfilter only where it has to: ICC off needs the forward
        // hook to see frames between ports of the same bridge.
        let filter_bridged = !net.icc;
        match self.host.link_by_name(&net.bridge).await? {
            Some(link) => {
                self.host.set_bridge(link.index, filter_bridged).await?;
                Ok(link.index)
            }
            None => {
                self.host
                    .add_bridge(&net.bridge, net.bridge_mac, net.mtu, filter_bridged)
                    .await
            }
        }
    }

    async fn bridge_index(&self, net: &NetworkSpec) -> Result<u32, DriverError> {
        self.host
            .link_by_name(&net.bridge)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| DriverError::LinkNotFound(net.bridge.clone()))
    }
}

impl NetworkDriver for BridgeDriver {
    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.ensure_network(net).await?;
        self.firewall.add_network(&FirewallNetwork::from(net)).await
    }

    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        let mut errors = Vec::new();
        if let Err(e) = self.host.delete_link_by_name(&net.bridge).await {
            errors.push(e);
        }
        if let Err(e) = self
            .firewall
            .remove_network(&FirewallNetwork::from(net))
            .await
        {
            errors.push(e);
        }
        DriverError::collect(errors)
    }

    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        sandbox: &Netns,
    ) -> Result<(), DriverError> {
        let bridge = self.bridge_index(net).await?;
        let port = match self.host.link_by_name(&ep.host_ifname).await? {
            Some(link) => {
                // The bridge may have been re-created behind the port's back.
                if link.controller != Some(bridge) || !link.up {
                    self.host.set_controller(link.index, bridge).await?;
                }
                link.index
            }
            None => {
                self.host
                    .add_veth_into_namespace(
                        &ep.host_ifname,
                        bridge,
                        &ep.ifname,
                        sandbox.raw_fd(),
                        ep.mac,
                        ep.mtu,
                    )
                    .await?
            }
        };
        self.host.set_hairpin(port).await?;

        let inside = sandbox.netlink();
        let link = inside
            .link_by_name(&ep.ifname)
            .await?
            .ok_or_else(|| DriverError::LinkNotFound(ep.ifname.clone()))?;
        if !link.up {
            inside.set_up_by_index(link.index).await?;
        }
        for address in &ep.addresses {
            inside.replace_address(link.index, *address).await?;
        }
        for gateway in &ep.gateways {
            inside
                .replace_default_route(*gateway, link.index, ep.route_metric)
                .await?;
        }
        Ok(())
    }

    async fn leave(&self, _net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), DriverError> {
        // Deleting one end of a veth deletes both.
        self.host
            .delete_link_by_name(&ep.host_ifname)
            .await
            .map(|_| ())
    }
}
