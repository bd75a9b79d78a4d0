//! Interface addresses.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::AddressMessageBuilder;

use super::{Netlink, Request};
use crate::KernelError;

impl Request {
    /// `ip addr replace ADDRESS/PREFIX dev INDEX nodad` — idempotent; IPv6 skips duplicate
    /// address detection so the address is usable at once, as Docker does.
    pub fn replace_address(index: u32, address: IpNetwork) -> Self {
        let mut msg = match address.ip() {
            IpAddr::V4(ip) => AddressMessageBuilder::<std::net::Ipv4Addr>::new()
                .index(index)
                .address(ip, address.prefix())
                .build(),
            IpAddr::V6(ip) => AddressMessageBuilder::<std::net::Ipv6Addr>::new()
                .index(index)
                .address(ip, address.prefix())
                .build(),
        };
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
}

impl Netlink {
    /// See [`Request::replace_address`].
    pub async fn replace_address(&self, index: u32, address: IpNetwork) -> Result<(), KernelError> {
        self.run(Request::replace_address(index, address))
            .await
            .map(drop)
    }
}
