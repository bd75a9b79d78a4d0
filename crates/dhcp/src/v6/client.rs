//! One endpoint's DHCPv6 client for one IA_NA (RFC 8415), without I/O. Every message goes
//! to All_DHCP_Relay_Agents_and_Servers (ff02::1:2, port 547) from the interface's link-local
//! address; the caller sends it there.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::{DhcpOption, IAAddr, Message, MessageType, OptionCode, Status, IANA, ORO};
use dhcproto::{Decodable, Decoder, Encodable, Encoder};

use super::lease::{Lease, Refusal};
use crate::lifetime::{Due, Holding};
use crate::retry::Retry;

/// Who the client is: the same across restarts, so the server finds its binding again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub duid: Vec<u8>,
    pub iaid: u32,
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Send to ff02::1:2 port 547.
    Send(Vec<u8>),
    Bound(Lease),
    /// The server refused (a status other than Success): the address must go; soliciting
    /// starts again.
    Refused {
        status: Status,
        message: String,
    },
    /// The valid lifetime ran out with no server answering: remove the address.
    Expired,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Init,
    Soliciting,
    Requesting {
        server_id: Vec<u8>,
        address: Ipv6Addr,
    },
    Bound,
    Renewing,
    /// Also how a restarted client confirms a remembered lease with whichever server has it.
    Rebinding,
    Released,
}

const FIRST_RETRY: Duration = Duration::from_secs(1);
const MAX_RETRY: Duration = Duration::from_secs(16);
/// RFC 8415 7.6: REN_TIMEOUT and REB_TIMEOUT; the address is still good meanwhile.
const RENEW_RETRY: Duration = Duration::from_secs(10);
const MAX_RENEW_RETRY: Duration = Duration::from_secs(60);

pub struct Client {
    identity: Identity,
    state: State,
    lease: Option<Lease>,
    xid: u32,
    retry: Retry,
    /// When the current exchange began (the Elapsed Time option).
    exchange_began: Instant,
}

impl Client {
    pub fn new(identity: Identity, xid: u32, now: Instant) -> Self {
        Self {
            identity,
            state: State::Init,
            lease: None,
            xid,
            retry: Retry::stopped(),
            exchange_began: now,
        }
    }

    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Starts: with a remembered lease, a Rebind for its address (never a second lease),
    /// else a Solicit.
    pub fn start(&mut self, now: Instant, remembered: Option<Lease>) -> Vec<Event> {
        match remembered {
            Some(lease) => {
                self.lease = Some(lease.clone());
                self.begin(State::Rebinding, now);
                vec![self.lease_message(MessageType::Rebind, &lease, now)]
            }
            None => self.solicit(now),
        }
    }

    pub fn next_wake(&self) -> Option<Instant> {
        match (self.holding(), &self.lease) {
            (Some(holding), Some(lease)) => holding.wake(&lease.times, self.retry.at()),
            _ => self.retry.at(),
        }
    }

    /// Timers: retransmissions, T1 (Renew), T2 (Rebind), the valid lifetime.
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
                self.begin(State::Renewing, now);
                vec![self.lease_message(MessageType::Renew, &lease, now)]
            }
            Some(Due::Rebind) => {
                self.begin(State::Rebinding, now);
                vec![self.lease_message(MessageType::Rebind, &lease, now)]
            }
            Some(Due::Expire) => {
                self.lease = None;
                let mut events = vec![Event::Expired];
                events.extend(self.solicit(now));
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

    /// A message from a server: Advertise while soliciting, Reply otherwise.
    pub fn handle(&mut self, packet: &[u8], now: Instant) -> Vec<Event> {
        let Ok(msg) = Message::decode(&mut Decoder::new(packet)) else {
            return Vec::new();
        };
        let ours = matches!(msg.opts().get(OptionCode::ClientId),
            Some(DhcpOption::ClientId(id)) if *id == self.identity.duid);
        if msg.xid_num() != self.xid || !ours {
            return Vec::new();
        }
        match (msg.msg_type(), &self.state) {
            (MessageType::Advertise, State::Soliciting) => self.take_advertise(&msg, now),
            (MessageType::Reply, State::Requesting { .. })
            | (MessageType::Reply, State::Renewing)
            | (MessageType::Reply, State::Rebinding) => {
                match Lease::from_reply(&msg, self.identity.iaid, now) {
                    Ok(lease) => self.bind(lease),
                    Err(refusal) => self.refused(refusal, now),
                }
            }
            _ => Vec::new(),
        }
    }

    /// Gives the address back.
    pub fn release(&mut self, now: Instant) -> Vec<Event> {
        self.state = State::Released;
        self.retry = Retry::stopped();
        match self.lease.take() {
            Some(lease) => vec![self.lease_message(MessageType::Release, &lease, now)],
            None => Vec::new(),
        }
    }

    fn solicit(&mut self, now: Instant) -> Vec<Event> {
        self.begin(State::Soliciting, now);
        vec![self.send(self.message(MessageType::Solicit, None, None, now))]
    }

    /// The first usable Advertise (RFC 8415 lets a client wait for more; one server per
    /// LAN is the case here).
    fn take_advertise(&mut self, msg: &Message, now: Instant) -> Vec<Event> {
        let Ok(offer) = Lease::from_reply(msg, self.identity.iaid, now) else {
            return Vec::new();
        };
        let (server_id, address) = (offer.server_id, offer.address);
        self.state = State::Requesting {
            server_id: server_id.clone(),
            address,
        };
        self.retry = Retry::start(now, FIRST_RETRY, MAX_RETRY);
        self.xid = self.xid.wrapping_add(1) & 0x00ff_ffff;
        self.exchange_began = now;
        let request = self.message(MessageType::Request, Some(&server_id), Some(address), now);
        vec![self.send(request)]
    }

    fn bind(&mut self, lease: Lease) -> Vec<Event> {
        self.state = State::Bound;
        self.retry = Retry::stopped();
        self.lease = Some(lease.clone());
        vec![Event::Bound(lease)]
    }

    fn refused(&mut self, refusal: Refusal, now: Instant) -> Vec<Event> {
        self.lease = None;
        let mut events = vec![Event::Refused {
            status: refusal.status,
            message: refusal.message,
        }];
        events.extend(self.solicit(now));
        events
    }

    fn retransmit(&mut self, now: Instant) -> Vec<Event> {
        if !self.retry.due(now) {
            return Vec::new();
        }
        match self.state.clone() {
            State::Soliciting => {
                vec![self.send(self.message(MessageType::Solicit, None, None, now))]
            }
            State::Requesting { server_id, address } => {
                let request =
                    self.message(MessageType::Request, Some(&server_id), Some(address), now);
                vec![self.send(request)]
            }
            State::Renewing | State::Rebinding => {
                let kind = if self.state == State::Renewing {
                    MessageType::Renew
                } else {
                    MessageType::Rebind
                };
                match self.lease.clone() {
                    Some(lease) => vec![self.lease_message(kind, &lease, now)],
                    None => Vec::new(),
                }
            }
            _ => Vec::new(),
        }
    }

    /// A new exchange in `state`: a fresh transaction id and retransmission clock.
    fn begin(&mut self, state: State, now: Instant) {
        let times = self.lease.as_ref().map(|l| l.times);
        self.retry = match (state.clone(), times) {
            (State::Renewing, Some(t)) => {
                Retry::before(now, t.rebind_at(), RENEW_RETRY, MAX_RENEW_RETRY)
            }
            (State::Rebinding, Some(t)) => {
                Retry::before(now, t.expires_at(), RENEW_RETRY, MAX_RENEW_RETRY)
            }
            _ => Retry::start(now, FIRST_RETRY, MAX_RETRY),
        };
        self.state = state;
        self.xid = self.xid.wrapping_add(1) & 0x00ff_ffff;
        self.exchange_began = now;
    }

    /// Renew names the server; Rebind and Release of a lease carry its address.
    fn lease_message(&self, kind: MessageType, lease: &Lease, now: Instant) -> Event {
        let server = (kind != MessageType::Rebind).then_some(lease.server_id.as_slice());
        self.send(self.message(kind, server, Some(lease.address), now))
    }

    fn message(
        &self,
        kind: MessageType,
        server_id: Option<&[u8]>,
        address: Option<Ipv6Addr>,
        now: Instant,
    ) -> Message {
        let mut msg = Message::new_with_id(kind, [0; 3]);
        msg.set_xid_num(self.xid);
        let opts = msg.opts_mut();
        opts.insert(DhcpOption::ClientId(self.identity.duid.clone()));
        if let Some(server_id) = server_id {
            opts.insert(DhcpOption::ServerId(server_id.to_vec()));
        }
        let mut ia_opts = dhcproto::v6::DhcpOptions::new();
        if let Some(addr) = address {
            ia_opts.insert(DhcpOption::IAAddr(IAAddr {
                addr,
                preferred_life: 0,
                valid_life: 0,
                opts: dhcproto::v6::DhcpOptions::new(),
            }));
        }
        opts.insert(DhcpOption::IANA(IANA {
            id: self.identity.iaid,
            t1: 0,
            t2: 0,
            opts: ia_opts,
        }));
        if kind != MessageType::Release {
            opts.insert(DhcpOption::ORO(ORO {
                opts: vec![OptionCode::DomainNameServers, OptionCode::DomainSearchList],
            }));
        }
        let centiseconds = now
            .saturating_duration_since(self.exchange_began)
            .as_millis()
            / 10;
        opts.insert(DhcpOption::ElapsedTime(centiseconds.min(0xffff) as u16));
        msg
    }

    fn send(&self, msg: Message) -> Event {
        let mut packet = Vec::new();
        msg.encode(&mut Encoder::new(&mut packet))
            .expect("a client's message encodes");
        Event::Send(packet)
    }
}
