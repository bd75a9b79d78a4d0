//! IPv6, internal networks, the host and none drivers, and default address pools.

use netctl_netns_fixtures::Host;
use tests::{address, json, network, sandbox};

#[test]
fn internal_dual_stack_network() {
    let host = Host::with_daemon();
    host.netctl(&[
        "network",
        "create",
        "lab",
        "--internal",
        "--ipv6",
        "--subnet",
        "172.31.0.0/24",
        "--subnet",
        "fd00:1::/64",
    ])
    .expect_ok();
    let lab = network(&host, "lab");
    assert_eq!(lab["Internal"], true);
    assert_eq!(lab["EnableIPv6"], true);
    assert_eq!(lab["IPAM"]["Config"][1]["Gateway"], "fd00:1::1");
    host.netctl(&["sandbox", "create", "x", "--network", "lab"])
        .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "y",
        "--network",
        "lab",
        "--ip6",
        "fd00:1::99",
    ])
    .expect_ok();
    let y = sandbox(&host, "y")["NetworkSettings"]["Networks"]["lab"].clone();
    assert_eq!(y["GlobalIPv6Address"], "fd00:1::99");
    assert_eq!(
        y["Gateway"], "",
        "internal networks have no gateway for sandboxes"
    );
    let routes = host.sandbox_exec("x", &["ip", "-4", "route"]).expect_ok();
    assert!(!routes.contains("default"), "no way out: {routes}");
    let routes6 = host.sandbox_exec("x", &["ip", "-6", "route"]).expect_ok();
    assert!(!routes6.contains("default"), "no way out: {routes6}");
    let v6 = host
        .sandbox_exec("x", &["ip", "-6", "addr", "show", "eth0"])
        .expect_ok();
    assert!(
        v6.contains("scope link"),
        "IPv6 endpoints keep their link-local address: {v6}"
    );
    assert!(host.ping("x", "fd00:1::99"));
    assert!(
        host.ping("x", "fd00:1::1"),
        "the gateway address answers on the bridge"
    );
    assert!(host.ping("x", &address(&host, "y", "lab")));
    let bridge = lab["Bridge"].as_str().unwrap();
    let nft = host.nft_table();
    let internal = nft
        .split("set internal_bridges")
        .nth(1)
        .unwrap()
        .split('}')
        .next()
        .unwrap();
    assert!(internal.contains(bridge), "{nft}");
}

#[test]
fn ipv6_without_a_subnet_gets_a_unique_local_one() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "v6", "--ipv6"])
        .expect_ok();
    let config = network(&host, "v6")["IPAM"]["Config"].clone();
    assert_eq!(config[0]["Subnet"], "172.17.0.0/16");
    assert_eq!(config[1]["Subnet"], "fd6e:6574:6374::/64");
    host.netctl(&["sandbox", "create", "a", "--network", "v6"])
        .expect_ok();
    let routes6 = host.sandbox_exec("a", &["ip", "-6", "route"]).expect_ok();
    assert!(
        routes6.contains("default via fd6e:6574:6374::1 dev eth0"),
        "{routes6}"
    );
    let forwarding = host
        .exec(&["sysctl", "-n", "net.ipv6.conf.all.forwarding"])
        .expect_ok();
    assert_eq!(forwarding.trim(), "1");
}

#[test]
fn host_sandbox_shares_the_host_namespace() {
    let host = Host::with_daemon();
    host.netctl(&["sandbox", "create", "h", "--network", "host"])
        .expect_ok();
    let inside = host
        .sandbox_exec("h", &["readlink", "/proc/self/ns/net"])
        .expect_ok();
    let outside = host.exec(&["readlink", "/proc/self/ns/net"]).expect_ok();
    assert_eq!(inside, outside);
    let containers = network(&host, "host")["Containers"].clone();
    assert_eq!(containers.as_object().unwrap().len(), 1);
    host.netctl(&["network", "create", "web"]).expect_ok();
    let err = host
        .netctl(&["network", "connect", "web", "h"])
        .expect_err();
    assert!(err.contains("uses the host or none network"), "{err}");
    host.netctl(&["sandbox", "rm", "h"]).expect_ok();
    // Removing a host sandbox must not harm the host.
    assert!(host.ip(&["link", "show", "lo"]).ok());
    assert!(network(&host, "host")["Containers"]
        .as_object()
        .unwrap()
        .is_empty());
}

#[test]
fn none_sandbox_has_loopback_only() {
    let host = Host::with_daemon();
    host.netctl(&["sandbox", "create", "n", "--network", "none"])
        .expect_ok();
    let links = json(&host.sandbox_exec("n", &["ip", "-j", "link"]).expect_ok());
    let names: Vec<_> = links
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["ifname"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["lo"]);
    assert!(host.ping("n", "127.0.0.1"));
    let readlink = |out: netctl_netns_fixtures::Output| out.expect_ok();
    assert_ne!(
        readlink(host.sandbox_exec("n", &["readlink", "/proc/self/ns/net"])),
        readlink(host.exec(&["readlink", "/proc/self/ns/net"]))
    );
    let err = host.netctl(&["network", "rm", "none"]).expect_err();
    assert!(err.contains("pre-defined network"), "{err}");
}

#[test]
fn default_address_pools_come_from_daemon_json_and_skip_host_routes() {
    let mut host = Host::new();
    host.set_config(
        r#"{"default-address-pools": [{"base": "10.123.0.0/16", "size": 24}], "mtu": 1450}"#,
    );
    // A route the host already has: the pool must not hand this subnet out.
    host.ip(&["addr", "add", "10.123.0.1/24", "dev", "lo"])
        .expect_ok();
    host.start_daemon();
    host.netctl(&["network", "create", "one"]).expect_ok();
    host.netctl(&["network", "create", "two"]).expect_ok();
    assert_eq!(
        network(&host, "one")["IPAM"]["Config"][0]["Subnet"],
        "10.123.1.0/24"
    );
    assert_eq!(
        network(&host, "one")["IPAM"]["Config"][0]["Gateway"],
        "10.123.1.1"
    );
    assert_eq!(
        network(&host, "two")["IPAM"]["Config"][0]["Subnet"],
        "10.123.2.0/24"
    );
    host.netctl(&["sandbox", "create", "a", "--network", "one"])
        .expect_ok();
    let link = json(
        &host
            .sandbox_exec("a", &["ip", "-j", "link", "show", "eth0"])
            .expect_ok(),
    );
    assert_eq!(link[0]["mtu"], 1450, "daemon.json mtu is the default");
}

#[test]
fn dockers_default_pools_when_none_are_configured() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "a"]).expect_ok();
    host.netctl(&["network", "create", "b"]).expect_ok();
    assert_eq!(
        network(&host, "a")["IPAM"]["Config"][0]["Subnet"],
        "172.17.0.0/16"
    );
    assert_eq!(
        network(&host, "b")["IPAM"]["Config"][0]["Subnet"],
        "172.18.0.0/16"
    );
}

#[test]
fn daemon_json_with_an_unknown_key_is_refused() {
    let mut host = Host::new();
    host.set_config(r#"{"dns": ["192.0.2.53"], "no-such-key": true}"#);
    // Inside the test host, like every daemon the tests start.
    let out = host.exec(&[
        netctl_netns_fixtures::netctl_bin().to_str().unwrap(),
        "--socket",
        host.socket().to_str().unwrap(),
        "daemon",
        "--config",
        host.dir().join("daemon.json").to_str().unwrap(),
        "--data-root",
        host.data_root().to_str().unwrap(),
    ]);
    let err = out.expect_err();
    assert!(err.contains("unknown field `no-such-key`"), "{err}");
}
