//! Interface addresses.

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};

use super::Netlink;
use crate::DriverError;

impl Netlink {
    /// `ip addr show dev INDEX` (addresses with their prefix length).
    pub async fn addresses(&self, index: u32) -> Result<Vec<IpNetwork>, DriverError> {
        let messages: Vec<_> = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute()
            .try_collect()
            .await
            .map_err(DriverError::netlink(format!("list addresses of {index}")))?;
        Ok(messages
            .into_iter()
            .filter(|m| m.header.index == index)
            .filter_map(|m| {
                let prefix = m.header.prefix_len;
                m.attributes.into_iter().find_map(|a| match a {
                    AddressAttribute::Address(ip) => IpNetwork::new(ip, prefix).ok(),
                    _ => None,
                })
            })
            .collect())
    }

    /// `ip addr replace ADDRESS/PREFIX dev INDEX nodad` — idempotent; IPv6 skips duplicate
    /// address detection so the address is usable at once, as Docker does.
    pub async fn replace_address(&self, index: u32, address: IpNetwork) -> Result<(), DriverError> {
        let mut request = self
            .handle
            .address()
            .add(index, address.ip(), address.prefix())
            .replace();
        if address.ip().is_ipv6() {
            request
                .message_mut()
                .attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        request
            .execute()
            .await
            .map_err(DriverError::netlink(format!(
                "add address {address} to {index}"
            )))
    }
}
