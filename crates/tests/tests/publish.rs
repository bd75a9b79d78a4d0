//! Port publishing through nftables, reached from another host over an underlay, from the
//! host itself and from containers, with the client's address preserved.

use std::net::SocketAddr;
use std::time::Duration;

use netctl_netns_fixtures::echo::{tcp_call, tcp_echo, udp_call, udp_echo};
use netctl_netns_fixtures::{in_netns, Host, Underlay};
use tests::{assert_same, full_state, json, netns_of};

/// A host with a daemon, an outside host joined to it on 198.51.100.0/24, and network `web`.
fn setup() -> (Host, Host, Underlay) {
    let host = Host::with_daemon();
    let outside = Host::new();
    let link = Underlay::join(&host, &outside, "198.51.100");
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    (host, outside, link)
}

/// Sandbox `a` on `web` publishing `spec`, with a TCP echo server on `port` inside it.
fn a_publishing(host: &Host, spec: &str, port: u16) -> std::sync::mpsc::Receiver<SocketAddr> {
    host.netctl(&["sandbox", "create", "a", "--network", "web", "-p", spec])
        .expect_ok();
    tcp_echo(&netns_of(host, "a"), port)
}

fn outside_path(outside: &Host) -> String {
    format!("/run/netns/{}", outside.netns())
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn published_tcp_reaches_the_container_with_the_clients_address() {
    let (host, outside, _link) = setup();
    let callers = a_publishing(&host, "8080:80", 80);
    let answer = tcp_call(&outside_path(&outside), addr("198.51.100.1:8080"));
    assert_eq!(answer.as_deref(), Some("echo:hello"));
    let caller = callers.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(caller.ip().to_string(), "198.51.100.2", "no proxy, no SNAT");
    let ports = host.netctl(&["port", "a"]).expect_ok();
    assert_eq!(ports.trim(), "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080");
    let listed = json(&host.netctl(&["port", "a", "--format", "json"]).expect_ok());
    assert_eq!(listed[0]["HostPort"], 8080);
}

#[test]
fn udp_on_a_specific_host_address() {
    let (host, outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "198.51.100.1:5353:53/udp",
    ])
    .expect_ok();
    let callers = udp_echo(&netns_of(&host, "a"), 53);
    let answer = udp_call(&outside_path(&outside), addr("198.51.100.1:5353"));
    assert_eq!(answer.as_deref(), Some("echo:hello"));
    assert_eq!(
        callers
            .recv_timeout(Duration::from_secs(2))
            .unwrap()
            .ip()
            .to_string(),
        "198.51.100.2"
    );
}

#[test]
fn port_ranges_and_publish_all() {
    let (host, outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "r",
        "--network",
        "web",
        "-p",
        "9000-9002:9000-9002",
    ])
    .expect_ok();
    let _s = tcp_echo(&netns_of(&host, "r"), 9001);
    assert_eq!(
        tcp_call(&outside_path(&outside), addr("198.51.100.1:9001")).as_deref(),
        Some("echo:hello")
    );

    host.netctl(&[
        "sandbox",
        "create",
        "b",
        "--network",
        "web",
        "-p",
        "80",
        "--expose",
        "7000",
        "-P",
    ])
    .expect_ok();
    let ports: Vec<serde_json::Value> =
        json(&host.netctl(&["port", "b", "--format", "json"]).expect_ok())
            .as_array()
            .unwrap()
            .clone();
    assert_eq!(ports.len(), 2);
    let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap();
    let (low, high): (u64, u64) = {
        let mut it = range.split_whitespace().map(|p| p.parse().unwrap());
        (it.next().unwrap(), it.next().unwrap())
    };
    for p in &ports {
        let chosen = p["HostPort"].as_u64().unwrap();
        assert!((low..=high).contains(&chosen), "{p}");
    }
    let seven = ports.iter().find(|p| p["ContainerPort"] == 7000).unwrap();
    let _s = tcp_echo(&netns_of(&host, "b"), 7000);
    let target = SocketAddr::new(
        "198.51.100.1".parse().unwrap(),
        seven["HostPort"].as_u64().unwrap() as u16,
    );
    assert_eq!(
        tcp_call(&outside_path(&outside), target).as_deref(),
        Some("echo:hello")
    );
}

#[test]
fn localhost_publishing_answers_on_the_host_only() {
    let (host, outside, _link) = setup();
    let _s = a_publishing(&host, "127.0.0.1:9090:90", 90);
    let host_path = format!("/run/netns/{}", host.netns());
    assert_eq!(
        tcp_call(&host_path, addr("127.0.0.1:9090")).as_deref(),
        Some("echo:hello")
    );
    assert_eq!(
        tcp_call(&outside_path(&outside), addr("198.51.100.1:9090")),
        None
    );
}

#[test]
fn hairpin_reaches_own_and_neighbours_published_ports() {
    let (host, _outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "c", "--network", "web"])
        .expect_ok();
    let _s = tcp_echo(&netns_of(&host, "a"), 80);
    let target = addr("198.51.100.1:8080");
    assert_eq!(
        tcp_call(&netns_of(&host, "c"), target).as_deref(),
        Some("echo:hello"),
        "neighbour"
    );
    assert_eq!(
        tcp_call(&netns_of(&host, "a"), target).as_deref(),
        Some("echo:hello"),
        "itself"
    );
}

#[test]
fn ipv6_published_port() {
    let (host, outside, _link) = setup();
    // The underlay end facing `peer` is named after it.
    let ul = |peer: &Host| format!("ul-{}", peer.tag());
    host.ip(&[
        "addr",
        "add",
        "2001:db8::1/64",
        "dev",
        &ul(&outside),
        "nodad",
    ])
    .expect_ok();
    outside
        .ip(&["addr", "add", "2001:db8::2/64", "dev", &ul(&host), "nodad"])
        .expect_ok();
    host.netctl(&[
        "network",
        "create",
        "v6",
        "--ipv6",
        "--subnet",
        "172.30.6.0/24",
        "--subnet",
        "fd00:6::/64",
    ])
    .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "v6",
        "-p",
        "[::]:8443:443",
    ])
    .expect_ok();
    let callers = tcp_echo(&netns_of(&host, "a"), 443);
    assert_eq!(
        tcp_call(&outside_path(&outside), addr("[2001:db8::1]:8443")).as_deref(),
        Some("echo:hello")
    );
    assert_eq!(
        callers
            .recv_timeout(Duration::from_secs(2))
            .unwrap()
            .ip()
            .to_string(),
        "2001:db8::2"
    );
    // The same wildcard binding answers on IPv4 too.
    assert_eq!(
        tcp_call(&outside_path(&outside), addr("198.51.100.1:8443")).as_deref(),
        Some("echo:hello")
    );
}

#[test]
fn unpublishing_takes_the_port_away_at_once() {
    let (host, outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
        "-p",
        "5353:53/udp",
    ])
    .expect_ok();
    let _s = tcp_echo(&netns_of(&host, "a"), 80);
    assert!(tcp_call(&outside_path(&outside), addr("198.51.100.1:8080")).is_some());
    host.netctl(&["network", "disconnect", "web", "a"])
        .expect_ok();
    assert_eq!(
        tcp_call(&outside_path(&outside), addr("198.51.100.1:8080")),
        None
    );
    let table = host.nft_table();
    assert!(
        !table.contains(": 8080") && !table.contains(". 8080"),
        "{table}"
    );
    // The port is free for the next one.
    host.netctl(&[
        "sandbox",
        "create",
        "b",
        "--network",
        "web",
        "-p",
        "8080:80",
    ])
    .expect_ok();
}

#[test]
fn conflicts_are_refused_and_change_nothing() {
    let (host, _outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "b"]).expect_ok();
    host.netctl(&["network", "create", "sealed", "--internal"])
        .expect_ok();
    // A host process listening on 7777 in the daemon's namespace.
    let _busy = in_netns(host.netns(), || {
        std::net::TcpListener::bind("0.0.0.0:7777").unwrap()
    });
    let sctp_supported = in_netns(host.netns(), || {
        nix::sys::socket::socket(
            nix::sys::socket::AddressFamily::Inet,
            nix::sys::socket::SockType::Stream,
            nix::sys::socket::SockFlag::empty(),
            nix::sys::socket::SockProtocol::Sctp,
        )
        .is_ok()
    });
    let mut cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["network", "connect", "web", "b", "-p", "8080:81"],
            "port 0.0.0.0:8080/tcp is already published",
        ),
        (
            vec![
                "network",
                "connect",
                "web",
                "b",
                "-p",
                "198.51.100.1:8080:81",
            ],
            "already published",
        ),
        (
            vec!["network", "connect", "web", "b", "-p", "7777:80"],
            "port 0.0.0.0:7777/tcp is in use by a process on the host",
        ),
        (
            vec!["network", "connect", "web", "b", "-p", "203.0.113.9:80:80"],
            "203.0.113.9 is not an address of this host",
        ),
        (
            vec!["network", "connect", "web", "b", "-p", "80:80/icmp"],
            "invalid protocol",
        ),
        (
            vec!["network", "connect", "web", "b", "-p", "70000:80"],
            "invalid port",
        ),
        (
            vec![
                "network",
                "connect",
                "web",
                "b",
                "-p",
                "[2001:db8::1]:80:80",
            ],
            "no IPv6 address",
        ),
        (
            vec!["network", "connect", "sealed", "b", "-p", "80:80"],
            "it is internal",
        ),
    ];
    if !sctp_supported {
        cases.push((
            vec!["network", "connect", "web", "b", "-p", "2905:2905/sctp"],
            "sctp is not supported by this kernel",
        ));
    }
    for (args, expected) in cases {
        let before = full_state(&host);
        let err = host.netctl(&args).expect_err();
        assert!(
            err.contains(expected),
            "netctl {args:?}: expected {expected:?} in {err:?}"
        );
        assert_same(&before, &full_state(&host), &format!("netctl {args:?}"));
    }
}

#[test]
fn publishing_survives_a_daemon_crash_and_keeps_open_connections() {
    let (mut host, outside, _link) = setup();
    let _s = a_publishing(&host, "8080:80", 80);
    let outside_ns = outside_path(&outside);
    // An open connection across the restart.
    let mut open = netctl_netns_fixtures::in_netns_at(&outside_ns, || {
        std::net::TcpStream::connect_timeout(&addr("198.51.100.1:8080"), Duration::from_secs(2))
            .unwrap()
    });
    let before = full_state(&host);
    host.kill_daemon();
    host.start_daemon();
    assert_same(&before, &full_state(&host), "kill -9 and restart");
    use std::io::{BufRead, BufReader, Write};
    open.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    open.write_all(b"still there\n").unwrap();
    let mut line = String::new();
    BufReader::new(open).read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "echo:still there");
    assert_eq!(
        tcp_call(&outside_ns, addr("198.51.100.1:8080")).as_deref(),
        Some("echo:hello")
    );
    // The host port is still held: a second publish of it is refused.
    host.netctl(&[
        "sandbox",
        "create",
        "b",
        "--network",
        "web",
        "-p",
        "8080:80",
    ])
    .expect_err();
}

/// Polls for up to three seconds.
fn eventually(mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while std::time::Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn a_flushed_or_deleted_table_heals_itself() {
    let (host, outside, _link) = setup();
    let _s = a_publishing(&host, "8080:80", 80);
    let outside_ns = outside_path(&outside);
    let reachable = || tcp_call(&outside_ns, addr("198.51.100.1:8080")).is_some();
    assert!(reachable());
    let intact = host.nft_table();
    for wreck in [
        &["nft", "flush", "ruleset"][..],
        &["nft", "delete", "table", "inet", "netctl"],
    ] {
        host.exec(wreck).expect_ok();
        assert!(
            eventually(|| host.nft_table() == intact),
            "after {wreck:?}:\n{}",
            host.nft_table()
        );
        assert!(reachable(), "after {wreck:?}");
    }
    assert!(
        host.daemon_log().contains("restoring it"),
        "the daemon says what it did"
    );
}

#[test]
fn the_users_policy_chain_blocks_and_survives_reload_and_restart() {
    let (mut host, outside, _link) = setup();
    let _s = a_publishing(&host, "8080:80", 80);
    let outside_ns = outside_path(&outside);
    let reachable = || tcp_call(&outside_ns, addr("198.51.100.1:8080")).is_some();
    assert!(reachable());
    // The user's rule sees traffic after DNAT: the container's port.
    host.exec(&[
        "nft",
        "add",
        "rule",
        "inet",
        "netctl-user",
        "forward",
        "tcp",
        "dport",
        "80",
        "drop",
    ])
    .expect_ok();
    assert!(!reachable());
    host.netctl(&["firewall", "reload"]).expect_ok();
    assert!(!reachable(), "reload leaves the user's table alone");
    host.kill_daemon();
    host.start_daemon();
    assert!(!reachable(), "so does a restart");
    host.exec(&["nft", "flush", "chain", "inet", "netctl-user", "forward"])
        .expect_ok();
    assert!(reachable());
}

#[test]
fn ports_are_published_and_withdrawn_on_a_running_endpoint() {
    let (host, outside, _link) = setup();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    let _s = tcp_echo(&netns_of(&host, "a"), 80);
    let outside_ns = outside_path(&outside);
    let out = host
        .netctl(&["network", "publish", "web", "a", "-p", "8080:80"])
        .expect_ok();
    assert_eq!(out.trim(), "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080");
    assert!(tcp_call(&outside_ns, addr("198.51.100.1:8080")).is_some());
    host.netctl(&["network", "unpublish", "web", "a", "-p", "8080:80"])
        .expect_ok();
    assert!(tcp_call(&outside_ns, addr("198.51.100.1:8080")).is_none());
    assert!(host.netctl(&["port", "a"]).expect_ok().trim().is_empty());
    let err = host
        .netctl(&["network", "unpublish", "web", "a", "-p", "8080:80"])
        .expect_err();
    assert!(err.contains("no such published port"), "{err}");
    // The host port was given back: publishing it again works.
    host.netctl(&["network", "publish", "web", "a", "-p", "8080:80"])
        .expect_ok();
    assert!(tcp_call(&outside_ns, addr("198.51.100.1:8080")).is_some());
}

#[test]
fn the_host_reaches_its_own_published_ports() {
    let (host, _outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
        "-p",
        "5353:53/udp",
    ])
    .expect_ok();
    let _t = tcp_echo(&netns_of(&host, "a"), 80);
    let _u = udp_echo(&netns_of(&host, "a"), 53);
    let host_ns = format!("/run/netns/{}", host.netns());
    assert_eq!(
        tcp_call(&host_ns, addr("198.51.100.1:8080")).as_deref(),
        Some("echo:hello")
    );
    assert_eq!(
        udp_call(&host_ns, addr("198.51.100.1:5353")).as_deref(),
        Some("echo:hello")
    );
}

#[test]
fn withdrawing_a_udp_port_forgets_its_flows() {
    let (host, outside, _link) = setup();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "5353:53/udp",
    ])
    .expect_ok();
    let _u = udp_echo(&netns_of(&host, "a"), 53);
    assert!(udp_call(&outside_path(&outside), addr("198.51.100.1:5353")).is_some());
    let flows = || {
        host.exec(&["conntrack", "-L", "-p", "udp", "--orig-port-dst", "5353"])
            .stdout
    };
    assert!(flows().contains("dport=5353"), "a flow exists: {}", flows());
    host.netctl(&["network", "disconnect", "web", "a"])
        .expect_ok();
    assert!(
        !flows().contains("dport=5353"),
        "stale flow left: {}",
        flows()
    );
}

/// `curl localhost:PORT` tries `::1` first: a port published on every address answers there
/// too, for an IPv4-only container (which the kernel cannot reach over IPv6 at all) and a
/// dual-stack one (whose IPv6 loopback traffic the kernel cannot translate), for TCP and
/// UDP; and `-p [::1]:PORT` works. Never a hang.
#[test]
fn published_ports_answer_on_the_ipv6_loopback() {
    let (host, _outside, _link) = setup();
    host.netctl(&[
        "network",
        "create",
        "dual",
        "--ipv6",
        "--subnet",
        "172.31.0.0/24",
        "--subnet",
        "fd00:31::/64",
    ])
    .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
        "-p",
        "5353:53/udp",
    ])
    .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "b",
        "--network",
        "dual",
        "-p",
        "8081:80",
        "-p",
        "[::1]:8082:81",
        "-p",
        "5354:53/udp",
    ])
    .expect_ok();
    let a_callers = tcp_echo(&netns_of(&host, "a"), 80);
    let b_callers = tcp_echo(&netns_of(&host, "b"), 80);
    let _b81 = tcp_echo(&netns_of(&host, "b"), 81);
    let _a53 = udp_echo(&netns_of(&host, "a"), 53);
    let _b53 = udp_echo(&netns_of(&host, "b"), 53);
    let here = host.netns_path().display().to_string();
    for (target, what) in [
        ("[::1]:8080", "IPv4-only, TCP"),
        ("127.0.0.1:8080", "IPv4-only, TCP over 127.0.0.1"),
        ("[::1]:8081", "dual-stack, TCP"),
        ("[::1]:8082", "dual-stack, TCP on [::1] only"),
    ] {
        let started = std::time::Instant::now();
        let answer = tcp_call(&here, addr(target));
        assert_eq!(answer.as_deref(), Some("echo:hello"), "{what} ({target})");
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{what}: no hang"
        );
    }
    for target in ["[::1]:5353", "[::1]:5354"] {
        assert_eq!(
            udp_call(&here, addr(target)).as_deref(),
            Some("echo:hello"),
            "{target}"
        );
    }
    // The containers were reached from the proxy, at their own family's address.
    let a_caller = a_callers.recv_timeout(Duration::from_secs(2)).unwrap();
    assert!(a_caller.is_ipv4(), "{a_caller}");
    let b_caller = b_callers.recv_timeout(Duration::from_secs(2)).unwrap();
    assert!(b_caller.is_ipv6(), "{b_caller}");
    // The proxy lets go of the port with the unpublish: the port can be published again at
    // once, over and over.
    for _ in 0..20 {
        for (verb, spec) in [("unpublish", "5353:53/udp"), ("publish", "5353:53/udp")] {
            host.netctl(&["network", verb, "web", "a", "-p", spec])
                .expect_ok();
        }
    }
    assert_eq!(
        udp_call(&here, addr("[::1]:5353")).as_deref(),
        Some("echo:hello")
    );
    // Withdrawn with the port, and back after a restart.
    host.netctl(&["network", "unpublish", "web", "a", "-p", "8080:80"])
        .expect_ok();
    assert!(tcp_call(&here, addr("[::1]:8080")).is_none());
    let mut host = host;
    host.kill_daemon();
    host.start_daemon();
    assert_eq!(
        tcp_call(&here, addr("[::1]:8081")).as_deref(),
        Some("echo:hello"),
        "after a restart"
    );
}
