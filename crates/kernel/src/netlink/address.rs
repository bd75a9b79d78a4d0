//! Interface addresses.

use ipnetwork::IpNetwork;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags};

use super::Netlink;
use crate::KernelError;

impl Netlink {
    /// `ip addr replace ADDRESS/PREFIX dev INDEX nodad` — idempotent; IPv6 skips duplicate
    /// address detection so the address is usable at once, as Docker does.
    pub async fn replace_address(&self, index: u32, address: IpNetwork) -> Result<(), KernelError> {
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
            .map_err(KernelError::netlink(format!(
                "add address {address} to {index}"
            )))
    }
}
