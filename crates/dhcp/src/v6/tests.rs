//! The DHCPv6 client against a server played by hand.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::{
    DhcpOption, IAAddr, Message, MessageType, OptionCode, Status, StatusCode, IANA,
};
use dhcproto::{Decodable, Decoder, Encodable, Encoder, Name};

use super::*;

const IAID: u32 = 7;
const ADDRESS: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x50);

fn identity() -> Identity {
    Identity {
        duid: vec![0, 3, 0, 1, 2, 0, 0, 0, 0, 0x32],
        iaid: IAID,
    }
}

fn sent(events: &[Event]) -> Message {
    let packets: Vec<&Vec<u8>> = events
        .iter()
        .filter_map(|e| match e {
            Event::Send(p) => Some(p),
            _ => None,
        })
        .collect();
    assert_eq!(packets.len(), 1, "{events:?}");
    Message::decode(&mut Decoder::new(packets[0])).unwrap()
}

/// The server's `kind` answer to `request`: an IA_NA with [`ADDRESS`], or `status`.
fn answer(request: &Message, kind: MessageType, status: Option<Status>) -> Vec<u8> {
    let mut msg = Message::new_with_id(kind, request.xid());
    let opts = msg.opts_mut();
    opts.insert(request.opts().get(OptionCode::ClientId).unwrap().clone());
    opts.insert(DhcpOption::ServerId(vec![0, 1, 9, 9]));
    let mut ia_opts = dhcproto::v6::DhcpOptions::new();
    match status {
        Some(status) => ia_opts.insert(DhcpOption::StatusCode(StatusCode {
            status,
            msg: "no addresses left".into(),
        })),
        None => ia_opts.insert(DhcpOption::IAAddr(IAAddr {
            addr: ADDRESS,
            preferred_life: 400,
            valid_life: 600,
            opts: dhcproto::v6::DhcpOptions::new(),
        })),
    }
    opts.insert(DhcpOption::IANA(IANA {
        id: IAID,
        t1: 0,
        t2: 0,
        opts: ia_opts,
    }));
    opts.insert(DhcpOption::DomainNameServers(vec!["2001:db8::53"
        .parse()
        .unwrap()]));
    opts.insert(DhcpOption::DomainSearchList(vec![Name::from_ascii(
        "lan.example.",
    )
    .unwrap()]));
    let mut bytes = Vec::new();
    msg.encode(&mut Encoder::new(&mut bytes)).unwrap();
    bytes
}

fn ia_address(msg: &Message) -> Option<Ipv6Addr> {
    match msg.opts().get(OptionCode::IANA) {
        Some(DhcpOption::IANA(ia)) => match ia.opts.get(OptionCode::IAAddr) {
            Some(DhcpOption::IAAddr(a)) => Some(a.addr),
            _ => None,
        },
        _ => None,
    }
}

fn bound(now: Instant) -> (Client, Lease) {
    let mut client = Client::new(identity(), 1, now);
    let solicit = sent(&client.start(now, None));
    let request = sent(&client.handle(&answer(&solicit, MessageType::Advertise, None), now));
    let events = client.handle(&answer(&request, MessageType::Reply, None), now);
    let Some(Event::Bound(lease)) = events.first().cloned() else {
        panic!("{events:?}");
    };
    (client, lease)
}

#[test]
fn solicit_advertise_request_reply_binds_an_address() {
    let now = Instant::now();
    let mut client = Client::new(identity(), 1, now);
    let solicit = sent(&client.start(now, None));
    assert_eq!(solicit.msg_type(), MessageType::Solicit);
    assert_eq!(
        solicit.opts().get(OptionCode::ClientId),
        Some(&DhcpOption::ClientId(identity().duid))
    );
    assert!(solicit.opts().get(OptionCode::ServerId).is_none());
    let request = sent(&client.handle(&answer(&solicit, MessageType::Advertise, None), now));
    assert_eq!(request.msg_type(), MessageType::Request);
    assert_eq!(
        request.opts().get(OptionCode::ServerId),
        Some(&DhcpOption::ServerId(vec![0, 1, 9, 9]))
    );
    assert_eq!(ia_address(&request), Some(ADDRESS));
    let events = client.handle(&answer(&request, MessageType::Reply, None), now);
    let [Event::Bound(lease)] = events.as_slice() else {
        panic!("{events:?}");
    };
    assert_eq!(lease.address, ADDRESS);
    assert_eq!(
        lease.dns_servers,
        vec!["2001:db8::53".parse::<Ipv6Addr>().unwrap()]
    );
    assert_eq!(lease.search, vec!["lan.example"]);
    assert_eq!(lease.times.valid, Duration::from_secs(600));
    assert_eq!(
        lease.times.renew_after,
        Duration::from_secs(200),
        "T1 = 0.5 preferred"
    );
    assert_eq!(
        lease.times.rebind_after,
        Duration::from_secs(320),
        "T2 = 0.8 preferred"
    );
}

#[test]
fn renew_names_the_server_rebind_does_not_and_expiry_solicits_again() {
    let now = Instant::now();
    let (mut client, lease) = bound(now);
    let renew = sent(&client.poll(lease.times.renew_at()));
    assert_eq!(renew.msg_type(), MessageType::Renew);
    assert!(renew.opts().get(OptionCode::ServerId).is_some());
    assert_eq!(ia_address(&renew), Some(ADDRESS));
    let rebind = sent(&client.poll(lease.times.rebind_at()));
    assert_eq!(rebind.msg_type(), MessageType::Rebind);
    assert!(rebind.opts().get(OptionCode::ServerId).is_none());
    let events = client.poll(lease.times.expires_at());
    assert_eq!(events[0], Event::Expired);
    assert_eq!(sent(&events).msg_type(), MessageType::Solicit);
}

#[test]
fn a_refusing_status_drops_the_address() {
    let now = Instant::now();
    let (mut client, lease) = bound(now);
    let renew = sent(&client.poll(lease.times.renew_at()));
    let events = client.handle(
        &answer(&renew, MessageType::Reply, Some(Status::NoBinding)),
        now,
    );
    assert!(matches!(
        &events[0],
        Event::Refused { status: Status::NoBinding, message } if message == "no addresses left"
    ));
    assert!(client.lease().is_none());
}

#[test]
fn a_remembered_lease_is_confirmed_by_rebind_and_release_names_it() {
    let now = Instant::now();
    let (_, remembered) = bound(now);
    let mut client = Client::new(identity(), 50, now);
    let rebind = sent(&client.start(now, Some(remembered)));
    assert_eq!(rebind.msg_type(), MessageType::Rebind);
    assert_eq!(ia_address(&rebind), Some(ADDRESS));
    let events = client.handle(&answer(&rebind, MessageType::Reply, None), now);
    assert!(matches!(&events[..], [Event::Bound(l)] if l.address == ADDRESS));
    let release = sent(&client.release(now));
    assert_eq!(release.msg_type(), MessageType::Release);
    assert_eq!(ia_address(&release), Some(ADDRESS));
    assert!(release.opts().get(OptionCode::ServerId).is_some());
}

#[test]
fn answers_to_other_clients_are_ignored() {
    let now = Instant::now();
    let mut client = Client::new(identity(), 1, now);
    let solicit = sent(&client.start(now, None));
    let mut other = Client::new(
        Identity {
            duid: vec![9, 9],
            iaid: IAID,
        },
        1,
        now,
    );
    let theirs = sent(&other.start(now, None));
    assert_eq!(theirs.xid(), solicit.xid(), "same transaction id");
    assert!(client
        .handle(&answer(&theirs, MessageType::Advertise, None), now)
        .is_empty());
    assert!(client.handle(b"\x02junk", now).is_empty());
}
