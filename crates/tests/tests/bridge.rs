//! The bridge driver end to end through the CLI: what the user types, what the sandboxes and
//! the host's kernel then show.

use netctl_netns_fixtures::Host;
use tests::{address, json, network, sandbox};

fn create_web(host: &Host) {
    host.netctl(&[
        "network",
        "create",
        "web",
        "--driver",
        "bridge",
        "--subnet",
        "172.30.0.0/24",
        "--gateway",
        "172.30.0.1",
        "--ip-range",
        "172.30.0.128/25",
        "--aux-address",
        "reserved=172.30.0.5",
        "-o",
        "mtu=1400",
        "--label",
        "env=dev",
    ])
    .expect_ok();
}

#[test]
fn network_inspect_follows_docker_field_names() {
    let host = Host::with_daemon();
    create_web(&host);
    let web = network(&host, "web");
    assert_eq!(web["Name"], "web");
    assert_eq!(web["Driver"], "bridge");
    assert_eq!(web["Scope"], "local");
    assert_eq!(web["Id"].as_str().unwrap().len(), 64);
    let config = &web["IPAM"]["Config"][0];
    assert_eq!(config["Subnet"], "172.30.0.0/24");
    assert_eq!(config["Gateway"], "172.30.0.1");
    assert_eq!(config["IPRange"], "172.30.0.128/25");
    assert_eq!(config["AuxiliaryAddresses"]["reserved"], "172.30.0.5");
    assert_eq!(web["Options"]["mtu"], "1400");
    assert_eq!(web["Labels"]["env"], "dev");

    let ls = host.netctl(&["network", "ls"]).expect_ok();
    assert!(ls.starts_with("NETWORK ID"), "{ls}");
    for name in ["web", "host", "none"] {
        assert!(
            ls.lines()
                .any(|l| l.split_whitespace().nth(1) == Some(name)),
            "{ls}"
        );
    }
    let names = json(
        &host
            .netctl(&["network", "ls", "--format", "json"])
            .expect_ok(),
    );
    assert_eq!(names.as_array().unwrap().len(), 3);
}

#[test]
fn sandboxes_on_a_bridge_reach_each_other_and_the_gateway() {
    let host = Host::with_daemon();
    create_web(&host);
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "--ip",
        "172.30.0.130",
        "--hostname",
        "h",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "b"]).expect_ok();
    host.netctl(&[
        "network",
        "connect",
        "web",
        "b",
        "--ip",
        "172.30.0.131",
        "--alias",
        "api",
        "--mac",
        "02:42:ac:1e:00:99",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "c", "--network", "web"])
        .expect_ok();

    // Automatic addresses come from the ip-range; --ip may be anywhere in the subnet.
    assert_eq!(address(&host, "c", "web"), "172.30.0.128");
    let a = sandbox(&host, "a");
    let a_web = &a["NetworkSettings"]["Networks"]["web"];
    assert_eq!(a_web["IPAddress"], "172.30.0.130");
    assert_eq!(a_web["IPPrefixLen"], 24);
    assert_eq!(a_web["Gateway"], "172.30.0.1");
    assert_eq!(
        a_web["MacAddress"], "02:42:ac:1e:00:82",
        "Docker's MAC scheme"
    );
    assert_eq!(
        sandbox(&host, "b")["NetworkSettings"]["Networks"]["web"]["Aliases"][0],
        "api"
    );
    // A MAC given by the user is never generated again for another endpoint: d takes the
    // MAC that 172.30.0.140 would derive, then e gets that address.
    host.netctl(&["sandbox", "create", "d"]).expect_ok();
    host.netctl(&[
        "network",
        "connect",
        "web",
        "d",
        "--mac",
        "02:42:ac:1e:00:8c",
    ])
    .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "e",
        "--network",
        "web",
        "--ip",
        "172.30.0.140",
    ])
    .expect_ok();
    let e_mac = sandbox(&host, "e")["NetworkSettings"]["Networks"]["web"]["MacAddress"].clone();
    assert_ne!(
        e_mac, "02:42:ac:1e:00:8c",
        "the address-derived MAC was taken"
    );
    assert!(host.ping("d", "172.30.0.140"));

    // What the sandbox itself sees.
    let link = json(
        &host
            .sandbox_exec("a", &["ip", "-j", "addr", "show", "eth0"])
            .expect_ok(),
    );
    assert_eq!(link[0]["mtu"], 1400);
    assert_eq!(link[0]["address"], "02:42:ac:1e:00:82");
    assert_eq!(link[0]["operstate"], "UP");
    assert!(link[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"] == "172.30.0.130" && a["prefixlen"] == 24));
    let b_link = json(
        &host
            .sandbox_exec("b", &["ip", "-j", "link", "show", "eth0"])
            .expect_ok(),
    );
    assert_eq!(b_link[0]["address"], "02:42:ac:1e:00:99");
    let routes = host.sandbox_exec("a", &["ip", "route"]).expect_ok();
    assert!(
        routes.contains("default via 172.30.0.1 dev eth0"),
        "{routes}"
    );
    assert_eq!(
        host.sandbox_exec("a", &["hostname"]).expect_ok().trim(),
        "h"
    );
    let lo = host
        .sandbox_exec("a", &["ip", "-br", "addr", "show", "lo"])
        .expect_ok();
    assert!(lo.contains("127.0.0.1/8"), "loopback is up: {lo}");

    assert!(host.ping("a", "172.30.0.131"));
    assert!(host.ping("b", "172.30.0.130"));
    assert!(host.ping("c", "172.30.0.1"));

    // The host's kernel: the bridge with the gateway and MTU, veth ports with hairpin on.
    let bridge = network(&host, "web")["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let br = json(&host.ip(&["-j", "addr", "show", &bridge]).expect_ok());
    assert_eq!(br[0]["mtu"], 1400);
    assert!(br[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .any(|a| a["local"] == "172.30.0.1"));
    let details = host.ip(&["-d", "link", "show", &bridge]).expect_ok();
    assert!(details.contains("mcast_snooping 0"), "{details}");
    let ports = host.exec(&["bridge", "-d", "link", "show"]).expect_ok();
    assert_eq!(
        ports.matches(&format!("master {bridge}")).count(),
        5,
        "{ports}"
    );
    assert_eq!(ports.matches("hairpin on").count(), 5, "{ports}");
    let forwarding = host
        .exec(&["sysctl", "-n", "net.ipv4.ip_forward"])
        .expect_ok();
    assert_eq!(forwarding.trim(), "1");

    // The network lists its endpoints as `docker network inspect` does.
    let containers = network(&host, "web")["Containers"].clone();
    let entries: Vec<_> = containers.as_object().unwrap().values().collect();
    assert_eq!(entries.len(), 5);
    let b_entry = entries.iter().find(|e| e["Name"] == "b").unwrap();
    assert_eq!(b_entry["IPv4Address"], "172.30.0.131/24");
    assert_eq!(b_entry["MacAddress"], "02:42:ac:1e:00:99");
}

#[test]
fn disconnect_and_remove_take_everything_away() {
    let host = Host::with_daemon();
    create_web(&host);
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "b", "--network", "web"])
        .expect_ok();
    let bridge = network(&host, "web")["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let b_addr = address(&host, "b", "web");
    assert!(host.ping("a", &b_addr));

    host.netctl(&["network", "disconnect", "web", "b"])
        .expect_ok();
    assert!(!host.ping("a", &b_addr));
    assert!(
        !host.sandbox_exec("b", &["ip", "link", "show", "eth0"]).ok(),
        "eth0 is gone"
    );
    assert_eq!(
        network(&host, "web")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        1
    );
    // The address is free again.
    host.netctl(&["network", "connect", "web", "b"]).expect_ok();
    assert_eq!(address(&host, "b", "web"), b_addr);

    host.netctl(&["sandbox", "rm", "a", "b"]).expect_ok();
    assert!(host
        .netctl(&["sandbox", "ls", "--format", "{{.Name}}"])
        .expect_ok()
        .trim()
        .is_empty());
    assert_eq!(
        std::fs::read_dir(host.exec_root().join("netns"))
            .unwrap()
            .count(),
        0,
        "namespace files removed"
    );
    host.netctl(&["network", "rm", "web"]).expect_ok();
    assert!(!host.ip(&["link", "show", &bridge]).ok(), "bridge removed");
    let links = host.ip(&["-o", "link"]).expect_ok();
    assert!(!links.contains("ncv"), "no veth left: {links}");
    assert!(
        !host.nft_table().contains(&bridge),
        "firewall forgets the bridge"
    );
}

#[test]
fn several_networks_give_a_sandbox_several_interfaces() {
    let host = Host::with_daemon();
    create_web(&host);
    host.netctl(&["network", "create", "auto"]).expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    host.netctl(&["network", "connect", "auto", "a"])
        .expect_ok();
    let routes = host.sandbox_exec("a", &["ip", "route"]).expect_ok();
    // The first network keeps the default route; the second is a fallback.
    assert!(
        routes.contains("default via 172.30.0.1 dev eth0 proto static metric 100"),
        "{routes}"
    );
    assert!(
        routes.contains("dev eth1 proto static metric 101"),
        "{routes}"
    );
    let nets = sandbox(&host, "a")["NetworkSettings"]["Networks"].clone();
    assert_eq!(nets["web"]["Interface"], "eth0");
    assert_eq!(nets["auto"]["Interface"], "eth1");
    host.netctl(&["network", "disconnect", "web", "a"])
        .expect_ok();
    let routes = host.sandbox_exec("a", &["ip", "route"]).expect_ok();
    assert!(
        routes.starts_with("default via") && routes.contains("dev eth1"),
        "{routes}"
    );
}

#[test]
fn a_sandbox_has_a_hosts_file_that_follows_its_networks() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    host.netctl(&[
        "network",
        "create",
        "lab",
        "--ipv6",
        "--subnet",
        "172.31.0.0/24",
        "--subnet",
        "fd00:31::/64",
    ])
    .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "--hostname",
        "web1",
    ])
    .expect_ok();
    let path = sandbox(&host, "a")["HostsPath"]
        .as_str()
        .unwrap()
        .to_string();
    let web = address(&host, "a", "web");
    let shown = host.sandbox_exec("a", &["cat", "/etc/hosts"]).expect_ok();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), shown);
    assert!(
        shown.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"),
        "{shown}"
    );
    assert!(shown.ends_with(&format!("{web}\tweb1\n")), "{shown}");
    // The sandbox's own name resolves to its address without any DNS.
    let found = host
        .sandbox_exec("a", &["getent", "hosts", "web1"])
        .expect_ok();
    assert!(found.starts_with(&web), "{found}");

    host.netctl(&["network", "connect", "lab", "a"]).expect_ok();
    let lab = address(&host, "a", "lab");
    let v6 = sandbox(&host, "a")["NetworkSettings"]["Networks"]["lab"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    let shown = host.sandbox_exec("a", &["cat", "/etc/hosts"]).expect_ok();
    for address in [&web, &lab, &v6] {
        assert!(shown.contains(&format!("{address}\tweb1\n")), "{shown}");
    }
    host.netctl(&["network", "disconnect", "lab", "a"])
        .expect_ok();
    let shown = std::fs::read_to_string(&path).unwrap();
    assert!(!shown.contains(&lab) && !shown.contains(&v6), "{shown}");
    assert!(shown.ends_with(&format!("{web}\tweb1\n")), "{shown}");

    // In the host's namespace, the host's own hosts file.
    host.netctl(&["sandbox", "create", "h", "--network", "host"])
        .expect_ok();
    let h = sandbox(&host, "h")["HostsPath"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        std::fs::read_to_string(h).unwrap(),
        std::fs::read_to_string("/etc/hosts").unwrap()
    );
    host.netctl(&["sandbox", "rm", "a"]).expect_ok();
    assert!(!std::path::Path::new(&path).exists());
}
