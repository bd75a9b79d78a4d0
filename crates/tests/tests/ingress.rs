//! The routing mesh: a port a service publishes answers on every node of the cluster (and
//! localhost), balanced over every replica on any node through the ingress network; host
//! mode answers only where a replica runs, straight to it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use netctl_netns_fixtures::echo::{tcp_call, tcp_echo, udp_call, udp_echo};
use netctl_netns_fixtures::Host;
use tests::cluster::{create_overlay, wait_for_network, within, Cluster};
use tests::{json, netns_of};

/// A host on the cluster's LAN that is no node: the clients' side.
const OUTSIDE: &str = "203.0.113.99";

fn outside(cluster: &Cluster) -> Host {
    let host = Host::new();
    cluster.lan.plug(&host, OUTSIDE);
    host
}

fn path(host: &Host) -> String {
    format!("/run/netns/{}", host.netns())
}

fn at(address: &str, port: u16) -> SocketAddr {
    format!("{address}:{port}").parse().unwrap()
}

/// The ingress sandbox's balancer table on `host`, or "" without one.
fn mesh(host: &Host) -> String {
    host.sandbox_exec("ingress-sbox", &["nft", "list", "table", "ip", "netctl-lb"])
        .stdout
}

/// `calls` connections from `client` to `target`; who answered, and from which peer each
/// replica saw them.
fn spread(
    client: &str,
    target: SocketAddr,
    calls: usize,
    servers: &HashMap<&str, Receiver<SocketAddr>>,
) -> (HashMap<String, usize>, Vec<SocketAddr>) {
    for _ in 0..calls {
        assert_eq!(
            tcp_call(client, target).as_deref(),
            Some("echo:hello"),
            "every connection to {target} is answered"
        );
    }
    let mut peers = Vec::new();
    let counts = servers
        .iter()
        .map(|(name, seen)| {
            let got: Vec<SocketAddr> = seen.try_iter().collect();
            peers.extend(&got);
            (name.to_string(), got.len())
        })
        .collect();
    (counts, peers)
}

fn networks(host: &Host) -> HashMap<String, String> {
    let listed = json(
        &host
            .netctl(&["network", "ls", "--format", "json"])
            .expect_ok(),
    );
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["Name"].as_str().unwrap().to_string(),
                format!(
                    "{} {}",
                    n["Driver"].as_str().unwrap(),
                    n["Scope"].as_str().unwrap()
                ),
            )
        })
        .collect()
}

#[test]
fn a_published_port_answers_on_every_node_balanced_over_every_replica() {
    let mut cluster = Cluster::formed(3);
    let client = outside(&cluster);
    let (a, b, c) = (&cluster.hosts[0], &cluster.hosts[1], &cluster.hosts[2]);
    create_overlay(a);
    wait_for_network(b);
    wait_for_network(c);
    let on_c = networks(c);
    assert_eq!(on_c["ingress"], "ingress global", "{on_c:?}");
    assert_eq!(on_c["gwbridge"], "gwbridge local", "{on_c:?}");
    for (host, sandbox) in [(a, "r1"), (a, "r2"), (b, "r3")] {
        host.netctl(&["sandbox", "create", sandbox, "--network", "ov"])
            .expect_ok();
    }
    let servers: HashMap<&str, Receiver<SocketAddr>> = [(a, "r1"), (a, "r2"), (b, "r3")]
        .into_iter()
        .map(|(host, r)| (r, tcp_echo(&netns_of(host, r), 80)))
        .collect();
    let _udp: Vec<_> = [(a, "r1"), (a, "r2"), (b, "r3")]
        .into_iter()
        .map(|(host, r)| udp_echo(&netns_of(host, r), 53))
        .collect();
    a.netctl(&[
        "service",
        "create",
        "web",
        "--network",
        "ov",
        "--replicas",
        "r1,r2,r3",
        "--publish",
        "8080:80",
        "--publish",
        "5353:53/udp",
    ])
    .expect_ok();
    let listed = a.netctl(&["service", "ls"]).expect_ok();
    assert!(listed.contains("*:8080->80/tcp"), "{listed}");

    // Node c runs no replica and answers all the same, spread over all three.
    let entry = at(&Cluster::address(2), 8080);
    within(Duration::from_secs(10), || {
        tcp_call(&path(&client), entry).is_some()
    })
    .expect("the third node answers on the published port");
    // What the wait sent is not counted.
    let _ = spread(&path(&client), entry, 0, &servers);
    let (seen, peers) = spread(&path(&client), entry, 300, &servers);
    for (replica, count) in &seen {
        assert!(*count >= 60, "{replica} got {count} of 300: {seen:?}");
    }
    // As in Docker's ingress mode, the replicas see the mesh's address, not the client's.
    assert!(
        peers
            .iter()
            .all(|p| p.ip().to_string().starts_with("10.0.0.")),
        "{peers:?}"
    );
    // Every node, UDP too, and localhost on a node.
    for i in 0..3 {
        assert!(udp_call(&path(&client), at(&Cluster::address(i), 5353)).is_some());
        assert!(tcp_call(&path(&client), at(&Cluster::address(i), 8080)).is_some());
    }
    assert!(tcp_call(&c.netns_path().display().to_string(), at("127.0.0.1", 8080)).is_some());

    // An update: r2 gets no new connection.
    let r2_mesh = tests::address(a, "r2", "ingress");
    a.netctl(&["service", "update", "web", "--replicas", "r1,r3"])
        .expect_ok();
    within(Duration::from_secs(5), || !mesh(c).contains(&r2_mesh))
        .expect("the update reaches the third node");
    let _ = spread(&path(&client), entry, 0, &servers);
    let (seen, _) = spread(&path(&client), entry, 30, &servers);
    assert_eq!(seen["r2"], 0, "{seen:?}");
    within(Duration::from_secs(5), || {
        !a.netctl(&["sandbox", "inspect", "r2", "--format", "json"])
            .expect_ok()
            .contains("\"ingress\"")
    })
    .expect("r2 leaves the ingress network");

    // r3's node goes down: after its lease, no connection goes there.
    let r3_mesh = tests::address(b, "r3", "ingress");
    cluster.hosts[1].kill_daemon();
    let c = &cluster.hosts[2];
    within(Duration::from_secs(10), || !mesh(c).contains(&r3_mesh))
        .expect("a down node's replica leaves the mesh");
    let _ = spread(&path(&client), entry, 0, &servers);
    let (seen, _) = spread(&path(&client), entry, 30, &servers);
    assert_eq!(seen["r1"], 30, "{seen:?}");
    cluster.hosts[1].start_daemon();

    // A restart of the entry node keeps the port.
    cluster.hosts[2].kill_daemon();
    cluster.hosts[2].start_daemon();
    let c = &cluster.hosts[2];
    assert!(tcp_call(&path(&client), entry).is_some());
    // Once it follows the cluster again (it answers with its data path before that).
    within(Duration::from_secs(10), || {
        c.netctl(&["network", "inspect", "ov"]).ok()
    })
    .expect("the restarted node follows the cluster");

    // Leaving takes the node's gateway bridge and ingress state with it.
    c.netctl(&["cluster", "leave"]).expect_ok();
    let left = networks(c);
    assert!(
        !left.contains_key("ingress") && !left.contains_key("gwbridge"),
        "{left:?}"
    );
    assert!(c
        .netctl(&["sandbox", "ls", "--format", "{{.Name}}"])
        .expect_ok()
        .trim()
        .is_empty());
    assert!(!c.nft_table().contains("8080"), "{}", c.nft_table());
    assert!(tcp_call(&path(&client), entry).is_none());
}

#[test]
fn host_mode_answers_only_where_a_replica_runs_with_the_clients_address() {
    let cluster = Cluster::formed(2);
    let client = outside(&cluster);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    wait_for_network(b);
    a.netctl(&["sandbox", "create", "r1", "--network", "ov"])
        .expect_ok();
    let seen = tcp_echo(&netns_of(a, "r1"), 90);
    a.netctl(&[
        "service",
        "create",
        "direct",
        "--network",
        "ov",
        "--replicas",
        "r1",
        "--publish",
        "mode=host,published=9090,target=90",
    ])
    .expect_ok();
    let on_a = at(&Cluster::address(0), 9090);
    within(Duration::from_secs(5), || {
        tcp_call(&path(&client), on_a).is_some()
    })
    .expect("the replica's node answers");
    let peer = seen.recv_timeout(Duration::from_secs(1)).unwrap();
    assert_eq!(
        peer.ip().to_string(),
        OUTSIDE,
        "the client's address is kept"
    );
    assert!(tcp_call(&path(&client), at(&Cluster::address(1), 9090)).is_none());
    // Removed: withdrawn from the replica's node.
    a.netctl(&["service", "rm", "direct"]).expect_ok();
    within(Duration::from_secs(5), || {
        tcp_call(&path(&client), on_a).is_none()
    })
    .expect("the port is withdrawn");
}

#[test]
fn bad_publishing_is_refused_and_the_ingress_network_can_be_replaced() {
    let cluster = Cluster::formed(2);
    let client = outside(&cluster);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    wait_for_network(b);
    a.netctl(&["network", "create", "local", "--subnet", "172.29.0.0/24"])
        .expect_ok();
    a.netctl(&["sandbox", "create", "r1", "--network", "ov"])
        .expect_ok();
    a.netctl(&[
        "sandbox",
        "create",
        "busy",
        "--network",
        "local",
        "-p",
        "7070:70",
    ])
    .expect_ok();
    let refused = |host: &Host, args: &[&str], says: &str| {
        let err = host.netctl(args).expect_err();
        assert!(err.contains(says), "{args:?}: {err}");
    };
    let create = |name: &'static str, publish: &'static str| {
        vec![
            "service",
            "create",
            name,
            "--network",
            "ov",
            "--replicas",
            "r1",
            "--publish",
            publish,
        ]
    };
    refused(a, &create("web", "8080:0"), "invalid --publish");
    refused(a, &create("web", "7070:70"), "in use on this node");
    a.netctl(&create("web", "8080:80")).expect_ok();
    refused(b, &create("other", "8080:80"), "taken by another service");
    refused(a, &["network", "rm", "ingress"], "used by service(s) web");
    refused(
        a,
        &[
            "network",
            "create",
            "ingress2",
            "--driver",
            "ingress",
            "--subnet",
            "10.1.0.0/24",
        ],
        "ingress network already",
    );
    refused(
        a,
        &["network", "connect", "ingress", "busy"],
        "ingress network",
    );
    within(Duration::from_secs(5), || {
        a.netctl(&["sandbox", "inspect", "ingress-sbox"]).ok()
    })
    .expect("the node's ingress sandbox");
    refused(a, &["sandbox", "rm", "ingress-sbox"], "balancer");
    refused(
        a,
        &["service", "create", "m", "--network", "ingress"],
        "ingress network",
    );
    let names: Vec<String> = json(&a.netctl(&["service", "ls", "--format", "json"]).expect_ok())
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["web"]);

    // Replaced, as Docker allows: only once nothing publishes through it.
    a.netctl(&["service", "rm", "web"]).expect_ok();
    a.netctl(&["network", "rm", "ingress"]).expect_ok();
    a.netctl(&[
        "network",
        "create",
        "ingress2",
        "--driver",
        "ingress",
        "--subnet",
        "10.1.0.0/24",
    ])
    .expect_ok();
    let _server = tcp_echo(&netns_of(a, "r1"), 80);
    a.netctl(&create("web", "8080:80")).expect_ok();
    let entry = at(&Cluster::address(1), 8080);
    within(Duration::from_secs(10), || {
        tcp_call(&path(&client), entry).is_some()
    })
    .expect("published through the new ingress network");
    let mesh_address = tests::address(a, "r1", "ingress2");
    assert!(mesh_address.starts_with("10.1.0."), "{mesh_address}");
}
