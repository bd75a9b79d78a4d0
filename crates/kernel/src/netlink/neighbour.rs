//! Permanent neighbour entries: an overlay answers ARP and NDP for remote endpoints from
//! these instead of flooding the question over the network.

use std::net::IpAddr;

use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{ip_of, Netlink, Request, ENOENT};
use crate::KernelError;

/// One neighbour entry: an address and the MAC it is at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    pub address: IpAddr,
    pub mac: [u8; 6],
}

fn message(index: u32, address: IpAddr) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = match address {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.ifindex = index;
    msg.attributes
        .push(NeighbourAttribute::Destination(NeighbourAddress::from(
            address,
        )));
    msg
}

impl Netlink {
    /// `ip neigh replace ADDRESS lladdr MAC dev INDEX nud permanent` — idempotent.
    pub async fn replace_neighbour(
        &self,
        index: u32,
        neighbour: &Neighbour,
    ) -> Result<(), KernelError> {
        let mut msg = message(index, neighbour.address);
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(neighbour.mac.to_vec()));
        let request = Request::change(
            RouteNetlinkMessage::NewNeighbour(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            format!("add neighbour {} on {index}", neighbour.address),
        );
        self.run(request).await.map(drop)
    }

    /// `ip neigh del ADDRESS dev INDEX`; returns false when there was no such entry.
    pub async fn delete_neighbour(&self, index: u32, address: IpAddr) -> Result<bool, KernelError> {
        let request = Request::change(
            RouteNetlinkMessage::DelNeighbour(message(index, address)),
            0,
            format!("delete neighbour {address} on {index}"),
        );
        match self.run(request).await {
            Ok(_) => Ok(true),
            Err(e) if e.errno() == Some(ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `ip neigh show dev INDEX nud permanent`
    pub async fn permanent_neighbours(&self, index: u32) -> Result<Vec<Neighbour>, KernelError> {
        let rows = self
            .neighbour_rows(AddressFamily::Unspec, index, "list neighbours")
            .await?;
        Ok(rows
            .into_iter()
            .filter(|row| row.state == NeighbourState::Permanent)
            .filter_map(|row| {
                Some(Neighbour {
                    address: row.address?,
                    mac: row.mac?,
                })
            })
            .collect())
    }

    /// The neighbour table of `family` on one device (the bridge family is the FDB): the one
    /// reader of both, so neither decodes the kernel's messages by itself.
    pub(super) async fn neighbour_rows(
        &self,
        family: AddressFamily,
        index: u32,
        what: &str,
    ) -> Result<Vec<NeighbourRow>, KernelError> {
        let mut query = NeighbourMessage::default();
        query.header.family = family;
        let all = self
            .dump(RouteNetlinkMessage::GetNeighbour(query), what)
            .await?;
        Ok(all
            .into_iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewNeighbour(n) if n.header.ifindex == index => Some(n),
                _ => None,
            })
            .map(NeighbourRow::from)
            .collect())
    }
}

/// A neighbour or FDB entry as the kernel lists it.
pub(super) struct NeighbourRow {
    pub state: NeighbourState,
    /// The IP address (a neighbour) or the remote VTEP (an FDB entry).
    pub address: Option<IpAddr>,
    pub mac: Option<[u8; 6]>,
}

impl From<NeighbourMessage> for NeighbourRow {
    fn from(message: NeighbourMessage) -> Self {
        let mut row = Self {
            state: message.header.state,
            address: None,
            mac: None,
        };
        for attr in message.attributes {
            match attr {
                NeighbourAttribute::Destination(a) => row.address = ip_of(a),
                NeighbourAttribute::LinkLayerAddress(l) => row.mac = <[u8; 6]>::try_from(l).ok(),
                _ => {}
            }
        }
        row
    }
}
