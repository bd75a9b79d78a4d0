//! `netctl-bench dhcp`: attaching a container whose address a LAN's DHCP server leases.
//!
//! One LAN: a switch namespace with dnsmasq serving 198.18.0.0/16 (the benchmarking range)
//! and a port into each peer's host as its `eth1`. Rows, all against that one server in
//! one run:
//! - `udhcpc`: busybox's client leasing once and exiting (the server's round trips, and a
//!   process start);
//! - `netctl pool`: connect + disconnect on a network of netctl's own pool (no DHCP);
//! - `netctl dhcp`: connect + disconnect on `-o parent=eth1 --ipam-driver dhcp` (lease and
//!   release);
//! - `bridge+dhcp`: the reference CNI bridge plugin with the dhcp IPAM plugin and its
//!   `dhcp daemon`, ADD + DEL.
//!
//! Then N concurrent attaches per peer (wall time until all hold leases), and netctl's
//! daemon memory holding M leases.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use netctl_netns_fixtures::{command_in, Dnsmasq, Host};
use netctl_plugin_api::client::Client;
use netctl_plugin_api::{ConnectRequest, DisconnectRequest, IpamRequest, NetworkCreateRequest};
use serde::Serialize;
use serde_json::json;

use crate::attach::sandboxes::Sandboxes;
use crate::netctl_host::{Build, NetctlHost, NETWORK};
use crate::process::timed_output;
use crate::report::figure;
use crate::stats::percentile_ms;

const CNI_PATH: &str = "/usr/lib/cni";
/// The DHCP network netctl leases on.
const LAN_NETWORK: &str = "lan";
const CNI_BRIDGE: &str = "cnilan0";

pub struct Options {
    pub samples: usize,
    pub concurrent: usize,
    pub leases: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AttachRow {
    pub peer: String,
    pub attach_p50_ms: Option<f64>,
    pub attach_p99_ms: Option<f64>,
    pub detach_p50_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ConcurrentRow {
    pub peer: String,
    pub attaches: usize,
    pub wall_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub attach: Vec<AttachRow>,
    pub concurrent: Vec<ConcurrentRow>,
    pub leases: usize,
    /// The DHCP exchange alone (socket, DISCOVER to ACK), as netctl's daemon timed it.
    pub exchange_p50_ms: Option<f64>,
    pub daemon_rss_mib: Option<f64>,
    pub rss_per_lease_kib: Option<f64>,
}

/// The LAN's switch and server: `lan0` with 198.18.0.1/16, dnsmasq on it.
struct LanSwitch {
    switch: Host,
    _server: Dnsmasq,
    ports: std::cell::Cell<u32>,
}

impl LanSwitch {
    fn new() -> Self {
        let switch = Host::new();
        for args in [
            &["link", "add", "lan0", "type", "bridge"][..],
            &["addr", "add", "198.18.0.1/16", "dev", "lan0"],
            &["link", "set", "lan0", "up"],
        ] {
            switch.ip(args).expect_ok();
        }
        let leases = switch.dir().join("leases");
        let server = Dnsmasq::quiet(
            &switch,
            "198.18.0.1",
            &[
                "--interface=lan0",
                "--dhcp-range=198.18.0.10,198.18.255.250,255.255.0.0,1h",
                "--dhcp-option=option:router,198.18.0.1",
                "--dhcp-lease-max=70000",
                "--dhcp-authoritative",
                "--no-ping",
                &format!("--dhcp-leasefile={}", leases.display()),
            ],
        );
        Self {
            switch,
            _server: server,
            ports: std::cell::Cell::new(0),
        }
    }

    /// A port of the switch as `eth1` of `host`, up, without an address.
    fn plug(&self, host: &Host) {
        let port = format!("p{}", self.ports.get());
        self.ports.set(self.ports.get() + 1);
        self.switch
            .ip(&[
                "link",
                "add",
                &port,
                "type",
                "veth",
                "peer",
                "name",
                "eth1",
                "netns",
                host.netns(),
            ])
            .expect_ok();
        self.switch
            .ip(&["link", "set", &port, "master", "lan0", "up"])
            .expect_ok();
        host.ip(&["link", "set", "eth1", "up"]).expect_ok();
    }
}

/// netctl with a DHCP network on the LAN beside its pool network.
struct NetctlLan {
    netctl: NetctlHost,
}

impl NetctlLan {
    fn new(lan: &LanSwitch, build: &Build) -> anyhow::Result<Self> {
        let netctl = NetctlHost::new(build)?;
        lan.plug(&netctl.host);
        let request = NetworkCreateRequest {
            name: LAN_NETWORK.into(),
            ipam: Some(IpamRequest {
                driver: Some("dhcp".into()),
                ..Default::default()
            }),
            options: [("parent".to_string(), "eth1".to_string())].into(),
            ..Default::default()
        };
        netctl
            .runtime
            .block_on(netctl.client.network_create(&request))?;
        Ok(Self { netctl })
    }

    fn sandboxes(&self, prefix: &str, count: usize) -> anyhow::Result<Vec<String>> {
        let names: Vec<String> = (0..count).map(|i| format!("{prefix}{i}")).collect();
        for name in &names {
            self.netctl.sandbox(name, false)?;
        }
        Ok(names)
    }

    /// Timed connect and disconnect of one sandbox, `samples` times.
    fn attach_rows(
        &self,
        network: &str,
        samples: usize,
    ) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
        let name = format!("one-{network}");
        self.netctl.sandbox(&name, false)?;
        let client = &self.netctl.client;
        let (mut attaches, mut detaches) = (Vec::new(), Vec::new());
        self.netctl.runtime.block_on(async {
            for _ in 0..samples {
                let start = Instant::now();
                client.network_connect(network, &connect(&name)).await?;
                attaches.push(start.elapsed());
                let start = Instant::now();
                client
                    .network_disconnect(network, &disconnect(&name))
                    .await?;
                detaches.push(start.elapsed());
            }
            anyhow::Ok(())
        })?;
        Ok((attaches, detaches))
    }

    /// Connects every sandbox at once; the wall time until all hold their leases.
    fn attach_all(&self, names: &[String]) -> anyhow::Result<Duration> {
        let socket = self.netctl.host.socket();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        runtime.block_on(async {
            let start = Instant::now();
            let calls: Vec<_> = names
                .iter()
                .map(|name| {
                    let client = Client::new(&socket);
                    let request = connect(name);
                    tokio::spawn(async move { client.network_connect(LAN_NETWORK, &request).await })
                })
                .collect();
            for call in calls {
                call.await??;
            }
            anyhow::Ok(start.elapsed())
        })
    }
}

fn connect(name: &str) -> ConnectRequest {
    ConnectRequest {
        container: name.into(),
        ..Default::default()
    }
}

fn disconnect(name: &str) -> DisconnectRequest {
    DisconnectRequest {
        container: name.into(),
    }
}

/// The reference plugins: bridge + dhcp, with the dhcp daemon running in their host.
struct CniLan {
    host: Host,
    daemon: Child,
    socket: PathBuf,
}

impl CniLan {
    fn new(lan: &LanSwitch) -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(CNI_PATH).join("dhcp").exists(),
            "{CNI_PATH}/dhcp is missing: apt-get install containernetworking-plugins"
        );
        let host = Host::new();
        lan.plug(&host);
        // The bridge the plugin attaches to, with the LAN's port in it.
        for args in [
            &["link", "add", CNI_BRIDGE, "type", "bridge"][..],
            &["link", "set", "eth1", "master", CNI_BRIDGE],
            &["link", "set", CNI_BRIDGE, "up"],
        ] {
            host.ip(args).expect_ok();
        }
        let socket = host.dir().join("dhcp.sock");
        let log = std::fs::File::create(host.dir().join("dhcp-daemon.log"))?;
        let daemon = command_in(&host.netns_path(), PathBuf::from(CNI_PATH).join("dhcp"))
            .args(["daemon", "-socketpath"])
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("the CNI dhcp daemon")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !socket.exists() {
            anyhow::ensure!(
                Instant::now() < deadline,
                "the CNI dhcp daemon did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self {
            host,
            daemon,
            socket,
        })
    }

    fn conf(&self) -> serde_json::Value {
        json!({
            "cniVersion": "0.4.0", "name": "lan", "type": "bridge", "bridge": CNI_BRIDGE,
            "isGateway": false, "ipMasq": false,
            "ipam": {"type": "dhcp", "daemonSocketPath": self.socket},
        })
    }

    fn exec(&self, command: &str, i: usize, netns: &str) -> anyhow::Result<Duration> {
        let mut cmd = self.host.command(PathBuf::from(CNI_PATH).join("bridge"));
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("{:064x}", i + 1))
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_PATH);
        Ok(timed_output(cmd, &self.conf().to_string())?.0)
    }
}

impl Drop for CniLan {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

/// busybox's udhcpc leasing once on its own port of the LAN: the server's round trips.
fn udhcpc_rows(lan: &LanSwitch, samples: usize) -> anyhow::Result<Vec<Duration>> {
    let host = Host::new();
    lan.plug(&host);
    let mut times = Vec::new();
    for _ in 0..samples {
        let mut cmd = host.command("busybox");
        // -q: quit once leased; -f: in the foreground; -n: fail rather than retry forever;
        // -s /bin/true: configure nothing; -R: release on exit, so each sample asks anew.
        cmd.args([
            "udhcpc",
            "-i",
            "eth1",
            "-q",
            "-f",
            "-n",
            "-R",
            "-s",
            "/bin/true",
        ]);
        times.push(timed_output(cmd, "")?.0);
    }
    Ok(times)
}

fn row(peer: &str, result: anyhow::Result<(Vec<Duration>, Vec<Duration>)>) -> AttachRow {
    match result {
        Ok((attaches, detaches)) => AttachRow {
            peer: peer.into(),
            attach_p50_ms: Some(percentile_ms(&attaches, 50.0)),
            attach_p99_ms: Some(percentile_ms(&attaches, 99.0)),
            detach_p50_ms: (!detaches.is_empty()).then(|| percentile_ms(&detaches, 50.0)),
            error: None,
        },
        Err(e) => AttachRow {
            peer: peer.into(),
            attach_p50_ms: None,
            attach_p99_ms: None,
            detach_p50_ms: None,
            error: Some(format!("{e:#}").lines().next().unwrap_or_default().into()),
        },
    }
}

fn concurrent_row(peer: &str, attaches: usize, result: anyhow::Result<Duration>) -> ConcurrentRow {
    match result {
        Ok(wall) => ConcurrentRow {
            peer: peer.into(),
            attaches,
            wall_ms: Some(wall.as_secs_f64() * 1000.0),
            error: None,
        },
        Err(e) => ConcurrentRow {
            peer: peer.into(),
            attaches,
            wall_ms: None,
            error: Some(format!("{e:#}").lines().next().unwrap_or_default().into()),
        },
    }
}

/// ADD + DEL of one container through the reference plugins, `samples` times.
fn cni_rows(cni: &CniLan, samples: usize) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let mut sandboxes = Sandboxes::new("dhcp-one");
    sandboxes.make(0)?;
    let netns = sandboxes.path(0);
    let (mut adds, mut dels) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        adds.push(cni.exec("ADD", 0, &netns)?);
        dels.push(cni.exec("DEL", 0, &netns)?);
    }
    Ok((adds, dels))
}

/// `count` containers ADDed at once through the reference plugins (each its own process).
fn cni_concurrent(cni: &CniLan, count: usize) -> anyhow::Result<Duration> {
    let mut sandboxes = Sandboxes::new("dhcp-many");
    for i in 0..count {
        sandboxes.make(i)?;
    }
    let start = Instant::now();
    let results: Vec<anyhow::Result<Duration>> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..count)
            .map(|i| {
                let netns = sandboxes.path(i);
                scope.spawn(move || cni.exec("ADD", 1000 + i, &netns))
            })
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().expect("an ADD thread"))
            .collect()
    });
    let wall = start.elapsed();
    for result in results {
        result?;
    }
    for i in 0..count {
        let _ = cni.exec("DEL", 1000 + i, &sandboxes.path(i));
    }
    Ok(wall)
}

/// The median of the exchange times the daemon logs with each lease (`exchange_us=N`).
fn exchange_p50(log: &str) -> Option<f64> {
    let times: Vec<Duration> = log
        .lines()
        .filter(|l| l.contains("leased"))
        .filter_map(|l| {
            l.split("exchange_us=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()
        })
        .map(Duration::from_micros)
        .collect();
    (!times.is_empty()).then(|| percentile_ms(&times, 50.0))
}

pub fn run(options: &Options, build: &Build) -> anyhow::Result<Report> {
    let lan = LanSwitch::new();
    let mut attach = vec![row(
        "udhcpc",
        udhcpc_rows(&lan, options.samples).map(|t| (t, Vec::new())),
    )];
    let netctl = NetctlLan::new(&lan, build)?;
    attach.push(row(
        "netctl pool",
        netctl.attach_rows(NETWORK, options.samples),
    ));
    attach.push(row(
        "netctl dhcp",
        netctl.attach_rows(LAN_NETWORK, options.samples),
    ));
    let exchange_p50_ms = exchange_p50(&netctl.netctl.host.daemon_log());
    let cni = CniLan::new(&lan);
    attach.push(row(
        "bridge+dhcp",
        cni.as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|cni| cni_rows(cni, options.samples)),
    ));
    for r in &attach {
        eprintln!("{}: attach p50 {:?} ms", r.peer, r.attach_p50_ms);
    }
    let names = netctl.sandboxes("c", options.concurrent.max(options.leases))?;
    let mut concurrent = vec![concurrent_row(
        "netctl dhcp",
        options.concurrent,
        netctl.attach_all(&names[..options.concurrent]),
    )];
    concurrent.push(concurrent_row(
        "bridge+dhcp",
        options.concurrent,
        cni.as_ref()
            .map_err(|e| anyhow::anyhow!("{e:#}"))
            .and_then(|cni| cni_concurrent(cni, options.concurrent)),
    ));
    // Memory: the daemon before any lease of its own beyond these, then holding M.
    let before = netctl.netctl.rss_mib();
    for chunk in names[options.concurrent..options.leases.max(options.concurrent)].chunks(50) {
        netctl.attach_all(chunk)?;
    }
    let after = netctl.netctl.rss_mib();
    let extra = options.leases.saturating_sub(options.concurrent).max(1) as f64;
    Ok(Report {
        attach,
        concurrent,
        leases: options.leases.max(options.concurrent),
        exchange_p50_ms,
        daemon_rss_mib: after,
        rss_per_lease_kib: before.zip(after).map(|(b, a)| (a - b) * 1024.0 / extra),
    })
}

pub fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let base = |peer: &str| {
        report
            .attach
            .iter()
            .find(|r| r.peer == peer)
            .and_then(|r| r.attach_p50_ms)
    };
    println!(
        "{:<14} {:>15} {:>15} {:>15} {:>16}",
        "peer", "attach p50 ms", "attach p99 ms", "detach p50 ms", "p50 / netctl dhcp"
    );
    for row in &report.attach {
        let ratio = match (row.attach_p50_ms, base("netctl dhcp")) {
            (Some(p50), Some(base)) if base > 0.0 => format!("{:.1}x", p50 / base),
            _ => "-".into(),
        };
        println!(
            "{:<14} {:>15} {:>15} {:>15} {:>16}",
            row.peer,
            figure(row.attach_p50_ms, 2),
            figure(row.attach_p99_ms, 2),
            figure(row.detach_p50_ms, 2),
            ratio
        );
        if let Some(error) = &row.error {
            println!("{:<14} not measured: {error}", "");
        }
    }
    if let (Some(dhcp), Some(pool), Some(exchange)) = (
        base("netctl dhcp"),
        base("netctl pool"),
        report.exchange_p50_ms,
    ) {
        println!(
            "\nwhat a lease adds to an attach: {:.2} ms p50 (netctl dhcp - netctl pool), of \
             which the DHCP exchange itself: {exchange:.2} ms; the rest: {:.2} ms",
            dhcp - pool,
            dhcp - pool - exchange
        );
    }
    println!();
    println!("{:<14} {:>10} {:>12}", "concurrent", "attaches", "wall ms");
    for row in &report.concurrent {
        println!(
            "{:<14} {:>10} {:>12}",
            row.peer,
            row.attaches,
            figure(row.wall_ms, 1)
        );
        if let Some(error) = &row.error {
            println!("{:<14} not measured: {error}", "");
        }
    }
    println!(
        "\nnetctl's daemon holding {} leases: {} MiB RSS ({} KiB per lease)",
        report.leases,
        figure(report.daemon_rss_mib, 1),
        figure(report.rss_per_lease_kib, 1)
    );
    Ok(())
}
