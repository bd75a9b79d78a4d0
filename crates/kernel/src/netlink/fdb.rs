//! Bridge forwarding entries on a VXLAN device: which tunnel endpoint (VTEP) a MAC lives
//! behind. An overlay writes them from its cluster's state instead of learning them.

use std::net::IpAddr;

use rtnetlink::packet_core::{NLM_F_APPEND, NLM_F_CREATE};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, Request, ENOENT};
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

impl Netlink {
    /// `bridge fdb append MAC dev INDEX dst REMOTE self permanent` — APPEND, so that one MAC
    /// (the all-zero one, for flooding) may have several remotes; rtnetlink's own request
    /// sends EXCL or REPLACE only. Appending an entry that is there already changes nothing.
    pub async fn append_fdb(&self, index: u32, entry: &FdbEntry) -> Result<(), KernelError> {
        let request = Request::change(
            RouteNetlinkMessage::NewNeighbour(message(index, entry)),
            NLM_F_CREATE | NLM_F_APPEND,
            format!("append fdb entry dst {} on {index}", entry.remote),
        );
        match self.run(request).await {
            Ok(_) => Ok(()),
            Err(e) if e.already_exists() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `bridge fdb del MAC dev INDEX dst REMOTE self`; deleting an entry that is not there is
    /// not an error (the kernel does not always say which it was).
    pub async fn delete_fdb(&self, index: u32, entry: &FdbEntry) -> Result<(), KernelError> {
        let request = Request::change(
            RouteNetlinkMessage::DelNeighbour(message(index, entry)),
            0,
            format!("delete fdb entry dst {} on {index}", entry.remote),
        );
        match self.run(request).await {
            Ok(_) => Ok(()),
            Err(e) if e.errno() == Some(ENOENT) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `bridge fdb show dev INDEX`: the entries with a remote (the device's own, made with
    /// `self`).
    pub async fn fdb_entries(&self, index: u32) -> Result<Vec<FdbEntry>, KernelError> {
        let rows = self
            .neighbour_rows(AddressFamily::Bridge, index, "list fdb entries")
            .await?;
        Ok(rows
            .into_iter()
            .filter_map(|row| {
                Some(FdbEntry {
                    mac: row.mac?,
                    remote: row.address?,
                })
            })
            .collect())
    }
}
