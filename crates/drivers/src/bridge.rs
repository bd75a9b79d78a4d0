//! The bridge driver: one Linux bridge per network, one veth per endpoint.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::firewall::{docker_user, Firewall, FirewallNetwork};
use crate::netlink::Netlink;
use crate::netns::Netns;

const EEXIST: i32 = 17;
use crate::{sysctl, DriverError, EndpointSpec, NetworkDriver, NetworkSpec};

/// Works in the namespace its netlink connection was opened in (the daemon's).
#[derive(Debug, Clone)]
pub struct BridgeDriver {
    host: Netlink,
    firewall: Firewall,
    /// Turn on IP forwarding where a network needs it (daemon.json `ip-forward`).
    manage_forwarding: bool,
    /// Bridge name → index, to save a netlink round trip per join; checked by the kernel on
    /// use (a stale index makes the veth creation fail, and the join looks it up again).
    bridge_indexes: Arc<Mutex<HashMap<String, u32>>>,
}

impl BridgeDriver {
    pub fn new(host: Netlink, firewall: Firewall, manage_forwarding: bool) -> Self {
        Self {
            host,
            firewall,
            manage_forwarding,
            bridge_indexes: Arc::default(),
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
        // Ports published on 127.0.0.1 are DNAT'd to this bridge with a loopback source.
        sysctl::ensure(&format!("net.ipv4.conf.{}.route_localnet", net.bridge), "1")?;
        Ok(())
    }

    /// The bridge, without multicast snooping: nothing on a container bridge sends multicast
    /// queries, so snooped memberships expire after a few minutes and multicast between
    /// containers silently stops; snooping also makes bringing a port up cost time in
    /// proportion to the bridge's ports (0.34 → 0.75 ms at 1000 ports here). Without it,
    /// multicast is flooded to the ports, as on a plain switch.
    async fn ensure_bridge(&self, net: &NetworkSpec) -> Result<u32, DriverError> {
        // Bridged traffic crosses netfilter only where it has to: ICC off needs the forward
        // hook to see frames between ports of the same bridge.
        let filter_bridged = !net.icc;
        let index = match self.host.link_by_name(&net.bridge).await? {
            Some(link) => {
                self.host.set_bridge(link.index, filter_bridged).await?;
                link.index
            }
            None => {
                let index = self
                    .host
                    .add_bridge(&net.bridge, net.bridge_mac, net.mtu, filter_bridged)
                    .await?;
                // Its MAC is unique (from the network id), and while a new link-local address
                // is tentative (a second) the host cannot resolve containers' IPv6 addresses
                // for traffic it forwards: skip duplicate address detection.
                sysctl::ensure_ipv6(&format!("net.ipv6.conf.{}.accept_dad", net.bridge), "0")?;
                self.host.set_up_by_index(index).await?;
                index
            }
        };
        self.cache_index(&net.bridge, Some(index));
        Ok(index)
    }

    fn cache_index(&self, bridge: &str, index: Option<u32>) {
        let mut cache = self.bridge_indexes.lock().expect("bridge index cache");
        match index {
            Some(i) => cache.insert(bridge.to_string(), i),
            None => cache.remove(bridge),
        };
    }

    async fn bridge_index(&self, net: &NetworkSpec, fresh: bool) -> Result<u32, DriverError> {
        let cached = self
            .bridge_indexes
            .lock()
            .expect("bridge index cache")
            .get(&net.bridge)
            .copied();
        if let Some(index) = cached.filter(|_| !fresh) {
            return Ok(index);
        }
        let index = self
            .host
            .link_by_name(&net.bridge)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| DriverError::LinkNotFound(net.bridge.clone()))?;
        self.cache_index(&net.bridge, Some(index));
        Ok(index)
    }

    /// A Docker endpoint's veth: both ends in this (dockerd's) namespace, the host end on the
    /// bridge and up, the other end down with its MAC, for dockerd to move into the container
    /// and configure (it looks the link up by name in its own namespace).
    pub async fn ensure_docker_port(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
    ) -> Result<(), DriverError> {
        let own =
            std::fs::File::open("/proc/self/ns/net").map_err(|source| DriverError::Netns {
                path: "/proc/self/ns/net".into(),
                what: "open",
                source,
            })?;
        let port = self
            .ensure_port(net, ep, std::os::fd::AsRawFd::as_raw_fd(&own))
            .await?;
        self.host.set_hairpin(port).await
    }

    /// Deletes a Docker endpoint's veth in the background. Unregistering a link waits for the
    /// kernel (about 20 ms here), dockerd waits for the answer, and it ignores this call's
    /// errors anyway; a link left behind is garbage-collected at the daemon's next start.
    pub fn delete_docker_port_later(&self, ep: &EndpointSpec) {
        let (host, name) = (self.host.clone(), ep.host_ifname.clone());
        tokio::spawn(async move {
            if let Err(e) = host.delete_link_by_name(&name).await {
                tracing::warn!(link = %name, error = %e, "cannot delete a Docker endpoint's veth");
            }
        });
    }

    /// Creates the veth, or finds it from an earlier join (reconcile); returns the host end's
    /// index, enslaved to the bridge and up.
    async fn ensure_port(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        peer_netns_fd: i32,
    ) -> Result<u32, DriverError> {
        let create = |bridge| {
            self.host.add_veth_into_namespace(
                &ep.host_ifname,
                bridge,
                &ep.ifname,
                peer_netns_fd,
                ep.mac,
                ep.mtu,
            )
        };
        let bridge = self.bridge_index(net, false).await?;
        let created = match create(bridge).await {
            Err(e) if e.errno() == Some(EEXIST) => None,
            // Most likely a stale cached index: the bridge was re-created.
            Err(_) => match create(self.bridge_index(net, true).await?).await {
                Err(e) if e.errno() == Some(EEXIST) => None,
                other => Some(other?),
            },
            Ok(index) => Some(index),
        };
        if let Some(index) = created {
            // The host end needs no IPv6 address of its own: the bridge holds the gateway's.
            self.host.set_ipv6_silent(index).await?;
            self.host.set_up_by_index(index).await?;
            return Ok(index);
        }
        let bridge = self.bridge_index(net, true).await?;
        let link = self
            .host
            .link_by_name(&ep.host_ifname)
            .await?
            .ok_or_else(|| DriverError::LinkNotFound(ep.host_ifname.clone()))?;
        // The bridge may have been re-created behind the port's back.
        if link.controller != Some(bridge) || !link.up {
            self.host.set_controller(link.index, bridge).await?;
        }
        Ok(link.index)
    }
}

impl NetworkDriver for BridgeDriver {
    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.ensure_network(net).await?;
        self.firewall
            .add_network(&FirewallNetwork::from(net))
            .await?;
        docker_user::admit_bridge(&net.bridge).await
    }

    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        let mut errors = Vec::new();
        self.cache_index(&net.bridge, None);
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
        if let Err(e) = docker_user::forget_bridge(&net.bridge).await {
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
        let port = self.ensure_port(net, ep, sandbox.raw_fd()).await?;
        self.host.set_hairpin(port).await?;

        let inside = sandbox.netlink();
        let link = inside
            .link_by_name(&ep.ifname)
            .await?
            .ok_or_else(|| DriverError::LinkNotFound(ep.ifname.clone()))?;
        if !link.up {
            if ep.addresses.iter().all(|a| a.is_ipv4()) {
                inside.set_ipv6_silent(link.index).await?;
            }
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
