//! One endpoint's DHCPv4 client (RFC 2131), without I/O: it is handed packets and the time,
//! and answers with what to send and what became of the lease. The daemon owns the sockets
//! and the timers; many clients share them.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Flags, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::lease::Lease;
use crate::lifetime::{Due, Holding};
use crate::retry::Retry;

/// Who the client is to the server; the same across restarts, so the server recognises it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub mac: [u8; 6],
    /// Option 61.
    pub client_id: Vec<u8>,
    /// Option 12.
    pub hostname: Option<String>,
}

/// Where a packet goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// 255.255.255.255 from 0.0.0.0 (no address yet) or from the lease's (rebinding).
    Broadcast,
    /// The leasing server, from the lease's address (renewing, releasing).
    Server(Ipv4Addr),
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Send {
        packet: Vec<u8>,
        to: Destination,
    },
    /// A lease is bound, newly or renewed: configure (or keep) the address.
    Bound(Lease),
    /// The server refused the address (NAK): drop it; discovery starts again.
    Refused {
        reason: Option<String>,
    },
    /// The lease ran out with no server answering: remove the address.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Init,
    Selecting,
    Requesting {
        offered: Ipv4Addr,
        server: Ipv4Addr,
    },
    /// INIT-REBOOT: confirming a remembered address after a restart.
    Rebooting {
        requested: Ipv4Addr,
    },
    Bound,
    Renewing,
    Rebinding,
    Released,
}

/// First retransmission delay; it doubles up to [`MAX_RETRY`] (RFC 2131 4.1 starts at 4 s,
/// which is long for a container waiting for its address).
const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(16);
/// RFC 2131 4.4.5: while renewing or rebinding, half the time left but at least this
/// between requests (a short lease is asked for sooner: see [`Retry::before`]).
const RENEW_RETRY: Duration = Duration::from_secs(60);

pub struct Client {
    identity: Identity,
    state: State,
    lease: Option<Lease>,
    xid: u32,
    /// When the current exchange sends again.
    retry: Retry,
}

impl Client {
    /// `xid` seeds the transaction ids (each exchange takes the next one).
    pub fn new(identity: Identity, xid: u32) -> Self {
        Self {
            identity,
            state: State::Init,
            lease: None,
            xid,
            retry: Retry::stopped(),
        }
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Starts: INIT-REBOOT with a remembered lease (the same address confirmed, never a
    /// second lease), else discovery.
    pub fn start(&mut self, now: Instant, remembered: Option<Lease>) -> Vec<Event> {
        match remembered {
            Some(lease) => {
                let requested = lease.address;
                self.lease = Some(lease);
                self.state = State::Rebooting { requested };
                self.begin_exchange(now);
                vec![self.request_reboot(requested)]
            }
            None => self.discover(now),
        }
    }

    /// The next time [`Client::poll`] has something to do.
    pub fn next_wake(&self) -> Option<Instant> {
        match (self.holding(), &self.lease) {
            (Some(holding), Some(lease)) => holding.wake(&lease.times, self.retry.at()),
            _ => self.retry.at(),
        }
    }

    /// Timers: retransmissions, T1 (renew), T2 (rebind), expiry.
    pub fn poll(&mut self, now: Instant) -> Vec<Event> {
        let due = match (self.holding(), &self.lease) {
            (Some(holding), Some(lease)) => holding.due(&lease.times, now),
            _ => None,
        };
        let Some(lease) = self.lease.clone() else {
            return self.retransmit(now);
        };
        match due {
            Some(Due::Renew) => {
                self.state = State::Renewing;
                self.begin_exchange(now);
                vec![self.request_lease(&lease, Destination::Server(lease.server))]
            }
            Some(Due::Rebind) => {
                self.state = State::Rebinding;
                self.begin_exchange(now);
                vec![self.request_lease(&lease, Destination::Broadcast)]
            }
            Some(Due::Expire) => {
                self.lease = None;
                let mut events = vec![Event::Expired];
                events.extend(self.discover(now));
                events
            }
            None => self.retransmit(now),
        }
    }

    /// How the client holds its lease, if it holds one.
    fn holding(&self) -> Option<Holding> {
        match self.state {
            State::Bound => Some(Holding::Bound),
            State::Renewing => Some(Holding::Renewing),
            State::Rebinding => Some(Holding::Rebinding),
            _ => None,
        }
    }

    /// A packet from the server side: answers to other clients or exchanges are passed over.
    pub fn handle(&mut self, packet: &[u8], now: Instant) -> Vec<Event> {
        let Ok(msg) = Message::decode(&mut Decoder::new(packet)) else {
            return Vec::new();
        };
        if msg.opcode() != Opcode::BootReply
            || msg.xid() != self.xid
            || msg.chaddr().get(..6) != Some(&self.identity.mac[..])
        {
            return Vec::new();
        }
        match (msg.opts().msg_type(), self.state.clone()) {
            (Some(MessageType::Offer), State::Selecting) => self.take_offer(&msg, now),
            (Some(MessageType::Ack), State::Requesting { .. })
            | (Some(MessageType::Ack), State::Rebooting { .. })
            | (Some(MessageType::Ack), State::Renewing)
            | (Some(MessageType::Ack), State::Rebinding) => self.bind(&msg, now),
            (Some(MessageType::Nak), State::Requesting { .. })
            | (Some(MessageType::Nak), State::Rebooting { .. })
            | (Some(MessageType::Nak), State::Renewing)
            | (Some(MessageType::Nak), State::Rebinding) => {
                let reason = match msg.opts().get(OptionCode::Message) {
                    Some(DhcpOption::Message(text)) => Some(text.clone()),
                    _ => None,
                };
                self.lease = None;
                let mut events = vec![Event::Refused { reason }];
                events.extend(self.discover(now));
                events
            }
            _ => Vec::new(),
        }
    }

    /// Gives the address back (the endpoint goes away).
    pub fn release(&mut self) -> Vec<Event> {
        self.state = State::Released;
        self.retry = Retry::stopped();
        let Some(lease) = self.lease.take() else {
            return Vec::new();
        };
        let mut msg = self.message(MessageType::Release, lease.address);
        msg.opts_mut()
            .insert(DhcpOption::ServerIdentifier(lease.server));
        vec![send(&msg, Destination::Server(lease.server))]
    }

    fn discover(&mut self, now: Instant) -> Vec<Event> {
        self.state = State::Selecting;
        self.begin_exchange(now);
        let msg = self.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
        vec![send(&msg, Destination::Broadcast)]
    }

    fn take_offer(&mut self, offer: &Message, now: Instant) -> Vec<Event> {
        let server = match offer.opts().get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => *ip,
            _ => return Vec::new(),
        };
        let offered = offer.yiaddr();
        self.state = State::Requesting { offered, server };
        // The same transaction, so the ACK matches; the retransmission clock restarts.
        self.retry = Retry::start(now, FIRST_RETRY, MAX_RETRY);
        vec![self.request_offered(offered, server)]
    }

    fn bind(&mut self, ack: &Message, now: Instant) -> Vec<Event> {
        let Some(lease) = Lease::from_ack(ack, now) else {
            return Vec::new();
        };
        self.state = State::Bound;
        self.retry = Retry::stopped();
        self.lease = Some(lease.clone());
        vec![Event::Bound(lease)]
    }

    /// Sends the current exchange's packet again when its time has come.
    fn retransmit(&mut self, now: Instant) -> Vec<Event> {
        if !self.retry.due(now) {
            return Vec::new();
        }
        match self.state.clone() {
            State::Selecting => {
                let msg = self.message(MessageType::Discover, Ipv4Addr::UNSPECIFIED);
                vec![send(&msg, Destination::Broadcast)]
            }
            State::Requesting { offered, server } => vec![self.request_offered(offered, server)],
            State::Rebooting { requested } => vec![self.request_reboot(requested)],
            State::Renewing => match self.lease.clone() {
                Some(lease) => vec![self.request_lease(&lease, Destination::Server(lease.server))],
                None => Vec::new(),
            },
            State::Rebinding => match self.lease.clone() {
                Some(lease) => vec![self.request_lease(&lease, Destination::Broadcast)],
                None => Vec::new(),
            },
            _ => Vec::new(),
        }
    }

    /// A new transaction: a fresh id and the retransmission clock from the start. A bound
    /// address is still good while renewing or rebinding: no need to hurry the server.
    fn begin_exchange(&mut self, now: Instant) {
        self.xid = self.xid.wrapping_add(1);
        let times = self.lease.as_ref().map(|l| l.times);
        self.retry = match (&self.state, times) {
            (State::Renewing, Some(t)) => {
                Retry::before(now, t.rebind_at(), RENEW_RETRY, RENEW_RETRY)
            }
            (State::Rebinding, Some(t)) => {
                Retry::before(now, t.expires_at(), RENEW_RETRY, RENEW_RETRY)
            }
            _ => Retry::start(now, FIRST_RETRY, MAX_RETRY),
        };
    }

    /// SELECTING → REQUESTING: the offered address from the offering server (broadcast, so
    /// the other servers learn their offers were declined).
    fn request_offered(&self, offered: Ipv4Addr, server: Ipv4Addr) -> Event {
        let mut msg = self.message(MessageType::Request, Ipv4Addr::UNSPECIFIED);
        msg.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(offered));
        msg.opts_mut().insert(DhcpOption::ServerIdentifier(server));
        send(&msg, Destination::Broadcast)
    }

    /// INIT-REBOOT: the remembered address, to whichever server knows it.
    fn request_reboot(&self, requested: Ipv4Addr) -> Event {
        let mut msg = self.message(MessageType::Request, Ipv4Addr::UNSPECIFIED);
        msg.opts_mut()
            .insert(DhcpOption::RequestedIpAddress(requested));
        send(&msg, Destination::Broadcast)
    }

    /// RENEWING (unicast to the server) and REBINDING (broadcast): the address in ciaddr.
    fn request_lease(&self, lease: &Lease, to: Destination) -> Event {
        let msg = self.message(MessageType::Request, lease.address);
        send(&msg, to)
    }

    fn message(&self, kind: MessageType, ciaddr: Ipv4Addr) -> Message {
        let unspecified = Ipv4Addr::UNSPECIFIED;
        let mut msg = Message::new_with_id(
            self.xid,
            ciaddr,
            unspecified,
            unspecified,
            unspecified,
            &self.identity.mac,
        );
        if ciaddr.is_unspecified() {
            // No address to receive a unicast answer on yet.
            msg.set_flags(Flags::default().set_broadcast());
        }
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::MessageType(kind));
        opts.insert(DhcpOption::ClientIdentifier(
            self.identity.client_id.clone(),
        ));
        if kind != MessageType::Release {
            if let Some(hostname) = &self.identity.hostname {
                opts.insert(DhcpOption::Hostname(hostname.clone()));
            }
            opts.insert(DhcpOption::ParameterRequestList(vec![
                OptionCode::SubnetMask,
                OptionCode::Router,
                OptionCode::DomainNameServer,
                OptionCode::DomainSearch,
                OptionCode::InterfaceMtu,
                OptionCode::AddressLeaseTime,
                OptionCode::Renewal,
                OptionCode::Rebinding,
            ]));
        }
        msg
    }
}

fn send(msg: &Message, to: Destination) -> Event {
    let mut packet = Vec::new();
    msg.encode(&mut Encoder::new(&mut packet))
        .expect("a client's message encodes");
    Event::Send { packet, to }
}
