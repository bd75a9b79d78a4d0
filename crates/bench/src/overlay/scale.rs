//! The overlay at scale: `hosts` netctl nodes with `per_host` sandboxes each on one overlay,
//! a 3-member etcd. What it costs to fill, whether a sample of endpoints is reachable from
//! every host, what the cluster asks of etcd at rest (liveness only) and each daemon's RSS.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use netctl_netns_fixtures::{EtcdCluster, Host, Lan};

use super::{wait_until as wait, Row};

pub fn run(hosts: usize, per_host: usize) -> anyhow::Result<Vec<Row>> {
    anyhow::ensure!((2..=80).contains(&hosts), "--scale-hosts: 2 to 80");
    anyhow::ensure!(per_host >= 1, "--scale-endpoints: at least 1");
    let lan = Lan::new();
    let etcd = EtcdCluster::start(&lan, 3);
    let nodes: Vec<Host> = (0..hosts)
        .map(|i| {
            let host = Host::with_daemon();
            lan.plug(&host, &address(i));
            host
        })
        .collect();
    let store = etcd.endpoints_arg();
    nodes[0]
        .netctl(&[
            "cluster",
            "init",
            "--advertise-addr",
            &address(0),
            "--store",
            &store,
        ])
        .expect_ok();
    let token = nodes[0]
        .netctl(&["cluster", "join-token", "-q", "worker"])
        .expect_ok();
    for (i, node) in nodes.iter().enumerate().skip(1) {
        node.netctl(&[
            "cluster",
            "join",
            "--token",
            token.trim(),
            "--advertise-addr",
            &address(i),
            "--store",
            &store,
        ])
        .expect_ok();
    }
    nodes[0]
        .netctl(&[
            "network",
            "create",
            "ov",
            "--driver",
            "overlay",
            "--subnet",
            "10.210.0.0/16",
        ])
        .expect_ok();
    for node in &nodes {
        wait(Duration::from_secs(10), || {
            node.netctl(&["network", "inspect", "ov"]).ok()
        })?;
    }

    // Every host fills its share at once.
    let started = Instant::now();
    std::thread::scope(|scope| {
        for (i, node) in nodes.iter().enumerate() {
            scope.spawn(move || {
                for n in 0..per_host {
                    let name = format!("s{i}-{n}");
                    node.netctl(&["sandbox", "create", &name, "--network", "ov"])
                        .expect_ok();
                }
            });
        }
    });
    let filled = started.elapsed();
    let total = hosts * per_host;
    for node in &nodes {
        wait(Duration::from_secs(30), || endpoints(node) == total)?;
    }
    let converged = started.elapsed();

    // From each host's first sandbox: sandboxes on three other hosts.
    let (mut tried, mut reached) = (0, 0);
    for (i, node) in nodes.iter().enumerate() {
        for step in [1, hosts / 3 + 1, 2 * hosts / 3 + 1] {
            let j = (i + step) % hosts;
            if j == i {
                continue;
            }
            let target = address_of(&nodes[j], &format!("s{j}-{}", (i + step) % per_host));
            tried += 1;
            if node.ping(&format!("s{i}-0"), &target) {
                reached += 1;
            }
        }
    }

    let at_rest = etcd_requests_per_second(&nodes[0], Duration::from_secs(10))?;
    let mut rss: Vec<f64> = nodes
        .iter()
        .filter_map(|n| crate::process::rss_mib(n.daemon_pid()?))
        .collect();
    rss.sort_by(|a, b| a.total_cmp(b));
    let label = format!("{hosts} hosts x {per_host}");
    let single = |peer: &str, value: f64, unit: &str, note: String| Row {
        what: "scale".into(),
        peer: peer.into(),
        samples: 1,
        p50: Some(value),
        p99: None,
        unit: unit.into(),
        note,
    };
    Ok(vec![
        single(
            "fill",
            filled.as_secs_f64(),
            "s",
            format!("{label}: {total} sandboxes created, hosts in parallel"),
        ),
        single(
            "converged",
            converged.as_secs_f64(),
            "s",
            format!("{label}: every host lists all {total} endpoints"),
        ),
        single(
            "reachable",
            100.0 * reached as f64 / tried.max(1) as f64,
            "%",
            format!("{reached} of {tried} pings to sandboxes on other hosts"),
        ),
        single(
            "etcd at rest",
            at_rest,
            "req/s",
            format!("{hosts} nodes' leases kept alive, nothing changing (3 members)"),
        ),
        Row {
            what: "scale".into(),
            peer: "daemon RSS".into(),
            samples: rss.len(),
            p50: rss.get(rss.len() / 2).copied(),
            p99: rss.last().copied(),
            unit: "MiB".into(),
            note: format!("per host, {total} endpoints in the cluster (p99 = largest)"),
        },
    ])
}

fn address(i: usize) -> String {
    format!("203.0.113.{}", 11 + i)
}

fn endpoints(node: &Host) -> usize {
    let out = node.netctl(&["network", "inspect", "ov", "--format", "json"]);
    serde_json::from_str::<serde_json::Value>(&out.stdout)
        .ok()
        .and_then(|v| v[0]["Containers"].as_object().map(|c| c.len()))
        .unwrap_or(0)
}

fn address_of(node: &Host, sandbox: &str) -> String {
    let out = node.netctl(&["sandbox", "inspect", sandbox, "--format", "json"]);
    let value: serde_json::Value = serde_json::from_str(&out.stdout).unwrap_or_default();
    value[0]["NetworkSettings"]["Networks"]["ov"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// gRPC requests the etcd members handled per second over `window`, from their metrics.
fn etcd_requests_per_second(from: &Host, window: Duration) -> anyhow::Result<f64> {
    let count = || -> anyhow::Result<f64> {
        netctl_netns_fixtures::in_netns(from.netns(), || {
            (0..3)
                .map(|m| handled(&format!("203.0.113.{}:2379", 101 + m)))
                .sum::<anyhow::Result<f64>>()
        })
    };
    let before = count()?;
    std::thread::sleep(window);
    let after = count()?;
    Ok((after - before) / window.as_secs_f64())
}

/// `grpc_server_handled_total` summed over methods, from `GET /metrics`.
fn handled(member: &str) -> anyhow::Result<f64> {
    let mut stream = std::net::TcpStream::connect(member)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.write_all(b"GET /metrics HTTP/1.0\r\n\r\n")?;
    let mut text = String::new();
    stream.read_to_string(&mut text)?;
    Ok(text
        .lines()
        .filter(|l| l.starts_with("grpc_server_handled_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum())
}
