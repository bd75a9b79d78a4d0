//! The netlink calls netctl makes, one file per object kind. Each file builds [`Request`]s,
//! with the `ip` equivalent in their doc comments; a [`Netlink`] connection sends one
//! request, or several in one batch: the kernel handles a batch's requests in order, and the
//! caller waits for one round trip instead of one per request.

mod address;
mod fdb;
mod link;
mod neighbour;
mod route;

pub use address::AddressEntry;
pub use fdb::FdbEntry;
pub use link::{Link, VethEnds, VxlanSpec};
pub use neighbour::Neighbour;
pub use route::RouteEntry;

use futures::StreamExt;
use rtnetlink::packet_core::{
    NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
};
use rtnetlink::packet_route::RouteNetlinkMessage;
use rtnetlink::proto::ConnectionHandle;
use rtnetlink::sys::protocols::NETLINK_ROUTE;
use rtnetlink::sys::SocketAddr;

use crate::KernelError;

/// A netlink connection bound to the namespace it was opened in.
#[derive(Debug, Clone)]
pub struct Netlink {
    handle: ConnectionHandle<RouteNetlinkMessage>,
}

/// One request: a message, its flags, and what it does (for errors).
#[derive(Debug, Clone)]
pub struct Request {
    message: RouteNetlinkMessage,
    flags: u16,
    what: String,
}

impl Request {
    /// A change the kernel acknowledges (`NLM_F_REQUEST | NLM_F_ACK` and `extra`).
    fn change(message: RouteNetlinkMessage, extra: u16, what: String) -> Self {
        Self {
            message,
            flags: NLM_F_REQUEST | NLM_F_ACK | extra,
            what,
        }
    }

    /// What it does, as errors say it.
    pub fn what(&self) -> &str {
        &self.what
    }
}

impl Netlink {
    /// Opens a connection in the calling thread's network namespace. Must run inside a tokio
    /// runtime context; the connection is driven by a task of that runtime.
    pub fn connect() -> std::io::Result<Self> {
        let (connection, handle, _) =
            rtnetlink::proto::new_connection::<RouteNetlinkMessage>(NETLINK_ROUTE)?;
        tokio::spawn(connection);
        Ok(Self { handle })
    }

    /// Sends `request` and returns the messages that came back before its acknowledgement
    /// (an `NLM_F_ECHO` request gets the object it made).
    pub async fn run(&self, request: Request) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        let Request {
            message,
            flags,
            what,
        } = request;
        if flags & NLM_F_ACK != 0 {
            netctl_crashpoint::step(&what);
        }
        self.exchange(vec![with_flags(message, flags)])
            .await
            .map_err(KernelError::netlink(what))
    }

    /// Sends every request in one batch; the kernel handles them in order, each whatever
    /// became of the ones before. Fails with the first error, named by the requests of the
    /// kind it answered (the kernel says the kind, not the place in the batch).
    pub async fn run_all(&self, requests: Vec<Request>) -> Result<(), KernelError> {
        if requests.is_empty() {
            return Ok(());
        }
        netctl_crashpoint::step(&format!("a batch of {} netlink requests", requests.len()));
        let kinds: Vec<(u16, String)> = requests
            .iter()
            .map(|r| (r.message.message_type(), r.what.clone()))
            .collect();
        let messages: Vec<_> = requests
            .into_iter()
            .map(|r| with_flags(r.message, r.flags))
            .collect();
        let named = |kind: Option<u16>| {
            let matching: Vec<&str> = kinds
                .iter()
                .filter(|(k, _)| kind.is_none_or(|kind| *k == kind))
                .map(|(_, what)| what.as_str())
                .collect();
            matching.join(" or ")
        };
        let mut responses = self
            .handle
            .request_batch(messages, SocketAddr::new(0, 0))
            .map_err(|_| KernelError::netlink(named(None))(rtnetlink::Error::RequestFailed))?;
        let mut first_error = None;
        while let Some(message) = responses.next().await {
            match message.payload {
                NetlinkPayload::Error(e) if e.code.is_some() && first_error.is_none() => {
                    // The error carries the header of the request it answers.
                    let kind = e.header.get(4..6).map(|b| u16::from_ne_bytes([b[0], b[1]]));
                    first_error = Some(KernelError::netlink(named(kind))(
                        rtnetlink::Error::NetlinkError(e),
                    ));
                }
                _ => {}
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// A dump request (`NLM_F_DUMP`): every object of the kind `message` asks for.
    async fn dump(
        &self,
        message: RouteNetlinkMessage,
        what: &str,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        self.exchange(vec![with_flags(message, NLM_F_REQUEST | NLM_F_DUMP)])
            .await
            .map_err(KernelError::netlink(what))
    }

    async fn exchange(
        &self,
        messages: Vec<NetlinkMessage<RouteNetlinkMessage>>,
    ) -> Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
        let mut responses = self
            .handle
            .request_batch(messages, SocketAddr::new(0, 0))
            .map_err(|_| rtnetlink::Error::RequestFailed)?;
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

fn with_flags(message: RouteNetlinkMessage, flags: u16) -> NetlinkMessage<RouteNetlinkMessage> {
    let mut message = NetlinkMessage::from(message);
    message.header.flags = flags;
    message
}

/// A neighbour entry's address. A bridge entry's is decoded by the message's family
/// (AF_BRIDGE), which says nothing of the address's: its length does.
fn ip_of(
    address: rtnetlink::packet_route::neighbour::NeighbourAddress,
) -> Option<std::net::IpAddr> {
    use rtnetlink::packet_route::neighbour::NeighbourAddress;
    match address {
        NeighbourAddress::Inet(a) => Some(a.into()),
        NeighbourAddress::Inet6(a) => Some(a.into()),
        NeighbourAddress::Other(bytes) => match bytes.len() {
            4 => <[u8; 4]>::try_from(bytes).ok().map(Into::into),
            16 => <[u8; 16]>::try_from(bytes).ok().map(Into::into),
            _ => None,
        },
        _ => None,
    }
}

pub(crate) const ENODEV: i32 = 19;
pub(crate) const EEXIST: i32 = 17;
pub(crate) const ENOENT: i32 = 2;
pub(crate) const ESRCH: i32 = 3;
pub(crate) const EADDRNOTAVAIL: i32 = 99;

/// The errno carried by a netlink error, if any.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|c| -c.get()),
        _ => None,
    }
}
