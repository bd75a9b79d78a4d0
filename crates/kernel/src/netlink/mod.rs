//! The netlink calls netctl makes, one file per object kind, each with its `ip` equivalent.
//!
//! Requests on one connection are processed by the kernel in the order they are sent, so
//! independent steps can be sent back to back and their answers awaited together
//! ([`futures::future::try_join_all`]): one round trip instead of one per step.

mod address;
mod fdb;
mod link;
mod neighbour;
mod route;

pub use fdb::FdbEntry;
pub use link::{Link, VethEnds, VxlanSpec};
pub use neighbour::Neighbour;

use futures::StreamExt;
use rtnetlink::packet_core::{NetlinkMessage, NetlinkPayload};
use rtnetlink::packet_route::RouteNetlinkMessage;

/// A netlink connection bound to the namespace it was opened in.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: rtnetlink::Handle,
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. Must run inside a tokio
    /// runtime context; the connection is driven by a task of that runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (connection, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// Sends one request with `flags` and collects the messages that come back before the
    /// acknowledgement (an `NLM_F_ECHO` request gets the object it made).
    async fn request(
        &self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
        let mut request = NetlinkMessage::from(message);
        request.header.flags = flags;
        let mut responses = self.handle.clone().request(request)?;
        let mut out = Vec::new();
        while let Some(message) = responses.next().await {
            match message.payload {
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(rtnetlink::Error::NetlinkError(e))
                }
                _ => {}
            }
        }
        Ok(out)
    }
}

pub(crate) const ENODEV: i32 = 19;
pub(crate) const EEXIST: i32 = 17;
pub(crate) const ENOENT: i32 = 2;

/// The errno carried by a netlink error, if any.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
