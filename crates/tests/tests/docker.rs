//! Debian's dockerd, run by the test fixtures in a namespace of its own (the harness the
//! Docker remote-plugin tests stand on).

use netns_fixtures::{Dockerd, Host};

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
    let host = Host::with_daemon();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
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
    assert!(listed.contains("docker-"), "{listed}");

    dockerd.docker(&["rm", "-f", "c1"]).expect_ok();
    dockerd.docker(&["network", "rm", "n1"]).expect_ok();
    let listed = host.netctl(&["network", "ls"]).expect_ok();
    assert!(!listed.contains("docker-"), "{listed}");
    let links = host.ip(&["-o", "link"]).expect_ok();
    assert!(!links.contains("ncb") && !links.contains("ncv"), "{links}");
}
