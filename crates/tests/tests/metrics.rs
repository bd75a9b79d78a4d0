//! Prometheus metrics on `metrics-addr`: operations timed and their errors counted, DNS
//! answers (local, forwarded, cached), what the daemon holds, repairs, etcd requests.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use netctl_netns_fixtures::{in_netns, Dnsmasq, Host, Underlay};
use tests::cluster::Cluster;
use tests::{eventually, json};

const METRICS_ADDR: &str = "127.0.0.1:9323";

/// `GET /metrics` from inside the host's namespace: each sample line as `name{labels}` →
/// value.
fn scrape(host: &Host) -> BTreeMap<String, f64> {
    let text = in_netns(host.netns(), || {
        let mut stream = std::net::TcpStream::connect(METRICS_ADDR).expect("metrics listener");
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: netctl\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer
    });
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    let body = text.split_once("\r\n\r\n").expect("body").1;
    body.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .filter_map(|line| line.rsplit_once(' '))
        .filter_map(|(name, value)| Some((name.to_string(), value.parse().ok()?)))
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    *samples
        .get(name)
        .unwrap_or_else(|| panic!("no {name} in {samples:#?}"))
}

#[test]
fn operations_dns_holdings_errors_and_repairs_are_measured() {
    let mut host = Host::new();
    let outside = Host::new();
    let _underlay = Underlay::join(&host, &outside, "198.51.100");
    let _upstream = Dnsmasq::start(
        &outside,
        "198.51.100.2",
        &["--host-record=far.example.test,203.0.113.60,60"],
    );
    host.set_resolv_conf("nameserver 198.51.100.2\n");
    host.set_config(&format!(r#"{{"metrics-addr": "{METRICS_ADDR}"}}"#));
    host.start_daemon();

    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    host.netctl(&["network", "create", "web", "--subnet", "172.31.0.0/24"])
        .expect_err();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "b"]).expect_ok();
    host.netctl(&["network", "connect", "web", "b"]).expect_ok();
    host.netctl(&["network", "publish", "web", "a", "-p", "8080:80"])
        .expect_ok();
    let dig = |name: &str| {
        host.sandbox_exec("a", &["dig", "+short", "+tries=1", "+time=2", name])
            .expect_ok()
    };
    assert_eq!(dig("b").trim(), "172.30.0.3");
    assert_eq!(dig("far.example.test").trim(), "203.0.113.60");
    assert_eq!(dig("far.example.test").trim(), "203.0.113.60");

    let m = scrape(&host);
    let op = |operation: &str| {
        format!(r#"netctl_operation_duration_seconds_count{{operation="{operation}",via="api"}}"#)
    };
    assert_eq!(value(&m, &op("network_create")), 2.0, "both tries");
    assert_eq!(value(&m, &op("sandbox_create")), 2.0);
    assert_eq!(value(&m, &op("attach")), 1.0);
    assert_eq!(value(&m, &op("publish")), 1.0);
    assert!(value(&m, &op("attach").replace("_count", "_sum")) > 0.0);
    let conflict = r#"netctl_errors_total{operation="network_create",kind="conflict"}"#;
    assert_eq!(value(&m, conflict), 1.0);
    // Every query is timed: a local name and the cache here, the upstream once.
    let dns = |answer: &str| {
        value(
            &m,
            &format!(r#"netctl_dns_query_duration_seconds_count{{answer="{answer}"}}"#),
        )
    };
    assert!(dns("local") >= 2.0, "{m:#?}");
    assert_eq!(dns("forwarded"), 1.0);
    assert_eq!(value(&m, "netctl_dns_cache_hits_total"), 1.0);
    let bucket = r#"netctl_dns_query_duration_seconds_bucket{answer="local",le="+Inf"}"#;
    assert_eq!(value(&m, bucket), dns("local"));
    // What it holds: as `system info` counts it.
    let info = json(
        &host
            .netctl(&["system", "info", "--format", "json"])
            .expect_ok(),
    );
    for (gauge, key) in [
        ("netctl_networks", "Networks"),
        ("netctl_sandboxes", "Sandboxes"),
        ("netctl_endpoints", "Endpoints"),
        ("netctl_published_ports", "PublishedPorts"),
    ] {
        assert_eq!(value(&m, gauge), info[key].as_f64().unwrap(), "{gauge}");
    }
    assert_eq!(value(&m, "netctl_published_ports"), 1.0);

    // A repair: the firewall table deleted behind the daemon's back is rebuilt and counted.
    host.exec(&["nft", "delete", "table", "inet", "netctl"])
        .expect_ok();
    let repairs = r#"netctl_reconcile_repairs_total{what="firewall"}"#;
    eventually(
        "the firewall repair counted",
        Duration::from_secs(10),
        || scrape(&host).get(repairs) == Some(&1.0),
    );
    assert!(!host.nft_table().is_empty());
}

#[test]
fn without_metrics_addr_nothing_listens_and_a_taken_address_stops_the_start() {
    let host = Host::with_daemon();
    let refused = in_netns(host.netns(), || {
        std::net::TcpStream::connect(METRICS_ADDR).map(|_| ())
    });
    assert!(refused.is_err(), "metrics are off by default");
    // Asked for metrics it cannot serve, a daemon says so and does not start.
    let mut second = Host::new();
    let _taken = in_netns(second.netns(), || {
        std::net::TcpListener::bind(METRICS_ADDR).expect("bind")
    });
    second.set_config(&format!(r#"{{"metrics-addr": "{METRICS_ADDR}"}}"#));
    let out = second
        .command(netctl_netns_fixtures::netctl_bin())
        .args(["--socket", second.socket().to_str().unwrap(), "daemon"])
        .arg("--data-root")
        .arg(second.data_root())
        .arg("--exec-root")
        .arg(second.exec_root())
        .arg("--config")
        .arg(second.dir().join("daemon.json"))
        .args(["--docker-plugin-socket", "none"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("metrics listener 127.0.0.1:9323") && stderr.contains("in use"),
        "{stderr}"
    );
    assert!(!second.socket().exists(), "a failed start leaves no socket");
}

/// A daemon started with `--metrics-addr` and no daemon.json: every series is there at 0
/// before anything happened, no "daemon.json changed" is said, and removing the predefined
/// `host` network is the caller's mistake, not a refusal of rights.
#[test]
fn every_series_is_there_from_the_start_and_host_removal_is_a_user_error() {
    let mut host = Host::new();
    host.set_daemon_args(&["--metrics-addr", METRICS_ADDR]);
    host.start_daemon();
    let m = scrape(&host);
    for series in [
        r#"netctl_operation_duration_seconds_count{operation="attach",via="docker"}"#,
        r#"netctl_operation_duration_seconds_count{operation="network_remove",via="api"}"#,
        r#"netctl_errors_total{operation="detach",kind="unavailable"}"#,
        r#"netctl_dns_query_duration_seconds_count{answer="forwarded"}"#,
        "netctl_dns_cache_hits_total",
        "netctl_etcd_request_duration_seconds_count",
        "netctl_etcd_request_errors_total",
        r#"netctl_reconcile_repairs_total{what="overlay_segment"}"#,
    ] {
        assert_eq!(value(&m, series), 0.0, "{series}");
    }
    let err = host.netctl(&["network", "rm", "host"]).expect_err();
    assert!(err.contains("pre-defined network"), "{err}");
    let m = scrape(&host);
    let kind = |kind: &str| {
        value(
            &m,
            &format!(r#"netctl_errors_total{{operation="network_remove",kind="{kind}"}}"#),
        )
    };
    assert_eq!((kind("invalid_argument"), kind("forbidden")), (1.0, 0.0));
    std::thread::sleep(Duration::from_millis(1200));
    assert!(
        !host.daemon_log().contains("daemon.json"),
        "{}",
        host.daemon_log()
    );
}

#[test]
fn cluster_store_requests_are_timed() {
    let cluster = Cluster::new(1);
    let mut host = cluster.hosts.into_iter().next().unwrap();
    host.stop_daemon();
    host.set_config(&format!(r#"{{"metrics-addr": "{METRICS_ADDR}"}}"#));
    host.start_daemon();
    host.netctl(&[
        "cluster",
        "init",
        "--advertise-addr",
        &Cluster::address(0),
        "--store",
        &cluster.etcd.endpoints_arg(),
    ])
    .expect_ok();
    host.netctl(&["network", "create", "ov", "--driver", "overlay"])
        .expect_ok();
    let m = scrape(&host);
    assert!(
        value(&m, "netctl_etcd_request_duration_seconds_count") >= 2.0,
        "{m:#?}"
    );
}
