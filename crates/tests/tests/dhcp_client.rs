//! netctl's DHCP client (the state machine of `netctl-dhcp`, through the kernel crate's
//! device sockets) against a real server: dnsmasq on a LAN namespace, the client in another
//! with the LAN's `eth1` and no address. The daemon's use of it comes with the DHCP IPAM.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use netctl_dhcp::v4::{Client, Destination, Event, Identity, Lease};
use netctl_netns_fixtures::{in_netns_at, Dnsmasq, Host};

/// A LAN host serving DHCP on `srv0` (192.0.2.1/24) and a client host whose `eth1` is the
/// other end, without an address.
fn lan() -> (Host, Host, Dnsmasq) {
    let server = Host::new();
    let client = Host::new();
    let client_ns = client.netns_path().display().to_string();
    server
        .ip(&[
            "link", "add", "srv0", "type", "veth", "peer", "name", "eth1", "netns", &client_ns,
        ])
        .expect_ok();
    server
        .ip(&["addr", "add", "192.0.2.1/24", "dev", "srv0"])
        .expect_ok();
    server.ip(&["link", "set", "srv0", "up"]).expect_ok();
    client.ip(&["link", "set", "eth1", "up"]).expect_ok();
    let leases = server.dir().join("leases");
    let dnsmasq = Dnsmasq::quiet(
        &server,
        "192.0.2.1",
        &[
            "--dhcp-range=192.0.2.100,192.0.2.150,255.255.255.0,2m",
            "--dhcp-option=option:router,192.0.2.1",
            "--dhcp-option=option:dns-server,192.0.2.53",
            "--dhcp-option=option:domain-search,lan.example",
            "--dhcp-option=option:mtu,1400",
            "--dhcp-authoritative",
            "--log-dhcp",
            "--no-ping",
            &format!("--dhcp-leasefile={}", leases.display()),
        ],
    );
    (server, client, dnsmasq)
}

fn identity() -> Identity {
    Identity {
        mac: [0; 6],
        client_id: b"\x00netctl-test-endpoint".to_vec(),
        hostname: Some("web".into()),
    }
}

/// Runs the client until `done` says so or 10 s pass, sending and receiving through `socket`.
fn drive(
    socket: &UdpSocket,
    client: &mut Client,
    mut events: Vec<Event>,
    done: impl Fn(&Event) -> bool,
) -> Option<Vec<Event>> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1500];
    loop {
        for event in events.drain(..) {
            match &event {
                Event::Send { .. } => send(socket, &event),
                other => {
                    let finished = done(other);
                    seen.push(other.clone());
                    if finished {
                        return Some(seen);
                    }
                }
            }
        }
        if Instant::now() > deadline {
            return None;
        }
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        events = match socket.recv(&mut buf) {
            Ok(n) => client.handle(&buf[..n], Instant::now()),
            Err(_) => client.poll(Instant::now()),
        };
    }
}

/// Sends the packet an [`Event::Send`] carries where it says.
fn send(socket: &UdpSocket, event: &Event) {
    let Event::Send { packet, to } = event else {
        return;
    };
    let target = match to {
        Destination::Broadcast => netctl_kernel::dhcp::all_servers_v4(),
        Destination::Server(ip) => {
            std::net::SocketAddr::new((*ip).into(), netctl_kernel::dhcp::SERVER_PORT_V4)
        }
    };
    socket.send_to(packet, target).expect("send");
}

#[test]
fn the_client_leases_from_dnsmasq_and_releases() {
    let (server, client_host, dnsmasq) = lan();
    let ns = client_host.netns_path().display().to_string();
    let mac_text = client_host.ip(&["-br", "link", "show", "eth1"]).expect_ok();
    let mac_field = mac_text.split_whitespace().nth(2).unwrap().to_string();
    let mut mac = [0u8; 6];
    for (b, part) in mac.iter_mut().zip(mac_field.split(':')) {
        *b = u8::from_str_radix(part, 16).unwrap();
    }
    let started = Instant::now();
    let lease = in_netns_at(&ns, move || {
        let socket = netctl_kernel::dhcp::socket_v4("eth1").expect("the client's socket");
        let mut client = Client::new(Identity { mac, ..identity() }, 0x1234);
        let start = client.start(Instant::now(), None);
        let events = drive(&socket, &mut client, start, |e| {
            matches!(e, Event::Bound(_))
        })?;
        let Some(Event::Bound(lease)) = events.last().cloned() else {
            return None;
        };
        // As the daemon will: the address on the interface, so the release goes from it.
        let address = format!("{}/{}", lease.address, lease.prefix);
        let added = std::process::Command::new("ip")
            .args(["addr", "add", &address, "dev", "eth1"])
            .status()
            .ok()?;
        assert!(added.success());
        for event in client.release() {
            send(&socket, &event);
        }
        Some(lease)
    });
    let took = started.elapsed();
    let lease =
        lease.unwrap_or_else(|| panic!("no lease; the server's log:\n{}", dnsmasq.queries()));
    eprintln!("leased and released in {took:?}");
    check_lease(&lease);
    // dnsmasq recorded the lease with the client's MAC and hostname, and dropped it at the
    // release.
    let leases = server.dir().join("leases");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let text = std::fs::read_to_string(&leases).unwrap_or_default();
        if !text.contains(&lease.address.to_string()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still leased after the release: {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn check_lease(lease: &Lease) {
    let octets = lease.address.octets();
    assert_eq!(&octets[..3], &[192, 0, 2]);
    assert!((100..=150).contains(&octets[3]), "{lease:?}");
    assert_eq!(lease.prefix, 24);
    assert_eq!(lease.server.to_string(), "192.0.2.1");
    assert_eq!(
        lease.routers,
        vec!["192.0.2.1".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(
        lease.dns_servers,
        vec!["192.0.2.53".parse::<std::net::Ipv4Addr>().unwrap()]
    );
    assert_eq!(lease.search, vec!["lan.example"]);
    assert_eq!(lease.mtu, Some(1400));
    assert_eq!(lease.times.valid, Duration::from_secs(120));
}

/// DHCPv6: the same LAN with dnsmasq serving 2001:db8::/64 statefully.
#[test]
fn the_v6_client_leases_an_address_from_dnsmasq() {
    let server = Host::new();
    let client_host = Host::new();
    let client_ns = client_host.netns_path().display().to_string();
    // Link-local addresses usable at once (no duplicate address detection to wait for).
    for host in [&server, &client_host] {
        host.exec(&["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0"])
            .expect_ok();
    }
    server
        .ip(&[
            "link", "add", "srv0", "type", "veth", "peer", "name", "eth1", "netns", &client_ns,
        ])
        .expect_ok();
    server
        .ip(&["addr", "add", "2001:db8::1/64", "dev", "srv0"])
        .expect_ok();
    server.ip(&["link", "set", "srv0", "up"]).expect_ok();
    client_host.ip(&["link", "set", "eth1", "up"]).expect_ok();
    let dnsmasq = Dnsmasq::quiet(
        &server,
        "2001:db8::1",
        &[
            "--dhcp-range=2001:db8::100,2001:db8::1ff,64,2m",
            "--dhcp-option=option6:dns-server,[2001:db8::53]",
            "--dhcp-option=option6:domain-search,lan.example",
            "--log-dhcp",
        ],
    );
    let ifindex: u32 = client_host
        .exec(&["cat", "/sys/class/net/eth1/ifindex"])
        .expect_ok()
        .trim()
        .parse()
        .unwrap();
    let lease = in_netns_at(&client_ns, move || {
        use netctl_dhcp::v6::{Client, Event, Identity};
        // The link-local address, which the socket sends from, may take a moment.
        let deadline = Instant::now() + Duration::from_secs(5);
        let socket = loop {
            match netctl_kernel::dhcp::socket_v6("eth1") {
                Ok(socket) => break socket,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("the client's socket: {e}"),
            }
        };
        let identity = Identity {
            duid: vec![0, 4, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
            iaid: 1,
        };
        let mut client = Client::new(identity, 0x42, Instant::now());
        let mut events = client.start(Instant::now(), None);
        let target = netctl_kernel::dhcp::all_servers_v6(ifindex);
        let mut buf = [0u8; 1500];
        socket
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            for event in events.drain(..) {
                match event {
                    Event::Send(packet) => {
                        // The first sends may meet a link-local address not ready yet.
                        let _ = socket.send_to(&packet, target);
                    }
                    Event::Bound(lease) => return Some(lease),
                    _ => {}
                }
            }
            events = match socket.recv(&mut buf) {
                Ok(n) => client.handle(&buf[..n], Instant::now()),
                Err(_) => client.poll(Instant::now()),
            };
        }
        None
    })
    .unwrap_or_else(|| panic!("no lease; the server's log:\n{}", dnsmasq.queries()));
    let segments = lease.address.segments();
    assert_eq!(&segments[..4], &[0x2001, 0xdb8, 0, 0]);
    assert!((0x100..=0x1ff).contains(&segments[7]), "{lease:?}");
    assert_eq!(
        lease.dns_servers,
        vec!["2001:db8::53".parse::<std::net::Ipv6Addr>().unwrap()]
    );
    assert_eq!(lease.search, vec!["lan.example"]);
    assert_eq!(lease.times.valid, Duration::from_secs(120));
}
