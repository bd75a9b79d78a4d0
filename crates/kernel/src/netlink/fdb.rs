//! Bridge forwarding entries on a VXLAN device: which tunnel endpoint (VTEP) a MAC lives
//! behind. An overlay writes them from its cluster's state instead of learning them.

use std::net::IpAddr;

use futures::TryStreamExt;
use rtnetlink::packet_core::{NLM_F_ACK, NLM_F_APPEND, NLM_F_CREATE, NLM_F_REQUEST};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{errno, Netlink, ENOENT};
use crate::KernelError;

/// One forwarding entry: frames for `mac` go through the tunnel to `remote`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FdbEntry {
    pub mac: [u8; 6],
    pub remote: IpAddr,
}

fn message(index: u32, entry: &FdbEntry) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = AddressFamily::Bridge;
    msg.header.ifindex = index;
    msg.header.state = NeighbourState::Permanent;
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(entry.mac.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            entry.remote,
        )));
    msg
}

/// A bridge entry's destination is decoded by the message's family (AF_BRIDGE), which says
/// nothing of the address's: its length does.
fn ip_of(address: NeighbourAddress) -> Option<IpAddr> {
    match address {
        NeighbourAddress::Inet(a) => Some(IpAddr::V4(a)),
        NeighbourAddress::Inet6(a) => Some(IpAddr::V6(a)),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
            16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
            _ => None,
        },
        _ => None,
    }
}

impl Netlink {
    /// `bridge fdb append MAC dev INDEX dst REMOTE self permanent` — APPEND, so that one MAC
    /// (the all-zero one, for flooding) may have several remotes; rtnetlink's own request
    /// sends EXCL or REPLACE only. Appending an entry that is there already changes nothing.
    pub async fn append_fdb(&self, index: u32, entry: &FdbEntry) -> Result<(), KernelError> {
        let flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_APPEND;
        match self
            .request(
                RouteNetlinkMessage::NewNeighbour(message(index, entry)),
                flags,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if errno(&e) == Some(super::EEXIST) => Ok(()),
            Err(e) => Err(KernelError::netlink(format!(
                "append fdb entry dst {} on {index}",
                entry.remote
            ))(e)),
        }
    }

    /// `bridge fdb del MAC dev INDEX dst REMOTE self`; deleting an entry that is not there is
    /// not an error (the kernel does not always say which it was).
    pub async fn delete_fdb(&self, index: u32, entry: &FdbEntry) -> Result<(), KernelError> {
        match self
            .request(
                RouteNetlinkMessage::DelNeighbour(message(index, entry)),
                NLM_F_REQUEST | NLM_F_ACK,
            )
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if errno(&e) == Some(ENOENT) => Ok(()),
            Err(e) => Err(KernelError::netlink(format!(
                "delete fdb entry dst {} on {index}",
                entry.remote
            ))(e)),
        }
    }

    /// `bridge fdb show dev INDEX`: the entries with a remote (the device's own, made with
    /// `self`).
    pub async fn fdb_entries(&self, index: u32) -> Result<Vec<FdbEntry>, KernelError> {
        let mut request = self.handle.neighbours().get();
        request.message_mut().header.family = AddressFamily::Bridge;
        let all: Vec<NeighbourMessage> = request
            .execute()
            .try_collect()
            .await
            .map_err(KernelError::netlink("list fdb entries"))?;
        Ok(all
            .into_iter()
            .filter(|m| m.header.ifindex == index)
            .filter_map(|m| {
                let mut mac = None;
                let mut remote = None;
                for attr in m.attributes {
                    match attr {
                        NeighbourAttribute::LinkLayerAddress(l) => {
                            mac = <[u8; 6]>::try_from(l).ok()
                        }
                        NeighbourAttribute::Destination(address) => remote = ip_of(address),
                        _ => {}
                    }
                }
                Some(FdbEntry {
                    mac: mac?,
                    remote: remote?,
                })
            })
            .collect())
    }
}
