//! A crash at any moment loses nothing and leaks nothing: the daemon reconciles on start.

use std::collections::HashSet;

use netctl_netns_fixtures::Host;
use tests::{address, assert_same, full_state, network};

fn populate(host: &Host) {
    for args in [
        &[
            "network",
            "create",
            "web",
            "--subnet",
            "172.30.0.0/24",
            "--ip-range",
            "172.30.0.128/25",
            "-o",
            "mtu=1400",
        ][..],
        &["network", "create", "auto"],
        &[
            "network",
            "create",
            "lab",
            "--internal",
            "--ipv6",
            "--subnet",
            "172.31.0.0/24",
            "--subnet",
            "fd00:1::/64",
        ],
        &["network", "create", "quiet", "-o", "icc=false"],
        &["sandbox", "create", "a", "--network", "web"],
        &[
            "sandbox",
            "create",
            "b",
            "--network",
            "web",
            "--ip",
            "172.30.0.20",
        ],
        &["network", "connect", "auto", "b"],
        &["network", "connect", "lab", "b"],
        &["sandbox", "create", "q", "--network", "quiet"],
        &["sandbox", "create", "h", "--network", "host"],
        &["sandbox", "create", "n", "--network", "none"],
        &["sandbox", "create", "bare"],
    ] {
        host.netctl(args).expect_ok();
    }
}

#[test]
fn kill_and_restart_changes_nothing() {
    let mut host = Host::with_daemon();
    populate(&host);
    let before = full_state(&host);
    host.kill_daemon();
    host.start_daemon();
    let after = full_state(&host);
    assert_same(&before, &after, "kill -9 and restart");
    assert!(
        !host.daemon_log().contains("removing unwanted"),
        "nothing was leaked:\n{}",
        host.daemon_log()
    );

    assert!(host.ping("a", "172.30.0.20"));
    // Allocations were rebuilt: the next sandbox gets a fresh address, not a taken one.
    host.netctl(&["sandbox", "create", "c", "--network", "web"])
        .expect_ok();
    let taken: HashSet<_> = ["a", "c"]
        .iter()
        .map(|s| address(&host, s, "web"))
        .collect();
    assert_eq!(taken.len(), 2);
    assert!(host.ping("c", &address(&host, "a", "web")));
    // A clean stop keeps everything too.
    host.stop_daemon();
    host.start_daemon();
    assert!(host.ping("c", "172.30.0.20"));
}

#[test]
fn restart_restores_what_went_missing_and_removes_leftovers() {
    let mut host = Host::with_daemon();
    web_with_a_and_b(&host);
    let bridge = network(&host, "web")["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let before = full_state(&host);
    host.kill_daemon();

    // Behind the daemon's back: its bridge and table vanish, a sandbox namespace is lost,
    // and objects with netctl's names that nobody wants appear.
    host.ip(&["link", "del", &bridge]).expect_ok();
    host.exec(&["nft", "delete", "table", "inet", "netctl"])
        .expect_ok();
    host.ip(&["link", "add", "ncb000000000000", "type", "bridge"])
        .expect_ok();
    host.ip(&[
        "link",
        "add",
        "ncv000000000000",
        "type",
        "veth",
        "peer",
        "name",
        "leak-peer",
    ])
    .expect_ok();
    let stray = host.exec_root().join("netns").join("000000000000");
    std::fs::write(&stray, b"").unwrap();

    host.start_daemon();
    let after = full_state(&host);
    assert_same(&before, &after, "restart after tampering");
    assert!(!stray.exists());
    assert!(host.ping("a", &address(&host, "b", "web")));
    assert!(host.ping("a", "172.30.0.1"));
}

#[test]
fn a_sandbox_namespace_lost_while_down_is_recreated_with_its_interfaces() {
    let mut host = Host::with_daemon();
    web_with_a_and_b(&host);
    let key = tests::sandbox(&host, "a")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    host.kill_daemon();
    // As after a reboot: the namespace (and with it the veth) is gone.
    nix_umount(&key);
    host.start_daemon();
    assert!(host.ping("a", &address(&host, "b", "web")));
    assert!(host.ping("b", &address(&host, "a", "web")));
}

/// Network `web` (172.30.0.0/24) with sandboxes `a` and `b` on it.
fn web_with_a_and_b(host: &Host) {
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    for name in ["a", "b"] {
        host.netctl(&["sandbox", "create", name, "--network", "web"])
            .expect_ok();
    }
}

fn nix_umount(path: &str) {
    netctl_netns_fixtures::run("umount", &["-l", path]).expect_ok();
    std::fs::remove_file(path).unwrap();
    // Give the kernel a moment to destroy the namespace and its veth.
    std::thread::sleep(std::time::Duration::from_millis(200));
}

#[test]
fn a_clean_stop_removes_the_sockets_and_leaves_the_networks_working() {
    for interrupt in [false, true] {
        let mut host = Host::with_daemon();
        populate(&host);
        host.netctl(&["network", "connect", "web", "q", "-p", "8080:80"])
            .expect_ok();
        let plugin = host.docker_plugins().join("netctl.sock");
        assert!(plugin.exists() && host.socket().exists());
        let netns = tests::netns_of(&host, "a");
        let before = full_state(&host);
        let kernel_before = host.kernel_snapshot();
        let gateway = tests::sandbox(&host, "a")["NetworkSettings"]["Networks"]["web"]["Gateway"]
            .as_str()
            .unwrap()
            .to_string();
        if interrupt {
            host.interrupt_daemon();
        } else {
            host.stop_daemon();
        }
        assert!(!host.socket().exists(), "the API socket is gone");
        assert!(
            !plugin.exists(),
            "dockerd is not left trying a dead plugin socket"
        );
        assert!(
            host.daemon_log().contains("stopping"),
            "{}",
            host.daemon_log()
        );
        // Everything the kernel had is still there and carries traffic.
        assert_same(
            &kernel_before,
            &host.kernel_snapshot(),
            "after a clean stop",
        );
        let net = format!("--net={netns}");
        assert!(
            netctl_netns_fixtures::run("nsenter", &[&net, "ping", "-c1", "-W1", &gateway]).ok(),
            "a reaches its gateway with the daemon stopped"
        );
        host.start_daemon();
        assert_same(&before, &full_state(&host), "after the restart");
    }
}
