//! Interface addresses.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::AddressMessageBuilder;

use super::{Netlink, Request};
use crate::KernelError;

/// The message for `address` on link `index`.
fn address_message(index: u32, address: IpNetwork) -> AddressMessage {
    match address.ip() {
        IpAddr::V4(ip) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
            .index(index)
            .address(ip, address.prefix())
            .build(),
        IpAddr::V6(ip) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
            .index(index)
            .address(ip, address.prefix())
            .build(),
    }
}

impl Request {
    /// `ip addr replace ADDRESS/PREFIX dev INDEX nodad` — idempotent; IPv6 skips duplicate
    /// address detection so the address is usable at once, as Docker does.
    pub fn replace_address(index: u32, address: IpNetwork) -> Self {
        let mut msg = address_message(index, address);
        if address.ip().is_ipv6() {
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        Request::change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            format!("add address {address} to {index}"),
        )
    }

    /// `ip addr del ADDRESS/PREFIX dev INDEX`.
    pub fn delete_address(index: u32, address: IpNetwork) -> Self {
        Request::change(
            RouteNetlinkMessage::DelAddress(address_message(index, address)),
            0,
            format!("delete address {address} from {index}"),
        )
    }
}

impl Netlink {
    /// See [`Request::replace_address`].
    pub async fn replace_address(&self, index: u32, address: IpNetwork) -> Result<(), KernelError> {
        self.run(Request::replace_address(index, address))
            .await
            .map(drop)
    }
}

impl Netlink {
    /// `ip -o addr show dev INDEX`: the link's addresses with their prefixes.
    pub async fn addresses_of(&self, index: u32) -> Result<Vec<IpNetwork>, KernelError> {
        let entries = self.address_entries(index).await?;
        Ok(entries.iter().filter_map(AddressEntry::address).collect())
    }

    /// The link's addresses as the kernel holds them.
    async fn address_entries(&self, index: u32) -> Result<Vec<AddressEntry>, KernelError> {
        let all = self
            .dump(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                "list addresses",
            )
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(msg) if msg.header.index == index => {
                    Some(AddressEntry(msg))
                }
                _ => None,
            })
            .collect())
    }

    /// `ip -o addr show to ADDRESS`: the index of the link that holds `address`, if any.
    pub async fn link_with_address(&self, address: IpAddr) -> Result<Option<u32>, KernelError> {
        let all = self
            .dump(
                RouteNetlinkMessage::GetAddress(AddressMessage::default()),
                "list addresses",
            )
            .await?;
        Ok(all.into_iter().find_map(|m| match m {
            RouteNetlinkMessage::NewAddress(msg) => msg
                .attributes
                .iter()
                .any(|a| matches!(a, AddressAttribute::Address(ip) if *ip == address))
                .then_some(msg.header.index),
            _ => None,
        }))
    }

    /// The MTU of the link that holds `address` (an underlay's, for a VTEP).
    pub async fn mtu_of_address(&self, address: IpAddr) -> Result<Option<u32>, KernelError> {
        let Some(index) = self.link_with_address(address).await? else {
            return Ok(None);
        };
        let links = self.links().await?;
        Ok(links
            .into_iter()
            .find(|l| l.index == index)
            .and_then(|l| l.mtu))
    }
}

/// A link's address as the kernel holds it (flags, broadcast, lifetimes), to be moved to
/// another link as it is.
#[derive(Debug, Clone)]
pub struct AddressEntry(AddressMessage);

impl AddressEntry {
    pub fn address(&self) -> Option<IpNetwork> {
        let prefix = self.0.header.prefix_len;
        self.0.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => IpNetwork::new(*ip, prefix).ok(),
            _ => None,
        })
    }

    /// Global scope: not a link-local or host address, which belong to the link itself.
    fn is_global(&self) -> bool {
        self.0.header.scope == rtnetlink::packet_route::address::AddressScope::Universe
    }
}

impl Request {
    /// `ip addr add ADDRESS dev INDEX` with the entry's flags, broadcast and lifetimes (its
    /// label is the old link's, so it is left for the kernel to give).
    pub fn add_address_entry(entry: &AddressEntry, index: u32) -> Self {
        let mut msg = entry.0.clone();
        msg.header.index = index;
        msg.attributes
            .retain(|a| !matches!(a, AddressAttribute::Label(_)));
        let what = format!("add address {:?} to {index}", entry.address());
        Request::change(
            RouteNetlinkMessage::NewAddress(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            what,
        )
    }

    /// `ip addr del ADDRESS dev INDEX` for an entry as listed.
    pub fn delete_address_entry(entry: &AddressEntry) -> Self {
        let what = format!("delete address {:?}", entry.address());
        Request::change(RouteNetlinkMessage::DelAddress(entry.0.clone()), 0, what)
    }
}

impl Netlink {
    /// `ip addr show dev INDEX scope global`: the addresses a link holds for the network it
    /// is on (not its link-local ones), as the kernel holds them.
    pub async fn global_addresses_of(&self, index: u32) -> Result<Vec<AddressEntry>, KernelError> {
        let mut entries = self.address_entries(index).await?;
        entries.retain(AddressEntry::is_global);
        Ok(entries)
    }
}
