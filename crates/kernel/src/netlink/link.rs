//! Links: bridges, veth pairs, VXLAN devices, their state and bridge-port settings.

use std::net::IpAddr;
use std::os::fd::RawFd;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REQUEST};
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoPortKind, InfoVeth,
    InfoVxlan, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::{LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth, LinkVxlan};

use super::{Netlink, Request, ENODEV};
use crate::KernelError;

/// What netctl needs to know of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    /// The loopback device (`lo`).
    pub loopback: bool,
    pub controller: Option<u32>,
    pub mac: Option<Vec<u8>>,
    /// The other end's index (a veth's peer, in its own namespace).
    pub peer_index: Option<u32>,
    /// A VXLAN device's VNI and UDP port.
    pub vxlan: Option<(u32, u16)>,
}

impl Link {
    fn from_message(msg: LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            loopback: msg.header.flags.contains(LinkFlags::Loopback),
            controller: None,
            mac: None,
            peer_index: None,
            vxlan: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
                LinkAttribute::Controller(c) => link.controller = Some(c),
                LinkAttribute::Address(mac) => link.mac = Some(mac),
                LinkAttribute::Link(peer) => link.peer_index = Some(peer),
                LinkAttribute::LinkInfo(infos) => link.read_info(infos),
                _ => {}
            }
        }
        link
    }

    fn read_info(&mut self, infos: Vec<LinkInfo>) {
        for info in infos {
            match info {
                LinkInfo::Kind(kind) => self.kind = Some(kind.to_string()),
                LinkInfo::Data(InfoData::Vxlan(items)) => {
                    let (mut vni, mut port) = (None, None);
                    for item in items {
                        match item {
                            InfoVxlan::Id(id) => vni = Some(id),
                            InfoVxlan::Port(p) => port = Some(p),
                            _ => {}
                        }
                    }
                    self.vxlan = vni.zip(port);
                }
                _ => {}
            }
        }
    }
}

/// A veth pair whose second end is born in another namespace (a sandbox's, or the caller's
/// own for a runtime that moves it later).
#[derive(Debug, Clone)]
pub struct VethEnds<'a> {
    /// The end that stays here.
    pub name: &'a str,
    /// The end made in `peer_netns`.
    pub peer: &'a str,
    /// An open namespace file for the peer.
    pub peer_netns: RawFd,
    pub peer_mac: [u8; 6],
    pub mtu: u32,
    /// The bridge the near end is enslaved to at once.
    pub controller: u32,
}

/// A VXLAN device: `ip link add NAME type vxlan id VNI local LOCAL dstport PORT dev DEV
/// nolearning proxy` (learning off, ARP answered from neighbour entries).
#[derive(Debug, Clone)]
pub struct VxlanSpec<'a> {
    pub name: &'a str,
    pub vni: u32,
    pub local: IpAddr,
    pub port: u16,
    /// The underlay device, by index.
    pub underlay: Option<u32>,
    pub mtu: u32,
}

fn set(msg: LinkMessage, what: String) -> Request {
    Request::change(RouteNetlinkMessage::SetLink(msg), 0, what)
}

/// A change to an existing link through RTM_NEWLINK, which can also carry bridge-port
/// settings.
fn change(msg: LinkMessage, what: String) -> Request {
    Request::change(RouteNetlinkMessage::NewLink(msg), 0, what)
}

impl Request {
    /// `ip link set dev INDEX up`
    pub fn link_up(index: u32) -> Self {
        set(
            LinkUnspec::new_with_index(index).up().build(),
            format!("set link {index} up"),
        )
    }

    /// `ip link set dev INDEX down`
    pub fn link_down(index: u32) -> Self {
        set(
            LinkUnspec::new_with_index(index).down().build(),
            format!("set link {index} down"),
        )
    }

    /// `ip link set dev INDEX mtu MTU`
    pub fn link_mtu(index: u32, mtu: u32) -> Self {
        set(
            LinkUnspec::new_with_index(index).mtu(mtu).build(),
            format!("set mtu {mtu} on {index}"),
        )
    }

    /// `ip link set dev INDEX addrgenmode none|eui64` — with `none` the link makes no IPv6
    /// link-local address and so stays quiet on IPv6 (no duplicate address detection,
    /// router solicitations or MLD reports). Takes effect only on a link that is down.
    pub fn ipv6_link_local(index: u32, on: bool) -> Self {
        let mode = if on {
            In6AddrGenMode::Eui64
        } else {
            In6AddrGenMode::None
        };
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(mode)],
            )]))
            .build();
        set(msg, format!("set addrgenmode on {index}"))
    }

    /// `ip link set dev NAME up type bridge_slave hairpin on`: a bridge port that sends a
    /// frame back out of the port it came in on (a container reaching its own published
    /// port), and up, in one request.
    pub fn port_up_with_hairpin(name: &str) -> Self {
        let msg = LinkMessageBuilder::<LinkBridgePort>::default()
            .name(name.to_string())
            .set_port_kind(InfoPortKind::Bridge)
            .hairpin(true)
            .up()
            .build();
        change(msg, format!("set {name} up with hairpin"))
    }

    /// `ip link set dev INDEX type bridge_slave hairpin on`
    pub fn hairpin(index: u32) -> Self {
        change(
            LinkBridgePort::new(index).hairpin(true).build(),
            format!("set hairpin on {index}"),
        )
    }

    /// `ip link set dev INDEX master BRIDGE up`
    pub fn link_controller(index: u32, bridge_index: u32) -> Self {
        set(
            LinkUnspec::new_with_index(index)
                .controller(bridge_index)
                .up()
                .build(),
            format!("set master of {index}"),
        )
    }
}

impl Netlink {
    /// `ip link show dev NAME`; `None` when there is no such link.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>, KernelError> {
        let request = Request {
            message: RouteNetlinkMessage::GetLink(LinkUnspec::new_with_name(name).build()),
            flags: NLM_F_REQUEST,
            what: format!("get link {name}"),
        };
        match self.run(request).await {
            Ok(messages) => Ok(messages.into_iter().find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(Link::from_message(link)),
                _ => None,
            })),
            Err(e) if e.errno() == Some(ENODEV) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `ip link show`
    pub async fn links(&self) -> Result<Vec<Link>, KernelError> {
        let all = self
            .dump(
                RouteNetlinkMessage::GetLink(LinkMessage::default()),
                "list links",
            )
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(Link::from_message(link)),
                _ => None,
            })
            .collect())
    }

    /// `ip link add NAME address MAC mtu MTU type bridge mcast_snooping 0 nf_call_iptables 0|1`
    /// (down); returns the bridge's index.
    pub async fn add_bridge(
        &self,
        name: &str,
        mac: [u8; 6],
        mtu: u32,
        nf_call_iptables: bool,
    ) -> Result<u32, KernelError> {
        let msg = LinkBridge::new(name)
            .address(mac.to_vec())
            .mtu(mtu)
            .mcast_snooping(false)
            .nf_call_iptables(nf_call_iptables)
            .build();
        self.add_then_find(msg, name).await
    }

    /// `ip link set dev NAME type bridge mcast_snooping 0 nf_call_iptables 0|1 &&
    /// ip link set dev NAME up`
    pub async fn set_bridge(&self, index: u32, nf_call_iptables: bool) -> Result<(), KernelError> {
        let msg = LinkMessageBuilder::<LinkBridge>::new_with_info_kind(InfoKind::Bridge)
            .index(index)
            .mcast_snooping(false)
            .nf_call_iptables(nf_call_iptables)
            .up()
            .build();
        self.run(change(msg, format!("set bridge {index}")))
            .await
            .map(drop)
    }

    /// `ip link add NAME mtu MTU master BRIDGE type veth peer name PEER address MAC mtu MTU
    /// netns NS_FD` — the peer is born in its namespace, which is much cheaper than moving it
    /// there afterwards. Both ends are created down (asking for the peer up in the same
    /// message fails with ENOTCONN when it lands in another namespace). Returns the new link,
    /// echoed by the kernel, so its index and its peer's index come without another request.
    pub async fn add_veth(&self, ends: &VethEnds<'_>) -> Result<Link, KernelError> {
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(ends.peer.to_string())
            .address(ends.peer_mac.to_vec())
            .mtu(ends.mtu)
            .setns_by_fd(ends.peer_netns)
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(ends.name.to_string())
            .mtu(ends.mtu)
            .controller(ends.controller)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build();
        let request = Request::change(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            format!("add link {}", ends.name),
        );
        let echoed = self.run(request).await?;
        let made = echoed.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(link) => Some(Link::from_message(link)),
            _ => None,
        });
        match made {
            Some(link) => Ok(link),
            // A kernel that does not echo: look it up.
            None => self
                .link_by_name(ends.name)
                .await?
                .ok_or_else(|| KernelError::LinkNotFound(ends.name.into())),
        }
    }

    /// `ip link add NAME type vxlan id VNI local LOCAL dstport PORT [dev DEV] nolearning
    /// proxy mtu MTU` (down); returns its index.
    pub async fn add_vxlan(&self, spec: &VxlanSpec<'_>) -> Result<u32, KernelError> {
        self.add_then_find(vxlan_builder(spec).build(), spec.name)
            .await
    }

    /// `ip link add NAME type vxlan … netns NS` (down): made by this namespace, so its UDP
    /// socket lives here on the underlay, and born in `target`, where the overlay's bridge
    /// is. Returns its index there.
    pub async fn add_vxlan_into(
        &self,
        spec: &VxlanSpec<'_>,
        target: &crate::Netns,
    ) -> Result<u32, KernelError> {
        let msg = vxlan_builder(spec).setns_by_fd(target.raw_fd()).build();
        self.add_then_find_in(msg, spec.name, target.netlink())
            .await
    }

    /// Sends a creation, then asks for the new link's index. Not an echoed creation: a
    /// bridge brought up right after an echoed creation shows its carrier for a moment
    /// longer (the kernel settles it later), and a caller that looks at once sees a state
    /// that is about to change.
    async fn add_then_find(&self, msg: LinkMessage, name: &str) -> Result<u32, KernelError> {
        self.add_then_find_in(msg, name, self).await
    }

    /// [`Netlink::add_then_find`] of a link born in the namespace `lookup` works in.
    async fn add_then_find_in(
        &self,
        msg: LinkMessage,
        name: &str,
        lookup: &Netlink,
    ) -> Result<u32, KernelError> {
        let request = Request::change(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            format!("add link {name}"),
        );
        self.run(request).await?;
        lookup
            .link_by_name(name)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| KernelError::LinkNotFound(name.into()))
    }

    /// `ip link set dev INDEX up`
    pub async fn set_up(&self, index: u32) -> Result<(), KernelError> {
        self.run(Request::link_up(index)).await.map(drop)
    }

    /// `ip link set dev INDEX mtu MTU`
    pub async fn set_mtu(&self, index: u32, mtu: u32) -> Result<(), KernelError> {
        self.run(Request::link_mtu(index, mtu)).await.map(drop)
    }

    /// See [`Request::ipv6_link_local`].
    pub async fn set_ipv6_link_local(&self, index: u32, on: bool) -> Result<(), KernelError> {
        self.run(Request::ipv6_link_local(index, on))
            .await
            .map(drop)
    }

    /// See [`Request::port_up_with_hairpin`].
    pub async fn set_port_up_with_hairpin(&self, name: &str) -> Result<(), KernelError> {
        self.run(Request::port_up_with_hairpin(name))
            .await
            .map(drop)
    }

    /// `ip link set dev INDEX type bridge_slave hairpin on`
    pub async fn set_hairpin(&self, index: u32) -> Result<(), KernelError> {
        self.run(Request::hairpin(index)).await.map(drop)
    }

    /// `ip link set dev INDEX master BRIDGE up`
    pub async fn set_controller(&self, index: u32, bridge_index: u32) -> Result<(), KernelError> {
        self.run(Request::link_controller(index, bridge_index))
            .await
            .map(drop)
    }

    /// `ip link set dev INDEX nomaster`
    pub async fn release_from_controller(&self, index: u32) -> Result<(), KernelError> {
        let request = set(
            LinkUnspec::new_with_index(index).controller(0).build(),
            format!("set nomaster on {index}"),
        );
        self.run(request).await.map(drop)
    }

    /// `ip link del dev NAME`, in one request (the kernel finds the link by name); returns
    /// false when there was no such link.
    pub async fn delete_link_by_name(&self, name: &str) -> Result<bool, KernelError> {
        let request = Request::change(
            RouteNetlinkMessage::DelLink(LinkUnspec::new_with_name(name).build()),
            0,
            format!("delete link {name}"),
        );
        match self.run(request).await {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(ENODEV) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

/// A VXLAN device's creation message as [`VxlanSpec`] says.
fn vxlan_builder(spec: &VxlanSpec<'_>) -> LinkMessageBuilder<LinkVxlan> {
    let mut builder = LinkVxlan::new(spec.name, spec.vni)
        .port(spec.port)
        .learning(false)
        .proxy(true)
        .mtu(spec.mtu);
    builder = match spec.local {
        IpAddr::V4(local) => builder.local(local),
        IpAddr::V6(local) => builder.local6(local),
    };
    if let Some(underlay) = spec.underlay {
        builder = builder.dev(underlay);
    }
    builder
}
