//! `netctl-bench overlay`: two netctl nodes on a LAN (namespaces) with a 3-member etcd
//! cluster, one overlay network between them.
//!
//! - convergence: a sandbox attached on node A, its address pinged from node B every
//!   millisecond since before the attach; from the attach request to B's first reply. Beside
//!   it, the floor: a put on A's node to the moment B's watch sees it, through the same etcd.
//! - attach: an overlay connect (and disconnect) on A beside a bridge one on the same node;
//!   then 100 connects at once on A, each kind: the wall time until all are answered (an
//!   overlay attach writes to etcd, which must not make the node's attaches queue).
//! - throughput: iperf3 sandbox to sandbox across the nodes over the overlay, beside the
//!   underlay itself and a VXLAN built by hand (bridge, VXLAN device, static FDB and
//!   neighbour entries, veths into namespaces) between the same two hosts.
//! - scale: many hosts with endpoints each ([`scale`]).
//! - docker: Docker's swarm overlay as the peer of the convergence and throughput rows
//!   ([`docker_swarm`]).

mod docker_swarm;
mod scale;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netctl_netns_fixtures::{EtcdCluster, Host, Lan};
use netctl_plugin_api::client::Client;
use netctl_plugin_api::{
    ConnectRequest, DisconnectRequest, EndpointConfig, EndpointIpamConfig, IpamConfig, IpamRequest,
    NetworkCreateRequest, SandboxCreateRequest,
};
use netctl_store::{Batch, ClusterStore, Key, Prefix, Scope, Store};
use serde::Serialize;

use crate::stats::percentile_ms;
use crate::throughput::in_netns;

pub(crate) const OVERLAY: &str = "ov";
const BRIDGE: &str = "br";

#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub what: String,
    pub peer: String,
    pub samples: usize,
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub unit: String,
    pub note: String,
}

pub struct Options {
    pub endpoints: usize,
    pub samples: usize,
    pub parts: Vec<String>,
    /// Hosts and sandboxes per host of the scale rows.
    pub scale: (usize, usize),
}

/// Two nodes in one cluster with an overlay `ov` (10.200.0.0/16) and a bridge `br` on A.
pub(crate) struct Setup {
    pub(crate) a: Host,
    pub(crate) b: Host,
    pub(crate) etcd: EtcdCluster,
    pub(crate) _lan: Lan,
    pub(crate) runtime: tokio::runtime::Runtime,
}

impl Setup {
    pub(crate) fn new() -> anyhow::Result<Self> {
        let lan = Lan::new();
        let etcd = EtcdCluster::start(&lan, 3);
        let a = Host::with_daemon();
        let b = Host::with_daemon();
        lan.plug(&a, "203.0.113.11");
        lan.plug(&b, "203.0.113.12");
        let store = etcd.endpoints_arg();
        a.netctl(&[
            "cluster",
            "init",
            "--advertise-addr",
            "203.0.113.11",
            "--store",
            &store,
        ])
        .expect_ok();
        let token = a
            .netctl(&["cluster", "join-token", "-q", "worker"])
            .expect_ok();
        b.netctl(&[
            "cluster",
            "join",
            "--token",
            token.trim(),
            "--advertise-addr",
            "203.0.113.12",
            "--store",
            &store,
        ])
        .expect_ok();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(a.client().network_create(&network(
            OVERLAY,
            "overlay",
            "10.200.0.0/16",
        )))?;
        runtime.block_on(
            a.client()
                .network_create(&network(BRIDGE, "bridge", "10.88.0.0/16")),
        )?;
        let setup = Self {
            a,
            b,
            etcd,
            _lan: lan,
            runtime,
        };
        setup.wait(|| setup.b.netctl(&["network", "inspect", OVERLAY]).ok())?;
        Ok(setup)
    }

    /// The overlay's VNI, as inspect shows it.
    fn vni(&self) -> anyhow::Result<String> {
        let net = self
            .runtime
            .block_on(self.a.client().network_inspect(OVERLAY))?;
        net.options
            .get("com.docker.network.driver.overlay.vxlanid_list")
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no VNI in inspect"))
    }

    pub(crate) fn wait(&self, check: impl FnMut() -> bool) -> anyhow::Result<()> {
        wait_until(Duration::from_secs(10), check)
    }

    pub(crate) fn sandbox(
        &self,
        client: &Client,
        name: &str,
        network: Option<&str>,
        ip: Option<&str>,
    ) -> anyhow::Result<String> {
        let request = SandboxCreateRequest {
            name: name.into(),
            network: network.map(String::from),
            endpoint_config: endpoint(ip),
            ..Default::default()
        };
        let created = self.runtime.block_on(client.sandbox_create(&request))?;
        Ok(created.network_settings.sandbox_key)
    }
}

/// Polls `check` until it holds, or fails after `limit`.
pub(crate) fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !check() {
        anyhow::ensure!(started.elapsed() < limit, "timed out after {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

pub(crate) fn network(name: &str, driver: &str, subnet: &str) -> NetworkCreateRequest {
    NetworkCreateRequest {
        name: name.into(),
        driver: Some(driver.into()),
        ipam: Some(IpamRequest {
            config: vec![IpamConfig {
                subnet: Some(subnet.into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn endpoint(ip: Option<&str>) -> EndpointConfig {
    EndpointConfig {
        ipam_config: ip.map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

pub fn run(options: &Options) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let wants = |part: &str| options.parts.iter().any(|p| p == part);
    if ["convergence", "attach", "throughput", "services"]
        .iter()
        .any(|p| wants(p))
    {
        rows.extend(two_nodes(options)?);
    }
    if wants("docker") {
        let underlay = rows
            .iter()
            .find(|r| r.what == "throughput" && r.peer == "underlay")
            .and_then(|r| r.p50);
        // Docker's gossip takes its time: a smaller sample.
        rows.extend(docker_swarm::run(options.endpoints.min(20), underlay)?);
    }
    if wants("scale") {
        let (hosts, per_host) = options.scale;
        rows.extend(scale::run(hosts, per_host)?);
    }
    let group = |what: &str| {
        ["convergence", "attach", "throughput", "services", "scale"]
            .iter()
            .position(|w| *w == what)
    };
    rows.sort_by_key(|r| group(&r.what));
    Ok(rows)
}

fn two_nodes(options: &Options) -> anyhow::Result<Vec<Row>> {
    let setup = Setup::new()?;
    let mut rows = Vec::new();
    let wants = |part: &str| options.parts.iter().any(|p| p == part);
    if wants("convergence") {
        rows.push(watch_floor(&setup, options.endpoints)?);
        rows.extend(convergence(&setup, options.endpoints)?);
    }
    if wants("attach") {
        rows.extend(attach(&setup, options.samples)?);
    }
    if wants("throughput") {
        rows.extend(throughput(&setup)?);
    }
    if wants("services") {
        rows.extend(service_updates(&setup)?);
    }
    Ok(rows)
}

/// Sandboxes on node A for the service rows, all of them replicas (and clients).
const SERVICE_SANDBOXES: [usize; 2] = [10, 100];
/// Timed updates per row.
const SERVICE_UPDATES: usize = 10;

/// `service update` on node A with N sandboxes of A on the service's network: it answers
/// once the etcd write is done and A's load balancer has its new table. Each update drops
/// one replica or takes it back.
fn service_updates(setup: &Setup) -> anyhow::Result<Vec<Row>> {
    use netctl_plugin_api::cluster::{ServiceCreateRequest, ServiceUpdateRequest};
    let client = setup.a.client();
    let mut rows = Vec::new();
    let mut made = 0;
    for n in SERVICE_SANDBOXES {
        while made < n {
            setup.sandbox(&client, &format!("svc{made}"), Some(OVERLAY), None)?;
            made += 1;
        }
        let replicas: Vec<String> = (0..n).map(|i| format!("svc{i}")).collect();
        let name = format!("web{n}");
        setup
            .runtime
            .block_on(client.service_create(&ServiceCreateRequest {
                name: name.clone(),
                network: OVERLAY.into(),
                replicas: replicas.clone(),
                publish: Vec::new(),
            }))?;
        let mut took = Vec::new();
        for round in 0..SERVICE_UPDATES {
            let update = ServiceUpdateRequest {
                replicas: replicas[..n - round % 2].to_vec(),
            };
            let started = Instant::now();
            setup
                .runtime
                .block_on(client.service_update(&name, &update))?;
            took.push(started.elapsed());
        }
        setup.runtime.block_on(client.service_remove(&name))?;
        rows.push(row(
            "services",
            &format!("netctl, {n} sandboxes"),
            &took,
            "service update -> the node's load balancer has its new table",
        ));
    }
    Ok(rows)
}

/// A put through a store client on node A, seen by a watch from node B.
fn watch_floor(setup: &Setup, samples: usize) -> anyhow::Result<Row> {
    let endpoints = setup.etcd.endpoints();
    let (tx, rx) = std::sync::mpsc::channel::<Instant>();
    let watcher_endpoints = endpoints.clone();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let b_netns = setup.b.netns().to_string();
    let watcher = std::thread::spawn(move || {
        netctl_netns_fixtures::in_netns(&b_netns, move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let store = ClusterStore::connect(&watcher_endpoints).await.unwrap();
                let prefix = Prefix::kind(Scope::Global, "bench.floor");
                let from = store.current_revision().await.unwrap();
                let mut watch = store.watch(&prefix, from).unwrap();
                ready_tx.send(()).unwrap();
                for _ in 0..samples {
                    if watch.next().await.is_err() {
                        break;
                    }
                    let _ = tx.send(Instant::now());
                }
            })
        })
    });
    ready_rx.recv()?;
    let a_netns = setup.a.netns().to_string();
    let took = netctl_netns_fixtures::in_netns(&a_netns, move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let store = ClusterStore::connect(&endpoints).await.unwrap();
            let mut took = Vec::new();
            for i in 0..samples {
                let key = Key::new(Scope::Global, "bench.floor", i.to_string());
                let sent = Instant::now();
                store
                    .apply(Batch::new().put(key, b"x".to_vec()))
                    .await
                    .unwrap();
                let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
                took.push(seen.saturating_duration_since(sent));
            }
            store
                .apply(Batch::new().delete(Key::new(Scope::Global, "bench.floor", "0")))
                .await
                .ok();
            took
        })
    });
    let _ = watcher.join();
    Ok(row(
        "convergence",
        "etcd watch floor",
        &took,
        "put on A -> event on B",
    ))
}

/// Attach on A: the first reply to B's pings, and the moment B's overlay has the entry.
fn convergence(setup: &Setup, endpoints: usize) -> anyhow::Result<Vec<Row>> {
    let probe = setup.sandbox(
        &setup.b.client(),
        "probe",
        Some(OVERLAY),
        Some("10.200.0.2"),
    )?;
    // ARP asked as often as the kernel allows (every 2 jiffies at least: 8 ms at HZ=250),
    // and never given up.
    for (key, value) in [
        ("net.ipv4.neigh.eth0.retrans_time_ms", "1"),
        ("net.ipv4.neigh.eth0.mcast_solicit", "100000"),
        ("net.ipv4.neigh.eth0.ucast_solicit", "100000"),
    ] {
        let status = in_netns(&probe, "sysctl")
            .args(["-qw", &format!("{key}={value}")])
            .status()?;
        anyhow::ensure!(status.success(), "sysctl {key}");
    }
    let segment = setup
        .b
        .exec_root()
        .join("overlay")
        .join(format!("ov-{}", setup.vni()?));
    let clock = LocalClock::read()?;
    let client = setup.a.client();
    let (mut replies, mut entries) = (Vec::new(), Vec::new());
    for i in 0..endpoints {
        let ip = format!("10.200.{}.{}", 1 + i / 250, 1 + i % 250);
        let name = format!("c{i}");
        // The namespace is made first: what is timed is the attach itself.
        setup.sandbox(&client, &name, None, None)?;
        let mut ping = in_netns(&probe, "ping")
            .args(["-D", "-n", "-i", "0.001", "-w", "10", &ip])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut monitor = in_netns(&segment.display().to_string(), "ip")
            .args(["-ts", "monitor", "neigh"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(30));
        let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let connect = ConnectRequest {
            container: name,
            endpoint_config: endpoint(Some(&ip)),
        };
        setup
            .runtime
            .block_on(client.network_connect(OVERLAY, &connect))?;
        let stdout = ping.stdout.take().expect("ping's stdout");
        let first = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| reply_time(&line));
        let _ = ping.kill();
        let _ = ping.wait();
        let _ = monitor.kill();
        let seen = monitor.wait_with_output()?;
        let entry = String::from_utf8_lossy(&seen.stdout)
            .lines()
            .filter(|l| l.contains(&format!(" {ip} ")) && l.contains("PERMANENT"))
            .find_map(|l| clock.epoch_of(l));
        let first = first.ok_or_else(|| anyhow::anyhow!("no reply from {ip}"))?;
        replies.push(Duration::from_secs_f64((first - started).max(0.0)));
        if let Some(entry) = entry {
            entries.push(Duration::from_secs_f64((entry - started).max(0.0)));
        }
    }
    Ok(vec![
        row(
            "convergence",
            "netctl",
            &entries,
            "attach on A -> neighbour entry on B",
        ),
        row(
            "convergence",
            "netctl",
            &replies,
            "attach on A -> first reply to B (B's ARP retry: 8 ms floor)",
        ),
    ])
}

/// `ip -ts` prints local wall-clock time; this turns it into seconds since the epoch.
struct LocalClock {
    /// Seconds to add to a local time read as if it were UTC.
    offset: f64,
}

impl LocalClock {
    fn read() -> anyhow::Result<Self> {
        let out = Command::new("date")
            .arg("+%Y-%m-%dT%H:%M:%S.%6N")
            .output()?;
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let local = naive_seconds(String::from_utf8_lossy(&out.stdout).trim())
            .ok_or_else(|| anyhow::anyhow!("cannot read date's output"))?;
        // Whole minutes: time zones are; what is left is the time `date` took.
        let offset = ((now - local) / 60.0).round() * 60.0;
        Ok(Self { offset })
    }

    /// `[2026-12-01T03:22:25.654811] …` → epoch seconds.
    fn epoch_of(&self, line: &str) -> Option<f64> {
        let stamp = line.strip_prefix('[')?.split(']').next()?;
        Some(naive_seconds(stamp)? + self.offset)
    }
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` as seconds since 1970-01-01T00:00:00 of the same clock.
fn naive_seconds(stamp: &str) -> Option<f64> {
    let (date, time) = stamp.split_once('T')?;
    let mut ymd = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, d) = (ymd.next()??, ymd.next()??, ymd.next()??);
    let mut hms = time.split(':');
    let (h, min): (i64, i64) = (hms.next()?.parse().ok()?, hms.next()?.parse().ok()?);
    let sec: f64 = hms.next()?.parse().ok()?;
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some((days * 86400 + h * 3600 + min * 60) as f64 + sec)
}

/// `[1733030000.123456] 64 bytes from …`: the reply's time.
fn reply_time(line: &str) -> Option<f64> {
    if !line.contains("bytes from") {
        return None;
    }
    line.strip_prefix('[')?.split(']').next()?.parse().ok()
}

/// Connect and disconnect a sandbox on A, `samples` times, on the overlay and on a bridge.
fn attach(setup: &Setup, samples: usize) -> anyhow::Result<Vec<Row>> {
    let client = setup.a.client();
    setup.sandbox(&client, "attacher", None, None)?;
    let mut rows = Vec::new();
    for (network, peer) in [(OVERLAY, "netctl overlay"), (BRIDGE, "netctl bridge")] {
        let mut took = Vec::new();
        for _ in 0..samples {
            let connect = ConnectRequest {
                container: "attacher".into(),
                ..Default::default()
            };
            let started = Instant::now();
            setup
                .runtime
                .block_on(client.network_connect(network, &connect))?;
            took.push(started.elapsed());
            let disconnect = DisconnectRequest {
                container: "attacher".into(),
            };
            setup
                .runtime
                .block_on(client.network_disconnect(network, &disconnect))?;
        }
        rows.push(row("attach", peer, &took, "connect on node A"));
    }
    for (network, peer) in [
        (OVERLAY, "netctl overlay, 100 at once"),
        (BRIDGE, "netctl bridge, 100 at once"),
    ] {
        let wall = attach_at_once(setup, network, 100)?;
        rows.push(Row {
            what: "attach".into(),
            peer: peer.into(),
            samples: 100,
            p50: Some(wall.as_secs_f64() * 1e3),
            p99: None,
            unit: "ms".into(),
            note: "wall time until all 100 connects on node A are answered".into(),
        });
    }
    Ok(rows)
}

/// `count` sandboxes of node A (made first, on no network) connected to `network` at once:
/// the wall time until every connect is answered.
fn attach_at_once(setup: &Setup, network: &str, count: usize) -> anyhow::Result<Duration> {
    let client = setup.a.client();
    let names: Vec<String> = (0..count).map(|i| format!("{network}-burst-{i}")).collect();
    for name in &names {
        setup.sandbox(&client, name, None, None)?;
    }
    let started = Instant::now();
    let connects = names.iter().map(|name| {
        let connect = ConnectRequest {
            container: name.clone(),
            ..Default::default()
        };
        let client = &client;
        async move { client.network_connect(network, &connect).await }
    });
    for answer in setup.runtime.block_on(futures::future::join_all(connects)) {
        answer?;
    }
    let wall = started.elapsed();
    for name in &names {
        setup.runtime.block_on(client.sandbox_remove(name))?;
    }
    Ok(wall)
}

pub(crate) fn row(what: &str, peer: &str, samples: &[Duration], note: &str) -> Row {
    Row {
        what: what.into(),
        peer: peer.into(),
        samples: samples.len(),
        p50: (!samples.is_empty()).then(|| percentile_ms(samples, 50.0)),
        p99: (!samples.is_empty()).then(|| percentile_ms(samples, 99.0)),
        unit: "ms".into(),
        note: note.into(),
    }
}

/// iperf3 over the overlay, the underlay and a hand-built VXLAN.
fn throughput(setup: &Setup) -> anyhow::Result<Vec<Row>> {
    let server = setup.sandbox(
        &setup.a.client(),
        "iperf-server",
        Some(OVERLAY),
        Some("10.200.9.1"),
    )?;
    let client = setup.sandbox(
        &setup.b.client(),
        "iperf-client",
        Some(OVERLAY),
        Some("10.200.9.2"),
    )?;
    let overlay = median_of_3(|| iperf(&server, &client, "10.200.9.1"))?;
    let underlay = median_of_3(|| {
        iperf(
            &setup.a.netns_path().display().to_string(),
            &setup.b.netns_path().display().to_string(),
            "203.0.113.11",
        )
    })?;
    let hand = HandBuilt::new(setup)?;
    let hand_built = median_of_3(|| iperf(&hand.a, &hand.b, "10.99.0.1"))?;
    // The way out: from the overlay sandbox on B through B's gateway bridge (masqueraded)
    // to a host outside the cluster, beside B itself to that host.
    let outside = Host::new();
    setup._lan.plug(&outside, OUTSIDE);
    let outside_ns = outside.netns_path().display().to_string();
    let way_out = median_of_3(|| iperf(&outside_ns, &client, OUTSIDE))?;
    let node_out = median_of_3(|| {
        iperf(
            &outside_ns,
            &setup.b.netns_path().display().to_string(),
            OUTSIDE,
        )
    })?;
    let gbit = |peer: &str, value: f64, note: String| Row {
        what: "throughput".into(),
        peer: peer.into(),
        samples: 3,
        p50: Some(value),
        p99: None,
        unit: "Gbit/s".into(),
        note,
    };
    Ok(vec![
        gbit(
            "netctl overlay",
            overlay,
            format!(
                "{:.2}x hand-built, {:.2}x underlay",
                overlay / hand_built,
                overlay / underlay
            ),
        ),
        gbit(
            "hand-built VXLAN",
            hand_built,
            "bridge + vxlan + static FDB".into(),
        ),
        gbit("underlay", underlay, "veth via the LAN switch".into()),
        gbit(
            "netctl gwbridge",
            way_out,
            format!(
                "overlay sandbox on B -> host outside the cluster, masqueraded; {:.2}x B itself",
                way_out / node_out
            ),
        ),
        gbit(
            "node to outside",
            node_out,
            "B's own namespace -> the same outside host".into(),
        ),
    ])
}

/// A host on the LAN that is not in the cluster.
const OUTSIDE: &str = "203.0.113.50";

fn median_of_3(mut run: impl FnMut() -> anyhow::Result<f64>) -> anyhow::Result<f64> {
    let mut runs = [run()?, run()?, run()?];
    runs.sort_by(|a, b| a.total_cmp(b));
    Ok(runs[1])
}

/// iperf3 from the namespace at `client_netns` to a server in `server_netns`, in Gbit/s.
pub(super) fn iperf(server_netns: &str, client_netns: &str, target: &str) -> anyhow::Result<f64> {
    crate::throughput::iperf(
        in_netns(server_netns, "iperf3"),
        in_netns(client_netns, "iperf3"),
        target,
        crate::throughput::IPERF_PORT,
    )
}

/// The overlay's shape made by hand on both hosts: a bridge (netfilter and multicast
/// snooping off, as netctl's) and a VXLAN device (VNI 99, port 4790, learning off) in the
/// host's namespace, a veth into a namespace of its own,
/// static FDB and neighbour entries for the other side.
struct HandBuilt {
    a: String,
    b: String,
    _sandboxes: [Host; 2],
}

impl HandBuilt {
    fn new(setup: &Setup) -> anyhow::Result<Self> {
        let sandboxes = [Host::new(), Host::new()];
        let sides = [
            (
                &setup.a,
                &sandboxes[0],
                "203.0.113.11",
                "203.0.113.12",
                "10.99.0.1",
                "10.99.0.2",
                "02:99:00:00:00:01",
                "02:99:00:00:00:02",
            ),
            (
                &setup.b,
                &sandboxes[1],
                "203.0.113.12",
                "203.0.113.11",
                "10.99.0.2",
                "10.99.0.1",
                "02:99:00:00:00:02",
                "02:99:00:00:00:01",
            ),
        ];
        for (host, sandbox, local, remote, ip, peer_ip, mac, peer_mac) in sides {
            let steps: Vec<Vec<&str>> = vec![
                vec![
                    "link",
                    "add",
                    "hb0",
                    "type",
                    "bridge",
                    "nf_call_iptables",
                    "0",
                    "mcast_snooping",
                    "0",
                ],
                vec![
                    "link",
                    "add",
                    "hbx",
                    "type",
                    "vxlan",
                    "id",
                    "99",
                    "local",
                    local,
                    "dstport",
                    "4790",
                    "nolearning",
                ],
                vec!["link", "set", "hbx", "master", "hb0", "up"],
                vec![
                    "link",
                    "add",
                    "hbv",
                    "mtu",
                    "1450",
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    sandbox.netns(),
                ],
                vec!["link", "set", "hbv", "master", "hb0", "up"],
                vec!["link", "set", "hb0", "up"],
            ];
            for step in steps {
                host.ip(&step).expect_ok();
            }
            host.exec(&[
                "bridge",
                "fdb",
                "append",
                peer_mac,
                "dev",
                "hbx",
                "dst",
                remote,
                "self",
                "permanent",
            ])
            .expect_ok();
            let cidr = format!("{ip}/24");
            for step in [
                vec!["link", "set", "eth0", "address", mac, "mtu", "1450", "up"],
                vec!["addr", "add", &cidr, "dev", "eth0"],
                vec![
                    "neigh",
                    "replace",
                    peer_ip,
                    "lladdr",
                    peer_mac,
                    "dev",
                    "eth0",
                    "nud",
                    "permanent",
                ],
            ] {
                sandbox.ip(&step).expect_ok();
            }
        }
        Ok(Self {
            a: sandboxes[0].netns_path().display().to_string(),
            b: sandboxes[1].netns_path().display().to_string(),
            _sandboxes: sandboxes,
        })
    }
}

pub fn print(rows: &[Row], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<12} {:<18} {:>8} {:>10} {:>10} {:>7}   note",
        "what", "peer", "samples", "p50", "p99", "unit"
    );
    for r in rows {
        println!(
            "{:<12} {:<18} {:>8} {:>10} {:>10} {:>7}   {}",
            r.what,
            r.peer,
            r.samples,
            crate::report::figure(r.p50, 2),
            crate::report::figure(r.p99, 2),
            r.unit,
            r.note
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_timestamps_become_epoch_seconds() {
        assert_eq!(naive_seconds("1970-01-01T00:00:01.5"), Some(1.5));
        assert_eq!(
            naive_seconds("2026-12-01T00:00:00.000000"),
            Some(1_796_083_200.0)
        );
        assert_eq!(
            reply_time("[1796095345.665158] 64 bytes from 10.200.1.1"),
            Some(1_796_095_345.665158)
        );
        assert_eq!(reply_time("PING 10.200.1.1"), None);
    }
}
