//! The CNI plugin run as the spec defines it (environment and stdin), as a runtime does:
//! ADD, DEL, CHECK, STATUS, GC and VERSION, chained mode, every error code, bad input, the
//! daemon down, and `netctl gc` after containers vanish without DEL.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use netctl_netns_fixtures::cni::{exec_plugin, exec_plugin_raw, Answer, Call, Container};
use netctl_netns_fixtures::echo::{tcp_call, tcp_echo};
use netctl_netns_fixtures::{netctl_bin, Host, Underlay};
use serde_json::{json, Value};
use tests::{assert_same, dig, full_state, json as parse, network};

/// The conflist's netctl entry as libcni hands it to the plugin.
fn conf(host: &Host, version: &str, extra: Value) -> Value {
    let mut conf = json!({
        "cniVersion": version,
        "name": "web",
        "type": "netctl",
        "socket": host.socket(),
    });
    for (k, v) in extra.as_object().cloned().unwrap_or_default() {
        conf[k] = v;
    }
    conf
}

fn plugin() -> PathBuf {
    netctl_bin()
}

fn call<'a>(command: &'a str, c: &'a Container, netns: &'a str, args: &'a str) -> Call<'a> {
    Call {
        command,
        container_id: &c.id,
        netns,
        ifname: "eth0",
        args,
    }
}

fn add(host: &Host, c: &Container, version: &str, extra: Value, args: &str) -> Answer {
    let netns = c.netns_path().display().to_string();
    exec_plugin(
        &plugin(),
        &call("ADD", c, &netns, args),
        &conf(host, version, extra),
    )
}

fn del(host: &Host, c: &Container, netns: &str) -> Answer {
    exec_plugin(
        &plugin(),
        &call("DEL", c, netns, ""),
        &conf(host, "1.0.0", json!({})),
    )
}

/// The host's state, less what the kernel changes by itself some time after a bridge's
/// ports come and go (its carrier, and the IPv6 routes that follow it).
fn settled_state(host: &Host) -> String {
    full_state(host)
        .lines()
        .filter(|l| !l.starts_with("multicast ff00::/8"))
        .map(|l| {
            l.replace(" linkdown", "")
                .replace("NO-CARRIER,", "")
                .replace("state DOWN", "state UP")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn status(host: &Host) -> Answer {
    let call = Call {
        command: "STATUS",
        ..Call::default()
    };
    exec_plugin(&plugin(), &call, &conf(host, "1.1.0", json!({})))
}

fn host_with_web() -> Host {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web", "--subnet", "10.91.0.0/24"])
        .expect_ok();
    host
}

#[test]
fn version_is_answered_without_a_daemon() {
    let c = Container::new();
    let answer = exec_plugin_raw(
        &plugin(),
        &Call {
            command: "VERSION",
            container_id: "",
            netns: "dummy",
            ifname: "dummy",
            args: "",
        },
        br#"{"cniVersion":"1.0.0"}"#,
    );
    answer.output.expect_ok();
    assert_eq!(answer.json["cniVersion"], "1.0.0");
    let versions: Vec<&str> = answer.json["supportedVersions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for v in ["0.4.0", "1.0.0", "1.1.0"] {
        assert!(versions.contains(&v), "{versions:?}");
    }
    drop(c);
}

#[test]
fn add_check_del_through_the_daemon() {
    let host = host_with_web();
    let before = settled_state(&host);
    let c = Container::new();
    let runtime_config = json!({"runtimeConfig": {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "aliases": {"web": ["db", "0123456789ab"]},
    }});
    let answer = add(
        &host,
        &c,
        "1.0.0",
        runtime_config.clone(),
        "IgnoreUnknown=1;K8S_POD_NAME=app1;IP=10.91.0.50;MAC=02:42:0a:5b:00:32",
    );
    answer.output.expect_ok();
    let result = &answer.json;
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(result["interfaces"][0]["name"], "eth0");
    assert_eq!(result["interfaces"][0]["mac"], "02:42:0a:5b:00:32");
    assert_eq!(
        result["interfaces"][0]["sandbox"],
        c.netns_path().display().to_string()
    );
    assert_eq!(result["ips"][0]["address"], "10.91.0.50/24");
    assert_eq!(result["ips"][0]["gateway"], "10.91.0.1");
    assert!(result["ips"][0].get("version").is_none(), "1.0.0 has none");
    assert_eq!(result["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(result["dns"]["nameservers"][0], "127.0.0.11");

    // The kernel: the interface, its address and route in the container's namespace.
    let addresses = c.ip(&["-br", "addr", "show", "eth0"]).expect_ok();
    assert!(addresses.contains("10.91.0.50/24"), "{addresses}");
    let routes = c.ip(&["route"]).expect_ok();
    assert!(routes.contains("default via 10.91.0.1"), "{routes}");
    // netctl's own view.
    let net = network(&host, "web");
    let containers = net["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1);
    let ep = containers.values().next().unwrap();
    assert_eq!(ep["Name"], c.id.as_str());
    assert_eq!(ep["IPv4Address"], "10.91.0.50/24");
    let listed = host.netctl(&["sandbox", "ls"]).expect_ok();
    assert!(listed.contains(&c.id), "{listed}");
    assert!(host.nft_table().contains("tcp . 8080 : 10.91.0.50"));

    // Its names, from a netctl sandbox on the same network.
    host.netctl(&["sandbox", "create", "peer", "--network", "web"])
        .expect_ok();
    for name in ["app1", "db", "0123456789ab"] {
        let answer = dig(&host, "peer", &[name]);
        assert_eq!(answer.answers, vec!["10.91.0.50"], "{name}: {}", answer.raw);
    }

    // CHECK: as attached, then with its address gone.
    let check_conf = conf(&host, "1.0.0", json!({"prevResult": result.clone()}));
    let netns = c.netns_path().display().to_string();
    let checked = exec_plugin(&plugin(), &call("CHECK", &c, &netns, ""), &check_conf);
    checked.output.expect_ok();
    c.ip(&["addr", "del", "10.91.0.50/24", "dev", "eth0"])
        .expect_ok();
    let checked = exec_plugin(&plugin(), &call("CHECK", &c, &netns, ""), &check_conf);
    assert_eq!(checked.code(), Some(100), "{}", checked.output.stdout);
    let details = checked.json["details"].as_str().unwrap();
    assert!(
        details.contains("address 10.91.0.50/24 is missing"),
        "{details}"
    );
    assert!(details.contains("default route"), "{details}");

    // DEL gives everything back; again, and with no namespace, it still succeeds.
    host.netctl(&["sandbox", "rm", "peer"]).expect_ok();
    del(&host, &c, &netns).output.expect_ok();
    assert_same(&before, &settled_state(&host), "after DEL");
    del(&host, &c, &netns).output.expect_ok();
    del(&host, &c, "").output.expect_ok();
    assert_same(&before, &settled_state(&host), "after more DELs");
    let checked = exec_plugin(&plugin(), &call("CHECK", &c, &netns, ""), &check_conf);
    assert_eq!(checked.code(), Some(3), "unknown container");
}

#[test]
fn results_come_in_the_configs_version() {
    let host = host_with_web();
    for (version, tagged) in [("0.4.0", true), ("1.0.0", false), ("1.1.0", false)] {
        let c = Container::new();
        let answer = add(&host, &c, version, json!({}), "");
        answer.output.expect_ok();
        assert_eq!(answer.json["cniVersion"], version);
        assert_eq!(
            answer.json["ips"][0].get("version").is_some(),
            tagged,
            "{version}: {}",
            answer.json
        );
        assert_eq!(
            answer.json["interfaces"][0].get("mtu").is_some(),
            version == "1.1.0"
        );
        del(&host, &c, &c.netns_path().display().to_string())
            .output
            .expect_ok();
    }
}

#[test]
fn published_ports_reach_the_container() {
    let host = host_with_web();
    let outside = Host::new();
    let _link = Underlay::join(&host, &outside, "198.51.100");
    let c = Container::new();
    let mappings = json!({"runtimeConfig": {"portMappings": [
        {"hostPort": 8080, "containerPort": 80, "protocol": "tcp"},
    ]}});
    add(&host, &c, "1.0.0", mappings, "").output.expect_ok();
    let callers = tcp_echo(&c.netns_path().display().to_string(), 80);
    let outside_ns = format!("/run/netns/{}", outside.netns());
    let target: SocketAddr = "198.51.100.1:8080".parse().unwrap();
    assert_eq!(tcp_call(&outside_ns, target).as_deref(), Some("echo:hello"));
    let caller = callers.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(caller.ip().to_string(), "198.51.100.2");
}

#[test]
fn errors_carry_the_specs_codes_and_change_nothing() {
    let host = host_with_web();
    let c = Container::new();
    let netns = c.netns_path().display().to_string();
    let before = full_state(&host);
    let code = |answer: Answer| {
        assert!(!answer.output.ok(), "{}", answer.output.stdout);
        assert!(answer.json["msg"].is_string(), "{}", answer.output.stdout);
        answer.code().expect("an error object")
    };
    let raw = |stdin: &[u8]| exec_plugin_raw(&plugin(), &call("ADD", &c, &netns, ""), stdin);
    assert_eq!(code(raw(b"{not json")), 6, "bad JSON");
    assert_eq!(
        code(raw(br#"{"name":"web","type":"netctl"}"#)),
        7,
        "no cniVersion"
    );
    assert_eq!(
        code(raw(br#"{"cniVersion":"1.0.0","type":"netctl"}"#)),
        7,
        "no name"
    );
    assert_eq!(
        code(raw(
            br#"{"cniVersion":"9.0.0","name":"web","type":"netctl"}"#
        )),
        1,
        "unsupported version"
    );
    let good = conf(&host, "1.0.0", json!({}));
    let no_netns = Call {
        command: "ADD",
        container_id: &c.id,
        netns: "",
        ifname: "eth0",
        args: "",
    };
    assert_eq!(
        code(exec_plugin(&plugin(), &no_netns, &good)),
        4,
        "no CNI_NETNS"
    );
    let bad_id = Call {
        container_id: "../etc",
        ..call("ADD", &c, &netns, "")
    };
    assert_eq!(
        code(exec_plugin(&plugin(), &bad_id, &good)),
        4,
        "bad container id"
    );
    assert_eq!(
        code(add(&host, &c, "1.0.0", json!({}), "IP=10.91.0.300")),
        4,
        "bad IP="
    );
    assert_eq!(
        code(add(&host, &c, "1.0.0", json!({}), "Unknown=1")),
        4,
        "unknown CNI_ARGS key without IgnoreUnknown"
    );
    assert_eq!(
        code(add(&host, &c, "1.0.0", json!({"network": "nosuch"}), "")),
        7,
        "unknown network"
    );
    let gone = call("ADD", &c, "/run/netns/no-such-ns", "");
    assert_eq!(
        code(exec_plugin(&plugin(), &gone, &good)),
        3,
        "no namespace"
    );
    let sctp7 = json!({"runtimeConfig": {"portMappings": [
        {"hostPort": 80, "containerPort": 80, "protocol": "icmp"}]}});
    assert_eq!(code(add(&host, &c, "1.0.0", sctp7, "")), 7, "bad protocol");
    let out_of_subnet = add(&host, &c, "1.0.0", json!({}), "IP=10.200.0.5");
    assert_eq!(code(out_of_subnet), 7, "address outside the network");
    let bad_mappings = json!({"runtimeConfig": {"portMappings": [{"hostPort": "x"}]}});
    assert_eq!(
        code(add(&host, &c, "1.0.0", bad_mappings, "")),
        6,
        "bad field type"
    );
    assert_same(&before, &full_state(&host), "after refused calls");
    assert!(
        c.ip(&["-br", "link"]).expect_ok().lines().count() == 1,
        "only lo"
    );
}

#[test]
fn with_the_daemon_down_add_fails_at_once_and_del_succeeds() {
    let mut host = host_with_web();
    let mut c = Container::new();
    let netns = c.netns_path().display().to_string();
    add(&host, &c, "1.0.0", json!({}), "").output.expect_ok();
    host.stop_daemon();
    let other = Container::new();
    let refused = add(&host, &other, "1.0.0", json!({}), "");
    assert_eq!(refused.code(), Some(11));
    let msg = refused.json["msg"].as_str().unwrap();
    assert!(
        msg.contains("netctl daemon not running at") && msg.contains("netctl.sock"),
        "{msg}"
    );
    assert_eq!(status(&host).code(), Some(50));
    // DEL succeeds; the runtime then removes the namespace; the daemon collects the
    // endpoint when it comes back.
    del(&host, &c, &netns).output.expect_ok();
    c.remove();
    host.start_daemon();
    let net = network(&host, "web");
    assert!(
        net["Containers"].as_object().unwrap().is_empty(),
        "{net:#}\n{}",
        host.daemon_log()
    );
    status(&host).output.expect_ok();
}

#[test]
fn a_conflist_with_settings_makes_its_network_once() {
    let host = Host::with_daemon();
    let settings = json!({"network": "made", "subnet": "10.92.0.0/24", "gateway": "10.92.0.1"});
    let containers: Vec<Container> = (0..8).map(|_| Container::new()).collect();
    let answers: Vec<Answer> = std::thread::scope(|s| {
        let handles: Vec<_> = containers
            .iter()
            .map(|c| {
                let (host, settings) = (&host, settings.clone());
                s.spawn(move || add(host, c, "1.0.0", settings, ""))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut addresses: Vec<String> = answers
        .iter()
        .map(|a| {
            a.output.expect_ok();
            a.json["ips"][0]["address"].as_str().unwrap().to_string()
        })
        .collect();
    addresses.sort();
    addresses.dedup();
    assert_eq!(addresses.len(), 8, "{addresses:?}");
    let nets = parse(
        &host
            .netctl(&["network", "ls", "--format", "json"])
            .expect_ok(),
    );
    let made: Vec<&Value> = nets
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["Name"] == "made")
        .collect();
    assert_eq!(made.len(), 1);
    assert_eq!(made[0]["IPAM"]["Config"][0]["Subnet"], "10.92.0.0/24");
    assert_eq!(
        network(&host, "made")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        8
    );
}

#[test]
fn gc_keeps_only_the_valid_attachments() {
    let host = host_with_web();
    let keep = Container::new();
    let drop_one = Container::new();
    add(&host, &keep, "1.1.0", json!({}), "").output.expect_ok();
    add(&host, &drop_one, "1.1.0", json!({}), "")
        .output
        .expect_ok();
    let gc = conf(
        &host,
        "1.1.0",
        json!({"cni.dev/valid-attachments": [{"containerID": keep.id, "ifname": "eth0"}]}),
    );
    let answer = exec_plugin(
        &plugin(),
        &Call {
            command: "GC",
            ..Call::default()
        },
        &gc,
    );
    answer.output.expect_ok();
    let net = network(&host, "web");
    let names: Vec<&Value> = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|e| &e["Name"])
        .collect();
    assert_eq!(names, vec![&json!(keep.id)]);
    assert_eq!(
        drop_one.ip(&["-br", "link"]).expect_ok().lines().count(),
        1,
        "its interface is gone"
    );
}

#[test]
fn chained_after_another_plugin_it_publishes_and_names_only() {
    let mut host = host_with_web();
    let outside = Host::new();
    let _link = Underlay::join(&host, &outside, "198.51.100");
    let c = Container::new();
    let netns = c.netns_path().display().to_string();
    // The main plugin's work, done by hand: a veth into the container, on no netctl bridge.
    host.ip(&[
        "link", "add", "other0", "type", "veth", "peer", "name", "eth0", "netns", &netns,
    ])
    .expect_ok();
    host.ip(&["addr", "add", "10.93.0.1/24", "dev", "other0"])
        .expect_ok();
    host.ip(&["link", "set", "other0", "up"]).expect_ok();
    c.ip(&["addr", "add", "10.93.0.2/24", "dev", "eth0"])
        .expect_ok();
    c.ip(&["link", "set", "eth0", "up"]).expect_ok();
    c.ip(&["route", "add", "default", "via", "10.93.0.1"])
        .expect_ok();
    let prev = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "other0"}, {"name": "eth0", "sandbox": netns}],
        "ips": [{"address": "10.93.0.2/24", "gateway": "10.93.0.1", "interface": 1}],
    });
    let extra = json!({"prevResult": prev.clone(), "runtimeConfig": {
        "portMappings": [{"hostPort": 8088, "containerPort": 80, "protocol": "tcp"}],
        "aliases": {"web": ["chained"]}}});
    let answer = add(&host, &c, "1.0.0", extra, "K8S_POD_NAME=side");
    answer.output.expect_ok();
    assert_eq!(answer.json["ips"], prev["ips"], "the result passes through");
    assert_eq!(answer.json["interfaces"], prev["interfaces"]);
    assert_eq!(
        c.ip(&["-br", "link"]).expect_ok().lines().count(),
        2,
        "lo and eth0 only"
    );
    let _s = tcp_echo(&netns, 80);
    let outside_ns = format!("/run/netns/{}", outside.netns());
    let target: SocketAddr = "198.51.100.1:8088".parse().unwrap();
    assert_eq!(tcp_call(&outside_ns, target).as_deref(), Some("echo:hello"));
    host.netctl(&["sandbox", "create", "peer", "--network", "web"])
        .expect_ok();
    assert_eq!(dig(&host, "peer", &["chained"]).answers, vec!["10.93.0.2"]);
    assert_eq!(dig(&host, "peer", &["side"]).answers, vec!["10.93.0.2"]);
    // A restarted daemon plugs in no interface of its own beside the other plugin's.
    let links_before = c.ip(&["-br", "link"]).expect_ok();
    host.kill_daemon();
    host.start_daemon();
    assert_eq!(
        c.ip(&["-br", "link"]).expect_ok(),
        links_before,
        "after a restart"
    );
    assert!(c.ip(&["-br", "addr"]).expect_ok().contains("10.93.0.2/24"));
    assert_eq!(dig(&host, "peer", &["chained"]).answers, vec!["10.93.0.2"]);
    assert_eq!(tcp_call(&outside_ns, target).as_deref(), Some("echo:hello"));
    // DEL leaves the other plugin's interface alone.
    del(&host, &c, &netns).output.expect_ok();
    assert!(c.ip(&["-br", "addr"]).expect_ok().contains("10.93.0.2/24"));
    assert!(!host.nft_table().contains("8088"));
}

#[test]
fn containers_gone_without_del_are_reclaimed_by_gc() {
    let host = host_with_web();
    let before = settled_state(&host);
    let mut containers: Vec<Container> = (0..50).map(|_| Container::new()).collect();
    for (i, c) in containers.iter().enumerate() {
        let mapping = json!({"runtimeConfig": {"portMappings": [
            {"hostPort": 20000 + i, "containerPort": 80, "protocol": "tcp"}]}});
        add(&host, c, "1.0.0", mapping, "").output.expect_ok();
    }
    assert_eq!(
        network(&host, "web")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        50
    );
    for c in &mut containers {
        c.remove();
    }
    let dry = parse(
        &host
            .netctl(&["gc", "--dry-run", "--format", "json"])
            .expect_ok(),
    );
    assert_eq!(dry["Endpoints"].as_array().unwrap().len(), 50);
    assert_eq!(
        network(&host, "web")["Containers"]
            .as_object()
            .unwrap()
            .len(),
        50,
        "dry"
    );
    let summary = host.netctl(&["gc"]).expect_ok();
    assert!(
        summary.contains("reclaimed 50 endpoints, 50 addresses and 50 ports"),
        "{summary}"
    );
    // Every address, port and link is back; a second collection finds nothing.
    assert_same(&before, &settled_state(&host), "after gc");
    let again = host.netctl(&["gc"]).expect_ok();
    assert!(again.contains("reclaimed 0 endpoints"), "{again}");
    // The addresses are free again: a new container gets the first one.
    let c = Container::new();
    let answer = add(&host, &c, "1.0.0", json!({}), "");
    assert_eq!(answer.json["ips"][0]["address"], "10.91.0.2/24");
}

#[test]
fn a_restarted_daemon_keeps_serving_runtime_containers() {
    let mut host = host_with_web();
    let c = Container::new();
    let netns = c.netns_path().display().to_string();
    let answer = add(&host, &c, "1.0.0", json!({}), "K8S_POD_NAME=kept");
    answer.output.expect_ok();
    host.kill_daemon();
    host.start_daemon();
    let check_conf = conf(&host, "1.0.0", json!({"prevResult": answer.json.clone()}));
    exec_plugin(&plugin(), &call("CHECK", &c, &netns, ""), &check_conf)
        .output
        .expect_ok();
    // Its DNS server answers inside its namespace again.
    let names = c
        .exec(&[
            "dig",
            "+short",
            "+tries=1",
            "+time=2",
            "@127.0.0.11",
            "kept",
        ])
        .expect_ok();
    assert_eq!(names.trim(), "10.91.0.2");
    del(&host, &c, &netns).output.expect_ok();
}
