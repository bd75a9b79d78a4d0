//! podman 4.3 with its CNI backend and netctl as the plugin: containers get netctl's
//! addresses, published ports and names, and every lifecycle step podman takes (run, stop,
//! start, restart, network connect/disconnect, rm -f, kill -9) leaves netctl's records as
//! the container's state says.

use std::net::SocketAddr;
use std::time::Duration;

use netctl_netns_fixtures::echo::{tcp_call, tcp_echo};
use netctl_netns_fixtures::podman::Podman;
use netctl_netns_fixtures::{Host, Underlay};
use tests::{containers_on as attached, dig, eventually, json};

/// conmon's cleanup runs in the background after a container dies.
const CLEANUP: Duration = Duration::from_secs(20);

/// A host with a daemon, networks `web` (and `back`) known to podman through `netctl cni
/// config`, and a podman.
fn setup() -> (Host, Podman) {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web", "--subnet", "10.94.0.0/24"])
        .expect_ok();
    host.netctl(&["network", "create", "back", "--subnet", "10.95.0.0/24"])
        .expect_ok();
    let podman = Podman::start(&host);
    for net in ["web", "back"] {
        let conflist = json(&host.netctl(&["cni", "config", net]).expect_ok());
        assert_eq!(conflist["plugins"][0]["type"], "netctl");
        podman.add_conflist(net, &conflist);
    }
    (host, podman)
}

fn full_id(podman: &Podman, name: &str) -> String {
    podman
        .podman(&["inspect", "--format", "{{.Id}}", name])
        .expect_ok()
        .trim()
        .to_string()
}

#[test]
fn podman_containers_get_netctl_networks() {
    let (mut host, podman) = setup();
    let outside = Host::new();
    let _link = Underlay::join(&host, &outside, "198.51.100");
    podman
        .run(
            &[
                "--name",
                "app",
                "--network",
                "web",
                "-p",
                "8080:80",
                "--ip",
                "10.94.0.50",
                "--mac-address",
                "02:42:0a:5e:00:32",
            ],
            &["sleep", "1000"],
        )
        .expect_ok();
    let id = full_id(&podman, "app");
    let on_web = attached(&host, "web");
    assert_eq!(on_web.len(), 1);
    assert_eq!(
        on_web[0]["Name"],
        id.as_str(),
        "named by podman's container id"
    );
    assert_eq!(on_web[0]["IPv4Address"], "10.94.0.50/24");
    assert_eq!(on_web[0]["MacAddress"], "02:42:0a:5e:00:32");
    let sandboxes = host.netctl(&["sandbox", "ls"]).expect_ok();
    assert!(
        sandboxes.contains(&id[..12]) || sandboxes.contains(&id),
        "{sandboxes}"
    );
    // Inside the container: podman's view of the same interface.
    let inside = podman
        .exec("app", &["ip", "addr", "show", "eth0"])
        .expect_ok();
    assert!(inside.contains("10.94.0.50/24"), "{inside}");
    assert!(inside.contains("02:42:0a:5e:00:32"), "{inside}");
    let inspect = json(&podman.podman(&["inspect", "app"]).expect_ok());
    assert_eq!(
        inspect[0]["NetworkSettings"]["Networks"]["web"]["IPAddress"],
        "10.94.0.50"
    );

    // `-p 8080:80` through netctl's nft maps, from another host.
    let netns = format!("/proc/{}/ns/net", podman.pid_of("app"));
    let callers = tcp_echo(&netns, 80);
    let outside_ns = format!("/run/netns/{}", outside.netns());
    let target: SocketAddr = "198.51.100.1:8080".parse().unwrap();
    assert_eq!(tcp_call(&outside_ns, target).as_deref(), Some("echo:hello"));
    let caller = callers.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(caller.ip().to_string(), "198.51.100.2");

    // Names both ways: a netctl sandbox finds the podman container, and the container
    // finds the sandbox through the nameserver netctl's result gave podman.
    host.netctl(&["sandbox", "create", "peer", "--network", "web"])
        .expect_ok();
    assert_eq!(
        dig(&host, "peer", &["app"]).answers,
        vec!["10.94.0.50"],
        "{}",
        host.netctl(&["sandbox", "inspect", &id]).stdout
    );
    let resolv = podman.exec("app", &["cat", "/etc/resolv.conf"]).expect_ok();
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    let found = podman.exec("app", &["nslookup", "peer"]).expect_ok();
    assert!(found.contains("10.94.0.2"), "{found}");
    host.netctl(&["sandbox", "rm", "peer"]).expect_ok();

    // network connect / disconnect: one interface more, then less.
    podman
        .podman(&["network", "connect", "back", "app"])
        .expect_ok();
    let on_back = attached(&host, "back");
    assert_eq!(on_back.len(), 1);
    let eth1 = podman
        .exec("app", &["ip", "addr", "show", "eth1"])
        .expect_ok();
    assert!(eth1.contains("10.95.0."), "{eth1}");
    podman
        .podman(&["network", "disconnect", "back", "app"])
        .expect_ok();
    assert!(attached(&host, "back").is_empty());
    assert_eq!(attached(&host, "web").len(), 1, "still on web");

    // stop: DEL; start: ADD with the same static address; restart: both.
    podman.podman(&["stop", "-t", "0", "app"]).expect_ok();
    eventually("DEL at stop", CLEANUP, || attached(&host, "web").is_empty());
    assert!(!host.nft_table().contains("8080"), "the port is withdrawn");
    podman.podman(&["start", "app"]).expect_ok();
    let on_web = attached(&host, "web");
    assert_eq!(on_web.len(), 1);
    assert_eq!(on_web[0]["IPv4Address"], "10.94.0.50/24");
    podman.podman(&["restart", "-t", "0", "app"]).expect_ok();
    let on_web = attached(&host, "web");
    assert_eq!(on_web.len(), 1);
    assert_eq!(on_web[0]["IPv4Address"], "10.94.0.50/24");
    assert!(host.nft_table().contains("tcp . 8080 : 10.94.0.50"));

    // kill -9 of the container's process: conmon's cleanup says DEL.
    let pid = podman.pid_of("app");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("DEL after kill -9", CLEANUP, || {
        attached(&host, "web").is_empty()
    });

    // A daemon killed and started again finds the container's namespace, a bind mount that
    // only podman's mount namespace shows, keeps it, and serves its DNS again.
    podman
        .run(&["--name", "other", "--network", "web"], &["sleep", "1000"])
        .expect_ok();
    assert_eq!(attached(&host, "web").len(), 1);
    host.kill_daemon();
    host.start_daemon();
    let collected = host.netctl(&["gc"]).expect_ok();
    assert!(collected.contains("reclaimed 0 endpoints"), "{collected}");
    assert_eq!(attached(&host, "web").len(), 1);
    eventually("DNS served again", CLEANUP, || {
        podman
            .exec("other", &["nslookup", "other"])
            .stdout
            .contains("10.94.0.")
    });

    // rm -f of a running container.
    podman.podman(&["rm", "-f", "-t", "0", "other"]).expect_ok();
    eventually("DEL at rm -f", CLEANUP, || {
        attached(&host, "web").is_empty()
    });
    let sandboxes = host
        .netctl(&["sandbox", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    assert!(sandboxes.trim().is_empty(), "{sandboxes}");
}
