//! A DHCP lease on an endpoint's interface, in the kernel: what the effects `SpeakIpv6`
//! and `ConfigureLease` do inside the sandbox's namespace.

use ipnetwork::IpNetwork;
use netctl_kernel::netlink::Request;
use netctl_kernel::Netns;

use crate::controller::error::EngineError;
use crate::leases::{lease_record, Lease};

/// How a lease is put on an interface.
pub(super) struct LeaseOnLink {
    pub ifname: String,
    /// The address the interface had from this family's previous lease.
    pub old: Option<IpNetwork>,
    /// `None`: the address is withdrawn.
    pub lease: Option<Lease>,
    /// The network's MTU: a lease may lower the interface's, never raise it.
    pub mtu_limit: u32,
    /// An internal network's interface takes no default route.
    pub internal: bool,
    pub route_metric: u32,
}

/// The lease's address, default route and MTU on the interface; the old address gone when
/// it changed. An interface that is gone (the endpoint left meanwhile) is no error.
///
/// `ip -n NS addr del OLD dev IF; ip -n NS link set IF mtu M; ip -n NS addr replace NEW dev IF;
/// ip -n NS route replace default via ROUTER dev IF metric N`
pub(super) async fn configure(netns: &Netns, on: &LeaseOnLink) -> Result<(), EngineError> {
    let netlink = netns.netlink();
    let Some(link) = netlink
        .link_by_name(&on.ifname)
        .await
        .map_err(EngineError::from)?
    else {
        return Ok(());
    };
    let new = on.lease.as_ref().map(|l| lease_record(l).address);
    if let Some(old) = on.old.filter(|old| Some(*old) != new) {
        if let Err(e) = netlink.run(Request::delete_address(link.index, old)).await {
            if !e.not_found() {
                return Err(EngineError::from(e));
            }
        }
    }
    let (Some(lease), Some(address)) = (&on.lease, new) else {
        return Ok(());
    };
    let mut requests = Vec::new();
    if let Lease::V4(l) = lease {
        let mtu = l.mtu.map(u32::from).filter(|m| *m >= 576);
        if let Some(mtu) = mtu.filter(|m| *m <= on.mtu_limit && Some(*m) != link.mtu) {
            requests.push(Request::link_mtu(link.index, mtu));
        }
    }
    requests.push(Request::replace_address(link.index, address));
    if let Lease::V4(l) = lease {
        if let Some(router) = l.routers.first().filter(|_| !on.internal) {
            requests.push(Request::replace_default_route(
                (*router).into(),
                link.index,
                on.route_metric,
            ));
        }
    }
    netlink.run_all(requests).await.map_err(EngineError::from)
}

/// An interface joined without an IPv6 address has no link-local one, which DHCPv6 sends
/// from: it gets one, usable at once (no duplicate address detection: its MAC is the
/// endpoint's own), and hears router advertisements, where its default route comes from.
///
/// `sysctl net.ipv6.conf.IF.accept_dad=0 accept_ra=1; ip link set IF down;
/// (addrgenmode eui64); ip link set IF up`
pub(super) async fn speak_ipv6(netns: &Netns, ifname: &str) -> Result<(), EngineError> {
    let sysctl_ifname = ifname.to_string();
    netctl_kernel::netns::run_in(&netns.fd_path(), move || {
        for (key, value) in [("accept_dad", "0"), ("accept_ra", "1")] {
            netctl_kernel::sysctl::ensure(&format!("net.ipv6.conf.{sysctl_ifname}.{key}"), value)?;
        }
        Ok(())
    })
    .await
    .map_err(EngineError::from)?;
    let netlink = netns.netlink();
    let link = netlink
        .link_by_name(ifname)
        .await
        .map_err(EngineError::from)?
        .ok_or_else(|| EngineError::internal(format!("no interface {ifname} in the sandbox")))?;
    // The link-local address is made when the link comes up.
    netlink
        .run_all(vec![
            Request::link_down(link.index),
            Request::ipv6_link_local(link.index, true),
            Request::link_up(link.index),
        ])
        .await
        .map_err(EngineError::from)
}
