//! An endpoint's veth pair: its host end a port of the bridge, its other end in the sandbox
//! (or left for a runtime to take).
//!
//! A fresh pair is made in one request (the kernel echoes both ends' indexes), then both
//! ends are configured at once, each end's steps sent back to back on its namespace's
//! netlink connection: two round trips in all, whatever the number of steps.

use std::os::fd::AsRawFd;

use futures::future::try_join;
use ipnetwork::IpNetwork;
use netctl_kernel::netlink::{Link, Request, VethEnds};
use netctl_kernel::{KernelError, Netlink, Netns};

use super::{host_end, runtime_end, BridgeDriver};
use crate::{DriverError, EndpointSpec, NetworkSpec};

impl BridgeDriver {
    /// The veth with its other end as `ep.ifname` inside the sandbox, addressed and routed.
    pub(super) async fn join_sandbox(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        sandbox: &Netns,
    ) -> Result<(), DriverError> {
        let host = host_end(&ep.id);
        let inside = sandbox.netlink();
        // Two rounds at most: the second after a pair that led elsewhere was deleted.
        for _ in 0..2 {
            match self
                .add_port(net, ep, &host, &ep.ifname, sandbox.raw_fd())
                .await?
            {
                Some(made) => {
                    let peer = match made.peer_index {
                        Some(index) => index,
                        None => link_in(inside, &ep.ifname).await?.index,
                    };
                    try_join(
                        self.bring_up_port(made.index, &host),
                        inside.run_all(inside_requests(peer, false, ep)),
                    )
                    .await?;
                    return Ok(());
                }
                // Made by an earlier join (a restart): re-assert what may have changed.
                None => {
                    if let Some(link) = inside.link_by_name(&ep.ifname).await? {
                        self.reattach_port(net, &host).await?;
                        inside
                            .run_all(inside_requests(link.index, link.up, ep))
                            .await?;
                        return Ok(());
                    }
                    stale_pair(&self.host, &host, &ep.ifname).await?;
                }
            }
        }
        Err(KernelError::LinkNotFound(ep.ifname.clone()).into())
    }

    /// A veth with both ends in this (dockerd's) namespace: the host end on the bridge and
    /// up, the other end down with its MAC, for the runtime to move into the container and
    /// configure (it looks the link up by name).
    pub(super) async fn join_runtime(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
    ) -> Result<(), DriverError> {
        let own = netctl_kernel::netns::own().map_err(DriverError::Kernel)?;
        let (host, taken) = (host_end(&ep.id), runtime_end(&ep.id));
        match self
            .add_port(net, ep, &host, &taken, own.as_raw_fd())
            .await?
        {
            Some(made) => self.bring_up_port(made.index, &host).await?,
            None => self.reattach_port(net, &host).await?,
        }
        Ok(())
    }

    /// Makes the pair; `None` when it exists already (from an earlier join).
    async fn add_port(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        host: &str,
        peer: &str,
        peer_netns: i32,
    ) -> Result<Option<Link>, DriverError> {
        let ends = |controller| VethEnds {
            name: host,
            peer,
            peer_netns,
            peer_mac: ep.mac,
            mtu: net.mtu,
            controller,
        };
        let bridge = self.bridge_index(net, false).await?;
        match self.host.add_veth(&ends(bridge)).await {
            Ok(link) => Ok(Some(link)),
            Err(e) if e.already_exists() => Ok(None),
            // Most likely a stale cached index: the bridge was re-created.
            Err(_) => match self
                .host
                .add_veth(&ends(self.bridge_index(net, true).await?))
                .await
            {
                Ok(link) => Ok(Some(link)),
                Err(e) if e.already_exists() => Ok(None),
                Err(e) => Err(e.into()),
            },
        }
    }

    /// A fresh host end: no IPv6 link-local address (a bridge port needs none, and hundreds
    /// of ports doing duplicate address detection, router solicitations and MLD flood each
    /// other), then up with hairpin on, so a container reaches its own published ports. Sent
    /// back to back: the kernel handles them in order.
    ///
    /// IPv6 stays on: turning it off (`disable_ipv6`, a /proc/sys write) would spare every
    /// later link-up a walk over one multicast route per port, which on a daemon holding
    /// thousands of ports halves an attach's kernel time — but the kernel takes that write
    /// only with the rtnl lock, which it tries and, when another request holds it, restarts
    /// the write at once: a hundred attaches at once spin on it and took 40 % longer.
    async fn bring_up_port(&self, index: u32, host: &str) -> Result<(), KernelError> {
        self.host
            .run_all(vec![
                Request::ipv6_link_local(index, false),
                Request::port_up_with_hairpin(host),
            ])
            .await
    }

    /// An existing host end on the bridge (which may have been re-created behind its back),
    /// up, with hairpin on.
    async fn reattach_port(&self, net: &NetworkSpec, host: &str) -> Result<(), DriverError> {
        let bridge = self.bridge_index(net, true).await?;
        let link = self
            .host
            .link_by_name(host)
            .await?
            .ok_or_else(|| KernelError::LinkNotFound(host.to_string()))?;
        if link.controller != Some(bridge) || !link.up {
            self.host.set_controller(link.index, bridge).await?;
        }
        self.host.set_hairpin(link.index).await?;
        Ok(())
    }
}

/// A pair whose host end is here but whose other end is not in the sandbox: it is in a
/// namespace on its way out (its last holder let it go, and the kernel tears namespaces down
/// a moment later), and the sandbox's namespace was made anew. The old pair is deleted, for
/// a new one to take its name.
pub(crate) async fn stale_pair(
    netlink: &Netlink,
    host: &str,
    ifname: &str,
) -> Result<(), KernelError> {
    tracing::info!(link = %host, interface = %ifname, "the pair's other end is not in the sandbox: making it anew");
    netlink.delete_link_by_name(host).await?;
    Ok(())
}

async fn link_in(netlink: &Netlink, name: &str) -> Result<Link, KernelError> {
    netlink
        .link_by_name(name)
        .await?
        .ok_or_else(|| KernelError::LinkNotFound(name.to_string()))
}

/// Inside the sandbox: up with no link-local address of the kernel's making, its addresses
/// (for an endpoint with IPv6, its link-local one first), its default routes — one batch,
/// handled by the kernel in order. An IPv4-only endpoint stays quiet on IPv6, which matters
/// with hundreds of ports on one bridge. The link-local address is added here rather than
/// made by the kernel so that it is usable at once: the kernel's would wait a second for
/// duplicate address detection unless the sandbox's namespace were told to skip it, and
/// that setting is a /proc/sys write whose lookup grows with the number of namespaces on
/// the host.
pub(crate) fn inside_requests(index: u32, already_up: bool, ep: &EndpointSpec) -> Vec<Request> {
    let mut requests = Vec::new();
    if !already_up {
        requests.push(Request::ipv6_link_local(index, false));
        requests.push(Request::link_up(index));
    }
    if ep.addresses.iter().any(|a| a.is_ipv6()) {
        requests.push(Request::replace_address(index, link_local(ep.mac)));
    }
    for address in &ep.addresses {
        requests.push(Request::replace_address(index, *address));
    }
    for gateway in &ep.gateways {
        requests.push(Request::replace_default_route(
            *gateway,
            index,
            ep.route_metric,
        ));
    }
    requests
}

/// `fe80::/64` with the interface identifier made from `mac` (modified EUI-64, RFC 4291
/// appendix A): the address the kernel itself would give the interface.
fn link_local(mac: [u8; 6]) -> IpNetwork {
    let [a, b, c, d, e, f] = mac;
    let address = std::net::Ipv6Addr::from([
        0xfe,
        0x80,
        0,
        0,
        0,
        0,
        0,
        0,
        a ^ 0x02,
        b,
        c,
        0xff,
        0xfe,
        d,
        e,
        f,
    ]);
    IpNetwork::new(address.into(), 64).expect("64 is a valid IPv6 prefix length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_local_is_the_kernels_eui64() {
        // `ip link add … address 02:42:ac:11:00:02`: the kernel makes fe80::42:acff:fe11:2.
        let made = link_local([0x02, 0x42, 0xac, 0x11, 0x00, 0x02]);
        assert_eq!(made.to_string(), "fe80::42:acff:fe11:2/64");
    }
}
