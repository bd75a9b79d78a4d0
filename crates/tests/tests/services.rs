//! Services: a virtual IP on an overlay network balanced over replica sandboxes on any node,
//! with Docker's names (`NAME` → the virtual IP, `tasks.NAME` → the replicas).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use netctl_netns_fixtures::echo::{tcp_call, tcp_echo, udp_call, udp_echo};
use netctl_netns_fixtures::Host;
use tests::cluster::{create_overlay, wait_for_network, within, Cluster};
use tests::{dig, json, netns_of};

fn service(host: &Host, name: &str) -> serde_json::Value {
    let listed = json(
        &host
            .netctl(&["service", "inspect", name, "--format", "json"])
            .expect_ok(),
    );
    listed[0].clone()
}

/// `calls` connections from `client` to `target`; how many each replica's server saw.
fn spread(
    host: &Host,
    client: &str,
    target: SocketAddr,
    calls: usize,
    servers: &HashMap<&str, Receiver<SocketAddr>>,
) -> HashMap<String, usize> {
    let netns = netns_of(host, client);
    for _ in 0..calls {
        assert_eq!(
            tcp_call(&netns, target).as_deref(),
            Some("echo:hello"),
            "every connection to the virtual IP is answered"
        );
    }
    servers
        .iter()
        .map(|(name, seen)| (name.to_string(), seen.try_iter().count()))
        .collect()
}

/// The table of the node's load balancer on `ov`, or "" without one.
fn table(host: &Host) -> String {
    host.sandbox_exec("lb-ov", &["nft", "list", "table", "ip", "netctl-lb"])
        .stdout
}

#[test]
fn a_service_is_balanced_over_replicas_on_every_node_and_follows_its_changes() {
    let mut cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    wait_for_network(b);
    for (host, sandbox) in [(a, "r1"), (a, "r2"), (b, "r3"), (b, "client")] {
        host.netctl(&["sandbox", "create", sandbox, "--network", "ov"])
            .expect_ok();
    }
    a.netctl(&[
        "service",
        "create",
        "web",
        "--network",
        "ov",
        "--replicas",
        "r1,r2,r3",
    ])
    .expect_ok();
    let web = service(a, "web");
    let vip = web["VirtualIP"].as_str().unwrap().to_string();
    assert!(vip.starts_with("10.200."), "{web}");
    assert_eq!(web["Replicas"].as_array().unwrap().len(), 3, "{web}");
    let listed = |filter: &str| {
        a.netctl(&[
            "service",
            "ls",
            "-f",
            filter,
            "--format",
            "{{.Name}} {{.Network}}",
        ])
        .expect_ok()
    };
    assert_eq!(listed("network=ov").trim(), "web ov");
    assert_eq!(listed("name=nope").trim(), "");
    let nodes = a
        .netctl(&["node", "ls", "-f", "role=manager", "--format", "{{.Role}}"])
        .expect_ok();
    assert!(
        nodes.lines().all(|l| l == "manager") && !nodes.is_empty(),
        "{nodes}"
    );

    // Mirrored on the other node: its names and its load balancer's table.
    within(Duration::from_secs(5), || table(b).contains(&vip))
        .expect("the client's node has the service");
    let names = dig(b, "client", &["web"]);
    assert_eq!(names.answers, vec![vip.clone()], "{}", names.raw);
    let mut tasks = dig(b, "client", &["tasks.web"]).answers;
    tasks.sort();
    let mut replicas: Vec<String> = ["r1", "r2"]
        .iter()
        .map(|r| tests::address(a, r, "ov"))
        .chain([tests::address(b, "r3", "ov")])
        .collect();
    replicas.sort();
    assert_eq!(tasks, replicas);

    // Balanced over the three, on both nodes.
    let servers: HashMap<&str, Receiver<SocketAddr>> = [(a, "r1"), (a, "r2"), (b, "r3")]
        .into_iter()
        .map(|(host, r)| (r, tcp_echo(&netns_of(host, r), 80)))
        .collect();
    let target: SocketAddr = format!("{vip}:80").parse().unwrap();
    let seen = spread(b, "client", target, 90, &servers);
    for (replica, count) in &seen {
        assert!(*count >= 10, "{replica} got {count} of 90: {seen:?}");
    }

    // UDP flows through the virtual IP, some of them to r3.
    let r3 = tests::address(b, "r3", "ov");
    let _udp: Vec<_> = [(a, "r1"), (a, "r2"), (b, "r3")]
        .into_iter()
        .map(|(host, r)| udp_echo(&netns_of(host, r), 5353))
        .collect();
    let udp_target: SocketAddr = format!("{vip}:5353").parse().unwrap();
    for _ in 0..20 {
        assert!(udp_call(&netns_of(b, "client"), udp_target).is_some());
    }
    let flows_to_r3 = || {
        b.sandbox_exec(
            "lb-ov",
            &["conntrack", "-L", "-p", "udp", "--reply-src", &r3],
        )
        .stdout
    };
    assert!(flows_to_r3().contains(&r3), "some of 20 flows went to r3");

    // An update replaces the set in place: r3 gets no new connection, and its UDP flows
    // are forgotten.
    a.netctl(&["service", "update", "web", "--replicas", "r1,r2"])
        .expect_ok();
    within(Duration::from_secs(5), || !table(b).contains(&r3))
        .expect("the update reaches the client's node");
    within(Duration::from_secs(2), || !flows_to_r3().contains(&r3))
        .expect("UDP flows to r3 are forgotten");
    let seen = spread(b, "client", target, 30, &servers);
    assert_eq!(seen["r3"], 0, "{seen:?}");
    assert!(seen["r1"] > 0 && seen["r2"] > 0, "{seen:?}");
    assert_eq!(dig(b, "client", &["tasks.web"]).answers.len(), 2);

    // The network is not removed under the service.
    let busy = a.netctl(&["network", "rm", "ov"]).expect_err();
    assert!(busy.contains("service"), "{busy}");

    // A restart of the client's node keeps the service working there.
    cluster.hosts[1].kill_daemon();
    cluster.hosts[1].start_daemon();
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    within(Duration::from_secs(5), || {
        dig(b, "client", &["web"]).answers == vec![vip.clone()]
    })
    .expect("names back after a restart");
    assert_eq!(
        tcp_call(&netns_of(b, "client"), target).as_deref(),
        Some("echo:hello")
    );

    // Removed: its names and load balancers go everywhere.
    a.netctl(&["service", "rm", "web"]).expect_ok();
    within(Duration::from_secs(5), || table(b).is_empty())
        .expect("the load balancer leaves the node");
    // No longer a local name: forwarded, and this test host has no upstream to answer.
    assert!(dig(b, "client", &["web"]).answers.is_empty());
    assert!(a
        .netctl(&["service", "ls", "--format", "{{.Name}}"])
        .expect_ok()
        .trim()
        .is_empty());
}

#[test]
fn bad_services_are_refused_and_change_nothing() {
    let cluster = Cluster::formed(3);
    let (a, worker) = (&cluster.hosts[0], &cluster.hosts[2]);
    create_overlay(a);
    a.netctl(&["network", "create", "local", "--subnet", "172.29.0.0/24"])
        .expect_ok();
    a.netctl(&["sandbox", "create", "r1", "--network", "ov"])
        .expect_ok();
    a.netctl(&["sandbox", "create", "away", "--network", "local"])
        .expect_ok();
    let refused = |host: &Host, args: &[&str], says: &str| {
        let err = host.netctl(args).expect_err();
        assert!(err.contains(says), "{args:?}: {err}");
    };
    let create = ["service", "create", "web", "--network", "ov", "--replicas"];
    refused(a, &[&create[..], &["nope"]].concat(), "no sandbox nope");
    refused(a, &[&create[..], &["away"]].concat(), "not on network ov");
    refused(
        a,
        &["service", "create", "web", "--network", "local"],
        "global one",
    );
    refused(
        a,
        &[&create[..], &["r1", "--publish", "8080:0"]].concat(),
        "invalid --publish",
    );
    wait_for_network(worker);
    refused(worker, &[&create[..], &["r1"]].concat(), "only managers");
    assert!(a
        .netctl(&["service", "ls", "--format", "{{.Name}}"])
        .expect_ok()
        .trim()
        .is_empty());
    a.netctl(&[&create[..], &["r1"]].concat()).expect_ok();
    refused(a, &[&create[..], &["r1"]].concat(), "already exists");
    refused(
        a,
        &["service", "update", "web", "--replicas", "away"],
        "not on network ov",
    );
    assert_eq!(service(a, "web")["Replicas"].as_array().unwrap().len(), 1);
    refused(a, &["service", "rm", "nope"], "not found");
}

#[test]
fn replicas_of_a_node_that_goes_down_get_no_connections() {
    let mut cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    wait_for_network(b);
    for (host, sandbox) in [(a, "r1"), (b, "r2"), (a, "client")] {
        host.netctl(&["sandbox", "create", sandbox, "--network", "ov"])
            .expect_ok();
    }
    a.netctl(&[
        "service",
        "create",
        "web",
        "--network",
        "ov",
        "--replicas",
        "r1,r2",
    ])
    .expect_ok();
    let vip = service(a, "web")["VirtualIP"].as_str().unwrap().to_string();
    let r2 = tests::address(b, "r2", "ov");
    within(Duration::from_secs(5), || table(a).contains(&r2))
        .expect("both replicas in the client's table");
    cluster.hosts[1].kill_daemon();
    let a = &cluster.hosts[0];
    // Its lease expires (TTL 2 s): r2 leaves every table, and the names.
    within(Duration::from_secs(10), || !table(a).contains(&r2))
        .expect("a down node's replica leaves the table");
    assert_eq!(dig(a, "client", &["tasks.web"]).answers.len(), 1);
    let replicas = service(a, "web")["Replicas"].clone();
    assert!(
        replicas
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["Ready"] == false),
        "{replicas}"
    );
    let servers: HashMap<&str, Receiver<SocketAddr>> =
        HashMap::from([("r1", tcp_echo(&netns_of(a, "r1"), 80))]);
    let target: SocketAddr = format!("{vip}:80").parse().unwrap();
    assert_eq!(spread(a, "client", target, 20, &servers)["r1"], 20);
    // Back: r2 again.
    cluster.hosts[1].start_daemon();
    let a = &cluster.hosts[0];
    within(Duration::from_secs(10), || table(a).contains(&r2)).expect("the node's replica is back");
}
