//! Overlay networks across a cluster, as users drive them: hosts in namespaces on a LAN
//! with a 1400-byte MTU, a 3-member etcd cluster from Debian's etcd-server (one member per
//! namespace), and a netctl daemon per host.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use netctl_netns_fixtures::Host;
use tests::cluster::{a_and_b, create_overlay, wait_for_network, within, Cluster, TTL};
use tests::json;

fn overlay_address(host: &Host, sandbox: &str) -> String {
    tests::address(host, sandbox, "ov")
}

#[test]
fn sandboxes_on_two_nodes_reach_each_other_by_address_and_name() {
    let cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    a.netctl(&["sandbox", "create", "a", "--network", "ov"])
        .expect_ok();
    // The network is mirrored on node 2 within the watch's delay.
    within(Duration::from_secs(5), || {
        b.netctl(&["network", "inspect", "ov"]).ok()
    })
    .expect("the network reaches node 2");
    b.netctl(&["sandbox", "create", "b", "--network", "ov"])
        .expect_ok();
    let (addr_a, addr_b) = (overlay_address(a, "a"), overlay_address(b, "b"));
    assert_ne!(addr_a, addr_b);
    within(Duration::from_secs(5), || a.ping("a", &addr_b)).expect("a pings b by address");
    assert!(b.ping("b", &addr_a), "b pings a by address");
    let by_name = a.sandbox_exec("a", &["ping", "-c1", "-W2", "b"]);
    assert!(by_name.ok(), "a pings b by name: {}", by_name.stderr);
    assert!(b.sandbox_exec("b", &["ping", "-c1", "-W2", "a"]).ok());
    // The gateway answers on each node.
    assert!(a.ping("a", "10.200.0.1") && b.ping("b", "10.200.0.1"));
    // MTU: the underlay's 1400 minus 50; a 1350-byte don't-fragment ping crosses.
    let net = tests::network(b, "ov");
    let link = a
        .sandbox_exec("a", &["ip", "-o", "link", "show", "eth0"])
        .stdout;
    assert!(link.contains(" mtu 1350 "), "{link}");
    let df = a.sandbox_exec(
        "a",
        &["ping", "-c1", "-W2", "-M", "do", "-s", "1322", &addr_b],
    );
    assert!(df.ok(), "1350-byte DF ping: {}", df.stdout);
    // Both nodes list it as global, with both endpoints and their nodes.
    assert_eq!(net["Scope"], "global");
    let containers = net["Containers"].as_object().unwrap();
    let names: HashSet<&str> = containers
        .values()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, HashSet::from(["a", "b"]));
    assert!(containers.values().all(|c| c["Node"].is_string()), "{net}");
    let ls = a.netctl(&["network", "ls"]).expect_ok();
    assert!(
        ls.lines().any(|l| l.contains("ov") && l.contains("global")),
        "{ls}"
    );
}

/// The overlay namespace of network `ov` on `host`.
fn segment(host: &Host, vni: &str) -> std::path::PathBuf {
    host.exec_root().join("overlay").join(format!("ov-{vni}"))
}

fn vni(host: &Host) -> String {
    tests::network(host, "ov")["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .expect("the VNI in inspect")
        .to_string()
}

/// `bridge fdb show dev vx0` and `ip neigh show dev vx0` in the segment, sorted.
fn entries(host: &Host, vni: &str) -> String {
    let ns = segment(host, vni);
    if !ns.exists() {
        return String::new();
    }
    let run = |program: &str, args: &[&str]| {
        let out = netctl_netns_fixtures::command_in(&ns, program)
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut lines: Vec<String> = run("bridge", &["fdb", "show", "dev", "vx0"])
        .lines()
        .chain(run("ip", &["neigh", "show", "dev", "vx0"]).lines())
        .filter(|l| l.contains("dst") || l.contains("PERMANENT"))
        .map(String::from)
        .collect();
    lines.sort();
    lines.join("\n")
}

#[test]
fn a_broadcast_reaches_the_other_node() {
    let cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    wait_for_network(b);
    a.netctl(&["sandbox", "create", "a", "--network", "ov"])
        .expect_ok();
    b.netctl(&["sandbox", "create", "b", "--network", "ov"])
        .expect_ok();
    let (ns_a, ns_b) = (tests::netns_of(a, "a"), tests::netns_of(b, "b"));
    let receiver = std::thread::spawn(move || {
        netctl_netns_fixtures::in_netns_at(&ns_b, || {
            let socket = std::net::UdpSocket::bind("0.0.0.0:5555").unwrap();
            socket
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 64];
            socket.recv_from(&mut buf).map(|(n, _)| buf[..n].to_vec())
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    netctl_netns_fixtures::in_netns_at(&ns_a, || {
        let socket = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
        socket.set_broadcast(true).unwrap();
        for _ in 0..5 {
            socket.send_to(b"hello", "10.200.255.255:5555").unwrap();
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let got = receiver.join().unwrap().expect("a broadcast from node 1");
    assert_eq!(got, b"hello");
}

#[test]
fn workers_attach_but_only_managers_change_global_networks_and_tokens_are_checked() {
    let cluster = Cluster::formed(3);
    let (manager, worker) = (&cluster.hosts[0], &cluster.hosts[2]);
    let nodes = cluster.nodes(2);
    let roles: Vec<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Role"].as_str().unwrap())
        .collect();
    assert_eq!(roles.iter().filter(|r| **r == "manager").count(), 2);
    assert_eq!(roles.iter().filter(|r| **r == "worker").count(), 1);
    assert!(nodes
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["Status"] == "ready"));
    let err = worker
        .netctl(&["network", "create", "w", "--driver", "overlay"])
        .expect_err();
    assert!(
        err.contains("only managers change global networks"),
        "{err}"
    );
    create_overlay(manager);
    wait_for_network(worker);
    worker
        .netctl(&["sandbox", "create", "w1", "--network", "ov"])
        .expect_ok();
    let err = worker.netctl(&["network", "rm", "ov"]).expect_err();
    assert!(
        err.contains("only managers change global networks"),
        "{err}"
    );

    // A wrong token and a rotated one are refused, and leave no node behind.
    let mut newcomer = Host::new();
    cluster.lan.plug_with_mtu(&newcomer, "203.0.113.30", 1400);
    newcomer.start_daemon();
    let good = cluster.token("worker");
    let wrong = format!("{}{}", &good[..good.len() - 4], "0000");
    let join = |token: &str| {
        newcomer.netctl(&[
            "cluster",
            "join",
            "--token",
            token,
            "--advertise-addr",
            "203.0.113.30",
            "--store",
            &cluster.etcd.endpoints_arg(),
        ])
    };
    let err = join(&wrong).expect_err();
    assert!(err.contains("invalid join token"), "{err}");
    manager
        .netctl(&["cluster", "join-token", "--rotate", "worker"])
        .expect_ok();
    let err = join(&good).expect_err();
    assert!(err.contains("invalid join token"), "{err}");
    assert_eq!(cluster.nodes(0).as_array().unwrap().len(), 3);
    let listing = cluster
        .etcd
        .etcdctl(&["get", "--prefix", "--keys-only", "/netctl/global/node/"])
        .expect_ok();
    assert_eq!(
        listing.lines().filter(|l| !l.is_empty()).count(),
        3,
        "{listing}"
    );
    // The printed command carries the current token.
    let printed = manager
        .netctl(&["cluster", "join-token", "worker"])
        .expect_ok();
    assert!(
        printed.contains("netctl cluster join --token NETCTL-1-"),
        "{printed}"
    );
    join(&cluster.token("worker")).expect_ok();
    newcomer.stop_daemon();
}

#[test]
fn a_node_down_leaves_the_others_within_its_ttl_and_comes_back() {
    let mut cluster = Cluster::formed(3);
    create_overlay(&cluster.hosts[0]);
    for (i, name) in ["a", "b", "c"].iter().enumerate() {
        wait_for_network(&cluster.hosts[i]);
        cluster.hosts[i]
            .netctl(&["sandbox", "create", name, "--network", "ov"])
            .expect_ok();
    }
    let vni = vni(&cluster.hosts[0]);
    let addr_c = overlay_address(&cluster.hosts[2], "c");
    let a = &cluster.hosts[0];
    within(Duration::from_secs(5), || a.ping("a", &addr_c)).expect("a reaches c");
    let with_c = entries(a, &vni);
    assert!(with_c.contains(&addr_c), "{with_c}");

    // A restart within the TTL goes unseen: node 1's entries never change.
    let b = &cluster.hosts[1];
    let before = entries(b, &vni);
    cluster.hosts[0].kill_daemon();
    cluster.hosts[0].start_daemon();
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(TTL + 1) {
        assert_eq!(
            entries(&cluster.hosts[1], &vni),
            before,
            "a flap seen from node 2"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(cluster.hosts[0].ping("a", &addr_c), "a still reaches c");

    // Node 3's daemon dies: its endpoint leaves every other node within TTL + 1 s.
    cluster.hosts[2].kill_daemon();
    let a = &cluster.hosts[0];
    let gone = within(Duration::from_secs(TTL + 1), || {
        !entries(a, &vni).contains(&addr_c)
    });
    assert!(gone.is_some(), "c's entries stayed: {}", entries(a, &vni));
    let resolved = a.sandbox_exec("a", &["getent", "hosts", "c"]);
    assert!(!resolved.ok(), "c still resolves: {}", resolved.stdout);
    let nodes = cluster.nodes(0);
    let down: Vec<&serde_json::Value> = nodes
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["Status"] == "down")
        .collect();
    assert_eq!(down.len(), 1, "{nodes}");
    // Its address stays its own while it is away.
    a.netctl(&["sandbox", "create", "d", "--network", "ov"])
        .expect_ok();
    assert_ne!(overlay_address(a, "d"), addr_c);

    cluster.hosts[2].start_daemon();
    let a = &cluster.hosts[0];
    within(Duration::from_secs(5), || {
        entries(a, &vni).contains(&addr_c)
    })
    .expect("c's entries come back");
    assert!(a.ping("a", &addr_c), "a reaches c again");
    assert!(a.sandbox_exec("a", &["ping", "-c1", "-W2", "c"]).ok());
}

#[test]
fn store_trouble_one_member_nothing_two_a_clear_error_and_back_without_restarts() {
    let mut cluster = Cluster::formed(2);
    create_overlay(&cluster.hosts[0]);
    wait_for_network(&cluster.hosts[1]);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    a.netctl(&["sandbox", "create", "a", "--network", "ov"])
        .expect_ok();
    b.netctl(&["sandbox", "create", "b", "--network", "ov"])
        .expect_ok();
    let addr_b = overlay_address(b, "b");

    // One member of three down: nothing to see.
    cluster.etcd.kill(0);
    a.netctl(&["sandbox", "create", "a2", "--network", "ov"])
        .expect_ok();
    within(Duration::from_secs(5), || a.ping("a2", &addr_b)).expect("a2 reaches b");

    // Two down: a clear error within 2 s; local networks and the data path go on.
    cluster.etcd.kill(1);
    let started = Instant::now();
    let err = a
        .netctl(&["sandbox", "create", "a3", "--network", "ov"])
        .expect_err();
    let took = started.elapsed();
    assert!(
        err.contains("cluster store unavailable: no quorum among"),
        "{err}"
    );
    assert!(took < Duration::from_millis(2500), "took {took:?}");
    let sandboxes = a
        .netctl(&["sandbox", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    assert!(!sandboxes.lines().any(|l| l == "a3"), "{sandboxes}");
    a.netctl(&["network", "create", "local", "--subnet", "172.29.0.0/24"])
        .expect_ok();
    a.netctl(&["sandbox", "create", "l", "--network", "local"])
        .expect_ok();
    assert!(a.ping("a", &addr_b), "the overlay still forwards");

    // Quorum back: a new endpoint works, nothing restarted.
    cluster.etcd.restart(0);
    cluster.etcd.restart(1);
    cluster.etcd.wait_healthy();
    let a = &cluster.hosts[0];
    within(Duration::from_secs(10), || {
        a.netctl(&["sandbox", "create", "a4", "--network", "ov"])
            .ok()
    })
    .expect("an overlay attach once quorum is back");
    let b = &cluster.hosts[1];
    let addr_a4 = overlay_address(a, "a4");
    within(Duration::from_secs(5), || b.ping("b", &addr_a4)).expect("b reaches the new a4");
    // The failed attaches left nothing in the store. A write that timed out may still
    // land once quorum is back; its node then checks and undoes it, in the background.
    let endpoints = || {
        cluster
            .etcd
            .etcdctl(&["get", "--prefix", "--keys-only", "/netctl/global/endpoint/"])
            .expect_ok()
    };
    let settled = within(Duration::from_secs(5), || {
        endpoints().lines().filter(|l| !l.is_empty()).count() == 4
    });
    assert!(settled.is_some(), "{}", endpoints());
}

#[test]
fn three_managers_creating_at_once_never_share_a_vni_or_an_address() {
    let cluster = Cluster::new(3);
    let store = cluster.etcd.endpoints_arg();
    cluster.hosts[0]
        .netctl(&[
            "cluster",
            "init",
            "--advertise-addr",
            &Cluster::address(0),
            "--store",
            &store,
        ])
        .expect_ok();
    cluster.join(1, "manager");
    cluster.join(2, "manager");
    create_overlay(&cluster.hosts[0]);
    for host in &cluster.hosts {
        wait_for_network(host);
    }
    std::thread::scope(|scope| {
        for (i, host) in cluster.hosts.iter().enumerate() {
            scope.spawn(move || {
                for n in 0..4 {
                    host.netctl(&[
                        "network",
                        "create",
                        &format!("n{i}{n}"),
                        "--driver",
                        "overlay",
                    ])
                    .expect_ok();
                    host.netctl(&["sandbox", "create", &format!("s{i}{n}"), "--network", "ov"])
                        .expect_ok();
                }
            });
        }
    });
    let host = &cluster.hosts[0];
    within(Duration::from_secs(5), || {
        tests::network(host, "ov")["Containers"]
            .as_object()
            .is_some_and(|c| c.len() == 12)
    })
    .expect("every endpoint mirrored");
    let net = tests::network(host, "ov");
    let addresses: HashSet<&str> = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap())
        .collect();
    assert_eq!(addresses.len(), 12, "{net}");
    let networks = json(
        &host
            .netctl(&["network", "ls", "--format", "json"])
            .expect_ok(),
    );
    let vnis: Vec<&str> = networks
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["Driver"] == "overlay")
        .map(|n| {
            n["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
                .as_str()
                .unwrap()
        })
        .collect();
    assert_eq!(vnis.len(), 13);
    assert_eq!(vnis.iter().collect::<HashSet<_>>().len(), 13, "{vnis:?}");
}

#[test]
fn network_rm_leaves_nothing_on_any_node() {
    let cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    create_overlay(a);
    wait_for_network(b);
    a.netctl(&["sandbox", "create", "a", "--network", "ov"])
        .expect_ok();
    b.netctl(&["sandbox", "create", "b", "--network", "ov"])
        .expect_ok();
    let vni = vni(a);
    within(Duration::from_secs(5), || !entries(a, &vni).is_empty()).expect("entries on a");
    let err = a.netctl(&["network", "rm", "ov"]).expect_err();
    assert!(
        err.contains("active endpoints") && err.contains("b on"),
        "{err}"
    );
    a.netctl(&["sandbox", "rm", "a"]).expect_ok();
    b.netctl(&["sandbox", "rm", "b"]).expect_ok();
    within(Duration::from_secs(5), || {
        a.netctl(&["network", "rm", "ov"]).ok()
    })
    .expect("removed once b's endpoint is gone");
    for host in [a, b] {
        within(Duration::from_secs(5), || {
            host.netctl(&["network", "inspect", "ov"])
                .expect_err()
                .contains("not found")
        })
        .expect("the network leaves every node");
        assert!(!segment(host, &vni).exists(), "a segment stayed");
        let links = host.ip(&["-d", "link", "show"]).expect_ok();
        assert!(!links.contains("vxlan"), "{links}");
    }
    // Only the cluster's ingress network is left (its keys, by value, its own id).
    let ingress = tests::network(a, "ingress");
    let ingress_id = ingress["Id"].as_str().unwrap();
    let ingress_vni = ingress["Options"]["com.docker.network.driver.overlay.vxlanid_list"]
        .as_str()
        .unwrap()
        .to_string();
    let keys: String = cluster
        .etcd
        .etcdctl(&["get", "--prefix", "/netctl/global/"])
        .expect_ok()
        .split('\n')
        .collect::<Vec<_>>()
        .chunks(2)
        .filter(|kv| !kv.iter().any(|line| line.contains(ingress_id)))
        .filter(|kv| !kv[0].ends_with(&format!("/vni/{ingress_vni}")))
        .map(|kv| kv[0])
        .collect::<Vec<_>>()
        .join("\n");
    for kind in [
        "network/",
        "endpoint/",
        "vni/",
        "address/",
        "subnet/",
        "network.name/",
    ] {
        assert!(
            !keys.contains(&format!("/global/{kind}")),
            "{kind} left: {keys}"
        );
    }
}

#[test]
fn backup_and_restore_bring_back_networks_vnis_and_addresses() {
    let cluster = Cluster::formed(2);
    let (a, b) = (&cluster.hosts[0], &cluster.hosts[1]);
    a.netctl(&[
        "network",
        "create",
        "ov",
        "--driver",
        "overlay",
        "--subnet",
        "10.200.0.0/24",
        "-o",
        "vxlan-id=4242",
    ])
    .expect_ok();
    wait_for_network(b);
    a.netctl(&["sandbox", "create", "a", "--network", "ov"])
        .expect_ok();
    b.netctl(&["sandbox", "create", "b", "--network", "ov"])
        .expect_ok();
    let file = a.dir().join("backup.json");
    a.netctl(&["cluster", "backup", file.to_str().unwrap()])
        .expect_ok();
    let err = a
        .netctl(&["cluster", "restore", file.to_str().unwrap()])
        .expect_err();
    assert!(err.contains("not empty") || err.contains("empty"), "{err}");
    // The store is lost…
    cluster
        .etcd
        .etcdctl(&["del", "--prefix", "/netctl/"])
        .expect_ok();
    within(Duration::from_secs(5), || {
        a.netctl(&["network", "inspect", "ov"])
            .expect_err()
            .contains("not found")
    })
    .expect("the emptied store is mirrored");
    // …and restored.
    a.netctl(&["cluster", "restore", file.to_str().unwrap()])
        .expect_ok();
    for host in [a, b] {
        wait_for_network(host);
        assert_eq!(vni(host), "4242");
    }
    let addr_b = overlay_address(b, "b");
    if within(Duration::from_secs(5), || a.ping("a", &addr_b)).is_none() {
        panic!(
            "a does not reach b again\n{}\n---\n{}\n---\n{}",
            entries(a, &vni(a)),
            a.daemon_log(),
            b.daemon_log()
        );
    }
    within(Duration::from_secs(5), || {
        cluster
            .nodes(0)
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["Status"] == "ready")
    })
    .expect("both nodes announce themselves again");
    a.netctl(&["sandbox", "create", "c", "--network", "ov"])
        .expect_ok();
    let taken: HashSet<String> = [overlay_address(a, "a"), addr_b].into();
    assert!(!taken.contains(&overlay_address(a, "c")));
}

#[test]
fn docker_containers_on_two_hosts_share_a_global_network() {
    let cluster = Cluster::formed(2);
    create_overlay(&cluster.hosts[0]);
    wait_for_network(&cluster.hosts[1]);
    let engines: Vec<netctl_netns_fixtures::Dockerd> = cluster
        .hosts
        .iter()
        .map(|host| {
            let dockerd = netctl_netns_fixtures::Dockerd::start(host);
            dockerd.import_busybox();
            dockerd
        })
        .collect();
    let docker = |i: usize, args: &[&str]| {
        let out = engines[i].docker(args);
        assert!(
            out.ok(),
            "docker {args:?}: {out:?}\nnetctl:\n{}",
            cluster.hosts[i].daemon_log()
        );
        out.stdout.trim().to_string()
    };
    // Docker's own IPAM would give containers addresses of its own: refused, with the way.
    let refused = engines[0].docker(&[
        "network",
        "create",
        "-d",
        "netctl",
        "-o",
        "netctl.overlay=ov",
        "wrong",
    ]);
    assert!(
        !refused.ok() && refused.stderr.contains("--ipam-driver null"),
        "{refused:?}"
    );
    for i in 0..2 {
        docker(
            i,
            &[
                "network",
                "create",
                "-d",
                "netctl",
                "--ipam-driver",
                "null",
                "-o",
                "netctl.overlay=ov",
                "ovd",
            ],
        );
        let name = format!("c{i}");
        docker(
            i,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "--network",
                "ovd",
                "busybox:local",
                "sleep",
                "3600",
            ],
        );
    }
    let ip_of = |i: usize| {
        docker(
            i,
            &[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                &format!("c{i}"),
            ],
        )
    };
    let (ip0, ip1) = (ip_of(0), ip_of(1));
    assert!(
        ip0.starts_with("10.200.") && ip1.starts_with("10.200."),
        "{ip0} {ip1}"
    );
    assert_ne!(ip0, ip1);
    let reached = within(Duration::from_secs(5), || {
        engines[0]
            .docker(&["exec", "c0", "ping", "-c1", "-W1", &ip1])
            .ok()
    });
    assert!(reached.is_some(), "c0 pings c1 across hosts");
    docker(1, &["exec", "c1", "ping", "-c1", "-W2", &ip0]);
    // The way out is Docker's own docker_gwbridge, as for Docker's overlays.
    let outside = Host::new();
    cluster.lan.plug(&outside, "203.0.113.50");
    let routes = docker(0, &["exec", "c0", "ip", "route"]);
    assert!(
        routes
            .lines()
            .any(|l| l.starts_with("default") && l.contains("dev eth1")),
        "{routes}"
    );
    assert!(docker(0, &["network", "ls"]).contains("docker_gwbridge"));
    docker(0, &["exec", "c0", "ping", "-c1", "-W2", "203.0.113.50"]);
    // netctl sees both, each on its node; the Docker network stays local.
    let net = tests::network(&cluster.hosts[0], "ov");
    assert_eq!(net["Containers"].as_object().unwrap().len(), 2, "{net}");
    assert_eq!(
        docker(0, &["network", "inspect", "-f", "{{.Scope}}", "ovd"]),
        "local"
    );
    for i in 0..2 {
        docker(i, &["rm", "-f", &format!("c{i}")]);
        docker(i, &["network", "rm", "ovd"]);
    }
    within(Duration::from_secs(5), || {
        tests::network(&cluster.hosts[0], "ov")["Containers"]
            .as_object()
            .is_some_and(|c| c.is_empty())
    })
    .expect("the containers' endpoints leave the global network");
    assert!(cluster.hosts[0].netctl(&["network", "inspect", "ov"]).ok());
}

#[test]
fn a_daemon_started_without_its_cluster_store_serves_local_networks_and_catches_up() {
    let mut cluster = Cluster::formed(2);
    a_and_b(&cluster);
    let addr_a = overlay_address(&cluster.hosts[0], "a");

    // Node 2 restarts while no etcd member answers.
    cluster.hosts[1].stop_daemon();
    for i in 0..3 {
        cluster.etcd.kill(i);
    }
    cluster.hosts[1].start_daemon();
    let b = &cluster.hosts[1];
    b.netctl(&["network", "create", "local", "--subnet", "172.29.0.0/24"])
        .expect_ok();
    b.netctl(&["sandbox", "create", "l", "--network", "local"])
        .expect_ok();
    let err = b
        .netctl(&["sandbox", "create", "b2", "--network", "ov"])
        .expect_err();
    assert!(err.contains("cluster store unavailable"), "{err}");
    within(Duration::from_secs(5), || {
        b.daemon_log().contains("cannot reach the cluster store")
    })
    .expect("the daemon says why its overlays wait");
    // The kernel kept what it had: b still reaches a.
    assert!(
        b.ping("b", &addr_a),
        "the overlay forwards while the store is away"
    );

    for i in 0..3 {
        cluster.etcd.restart(i);
    }
    cluster.etcd.wait_healthy();
    let b = &cluster.hosts[1];
    within(Duration::from_secs(15), || {
        b.netctl(&["sandbox", "create", "b2", "--network", "ov"])
            .ok()
    })
    .expect("the node catches up without a restart");
    let a = &cluster.hosts[0];
    let addr_b2 = overlay_address(b, "b2");
    within(Duration::from_secs(5), || a.ping("a", &addr_b2)).expect("a reaches b2");
    assert!(
        b.sandbox_exec("b", &["ping", "-c1", "-W2", "a"]).ok(),
        "names too"
    );
}

/// `-o encrypted` (Docker's spelling, bare or with a value): refused at creation, naming
/// what this kernel lacks, by the kernel's own answer, and nothing is made.
#[test]
fn encrypted_overlays_are_refused_naming_what_the_kernel_lacks() {
    let cluster = Cluster::formed(1);
    let host = &cluster.hosts[0];
    let networks = host
        .netctl(&["network", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    let links = host.ip(&["-o", "link", "show"]).expect_ok();
    // Asked the same way the daemon asks, in a namespace that goes with the command.
    let esp = std::process::Command::new("unshare")
        .args([
            "--net",
            "ip",
            "xfrm",
            "state",
            "add",
            "src",
            "192.0.2.1",
            "dst",
            "192.0.2.2",
        ])
        .args(["proto", "esp", "spi", "0x100", "mode", "transport", "aead"])
        .args([
            "rfc4106(gcm(aes))",
            "0x0102030405060708090a0b0c0d0e0f1011121314",
            "128",
        ])
        .output()
        .expect("unshare");
    for option in ["encrypted", "com.docker.network.overlay.encrypted=true"] {
        let err = host
            .netctl(&[
                "network", "create", "sec", "--driver", "overlay", "-o", option,
            ])
            .expect_err();
        if esp.status.success() {
            assert!(err.contains("netctl does not program them"), "{err}");
        } else {
            let refusal = String::from_utf8_lossy(&esp.stderr);
            let refusal = refusal.trim().trim_start_matches("Error: ");
            assert!(err.contains("this kernel has neither"), "{err}");
            assert!(
                err.contains(&format!("ESP: {refusal}")),
                "{err} / {refusal}"
            );
        }
    }
    // Off is no encryption: allowed.
    host.netctl(&[
        "network",
        "create",
        "plain",
        "--driver",
        "overlay",
        "--subnet",
        "10.201.0.0/24",
        "-o",
        "encrypted=false",
    ])
    .expect_ok();
    host.netctl(&["network", "rm", "plain"]).expect_ok();
    assert_eq!(
        host.netctl(&["network", "ls", "--format", "{{.Name}}"])
            .expect_ok(),
        networks
    );
    assert_eq!(host.ip(&["-o", "link", "show"]).expect_ok(), links);
}
