//! One host under load: many networks, many endpoints spread over bridges (a bridge takes
//! 1,024 ports), many attaches at once, many published ports. Each phase's latencies and
//! the daemon's memory after it, beside the same operation on an idle daemon, so that what
//! load costs shows as a ratio.

use std::time::{Duration, Instant};

use futures::future::join_all;
use netctl_plugin_api::client::Client;
use netctl_plugin_api::ports::parse_publish;
use netctl_plugin_api::{
    ConnectRequest, IpamConfig, IpamRequest, NetworkCreateRequest, PublishRequest,
    SandboxCreateRequest,
};

use crate::kernel_floor;
use crate::netctl_host::{Build, NetctlHost};
use crate::stats::percentile_ms;

#[derive(Debug, Clone)]
pub struct Options {
    pub networks: usize,
    pub endpoints: usize,
    /// Endpoints per bridge network.
    pub per_bridge: usize,
    pub concurrent: usize,
    pub ports: usize,
    /// Ports published per request (one sandbox each).
    pub ports_per_sandbox: usize,
    /// Networks each of the `endpoints` phase's sandboxes is on: the first at its creation,
    /// the others by `network connect`. More than one reaches many endpoints with fewer
    /// sandboxes (each holds its namespace and DNS sockets open).
    pub networks_per_sandbox: usize,
}

impl Options {
    fn per_sandbox(&self) -> usize {
        self.networks_per_sandbox.max(1)
    }

    /// The `endpoints` phase's sandboxes.
    fn sandboxes(&self) -> usize {
        self.endpoints.div_ceil(self.per_sandbox())
    }

    /// Where each phase's endpoints start in the round over the bridges.
    fn first_burst(&self) -> usize {
        self.sandboxes() * self.per_sandbox()
    }
}

/// One phase of the load.
#[derive(Debug, serde::Serialize)]
pub struct Phase {
    pub what: String,
    pub count: usize,
    pub wall_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The daemon's RSS once the phase is done.
    pub rss_mib: f64,
}

/// The phases, and the kernel's own share measured before and after them.
#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub phases: Vec<Phase>,
    /// Milliseconds per veth pair made by `ip` in the daemon's namespace, on a bridge of
    /// their own, idle.
    pub kernel_idle_ms: f64,
    /// The same once the load is in place.
    pub kernel_loaded_ms: f64,
    /// The same on the daemon's busiest bridge, idle (the `bench` network's 100 ports).
    pub kernel_busiest_idle_ms: f64,
    /// The same on the busiest bridge once loaded.
    pub kernel_busiest_loaded_ms: f64,
}

pub fn run(options: &Options, build: &Build) -> anyhow::Result<Report> {
    let netctl = NetctlHost::new(build)?;
    let client = netctl.host.client();
    // Several connections' worth of requests at once, as a busy host would see.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let rss = || netctl.rss_mib().unwrap_or_default();
    let mut phases = Vec::new();

    let idle = runtime.block_on(sandboxes(&client, "idle", &["bench"; 100], 1))?;
    phases.push(phase("attach, idle daemon", &idle, rss()));
    let kernel_idle = per_pair_ms(kernel_floor::measure(&netctl.host, 'i', None)?);
    let busiest = kernel_floor::busiest_bridge(&netctl.host)?;
    let kernel_busiest_idle =
        per_pair_ms(kernel_floor::measure(&netctl.host, 'j', Some(&busiest))?);

    // Every sandbox of every phase has a port on one of the bridges.
    let publishers = options.ports.div_ceil(options.ports_per_sandbox);
    let all = first_late(options, publishers) + 100;
    let bridges = all.div_ceil(options.per_bridge);
    let names: Vec<String> = (0..options.networks.max(bridges))
        .map(|i| format!("n{i}"))
        .collect();
    let creates = runtime.block_on(networks(&client, &names, bridges))?;
    phases.push(phase("network create", &creates, rss()));

    let k = options.per_sandbox();
    let spread: Vec<&str> = (0..options.sandboxes())
        .map(|i| names[(i * k) % bridges].as_str())
        .collect();
    let attaches = runtime.block_on(sandboxes(&client, "s", &spread, 8))?;
    let what = format!("attach, over {bridges} bridges");
    phases.push(phase(&what, &attaches, rss()));
    if k > 1 {
        let connects = runtime.block_on(connect_more(&client, &names, bridges, options))?;
        let what = format!("connect, {} more networks each", k - 1);
        phases.push(phase(&what, &connects, rss()));
    }

    let burst: Vec<&str> = (0..options.concurrent)
        .map(|i| names[(options.first_burst() + i) % bridges].as_str())
        .collect();
    let at_once = runtime.block_on(sandboxes(&client, "c", &burst, options.concurrent))?;
    let what = format!("attach, {} at once", options.concurrent);
    phases.push(phase(&what, &at_once, rss()));

    let published = runtime.block_on(publish(&client, &names, bridges, publishers, options))?;
    let what = format!("publish {} ports", options.ports_per_sandbox);
    phases.push(phase(&what, &published, rss()));

    let last = first_late(options, publishers);
    let late: Vec<&str> = (0..100)
        .map(|i| names[(last + i) % bridges].as_str())
        .collect();
    let after = runtime.block_on(sandboxes(&client, "late", &late, 1))?;
    phases.push(phase("attach, loaded daemon", &after, rss()));
    let kernel_loaded = per_pair_ms(kernel_floor::measure(&netctl.host, 'l', None)?);
    let busiest = kernel_floor::busiest_bridge(&netctl.host)?;
    let kernel_busiest_loaded =
        per_pair_ms(kernel_floor::measure(&netctl.host, 'm', Some(&busiest))?);
    Ok(Report {
        phases,
        kernel_idle_ms: kernel_idle,
        kernel_loaded_ms: kernel_loaded,
        kernel_busiest_idle_ms: kernel_busiest_idle,
        kernel_busiest_loaded_ms: kernel_busiest_loaded,
    })
}

fn per_pair_ms(took: Duration) -> f64 {
    took.as_secs_f64() * 1000.0 / kernel_floor::PAIRS as f64
}

/// Where the last phase's sandboxes start in the round over the bridges.
fn first_late(options: &Options, publishers: usize) -> usize {
    options.first_burst() + options.concurrent + publishers
}

/// Per-request latencies and the wall time of all of them.
struct Timings {
    each: Vec<Duration>,
    wall: Duration,
}

fn phase(what: &str, timings: &Timings, rss_mib: f64) -> Phase {
    Phase {
        what: what.into(),
        count: timings.each.len(),
        wall_s: timings.wall.as_secs_f64(),
        p50_ms: percentile_ms(&timings.each, 50.0),
        p99_ms: percentile_ms(&timings.each, 99.0),
        rss_mib,
    }
}

/// Runs `requests` with at most `parallel` in flight; times each and all.
async fn timed<F, Fut>(count: usize, parallel: usize, request: F) -> anyhow::Result<Timings>
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let started = Instant::now();
    let mut each = Vec::with_capacity(count);
    let indexes: Vec<usize> = (0..count).collect();
    for chunk in indexes.chunks(parallel.max(1)) {
        let runs = chunk.iter().map(|&i| {
            let request = &request;
            async move {
                let began = Instant::now();
                request(i).await.map(|()| began.elapsed())
            }
        });
        for took in join_all(runs).await {
            each.push(took?);
        }
    }
    Ok(Timings {
        each,
        wall: started.elapsed(),
    })
}

/// Networks `names`; the first `bridges` get a /20 (room for 4,000 endpoints), the rest a /24.
async fn networks(client: &Client, names: &[String], bridges: usize) -> anyhow::Result<Timings> {
    timed(names.len(), 1, |i| async move {
        let subnet = if i < bridges {
            format!("10.{}.{}.0/20", 64 + i / 16, (i % 16) * 16)
        } else {
            let j = i - bridges;
            format!("10.{}.{}.0/24", 100 + j / 256, j % 256)
        };
        let request = NetworkCreateRequest {
            name: names[i].clone(),
            ipam: Some(IpamRequest {
                config: vec![IpamConfig {
                    subnet: Some(subnet),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        client.network_create(&request).await?;
        Ok(())
    })
    .await
}

/// A sandbox `PREFIX-I` on `networks[i]` for each `i`.
async fn sandboxes(
    client: &Client,
    prefix: &str,
    networks: &[&str],
    parallel: usize,
) -> anyhow::Result<Timings> {
    timed(networks.len(), parallel, |i| async move {
        let request = SandboxCreateRequest {
            name: format!("{prefix}-{i}"),
            network: Some(networks[i].to_string()),
            ..Default::default()
        };
        client.sandbox_create(&request).await?;
        Ok(())
    })
    .await
}

/// Sandbox `s-I` connected to its next `networks_per_sandbox - 1` bridges in the round.
async fn connect_more(
    client: &Client,
    names: &[String],
    bridges: usize,
    options: &Options,
) -> anyhow::Result<Timings> {
    let k = options.per_sandbox();
    let more = k - 1;
    timed(options.sandboxes() * more, 8, |n| async move {
        let (i, j) = (n / more, 1 + n % more);
        let request = ConnectRequest {
            container: format!("s-{i}"),
            ..Default::default()
        };
        client
            .network_connect(&names[(i * k + j) % bridges], &request)
            .await?;
        Ok(())
    })
    .await
}

/// `publishers` sandboxes publishing `ports_per_sandbox` ports each, one request each.
async fn publish(
    client: &Client,
    names: &[String],
    bridges: usize,
    publishers: usize,
    options: &Options,
) -> anyhow::Result<Timings> {
    let first = options.first_burst() + options.concurrent;
    let networks: Vec<&str> = (0..publishers)
        .map(|i| names[(first + i) % bridges].as_str())
        .collect();
    sandboxes(client, "p", &networks, 8).await?;
    timed(publishers, 1, |i| {
        let network = networks[i];
        async move {
            let first = 10000 + (i * options.ports_per_sandbox) % 50000;
            let mut port_bindings = Vec::new();
            for port in first..first + options.ports_per_sandbox {
                port_bindings
                    .extend(parse_publish(&format!("{port}:80")).map_err(anyhow::Error::msg)?);
            }
            let request = PublishRequest {
                container: format!("p-{i}"),
                port_bindings,
            };
            client.network_publish(network, &request).await?;
            Ok(())
        }
    })
    .await
}

pub fn print(report: &Report, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
        return Ok(());
    }
    let phases = &report.phases;
    println!(
        "{:<32} {:>7} {:>9} {:>9} {:>9} {:>9}",
        "phase", "count", "wall s", "p50 ms", "p99 ms", "rss MiB"
    );
    for p in phases {
        println!(
            "{:<32} {:>7} {:>9.1} {:>9.2} {:>9.2} {:>9.1}",
            p.what, p.count, p.wall_s, p.p50_ms, p.p99_ms, p.rss_mib
        );
    }
    let idle = phases.first().map(|p| p.p50_ms).unwrap_or_default();
    if let Some(loaded) = phases.last() {
        println!(
            "\nattach p50 on the loaded daemon: {:.2}× the idle one's",
            loaded.p50_ms / idle.max(f64::EPSILON)
        );
    }
    let ratio = |loaded: f64, idle: f64| loaded / idle.max(f64::EPSILON);
    println!(
        "the kernel alone (a veth pair made, enslaved and up, by ip -batch, {} pairs):\n  \
         on a bridge of their own: {:.2} ms idle, {:.2} ms loaded: {:.2}×\n  \
         on the daemon's busiest bridge: {:.2} ms idle, {:.2} ms loaded: {:.2}×",
        kernel_floor::PAIRS,
        report.kernel_idle_ms,
        report.kernel_loaded_ms,
        ratio(report.kernel_loaded_ms, report.kernel_idle_ms),
        report.kernel_busiest_idle_ms,
        report.kernel_busiest_loaded_ms,
        ratio(
            report.kernel_busiest_loaded_ms,
            report.kernel_busiest_idle_ms
        ),
    );
    Ok(())
}
