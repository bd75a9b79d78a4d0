//! Debian's dockerd, run by the test fixtures in a namespace of its own (the harness the
//! Docker remote-plugin tests stand on).

use netctl_netns_fixtures::echo::tcp_call;
use netctl_netns_fixtures::{Dockerd, Host, Underlay};
use tests::PluginSocket;

/// A host with netctl's daemon and a dockerd beside it, `busybox:local` imported.
fn docker_host() -> (Host, Dockerd) {
    let host = Host::with_daemon();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
    (host, dockerd)
}

/// No link with one of `prefixes` is left (a Docker endpoint's veth goes in the background,
/// within a fraction of a second of DeleteEndpoint's answer).
#[track_caller]
fn no_links_left(host: &Host, prefixes: &[&str]) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let links = host.ip(&["-o", "link"]).expect_ok();
        if !prefixes.iter().any(|p| links.contains(p)) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "links left behind:\n{links}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Bridges, host veth ends and container veth ends.
const ALL_LINKS: &[&str] = &["ncb", "ncv", "ncs"];
/// An endpoint's veth, either end.
const ENDPOINT_LINKS: &[&str] = &["ncv", "ncs"];

/// `docker network create -d netctl --ipam-driver netctl [EXTRA…] NAME`
#[track_caller]
fn netctl_network(host: &Host, dockerd: &Dockerd, name: &str, extra: &[&str]) {
    let mut args = vec![
        "network",
        "create",
        "-d",
        "netctl",
        "--ipam-driver",
        "netctl",
    ];
    args.extend_from_slice(extra);
    args.push(name);
    docker_ok(host, dockerd, &args);
}

/// `docker run -d --name NAME --network NETWORK [EXTRA…] busybox:local sleep 3600`
#[track_caller]
fn sleeper(host: &Host, dockerd: &Dockerd, name: &str, network: &str, extra: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name, "--network", network];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["busybox:local", "sleep", "3600"]);
    docker_ok(host, dockerd, &args);
}

#[track_caller]
fn docker_ok(host: &Host, dockerd: &Dockerd, args: &[&str]) -> String {
    let out = dockerd.docker(args);
    assert!(
        out.ok(),
        "docker {args:?}: {out:?}\nnetctl:\n{}",
        host.daemon_log()
    );
    out.stdout
}

#[test]
fn dockerd_runs_containers_inside_a_test_host() {
    let host = Host::new();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
    let none = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:local",
        "ip",
        "-o",
        "link",
    ]);
    assert!(none.ok(), "{none:?}\n{}", dockerd.log());
    assert!(!none.stdout.contains("eth0"), "{}", none.stdout);
    let bridged = dockerd
        .docker(&[
            "run",
            "--rm",
            "busybox:local",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ])
        .expect_ok();
    assert!(bridged.contains("172.17."), "{bridged}");
    // docker0 and the containers' veths are in the test host, not in the root namespace.
    assert!(host.ip(&["link", "show", "docker0"]).ok());
}

#[test]
fn a_docker_network_on_netctl_carries_containers() {
    let (host, dockerd) = docker_host();
    let create = dockerd.docker(&[
        "network",
        "create",
        "-d",
        "netctl",
        "--ipam-driver",
        "netctl",
        "--subnet",
        "10.20.0.0/16",
        "--gateway",
        "10.20.0.1",
        "--ip-range",
        "10.20.5.0/24",
        "--aux-address",
        "host1=10.20.0.5",
        "-o",
        "mtu=1400",
        "n1",
    ]);
    assert!(create.ok(), "{create:?}\n{}", host.daemon_log());
    let run = dockerd.docker(&[
        "run",
        "-d",
        "--name",
        "c1",
        "--network",
        "n1",
        "--ip",
        "10.20.5.10",
        "--mac-address",
        "02:42:0a:14:05:0a",
        "busybox:local",
        "sleep",
        "3600",
    ]);
    assert!(run.ok(), "{run:?}\n{}", host.daemon_log());
    let addr = dockerd
        .docker(&["exec", "c1", "ip", "-o", "addr", "show", "eth0"])
        .expect_ok();
    assert!(addr.contains("10.20.5.10/16"), "{addr}");
    let link = dockerd
        .docker(&["exec", "c1", "ip", "-o", "link", "show", "eth0"])
        .expect_ok();
    assert!(
        link.contains("02:42:0a:14:05:0a") && link.contains("mtu 1400"),
        "{link}"
    );
    let route = dockerd.docker(&["exec", "c1", "ip", "route"]).expect_ok();
    assert!(route.contains("default via 10.20.0.1"), "{route}");
    let ping = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "busybox:local",
        "ping",
        "-c1",
        "-W2",
        "c1",
    ]);
    assert!(ping.ok(), "{ping:?}\n{}", host.daemon_log());
    let listed = host.netctl(&["network", "ls"]).expect_ok();
    assert!(
        listed.contains("docker-") && listed.contains("docker "),
        "{listed}"
    );
    // The CLI leaves Docker's networks to dockerd.
    let names = host
        .netctl(&["network", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    let name = names.lines().find(|n| n.starts_with("docker-")).unwrap();
    let refused = host.netctl(&["network", "rm", name]).expect_err();
    assert!(refused.contains("managed by Docker"), "{refused}");
    host.netctl(&["sandbox", "create", "s"]).expect_ok();
    let refused = host.netctl(&["network", "connect", name, "s"]).expect_err();
    assert!(refused.contains("managed by Docker"), "{refused}");
    host.netctl(&["sandbox", "rm", "s"]).expect_ok();
    // dockerd's FORWARD policy is drop: netctl's bridge is admitted in DOCKER-USER, and only it.
    let user_chain = host.exec(&["iptables", "-S", "DOCKER-USER"]).expect_ok();
    assert!(
        user_chain.contains("-i ncb") && user_chain.contains("-o ncb"),
        "{user_chain}"
    );
    assert!(!user_chain.contains("docker0"), "{user_chain}");

    dockerd.docker(&["rm", "-f", "c1"]).expect_ok();
    dockerd.docker(&["network", "rm", "n1"]).expect_ok();
    let listed = host.netctl(&["network", "ls"]).expect_ok();
    assert!(!listed.contains("docker-"), "{listed}");
    // The pool went back: the same subnet can be had again.
    netctl_network(&host, &dockerd, "again", &["--subnet", "10.20.0.0/16"]);
    docker_ok(&host, &dockerd, &["network", "rm", "again"]);
    no_links_left(&host, ALL_LINKS);
    let user_chain = host.exec(&["iptables", "-S", "DOCKER-USER"]).expect_ok();
    assert!(!user_chain.contains("ncb"), "{user_chain}");
}

#[test]
fn netctl_picks_subnets_and_containers_connect_and_disconnect() {
    let (host, dockerd) = docker_host();
    netctl_network(&host, &dockerd, "n1", &[]);
    netctl_network(&host, &dockerd, "n2", &[]);
    let subnet = |name: &str| {
        docker_ok(
            &host,
            &dockerd,
            &[
                "network",
                "inspect",
                name,
                "-f",
                "{{(index .IPAM.Config 0).Subnet}}",
            ],
        )
        .trim()
        .to_string()
    };
    let (s1, s2) = (subnet("n1"), subnet("n2"));
    assert!(!s1.is_empty() && s1 != s2, "{s1} {s2}");
    sleeper(&host, &dockerd, "c1", "n1", &[]);
    docker_ok(&host, &dockerd, &["network", "connect", "n2", "c1"]);
    let links = docker_ok(&host, &dockerd, &["exec", "c1", "ip", "-o", "-4", "addr"]);
    assert!(links.contains("eth1"), "{links}");
    docker_ok(&host, &dockerd, &["network", "disconnect", "n2", "c1"]);
    let links = docker_ok(&host, &dockerd, &["exec", "c1", "ip", "-o", "-4", "addr"]);
    assert!(!links.contains("eth1"), "{links}");
    docker_ok(&host, &dockerd, &["rm", "-f", "c1"]);
    docker_ok(&host, &dockerd, &["network", "rm", "n1", "n2"]);
    no_links_left(&host, ALL_LINKS);
}

#[test]
fn internal_ipv6_networks_get_no_gateway_and_no_docker_gwbridge() {
    let (host, dockerd) = docker_host();
    netctl_network(
        &host,
        &dockerd,
        "n3",
        &["--ipv6", "--subnet", "fd00:50::/64", "--internal"],
    );
    let out = docker_ok(
        &host,
        &dockerd,
        &[
            "run",
            "--rm",
            "--network",
            "n3",
            "busybox:local",
            "sh",
            "-c",
            "ip -o addr; ip -6 route; ip route",
        ],
    );
    assert!(out.contains("fd00:50::"), "{out}");
    assert!(
        !out.contains("default"),
        "internal: no default route\n{out}"
    );
    assert!(!out.contains("eth1"), "no docker_gwbridge interface\n{out}");
    docker_ok(&host, &dockerd, &["network", "rm", "n3"]);
}

#[test]
fn published_ports_are_reached_from_another_host() {
    let (host, dockerd) = docker_host();
    let outside = Host::new();
    Underlay::join(&host, &outside, "198.51.100");
    netctl_network(&host, &dockerd, "n1", &["--subnet", "10.30.0.0/24"]);
    docker_ok(
        &host,
        &dockerd,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "n1",
            "-p",
            "8080:80",
            "-p",
            "127.0.0.1:9090:90/udp",
            "-P",
            "--expose",
            "7000",
            "busybox:local",
            "nc",
            "-ll",
            "-p",
            "80",
            "-e",
            "/bin/cat",
        ],
    );
    let target = "198.51.100.1:8080".parse().unwrap();
    let outside_ns = format!("/run/netns/{}", outside.netns());
    let mut answer = None;
    for _ in 0..20 {
        answer = tcp_call(&outside_ns, target);
        if answer.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        answer.as_deref(),
        Some("hello"),
        "{}\n{:?}\n{:?}\n{}",
        host.daemon_log(),
        dockerd.docker(&["ps", "-a"]),
        dockerd.docker(&["logs", "web"]),
        host.nft_table()
    );
    // The UDP port on 127.0.0.1, and -P's host port for 7000 chosen by netctl (80 has 8080).
    let table = host.nft_table();
    for mapping in ["tcp . 8080 : 80", "127.0.0.1 . udp . 9090 : 90", ": 7000"] {
        assert!(table.contains(mapping), "{mapping}:\n{table}");
    }
    // A port already published is refused with a message a Docker user understands.
    let taken = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "n1",
        "-p",
        "8080:80",
        "busybox:local",
        "true",
    ]);
    assert!(!taken.ok());
    assert!(taken.stderr.contains("8080"), "{}", taken.stderr);
    docker_ok(&host, &dockerd, &["rm", "-f", "web"]);
    assert_eq!(tcp_call(&outside_ns, target), None);
    docker_ok(&host, &dockerd, &["network", "rm", "n1"]);
}

#[test]
fn errors_reach_the_docker_cli() {
    let (host, dockerd) = docker_host();
    netctl_network(&host, &dockerd, "a", &["--subnet", "10.40.0.0/16"]);
    let overlap = dockerd.docker(&[
        "network",
        "create",
        "-d",
        "netctl",
        "--ipam-driver",
        "netctl",
        "--subnet",
        "10.40.1.0/24",
        "b",
    ]);
    assert!(!overlap.ok());
    assert!(overlap.stderr.contains("overlaps"), "{}", overlap.stderr);
    // A /30 has two addresses: the gateway and one container.
    netctl_network(&host, &dockerd, "tiny", &["--subnet", "10.41.0.0/30"]);
    sleeper(&host, &dockerd, "t1", "tiny", &[]);
    let full = dockerd.docker(&["run", "--rm", "--network", "tiny", "busybox:local", "true"]);
    assert!(!full.ok());
    assert!(full.stderr.contains("netctl:"), "{}", full.stderr);
    docker_ok(&host, &dockerd, &["rm", "-f", "t1"]);
    docker_ok(&host, &dockerd, &["network", "rm", "a", "tiny"]);
    let state = host
        .netctl(&["network", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    assert!(!state.contains("docker-"), "{state}");
}

#[test]
fn the_plugin_and_dockerd_restart_without_losing_anything() {
    let (mut host, mut dockerd) = docker_host();
    netctl_network(&host, &dockerd, "n1", &["--subnet", "10.50.0.0/24"]);
    sleeper(&host, &dockerd, "c1", "n1", &[]);
    host.kill_daemon();
    host.start_daemon();
    // dockerd does not activate the plugin again: the next call names a pool from before.
    docker_ok(
        &host,
        &dockerd,
        &[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox:local",
            "ping",
            "-c1",
            "-W2",
            "c1",
        ],
    );
    dockerd.stop();
    dockerd = Dockerd::start(&host);
    docker_ok(
        &host,
        &dockerd,
        &[
            "run",
            "--rm",
            "--network",
            "n1",
            "busybox:local",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ],
    );
    docker_ok(&host, &dockerd, &["network", "rm", "n1"]);
    no_links_left(&host, ALL_LINKS);
}

#[test]
fn docker_bridge_driver_with_netctl_ipam() {
    let (host, dockerd) = docker_host();
    docker_ok(
        &host,
        &dockerd,
        &[
            "network",
            "create",
            "-d",
            "bridge",
            "--ipam-driver",
            "netctl",
            "--subnet",
            "10.60.0.0/24",
            "n4",
        ],
    );
    let out = docker_ok(
        &host,
        &dockerd,
        &[
            "run",
            "--rm",
            "--network",
            "n4",
            "busybox:local",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ],
    );
    assert!(out.contains("10.60.0."), "{out}");
    docker_ok(&host, &dockerd, &["network", "rm", "n4"]);
}

#[test]
fn docker_bridge_option_names_work_icc_off_isolates_containers() {
    let (host, dockerd) = docker_host();
    netctl_network(
        &host,
        &dockerd,
        "quiet",
        &[
            "--subnet",
            "10.70.0.0/24",
            "-o",
            "com.docker.network.bridge.enable_icc=false",
            "-o",
            "com.docker.network.driver.mtu=1300",
        ],
    );
    sleeper(&host, &dockerd, "q1", "quiet", &["--ip", "10.70.0.10"]);
    let link = docker_ok(
        &host,
        &dockerd,
        &["exec", "q1", "ip", "-o", "link", "show", "eth0"],
    );
    assert!(link.contains("mtu 1300"), "{link}");
    let gateway = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "quiet",
        "busybox:local",
        "ping",
        "-c1",
        "-W2",
        "10.70.0.1",
    ]);
    assert!(gateway.ok(), "the gateway answers: {gateway:?}");
    let neighbour = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "quiet",
        "busybox:local",
        "ping",
        "-c1",
        "-W2",
        "10.70.0.10",
    ]);
    assert!(
        !neighbour.ok(),
        "icc off: containers do not reach each other"
    );
    docker_ok(&host, &dockerd, &["rm", "-f", "q1"]);
    docker_ok(&host, &dockerd, &["network", "rm", "quiet"]);
}

#[test]
fn the_plugin_socket_speaks_dockers_protocol() {
    let host = Host::with_daemon();
    let plugin = PluginSocket::of(&host);
    let call = |path: &str, body: &str| plugin.post(path, body);
    // Activation and capabilities come with empty bodies.
    let (status, activate) = call("/Plugin.Activate", "");
    assert_eq!(status, 200);
    assert_eq!(
        activate["Implements"],
        serde_json::json!(["NetworkDriver", "IpamDriver"])
    );
    assert_eq!(
        call("/NetworkDriver.GetCapabilities", "").1["Scope"],
        "local"
    );
    assert_eq!(
        call("/IpamDriver.GetDefaultAddressSpaces", "").1["LocalDefaultAddressSpace"],
        "local"
    );
    let (status, unknown) = call("/NetworkDriver.Frobnicate", "{}");
    assert_eq!(status, 404);
    assert!(unknown["Err"].as_str().unwrap().contains("unknown method"));
    let (status, bad) = call("/IpamDriver.RequestPool", "{not json");
    assert_eq!(status, 500);
    assert!(
        bad["Err"].as_str().unwrap().contains("malformed request"),
        "{bad}"
    );
    let (status, bad) = call("/IpamDriver.RequestPool", r#"{"Pool": "10.1.2.3/16"}"#);
    assert_eq!(status, 500);
    assert!(
        bad["Err"].as_str().unwrap().contains("host bits are set"),
        "{bad}"
    );
    // A binding to a global network needs this node in a cluster that has it.
    let network_id = "abc".repeat(21) + "d";
    let body = serde_json::json!({"NetworkID": network_id,
        "Options": {"com.docker.network.generic": {"netctl.overlay": "o1"}}});
    let (status, unbound) = call("/NetworkDriver.CreateNetwork", &body.to_string());
    assert_eq!(status, 500);
    assert!(
        unbound["Err"]
            .as_str()
            .unwrap()
            .contains("no global network o1 in this node's cluster"),
        "{unbound}"
    );
    let networks = host
        .netctl(&["network", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    assert!(!networks.contains("abc"), "{networks}");
    // Deletes of what does not exist succeed: dockerd ignores their errors anyway.
    let (x, y) = ("e".repeat(64), "f".repeat(64));
    let endpoint = serde_json::json!({"NetworkID": x, "EndpointID": y});
    assert_eq!(
        call("/NetworkDriver.DeleteEndpoint", &endpoint.to_string()).0,
        200
    );
    let network = serde_json::json!({"NetworkID": x});
    assert_eq!(
        call("/NetworkDriver.DeleteNetwork", &network.to_string()).0,
        200
    );
    assert_eq!(
        call(
            "/IpamDriver.ReleasePool",
            r#"{"PoolID": "netctl-0123456789abcdef01234567"}"#
        )
        .0,
        200
    );
}

/// The managed plugin as users install it: scripts/docker-plugin builds its root filesystem
/// and `docker plugin create/enable`s it; dockerd runs it (host network, CAP_NET_ADMIN…).
#[test]
fn the_managed_plugin_built_by_the_script_serves_dockerd() {
    let host = Host::new();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let script = std::process::Command::new(root.join("scripts/docker-plugin"))
        .env(
            "DOCKER_HOST",
            format!("unix://{}", dockerd.socket().display()),
        )
        .env("NETCTL_BIN", netctl_netns_fixtures::netctl_bin())
        .env("PLUGIN_DIR", host.dir().join("plugin-build"))
        .env("NETCTL_DATA", host.dir().join("plugin-data"))
        .env("NETCTL_RUN", host.dir().join("plugin-run"))
        .output()
        .expect("scripts/docker-plugin");
    assert!(
        script.status.success(),
        "{}",
        String::from_utf8_lossy(&script.stderr)
    );
    let plugin = "netctl:latest";
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let created = dockerd.docker(&[
            "network",
            "create",
            "-d",
            plugin,
            "--ipam-driver",
            plugin,
            "--subnet",
            "10.20.0.0/24",
            "m1",
        ]);
        assert!(created.ok(), "{created:?}\n{}", dockerd.log());
        let out = dockerd
            .docker(&[
                "run",
                "--rm",
                "--network",
                "m1",
                "busybox:local",
                "ip",
                "-o",
                "-4",
                "addr",
                "show",
                "eth0",
            ])
            .expect_ok();
        assert!(out.contains("10.20.0."), "{out}");
        // The store is on the host, where the mount put it.
        assert!(host.dir().join("plugin-data/netctl.redb").exists());
        dockerd.docker(&["network", "rm", "m1"]).expect_ok();
    }));
    // dockerd stops the plugin's process when the plugin goes.
    dockerd.docker(&["plugin", "disable", "-f", plugin]);
    dockerd.docker(&["plugin", "rm", "-f", plugin]);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn endpoints_dockerd_deleted_while_netctl_was_down_are_collected() {
    let (mut host, dockerd) = docker_host();
    netctl_network(&host, &dockerd, "n1", &["--subnet", "10.80.0.0/24"]);
    sleeper(&host, &dockerd, "c1", "n1", &["-p", "8080:80"]);
    host.kill_daemon();
    // dockerd's DeleteEndpoint fails (and is ignored); the container goes anyway.
    dockerd.docker(&["rm", "-f", "c1"]);
    host.start_daemon();
    no_links_left(&host, ENDPOINT_LINKS);
    // Its port is free again, and so is its address.
    sleeper(
        &host,
        &dockerd,
        "c2",
        "n1",
        &["-p", "8080:80", "--ip", "10.80.0.2"],
    );
    docker_ok(&host, &dockerd, &["rm", "-f", "c2"]);
    docker_ok(&host, &dockerd, &["network", "rm", "n1"]);
}

/// A joined Docker endpoint whose container's namespace goes away without dockerd's Leave
/// (dockerd killed with its containers): `netctl gc` reclaims it. The plugin is driven
/// directly, and the runtime end is moved into a namespace by hand, as dockerd moves it.
#[test]
fn gc_reclaims_docker_endpoints_whose_namespace_vanished() {
    let host = Host::with_daemon();
    let plugin = PluginSocket::of(&host);
    let call = |path: &str, body: serde_json::Value| {
        let (status, answer) = plugin.post(path, &body.to_string());
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    };
    let (net, ep) = ("a".repeat(64), "b".repeat(64));
    call(
        "/NetworkDriver.CreateNetwork",
        serde_json::json!({"NetworkID": net, "IPv4Data": [{"Pool": "10.72.0.0/24", "Gateway": "10.72.0.1/24"}]}),
    );
    call(
        "/NetworkDriver.CreateEndpoint",
        serde_json::json!({"NetworkID": net, "EndpointID": ep, "Interface": {"Address": "10.72.0.2/24"}}),
    );
    let joined = call(
        "/NetworkDriver.Join",
        serde_json::json!({"NetworkID": net, "EndpointID": ep, "SandboxKey": "/var/run/docker/netns/x"}),
    );
    let taken = joined["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap()
        .to_string();
    let container = netctl_netns_fixtures::cni::Container::new();
    host.ip(&[
        "link",
        "set",
        &taken,
        "netns",
        &container.netns_path().display().to_string(),
    ])
    .expect_ok();
    let dry = host.netctl(&["gc", "--dry-run"]).expect_ok();
    assert!(dry.contains("would reclaim 0 endpoints"), "alive: {dry}");
    drop(container);
    // The kernel destroys the pair with the namespace, a moment later.
    tests::eventually(
        "the host end gone",
        std::time::Duration::from_secs(5),
        || !host.ip(&["-br", "link"]).expect_ok().contains("ncv"),
    );
    let collected = host.netctl(&["gc"]).expect_ok();
    assert!(
        collected.contains("reclaimed 1 endpoints, 1 addresses"),
        "{collected}"
    );
    let listed = host
        .netctl(&["network", "ls", "--format", "json"])
        .expect_ok();
    let docker_net = tests::json(&listed)
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Driver"] == "bridge" && n["Name"].as_str().unwrap().starts_with("docker-"))
        .cloned()
        .expect("the Docker network");
    assert!(docker_net["Containers"].as_object().unwrap().is_empty());
    // dockerd's own DeleteEndpoint, later, finds nothing to do.
    call(
        "/NetworkDriver.DeleteEndpoint",
        serde_json::json!({"NetworkID": net, "EndpointID": ep}),
    );
}

#[test]
fn an_endpoint_deleted_and_made_again_at_once_keeps_its_new_interface() {
    let mut host = Host::new();
    // The removal of a deleted endpoint's interface, which runs after DeleteEndpoint's
    // answer, made slow (as on a busy machine): each round's Join comes while it runs.
    host.start_daemon_with_env(&[("NETCTL_DELAY", "background leave=200")]);
    let plugin = PluginSocket::of(&host);
    let call = |path: &str, body: serde_json::Value| {
        let (status, answer) = plugin.post(path, &body.to_string());
        assert_eq!(status, 200, "{path}: {answer}");
        answer
    };
    let (net, ep) = ("c".repeat(64), "d".repeat(64));
    call(
        "/NetworkDriver.CreateNetwork",
        serde_json::json!({"NetworkID": net, "IPv4Data": [{"Pool": "10.73.0.0/24", "Gateway": "10.73.0.1/24"}]}),
    );
    let endpoint = serde_json::json!({"NetworkID": net, "EndpointID": ep});
    // dockerd retrying a container's start: the same endpoint id, deleted and made again
    // while the first interface's removal (in the background) may still be running.
    for round in 0..3 {
        let mut create = endpoint.clone();
        create["Interface"] = serde_json::json!({"Address": "10.73.0.2/24"});
        call("/NetworkDriver.CreateEndpoint", create);
        let mut join = endpoint.clone();
        join["SandboxKey"] = serde_json::json!("/var/run/docker/netns/x");
        let joined = call("/NetworkDriver.Join", join);
        let taken = joined["InterfaceName"]["SrcName"].as_str().unwrap();
        // Long enough for a late removal of the previous round's pair to strike.
        for _ in 0..20 {
            let links = host.ip(&["-br", "link"]).expect_ok();
            assert!(
                links.contains(taken),
                "round {round}: the new endpoint's interface {taken} is gone:\n{links}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        call("/NetworkDriver.Leave", endpoint.clone());
        call("/NetworkDriver.DeleteEndpoint", endpoint.clone());
    }
    call(
        "/NetworkDriver.DeleteNetwork",
        serde_json::json!({"NetworkID": net}),
    );
    no_links_left(&host, &["ncv", "ncs"]);
}
