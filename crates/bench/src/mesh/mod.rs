//! `netctl-bench mesh`: two netctl nodes in a cluster on etcd (3 members) and a client host
//! outside the cluster, all on one LAN (namespaces).
//!
//! - traffic: a short HTTP-like exchange ([`load`]) with 32 clients at once, as new
//!   connections per second and as requests per second over kept connections, through a
//!   port published by the routing mesh to a replica on the entry node and to one on the
//!   other node; beside it, a host-mode port to the local replica and a client on the
//!   overlay talking to the replica's address itself (no NAT at all).
//! - updates: `service update` adding or dropping one replica of a service with N replicas
//!   over both nodes: from the etcd write (seen by a watch of the bench's own) to the moment
//!   the last node's balancers have the new table (`nft monitor` in each balancer sandbox);
//!   and the daemons' memory with the largest N.
//!
//! No peer runs the same mesh here: Docker's routing mesh needs IPVS, which this kernel
//! does not have.

mod load;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use netctl_netns_fixtures::Host;
use netctl_plugin_api::client::Client;
use netctl_plugin_api::cluster::{ServiceCreateRequest, ServiceUpdateRequest};
use netctl_store::{ClusterStore, Prefix, Scope, Store};

use crate::overlay::{row, wait_until as wait, Row, Setup, OVERLAY};
use crate::process::rss_mib;
use crate::throughput::in_netns;

/// The client host on the LAN, outside the cluster.
const OUTSIDE: &str = "203.0.113.50";
const NODE_A: &str = "203.0.113.11";

pub struct Options {
    /// Length of each timed traffic run (three per row).
    pub seconds: u64,
    pub concurrency: usize,
    /// Replica counts of the update rows.
    pub replicas: Vec<usize>,
    /// Timed updates per replica count.
    pub updates: usize,
    pub parts: Vec<String>,
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let setup = Setup::new()?;
    let outside = Host::new();
    setup._lan.plug(&outside, OUTSIDE);
    let mut rows = Vec::new();
    if options.parts.iter().any(|p| p == "traffic") {
        rows.extend(traffic(&setup, &outside, options)?);
    }
    if options.parts.iter().any(|p| p == "updates") {
        rows.extend(updates(&setup, options)?);
    }
    Ok(rows)
}

/// One way to the replica's server.
struct Path {
    name: &'static str,
    client: String,
    target: SocketAddr,
    note: &'static str,
}

fn traffic(setup: &Setup, outside: &Host, options: &Options) -> anyhow::Result<Vec<Row>> {
    let (a, b) = (setup.a.client(), setup.b.client());
    let near = setup.sandbox(&a, "near", Some(OVERLAY), Some("10.200.7.1"))?;
    let far = setup.sandbox(&b, "far", Some(OVERLAY), Some("10.200.7.2"))?;
    let on_overlay = setup.sandbox(&a, "caller", Some(OVERLAY), None)?;
    load::serve(&near, 80)?;
    load::serve(&far, 80)?;
    for (name, replica, publish) in [
        ("mesh-near", "near", "8081:80"),
        ("mesh-far", "far", "8082:80"),
        ("pinned", "near", "mode=host,published=9091,target=80"),
    ] {
        setup
            .runtime
            .block_on(a.service_create(&ServiceCreateRequest {
                name: name.into(),
                network: OVERLAY.into(),
                replicas: vec![replica.into()],
                publish: vec![publish.into()],
            }))?;
    }
    let outside_ns = outside.netns_path().display().to_string();
    let at = |port: u16| -> SocketAddr { format!("{NODE_A}:{port}").parse().expect("address") };
    let paths = [
        Path {
            name: "direct",
            client: on_overlay.clone(),
            target: "10.200.7.1:80".parse()?,
            note: "overlay sandbox -> replica's address on node A, no NAT",
        },
        Path {
            name: "host mode",
            client: outside_ns.clone(),
            target: at(9091),
            note: "outside -> node A's port -> its replica (DNAT)",
        },
        Path {
            name: "mesh, local",
            client: outside_ns.clone(),
            target: at(8081),
            note: "outside -> node A -> ingress sandbox -> replica on A",
        },
        Path {
            name: "mesh, remote",
            client: outside_ns.clone(),
            target: at(8082),
            note: "outside -> node A -> ingress sandbox -> VXLAN -> replica on B",
        },
    ];
    for path in &paths {
        wait(Duration::from_secs(20), || {
            load::drive(
                &path.client,
                path.target,
                1,
                Duration::from_millis(50),
                true,
            )
            .failures
                == 0
        })?;
    }
    // Many short connections from one client: its ports are reused at once, and the
    // namespaces' conntrack tables are emptied between runs.
    for netns in [&outside_ns, &on_overlay] {
        command_ok(in_netns(netns, "sysctl").args(["-qw", "net.ipv4.tcp_tw_reuse=1"]))?;
    }
    let ingress_sandbox = sandbox_key(setup, &a, "ingress-sbox")?;
    let flushed = [
        outside_ns.clone(),
        setup.a.netns_path().display().to_string(),
        ingress_sandbox,
        on_overlay.clone(),
        near.clone(),
        far.clone(),
    ];
    let mut rows = Vec::new();
    for (new_connections, what, unit) in [
        (true, "connections", "conn/s"),
        (false, "requests", "req/s"),
    ] {
        let mut direct = None;
        for path in &paths {
            let mut runs = Vec::new();
            let mut failures = 0;
            for _ in 0..3 {
                for netns in &flushed {
                    let _ = in_netns(netns, "conntrack").arg("-F").output();
                }
                let rate = load::drive(
                    &path.client,
                    path.target,
                    options.concurrency,
                    Duration::from_secs(options.seconds),
                    new_connections,
                );
                runs.push(rate.per_second);
                failures += rate.failures;
            }
            runs.sort_by(|x, y| x.total_cmp(y));
            let median = runs[1];
            let direct = *direct.get_or_insert(median);
            rows.push(Row {
                what: what.into(),
                peer: path.name.into(),
                samples: 3,
                p50: Some(median),
                p99: None,
                unit: unit.into(),
                note: format!(
                    "{:.2}x direct, {failures} failed; {}",
                    median / direct,
                    path.note
                ),
            });
        }
    }
    for name in ["mesh-near", "mesh-far", "pinned"] {
        setup.runtime.block_on(a.service_remove(name))?;
    }
    Ok(rows)
}

/// The kinds of balancer, by their sandboxes' names.
const BALANCERS: [(&str, &str); 2] = [("lb-ov", "VIP"), ("ingress-sbox", "mesh")];

fn updates(setup: &Setup, options: &Options) -> anyhow::Result<Vec<Row>> {
    let (a, b) = (setup.a.client(), setup.b.client());
    // The default ingress subnet, a /24 as Docker's, holds 253 replicas: a larger one, made
    // as a user would.
    setup.runtime.block_on(a.network_remove("ingress"))?;
    setup
        .runtime
        .block_on(a.network_create(&crate::overlay::network(
            "ingress",
            "ingress",
            "10.0.0.0/16",
        )))?;
    wait(Duration::from_secs(10), || {
        setup
            .runtime
            .block_on(b.network_inspect("ingress"))
            .is_ok_and(|n| {
                n.ipam
                    .config
                    .iter()
                    .any(|c| c.subnet.as_deref() == Some("10.0.0.0/16"))
            })
    })?;
    let mut rows = Vec::new();
    let mut made = 0;
    let mut counts = options.replicas.clone();
    counts.sort_unstable();
    for (index, n) in counts.iter().copied().enumerate() {
        while made < n {
            let node = if made % 2 == 0 { &a } else { &b };
            setup.sandbox(node, &format!("t{made}"), Some(OVERLAY), None)?;
            made += 1;
        }
        let replicas: Vec<String> = (0..n).map(|i| format!("t{i}")).collect();
        let name = format!("bulk{n}");
        let port = 8100 + index as u16;
        setup
            .runtime
            .block_on(a.service_create(&ServiceCreateRequest {
                name: name.clone(),
                network: OVERLAY.into(),
                replicas: replicas.clone(),
                publish: vec![format!("{port}:80")],
            }))?;
        // Settled: every replica on the ingress network and in both nodes' tables.
        let rule = format!("numgen random mod {n} map @p-tcp-{port}");
        for host in [&setup.a, &setup.b] {
            let sandbox = sandbox_key(setup, &host.client(), "ingress-sbox")?;
            wait(Duration::from_secs(300), || {
                table_of(&sandbox).contains(&rule)
            })?;
        }
        let (vip, mesh) = timed_updates(setup, &a, &name, &replicas, options.updates)?;
        let note = "after the etcd write, until both nodes' balancers have it";
        rows.push(row("update", &format!("{n} replicas, VIP"), &vip, note));
        let (dropped, added): (Vec<_>, Vec<_>) =
            mesh.into_iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let only = |v: Vec<(usize, Duration)>| -> Vec<Duration> {
            v.into_iter().map(|(_, d)| d).collect()
        };
        rows.push(row(
            "update",
            &format!("{n} replicas, mesh drop"),
            &only(dropped),
            note,
        ));
        rows.push(row(
            "update",
            &format!("{n} replicas, mesh add"),
            &only(added),
            "the replica's node joins it to the ingress network first",
        ));
        if index + 1 == counts.len() {
            for (host, node) in [(&setup.a, "A"), (&setup.b, "B")] {
                let mib = host.daemon_pid().and_then(rss_mib).unwrap_or(f64::NAN);
                rows.push(Row {
                    what: "memory".into(),
                    peer: format!("node {node}, {n} replicas"),
                    samples: 1,
                    p50: Some(mib),
                    p99: None,
                    unit: "MiB".into(),
                    note: format!("daemon RSS, {} sandboxes of its own", n / 2),
                });
            }
        }
        setup.runtime.block_on(a.service_remove(&name))?;
    }
    Ok(rows)
}

/// `updates` updates of the service, each dropping its last replica or taking it back;
/// for each, when the last of both nodes' balancers of each kind had it, after the etcd
/// write.
fn timed_updates(
    setup: &Setup,
    client: &Client,
    name: &str,
    replicas: &[String],
    updates: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut monitors = Vec::new();
    for host in [&setup.a, &setup.b] {
        for (sandbox, _) in BALANCERS {
            monitors.push(Monitor::start(&sandbox_key(
                setup,
                &host.client(),
                sandbox,
            )?)?);
        }
    }
    let writes = watch_services(setup)?;
    let (mut vip, mut mesh) = (Vec::new(), Vec::new());
    for round in 0..updates {
        let update = ServiceUpdateRequest {
            replicas: replicas[..replicas.len() - (1 - round % 2)].to_vec(),
        };
        for monitor in &monitors {
            monitor.drain();
        }
        while writes.try_recv().is_ok() {}
        let requested = Instant::now();
        setup
            .runtime
            .block_on(client.service_update(name, &update))?;
        let written = writes.recv_timeout(Duration::from_secs(10))?;
        let mut last = [written; 2];
        for (i, monitor) in monitors.iter().enumerate() {
            // A node may have it before the bench's own watch hears of the write: 0 then.
            let seen = monitor.first_after(requested)?;
            let kind = i % BALANCERS.len();
            last[kind] = last[kind].max(seen);
        }
        vip.push(last[0].saturating_duration_since(written));
        mesh.push(last[1].saturating_duration_since(written));
        // The rest of each table's events.
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok((vip, mesh))
}

/// `nft monitor` in a balancer sandbox: when each event line came.
struct Monitor {
    child: Child,
    lines: Receiver<Instant>,
}

impl Monitor {
    fn start(netns: &str) -> anyhow::Result<Self> {
        let mut child = in_netns(netns, "nft")
            .arg("monitor")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if line.is_err() || tx.send(Instant::now()).is_err() {
                    break;
                }
            }
        });
        // The monitor is listening once it reports a table made meanwhile; give it time.
        std::thread::sleep(Duration::from_millis(200));
        Ok(Self { child, lines })
    }

    fn drain(&self) {
        while self.lines.try_recv().is_ok() {}
    }

    /// The first event at or after `since` (a table rewrite is told once committed).
    fn first_after(&self, since: Instant) -> anyhow::Result<Instant> {
        loop {
            let at = self.lines.recv_timeout(Duration::from_secs(10))?;
            if at >= since {
                return Ok(at);
            }
        }
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every change of a service record in etcd, as a watch from the bench sees it.
fn watch_services(setup: &Setup) -> anyhow::Result<Receiver<Instant>> {
    let endpoints = setup.etcd.endpoints();
    let (tx, rx) = channel();
    let (ready_tx, ready_rx) = channel();
    let netns = setup.a.netns().to_string();
    std::thread::spawn(move || {
        netctl_netns_fixtures::in_netns(&netns, move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async move {
                let store = ClusterStore::connect(&endpoints).await.expect("etcd");
                let prefix = Prefix::kind(Scope::Global, "service");
                let from = store.current_revision().await.expect("revision");
                let mut watch = store.watch(&prefix, from).expect("watch");
                let _ = ready_tx.send(());
                while watch.next().await.is_ok() {
                    if tx.send(Instant::now()).is_err() {
                        break;
                    }
                }
            })
        })
    });
    ready_rx.recv_timeout(Duration::from_secs(10))?;
    Ok(rx)
}

fn sandbox_key(setup: &Setup, client: &Client, name: &str) -> anyhow::Result<String> {
    let mut found = None;
    wait(Duration::from_secs(30), || {
        found = setup.runtime.block_on(client.sandbox_inspect(name)).ok();
        found.is_some()
    })?;
    Ok(found.expect("waited for").network_settings.sandbox_key)
}

fn table_of(netns: &str) -> String {
    in_netns(netns, "nft")
        .args(["list", "table", "ip", "netctl-lb"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn command_ok(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let status = cmd.status()?;
    anyhow::ensure!(status.success(), "{cmd:?} failed");
    Ok(())
}
