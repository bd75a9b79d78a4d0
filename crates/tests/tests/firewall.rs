//! What the firewall allows: ICC on and off, isolation between networks, outbound traffic
//! masqueraded behind the host, internal networks sealed. An "outside" host is joined to the
//! daemon's host by an underlay link and has no route back to any container subnet.

use std::io::Read;
use std::net::TcpListener;
use std::time::Duration;

use netctl_netns_fixtures::{in_netns, Host, Underlay};
use tests::address;

#[test]
fn icc_off_blocks_neighbours_but_not_the_gateway() {
    let host = Host::with_daemon();
    host.netctl(&[
        "network",
        "create",
        "quiet",
        "--subnet",
        "172.30.1.0/24",
        "-o",
        "icc=false",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "quiet"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "b", "--network", "quiet"])
        .expect_ok();
    assert!(!host.ping("a", &address(&host, "b", "quiet")));
    assert!(host.ping("a", "172.30.1.1"));
    let nft = host.nft_table();
    let pairs = nft
        .split("set icc_pairs")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    assert!(!pairs.contains("ncb"), "no ICC pair for the network: {nft}");
}

#[test]
fn networks_are_isolated_from_each_other() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "one", "--subnet", "172.30.1.0/24"])
        .expect_ok();
    host.netctl(&["network", "create", "two", "--subnet", "172.30.2.0/24"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "one"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "b", "--network", "two"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "a2", "--network", "one"])
        .expect_ok();
    assert!(
        host.ping("a", &address(&host, "a2", "one")),
        "same network talks"
    );
    assert!(!host.ping("a", &address(&host, "b", "two")));
    assert!(!host.ping("b", &address(&host, "a", "one")));
    // Rule count does not grow with networks or sandboxes.
    let rules = |h: &Host| {
        h.nft_table()
            .lines()
            .filter(|l| l.contains("accept") || l.contains("drop") || l.contains("masquerade"))
            .count()
    };
    let before = rules(&host);
    host.netctl(&["network", "create", "three"]).expect_ok();
    host.netctl(&["sandbox", "create", "c", "--network", "three"])
        .expect_ok();
    assert_eq!(rules(&host), before);
}

#[test]
fn outbound_traffic_is_masqueraded_and_internal_networks_are_sealed() {
    let host = Host::with_daemon();
    let outside = Host::new();
    let link = Underlay::join(&host, &outside, "198.51.100");
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    host.netctl(&[
        "network",
        "create",
        "sealed",
        "--internal",
        "--subnet",
        "172.30.9.0/24",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "s", "--network", "sealed"])
        .expect_ok();

    // The outside host has no route to 172.30.0.0/24: only masquerade brings replies back.
    assert!(host.ping("a", &link.b_address));
    assert!(!host.ping("s", &link.b_address));
    assert!(
        !host.ping("s", "172.30.0.1"),
        "internal sandboxes do not reach other networks' gateways"
    );

    // The outside host sees the host's address as the source.
    let listener = in_netns(outside.netns(), || {
        TcpListener::bind("198.51.100.2:7000").unwrap()
    });
    let accept = std::thread::spawn(move || {
        let (mut conn, peer) = listener.accept().unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut text = String::new();
        let _ = conn.read_to_string(&mut text);
        (peer.ip().to_string(), text)
    });
    host.sandbox_exec(
        "a",
        &["bash", "-c", "echo hello > /dev/tcp/198.51.100.2/7000"],
    )
    .expect_ok();
    let (peer, text) = accept.join().unwrap();
    assert_eq!(peer, link.a_address);
    assert_eq!(text.trim(), "hello");
}

#[test]
fn unsolicited_traffic_from_outside_does_not_reach_sandboxes() {
    let host = Host::with_daemon();
    let outside = Host::new();
    let link = Underlay::join(&host, &outside, "198.51.100");
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    outside
        .ip(&["route", "add", "172.30.0.0/24", "via", &link.a_address])
        .expect_ok();
    let target = address(&host, "a", "web");
    assert!(!outside.exec(&["ping", "-c1", "-W1", &target]).ok());
    // Replies to what the sandbox started still come back.
    assert!(host.ping("a", &link.b_address));
}
