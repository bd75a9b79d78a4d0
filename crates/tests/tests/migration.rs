//! A data-root written by netctl before the store had scopes and schema versions
//! (`fixtures/data-root-v0.redb.gz`, made by `fixtures/make-data-root-v0.sh` with that
//! version's binary) is moved into the current layout on start, and everything in it works.

use std::path::Path;
use std::process::Command;

use netctl_netns_fixtures::Host;
use tests::{address, json, network, sandbox};

/// Where the fixture's sandboxes had their namespaces: re-created there on start.
const FIXTURE_EXEC_ROOT: &str = "/tmp/netctl-v0-fixture";

/// Removes the fixture's namespace mounts and directory, pass or fail (declared before the
/// host, so dropped after its daemon is gone).
struct FixtureDir;

impl Drop for FixtureDir {
    fn drop(&mut self) {
        if let Ok(entries) = std::fs::read_dir(Path::new(FIXTURE_EXEC_ROOT).join("run/netns")) {
            for entry in entries.flatten() {
                let _ = nix::mount::umount2(&entry.path(), nix::mount::MntFlags::MNT_DETACH);
            }
        }
        let _ = std::fs::remove_dir_all(FIXTURE_EXEC_ROOT);
    }
}

fn install_fixture(host: &Host) {
    let gz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/data-root-v0.redb.gz");
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .output()
        .expect("gzip");
    assert!(out.status.success(), "gunzip {}", gz.display());
    std::fs::create_dir_all(host.data_root()).unwrap();
    std::fs::write(host.data_root().join("netctl.redb"), out.stdout).unwrap();
}

#[test]
fn a_data_root_of_the_previous_layout_is_moved_and_works() {
    let _fixture = FixtureDir;
    let mut host = Host::new();
    install_fixture(&host);
    host.start_daemon();
    assert!(
        host.daemon_log()
            .contains("store moved to the current layout"),
        "{}",
        host.daemon_log()
    );

    // Networks, with their options, labels and drivers.
    let names: Vec<String> = json(
        &host
            .netctl(&["network", "ls", "--format", "json"])
            .expect_ok(),
    )
    .as_array()
    .unwrap()
    .iter()
    .map(|n| n["Name"].as_str().unwrap().to_string())
    .collect();
    for name in ["web", "lab", "host", "none", "docker-d0d0d0d0d0d0"] {
        assert!(names.contains(&name.to_string()), "{name} in {names:?}");
    }
    let web = network(&host, "web");
    assert_eq!(web["Options"]["icc"], "false");
    assert_eq!(web["Labels"]["env"], "dev");
    let bridge = web["Bridge"].as_str().unwrap().to_string();
    let link = host.ip(&["link", "show", &bridge]).expect_ok();
    assert!(link.contains("mtu 1400"), "{link}");
    assert_eq!(network(&host, "none")["Driver"], "null");
    let docker = network(&host, "docker-d0d0d0d0d0d0");
    let containers = docker["Containers"].as_object().unwrap();
    assert_eq!(containers.len(), 1);
    let docker_ep = containers.values().next().unwrap();
    assert_eq!(docker_ep["IPv4Address"], "10.20.0.2/16");
    assert_eq!(docker_ep["MacAddress"], "02:42:0a:14:00:02");

    // Sandboxes and their endpoints, in the kernel again.
    assert_eq!(address(&host, "a", "web"), "172.30.0.10");
    let a = sandbox(&host, "a");
    assert_eq!(
        a["NetworkSettings"]["Networks"]["web"]["Aliases"],
        serde_json::json!(["api"])
    );
    let ports = host.netctl(&["port", "a"]).expect_ok();
    assert!(ports.contains("80/tcp -> 0.0.0.0:8080"), "{ports}");
    assert!(ports.contains("53/udp -> 127.0.0.1:5353"), "{ports}");
    let explain = json(
        &host
            .netctl(&["dns", "explain", "a", "--format", "json"])
            .expect_ok(),
    );
    assert_eq!(explain["Upstreams"], serde_json::json!(["192.0.2.53"]));
    assert_eq!(explain["UpstreamsFrom"], "sandbox");
    let b = sandbox(&host, "b");
    assert_eq!(b["Hostname"], "bee");
    assert!(b["NetworkSettings"]["Networks"]["lab"]["GlobalIPv6Address"]
        .as_str()
        .unwrap()
        .starts_with("fd00:1::"));
    let b_web = address(&host, "b", "web");
    assert!(host.ping("a", "172.30.0.1"), "a reaches its gateway");
    // icc=false came along: a and b do not reach each other on web.
    assert!(!host.ping("a", &b_web));
    let dig = host
        .sandbox_exec("a", &["dig", "+short", "+tries=1", "bee"])
        .expect_ok();
    assert_eq!(dig.trim(), b_web);
    let h = sandbox(&host, "h");
    assert!(h["NetworkSettings"]["Networks"]["host"].is_object());

    // New objects take what is free, not what the old records hold.
    host.netctl(&["sandbox", "create", "c", "--network", "web"])
        .expect_ok();
    let c = address(&host, "c", "web");
    assert!(c != "172.30.0.10" && c != b_web, "{c}");
    let refused = host
        .netctl(&["network", "rm", "docker-d0d0d0d0d0d0"])
        .expect_err();
    assert!(refused.contains("managed by Docker"), "{refused}");

    // Moved once: a restart reads the current layout.
    host.stop_daemon();
    host.start_daemon();
    assert!(!host
        .daemon_log()
        .contains("store moved to the current layout"));
    assert_eq!(address(&host, "c", "web"), c);
    assert!(host.ping("c", "172.30.0.1"));
}
