//! The gateway bridge: overlay sandboxes reach the world outside the cluster through their
//! node, masqueraded, as Docker's containers do through docker_gwbridge.

use std::net::SocketAddr;
use std::time::Duration;

use netctl_netns_fixtures::echo::{tcp_call, tcp_echo};
use netctl_netns_fixtures::Host;
use tests::cluster::{create_overlay, wait_for_network, Cluster};
use tests::{json, netns_of};

/// A host on the cluster's LAN that is not in the cluster.
const OUTSIDE: &str = "203.0.113.50";

fn networks(host: &Host) -> Vec<serde_json::Value> {
    json(
        &host
            .netctl(&["network", "ls", "--format", "json"])
            .expect_ok(),
    )
    .as_array()
    .unwrap()
    .clone()
}

fn gateway_bridge(host: &Host) -> Option<serde_json::Value> {
    networks(host).into_iter().find(|n| n["Name"] == "gwbridge")
}

fn routes(host: &Host, sandbox: &str) -> String {
    host.sandbox_exec(sandbox, &["ip", "route"]).expect_ok()
}

#[test]
fn overlay_sandboxes_reach_the_outside_through_their_node() {
    let cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    let outside = Host::new();
    cluster.lan.plug(&outside, OUTSIDE);

    // Every node has one, local, from the default pools.
    for host in [a, b] {
        let gw = gateway_bridge(host).expect("gwbridge after init/join");
        assert_eq!(gw["Driver"], "gwbridge");
        assert_eq!(gw["Scope"], "local");
    }

    create_overlay(a);
    a.netctl(&[
        "network",
        "create",
        "quiet",
        "--driver",
        "overlay",
        "--subnet",
        "10.201.0.0/16",
        "--internal",
    ])
    .expect_ok();
    wait_for_network(b);
    a.netctl(&["sandbox", "create", "c", "--network", "ov"])
        .expect_ok();
    b.netctl(&["sandbox", "create", "s", "--network", "ov"])
        .expect_ok();

    // eth0 on the overlay, eth1 on the gateway bridge with the default route.
    let s = tests::sandbox(b, "s");
    let on = &s["NetworkSettings"]["Networks"];
    assert!(on["ov"].is_object() && on["gwbridge"].is_object(), "{s}");
    let routes_s = routes(b, "s");
    assert!(
        routes_s
            .lines()
            .any(|l| l.starts_with("default") && l.contains("dev eth1")),
        "{routes_s}"
    );
    assert!(
        !routes_s
            .lines()
            .any(|l| l.starts_with("default") && l.contains("dev eth0")),
        "{routes_s}"
    );

    // Out to a host that is not in the cluster, seen as the node's own address.
    let callers = tcp_echo(&outside.netns_path().display().to_string(), 7000);
    let target: SocketAddr = format!("{OUTSIDE}:7000").parse().unwrap();
    assert_eq!(
        tcp_call(&netns_of(b, "s"), target).as_deref(),
        Some("echo:hello")
    );
    let caller = callers.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(caller.ip().to_string(), Cluster::address(1), "masqueraded");
    // East–west is still the overlay's, by name across nodes.
    assert!(b.sandbox_exec("s", &["ping", "-c1", "-W2", "c"]).ok());
    // Sandboxes on one node do not meet on the gateway bridge (ICC off).
    b.netctl(&["sandbox", "create", "t", "--network", "ov"])
        .expect_ok();
    let t_gw = tests::address(b, "t", "gwbridge");
    assert!(!b.ping("s", &t_gw), "ICC is off on the gateway bridge");

    // An internal overlay gets no way out and no default route.
    b.netctl(&["sandbox", "create", "q", "--network", "quiet"])
        .expect_ok();
    let q = tests::sandbox(b, "q");
    assert!(
        q["NetworkSettings"]["Networks"]["gwbridge"].is_null(),
        "{q}"
    );
    assert!(!routes(b, "q").contains("default"), "{}", routes(b, "q"));
    assert_eq!(tcp_call(&netns_of(b, "q"), target), None);

    // Leaving the overlay takes the gateway interface along.
    b.netctl(&["network", "disconnect", "ov", "s"]).expect_ok();
    let s = tests::sandbox(b, "s");
    assert_eq!(
        s["NetworkSettings"]["Networks"].as_object().unwrap().len(),
        0,
        "{s}"
    );
    // Connecting again brings it back.
    b.netctl(&["network", "connect", "ov", "s"]).expect_ok();
    assert!(tests::sandbox(b, "s")["NetworkSettings"]["Networks"]["gwbridge"].is_object());

    // The gateway bridge is not removed while in use; it goes when the node leaves.
    let busy = b.netctl(&["network", "rm", "gwbridge"]).expect_err();
    assert!(
        busy.contains("endpoint") || busy.contains("in use"),
        "{busy}"
    );
    for sandbox in ["s", "t", "q"] {
        b.netctl(&["sandbox", "rm", sandbox]).expect_ok();
    }
    let bridge = tests::network(b, "gwbridge")["Bridge"]
        .as_str()
        .expect("the bridge device in inspect")
        .to_string();
    assert!(b.ip(&["-o", "link"]).stdout.contains(&bridge));
    b.netctl(&["cluster", "leave"]).expect_ok();
    assert!(gateway_bridge(b).is_none(), "{:?}", networks(b));
    let links = b.ip(&["-o", "link"]).stdout;
    assert!(!links.contains(&bridge), "{links}");
    assert!(!b.nft_table().contains(&bridge), "{}", b.nft_table());
    // The node that stays keeps its own.
    assert!(gateway_bridge(a).is_some());
}

#[test]
fn a_restarted_daemon_keeps_the_way_out() {
    let mut cluster = Cluster::formed(1);
    let outside = Host::new();
    cluster.lan.plug(&outside, OUTSIDE);
    let a = &mut cluster.hosts[0];
    create_overlay(a);
    a.netctl(&["sandbox", "create", "s", "--network", "ov"])
        .expect_ok();
    a.kill_daemon();
    a.start_daemon();
    let callers = tcp_echo(&outside.netns_path().display().to_string(), 7001);
    let target: SocketAddr = format!("{OUTSIDE}:7001").parse().unwrap();
    assert_eq!(
        tcp_call(&netns_of(a, "s"), target).as_deref(),
        Some("echo:hello")
    );
    assert!(callers.recv_timeout(Duration::from_secs(2)).is_ok());
    // Removed while unused, it is made again for the next sandbox.
    a.netctl(&["sandbox", "rm", "s"]).expect_ok();
    a.netctl(&["network", "rm", "gwbridge"]).expect_ok();
    a.netctl(&["sandbox", "create", "s2", "--network", "ov"])
        .expect_ok();
    assert!(gateway_bridge(a).is_some());
    assert!(tests::sandbox(a, "s2")["NetworkSettings"]["Networks"]["gwbridge"].is_object());
}
