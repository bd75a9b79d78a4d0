//! The client against a server played by hand, packet by packet.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode, OptionCode};
use dhcproto::{Decodable, Decoder, Encodable, Encoder, Name};

use super::*;

const SERVER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const OFFERED: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

fn identity() -> Identity {
    Identity {
        mac: [0x02, 0, 0, 0, 0, 0x32],
        client_id: vec![0xff, 1, 2, 3, 4],
        hostname: Some("web".into()),
    }
}

/// The one packet among `events`, decoded, with where it goes.
fn sent(events: &[Event]) -> (Message, Destination) {
    let sends: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Send { packet, to } => Some((packet, *to)),
            _ => None,
        })
        .collect();
    assert_eq!(sends.len(), 1, "{events:?}");
    let msg = Message::decode(&mut Decoder::new(sends[0].0)).unwrap();
    (msg, sends[0].1)
}

/// The server's answer of `kind` to `request`, with a full set of options.
fn reply(request: &Message, kind: MessageType, address: Ipv4Addr) -> Vec<u8> {
    let mut msg = Message::new_with_id(
        request.xid(),
        Ipv4Addr::UNSPECIFIED,
        address,
        SERVER,
        Ipv4Addr::UNSPECIFIED,
        &request.chaddr()[..6],
    );
    msg.set_opcode(Opcode::BootReply);
    let opts = msg.opts_mut();
    opts.insert(DhcpOption::MessageType(kind));
    opts.insert(DhcpOption::ServerIdentifier(SERVER));
    if kind == MessageType::Nak {
        opts.insert(DhcpOption::Message("address not available".into()));
    } else {
        opts.insert(DhcpOption::AddressLeaseTime(600));
        opts.insert(DhcpOption::SubnetMask(Ipv4Addr::new(255, 255, 255, 0)));
        opts.insert(DhcpOption::Router(vec![SERVER]));
        opts.insert(DhcpOption::DomainNameServer(vec![Ipv4Addr::new(
            192, 0, 2, 53,
        )]));
        opts.insert(DhcpOption::DomainSearch(vec![Name::from_ascii(
            "lan.example.",
        )
        .unwrap()]));
        opts.insert(DhcpOption::InterfaceMtu(1400));
    }
    let mut bytes = Vec::new();
    msg.encode(&mut Encoder::new(&mut bytes)).unwrap();
    bytes
}

fn requested_ip(msg: &Message) -> Option<Ipv4Addr> {
    match msg.opts().get(OptionCode::RequestedIpAddress) {
        Some(DhcpOption::RequestedIpAddress(ip)) => Some(*ip),
        _ => None,
    }
}

/// A client bound to [`OFFERED`] at `now`, through a full DORA.
fn bound(now: Instant) -> (Client, Lease) {
    let mut client = Client::new(identity(), 7);
    let (discover, _) = sent(&client.start(now, None));
    let (request, _) = sent(&client.handle(&reply(&discover, MessageType::Offer, OFFERED), now));
    let events = client.handle(&reply(&request, MessageType::Ack, OFFERED), now);
    let Some(Event::Bound(lease)) = events.first().cloned() else {
        panic!("{events:?}");
    };
    (client, lease)
}

#[test]
fn discover_offer_request_ack_binds_with_every_option() {
    let now = Instant::now();
    let mut client = Client::new(identity(), 7);
    let (discover, to) = sent(&client.start(now, None));
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
    assert!(discover.flags().broadcast());
    assert_eq!(
        discover.opts().get(OptionCode::ClientIdentifier),
        Some(&DhcpOption::ClientIdentifier(vec![0xff, 1, 2, 3, 4]))
    );
    assert_eq!(
        discover.opts().get(OptionCode::Hostname),
        Some(&DhcpOption::Hostname("web".into()))
    );
    let (request, to) = sent(&client.handle(&reply(&discover, MessageType::Offer, OFFERED), now));
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(request.opts().msg_type(), Some(MessageType::Request));
    assert_eq!(request.xid(), discover.xid(), "the same transaction");
    assert_eq!(requested_ip(&request), Some(OFFERED));
    assert_eq!(
        request.opts().get(OptionCode::ServerIdentifier),
        Some(&DhcpOption::ServerIdentifier(SERVER))
    );
    let events = client.handle(&reply(&request, MessageType::Ack, OFFERED), now);
    let [Event::Bound(lease)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(lease.address, OFFERED);
    assert_eq!(lease.prefix, 24);
    assert_eq!(lease.server, SERVER);
    assert_eq!(lease.routers, vec![SERVER]);
    assert_eq!(lease.dns_servers, vec![Ipv4Addr::new(192, 0, 2, 53)]);
    assert_eq!(lease.search, vec!["lan.example"]);
    assert_eq!(lease.mtu, Some(1400));
    assert_eq!(lease.times.valid, Duration::from_secs(600));
    assert_eq!(
        lease.times.renew_after,
        Duration::from_secs(300),
        "T1 = half"
    );
    assert_eq!(
        lease.times.rebind_after,
        Duration::from_secs(525),
        "T2 = 7/8"
    );
    assert_eq!(client.next_wake(), Some(now + Duration::from_secs(300)));
}

#[test]
fn unanswered_discovers_are_sent_again_with_a_growing_delay() {
    let now = Instant::now();
    let mut client = Client::new(identity(), 7);
    let (first, _) = sent(&client.start(now, None));
    assert!(client.poll(now + Duration::from_millis(500)).is_empty());
    let (again, _) = sent(&client.poll(now + Duration::from_secs(1)));
    assert_eq!(again.xid(), first.xid());
    assert_eq!(client.next_wake(), Some(now + Duration::from_secs(3)));
}

#[test]
fn renewal_goes_to_the_server_at_t1_and_rebinding_broadcasts_at_t2() {
    let now = Instant::now();
    let (mut client, lease) = bound(now);
    assert!(client.poll(now + Duration::from_secs(299)).is_empty());
    let (renew, to) = sent(&client.poll(lease.times.renew_at()));
    assert_eq!(to, Destination::Server(SERVER));
    assert_eq!(renew.ciaddr(), OFFERED);
    assert_eq!(
        requested_ip(&renew),
        None,
        "RENEWING names its address in ciaddr"
    );
    assert!(!renew.flags().broadcast());
    let (rebind, to) = sent(&client.poll(lease.times.rebind_at()));
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(rebind.ciaddr(), OFFERED);
    assert_ne!(rebind.xid(), renew.xid(), "a new transaction");
    // A server answers the rebind: bound again, counting from the answer.
    let later = lease.times.rebind_at() + Duration::from_secs(5);
    let events = client.handle(&reply(&rebind, MessageType::Ack, OFFERED), later);
    let [Event::Bound(renewed)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(renewed.times.acquired, later);
}

#[test]
fn a_lease_that_runs_out_is_expired_and_discovery_starts_again() {
    let now = Instant::now();
    let (mut client, lease) = bound(now);
    client.poll(lease.times.renew_at());
    client.poll(lease.times.rebind_at());
    let events = client.poll(lease.times.expires_at());
    assert_eq!(events[0], Event::Expired);
    let (discover, _) = sent(&events);
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
    assert!(client.lease().is_none());
}

#[test]
fn a_nak_drops_the_address_and_says_why() {
    let now = Instant::now();
    let (mut client, lease) = bound(now);
    let (renew, _) = sent(&client.poll(lease.times.renew_at()));
    let events = client.handle(&reply(&renew, MessageType::Nak, Ipv4Addr::UNSPECIFIED), now);
    assert_eq!(
        events[0],
        Event::Refused {
            reason: Some("address not available".into())
        }
    );
    let (discover, _) = sent(&events);
    assert_eq!(discover.opts().msg_type(), Some(MessageType::Discover));
}

#[test]
fn a_remembered_lease_is_confirmed_with_init_reboot() {
    let now = Instant::now();
    let (_, remembered) = bound(now);
    let mut client = Client::new(identity(), 99);
    let (request, to) = sent(&client.start(now, Some(remembered)));
    assert_eq!(to, Destination::Broadcast);
    assert_eq!(request.opts().msg_type(), Some(MessageType::Request));
    assert_eq!(requested_ip(&request), Some(OFFERED));
    assert_eq!(request.ciaddr(), Ipv4Addr::UNSPECIFIED);
    assert!(
        request.opts().get(OptionCode::ServerIdentifier).is_none(),
        "INIT-REBOOT names no server"
    );
    let events = client.handle(&reply(&request, MessageType::Ack, OFFERED), now);
    assert!(matches!(&events[..], [Event::Bound(l)] if l.address == OFFERED));
}

#[test]
fn release_goes_to_the_server_and_foreign_answers_are_ignored() {
    let now = Instant::now();
    let (mut client, _) = bound(now);
    let mut other = Client::new(
        Identity {
            mac: [0x02, 0, 0, 0, 0, 0x99],
            ..identity()
        },
        1,
    );
    let (foreign, _) = sent(&other.start(now, None));
    assert!(client
        .handle(
            &reply(&foreign, MessageType::Nak, Ipv4Addr::UNSPECIFIED),
            now
        )
        .is_empty());
    assert!(client.handle(b"not dhcp", now).is_empty());
    let (release, to) = sent(&client.release());
    assert_eq!(to, Destination::Server(SERVER));
    assert_eq!(release.opts().msg_type(), Some(MessageType::Release));
    assert_eq!(release.ciaddr(), OFFERED);
    assert!(client.lease().is_none());
    assert_eq!(client.next_wake(), None);
}
