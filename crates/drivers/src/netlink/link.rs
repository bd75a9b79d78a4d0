//! Links: bridges, veth pairs, state.

use futures::TryStreamExt;
use rtnetlink::packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoData, InfoKind, InfoVeth, LinkAttribute,
    LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, LinkVeth};

use super::{errno, Netlink, ENODEV};
use crate::DriverError;

/// What netctl needs to know of a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub mtu: Option<u32>,
    pub up: bool,
    pub controller: Option<u32>,
    pub mac: Option<Vec<u8>>,
}

impl Link {
    fn from_message(msg: LinkMessage) -> Self {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mtu: None,
            up: msg.header.flags.contains(LinkFlags::Up),
            controller: None,
            mac: None,
        };
        for attr in msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name = name,
                LinkAttribute::Mtu(mtu) => link.mtu = Some(mtu),
                LinkAttribute::Controller(c) => link.controller = Some(c),
                LinkAttribute::Address(mac) => link.mac = Some(mac),
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        if let LinkInfo::Kind(kind) = info {
                            link.kind = Some(kind.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

impl Netlink {
    /// `ip link show dev NAME`; `None` when there is no such link.
    pub async fn link_by_name(&self, name: &str) -> Result<Option<Link>, DriverError> {
        let mut stream = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        match stream.try_next().await {
            Ok(msg) => Ok(msg.map(Link::from_message)),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(None),
            Err(e) => Err(DriverError::netlink(format!("get link {name}"))(e)),
        }
    }

    /// `ip link show`
    pub async fn links(&self) -> Result<Vec<Link>, DriverError> {
        self.handle
            .link()
            .get()
            .execute()
            .map_ok(Link::from_message)
            .try_collect()
            .await
            .map_err(DriverError::netlink("list links"))
    }

    /// `ip link add NAME address MAC mtu MTU type bridge mcast_snooping 0 nf_call_iptables 0|1`
    /// (down); returns the bridge's index.
    pub async fn add_bridge(
        &self,
        name: &str,
        mac: [u8; 6],
        mtu: u32,
        nf_call_iptables: bool,
    ) -> Result<u32, DriverError> {
        let msg = LinkBridge::new(name)
            .address(mac.to_vec())
            .mtu(mtu)
            .mcast_snooping(false)
            .nf_call_iptables(nf_call_iptables)
            .build();
        self.add_link(msg, name).await
    }

    /// `ip link set …`: sends a change to an existing link.
    async fn set_link(&self, msg: LinkMessage, what: String) -> Result<(), DriverError> {
        self.handle
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(DriverError::netlink(what))
    }

    /// Sends a link creation and returns the new link's index.
    async fn add_link(&self, msg: LinkMessage, name: &str) -> Result<u32, DriverError> {
        self.handle
            .link()
            .add(msg)
            .execute()
            .await
            .map_err(DriverError::netlink(format!("add link {name}")))?;
        self.link_by_name(name)
            .await?
            .map(|l| l.index)
            .ok_or_else(|| DriverError::LinkNotFound(name.into()))
    }

    /// `ip link set dev NAME type bridge mcast_snooping 0 nf_call_iptables 0|1 &&
    /// ip link set dev NAME up`
    pub async fn set_bridge(&self, index: u32, nf_call_iptables: bool) -> Result<(), DriverError> {
        let msg = LinkMessageBuilder::<LinkBridge>::new_with_info_kind(InfoKind::Bridge)
            .index(index)
            .mcast_snooping(false)
            .nf_call_iptables(nf_call_iptables)
            .up()
            .build();
        self.handle
            .link()
            .change(msg)
            .execute()
            .await
            .map_err(DriverError::netlink(format!("set bridge {index}")))
    }

    /// `ip link set dev INDEX up`
    pub async fn set_up_by_index(&self, index: u32) -> Result<(), DriverError> {
        let msg = LinkUnspec::new_with_index(index).up().build();
        self.set_link(msg, format!("set link {index} up")).await
    }

    /// `ip link add HOST mtu MTU master BRIDGE type veth peer name PEER address MAC mtu MTU
    /// netns NS_FD` — the peer is born inside the sandbox, which is much cheaper than moving
    /// it there afterwards. Both ends are created down (asking for the peer up in the same
    /// message fails with ENOTCONN when it lands in another namespace, and the host end must
    /// be configured before it comes up). Returns the host end's index.
    pub async fn add_veth_into_namespace(
        &self,
        host: &str,
        bridge_index: u32,
        peer: &str,
        peer_netns_fd: i32,
        mac: [u8; 6],
        mtu: u32,
    ) -> Result<u32, DriverError> {
        let peer_msg = LinkMessageBuilder::<LinkUnspec>::new()
            .name(peer.to_string())
            .address(mac.to_vec())
            .mtu(mtu)
            .setns_by_fd(peer_netns_fd)
            .build();
        let msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
            .name(host.to_string())
            .mtu(mtu)
            .controller(bridge_index)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer_msg)))
            .build();
        self.add_link(msg, host).await
    }

    /// `ip link set dev INDEX addrgenmode none` — the link makes no IPv6 link-local address
    /// and so stays quiet on IPv6 (no duplicate address detection, router solicitations or
    /// MLD reports). Hundreds of ports each doing that on one bridge flood every other port
    /// and overflow the kernel's receive backlog. Takes effect only on a link that is down.
    pub async fn set_ipv6_silent(&self, index: u32) -> Result<(), DriverError> {
        let mode = AfSpecInet6::AddrGenMode(In6AddrGenMode::None);
        let msg = LinkUnspec::new_with_index(index)
            .append_extra_attribute(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![mode],
            )]))
            .build();
        self.set_link(msg, format!("set addrgenmode none on {index}"))
            .await
    }

    /// `ip link set dev INDEX master BRIDGE up`
    pub async fn set_controller(&self, index: u32, bridge_index: u32) -> Result<(), DriverError> {
        let msg = LinkUnspec::new_with_index(index)
            .controller(bridge_index)
            .up()
            .build();
        self.set_link(msg, format!("set master of {index}")).await
    }

    /// `ip link set dev INDEX type bridge_slave hairpin on`
    pub async fn set_hairpin(&self, index: u32) -> Result<(), DriverError> {
        let msg = LinkBridgePort::new(index).hairpin(true).build();
        self.handle
            .link()
            .set_port(msg)
            .execute()
            .await
            .map_err(DriverError::netlink(format!("set hairpin on {index}")))
    }

    /// `ip link del dev NAME`; returns false when there was no such link.
    pub async fn delete_link_by_name(&self, name: &str) -> Result<bool, DriverError> {
        let Some(link) = self.link_by_name(name).await? else {
            return Ok(false);
        };
        match self.handle.link().del(link.index).execute().await {
            Ok(()) => Ok(true),
            Err(e) if errno(&e) == Some(ENODEV) => Ok(false),
            Err(e) => Err(DriverError::netlink(format!("delete link {name}"))(e)),
        }
    }
}
