//! `netctl-bench dns`: queries per second and latency of each DNS server, measured with
//! dnsperf from inside one sandbox of a netctl host, for container names (`local`) and for
//! names its upstream answers (`forwarded`, cache warm). All servers run in the same host
//! namespace, pinned to CPU 0, with dnsperf pinned to CPU 1; each is reached the way it is
//! deployed: netctl at 127.0.0.11 inside the sandbox, dnsmasq and aardvark-dns on the
//! bridge's gateway address. `dnsmasq-lo` runs dnsmasq inside the client's sandbox on
//! 127.0.0.12, the same loopback path as netctl's. The upstream is a dnsmasq in a namespace
//! of its own.

mod peers;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use netctl_netns_fixtures::{Dnsmasq, Underlay};
use serde::Serialize;

use crate::netctl_host::{Build, NetctlHost};
use crate::stats::percentile_ms;

/// The upstream's address on the underlay; it answers every name under example.test.
const UPSTREAM: &str = "198.51.100.2";
/// What the upstream answers for every name under example.test.
const FORWARDED_ANSWER: &str = "203.0.113.1";
/// Distinct names queried per kind (dnsperf cycles through them).
const NAMES: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct DnsRow {
    pub peer: String,
    pub kind: String,
    pub qps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The server's resident memory after the run.
    pub rss_mib: f64,
}

/// netctl's memory with no sandboxes and with `sandboxes` served (each with its own
/// listening sockets and names).
#[derive(Debug, Clone, Serialize)]
pub struct DnsMemory {
    pub build: String,
    pub sandboxes: usize,
    pub rss_empty_mib: f64,
    pub rss_served_mib: f64,
}

#[derive(Clone)]
pub struct Options {
    pub peers: Vec<String>,
    pub sandboxes: usize,
    pub seconds: u32,
    pub clients: u32,
}

pub fn run(options: &Options, build: &Build) -> anyhow::Result<(Vec<DnsRow>, Vec<DnsMemory>)> {
    for tool in ["dnsperf", "dnsmasq", "dig", "nsenter", "taskset"] {
        which(tool)?;
    }
    let netctl = NetctlHost::new(build)?;
    let outside = netctl_netns_fixtures::Host::new();
    Underlay::join(&netctl.host, &outside, "198.51.100");
    let _upstream = Dnsmasq::quiet(
        &outside,
        UPSTREAM,
        &[
            &format!("--address=/example.test/{FORWARDED_ANSWER}"),
            "--local-ttl=3600",
        ],
    );
    netctl
        .host
        .set_resolv_conf(&format!("nameserver {UPSTREAM}\n"));

    let rss_empty_mib = netctl.rss_mib().unwrap_or(0.0);
    let client = netctl.sandbox("client", true)?;
    let mut hosts = vec![("client".to_string(), ipv4(&client))];
    // Queries run with NAMES sandboxes: with about a thousand ports on one bridge, one ARP
    // broadcast is copied to every port at once and overflows the kernel's per-CPU backlog
    // (net.core.netdev_max_backlog, 1000), so the servers reached over the bridge would
    // lose queries for a reason that is not theirs. Memory is measured at full size after.
    for i in 0..NAMES.min(options.sandboxes) {
        let name = format!("c{i}");
        hosts.push((name.clone(), ipv4(&netctl.sandbox(&name, true)?)));
    }
    wait_for_upstream(&netctl)?;

    let files = QueryFiles::write(netctl.host.dir(), hosts.len() - 1)?;
    let client_netns = PathBuf::from(&client.network_settings.sandbox_key);
    let mut rows = Vec::new();
    for peer in &options.peers {
        let server = match peer.as_str() {
            "netctl" => peers::Server::netctl(&netctl)?,
            "dnsmasq" => peers::Server::dnsmasq(&netctl.host, &hosts, UPSTREAM)?,
            "dnsmasq-lo" => {
                peers::Server::dnsmasq_in_sandbox(&netctl.host, &client_netns, &hosts, UPSTREAM)?
            }
            "aardvark-dns" => peers::Server::aardvark(&netctl.host, &hosts, UPSTREAM)?,
            other => bail!("unknown peer {other:?} (netctl, aardvark-dns, dnsmasq, dnsmasq-lo)"),
        };
        pin(server.pid, 0)?;
        // Counted answers must be right ones, not just NOERROR.
        verify(&client_netns, &server.address, "c0", &hosts[1].1)?;
        verify(
            &client_netns,
            &server.address,
            "f0.example.test",
            FORWARDED_ANSWER,
        )?;
        for (kind, file) in [("local", &files.local), ("forwarded", &files.forwarded)] {
            // One pass first: the forwarded names reach the cache, and everything is paged in.
            // It is not counted, so a query lost there (a first ARP, a first forward) is only
            // reported; the counted run below must answer all but 1% of its queries.
            let warm = dnsperf(&client_netns, &server.address, file, None, options.clients)?;
            if !warm.failed.is_empty() {
                eprintln!(
                    "{peer} {kind}: {} of {} warm-up queries unanswered, such as {:?}",
                    warm.failed.len(),
                    warm.failed.len() + warm.latencies.len(),
                    &warm.failed[..warm.failed.len().min(3)]
                );
            }
            let run = dnsperf(
                &client_netns,
                &server.address,
                file,
                Some(options.seconds),
                options.clients,
            )?
            .mostly_answered()?;
            rows.push(DnsRow {
                peer: if peer == "netctl" {
                    build.name.clone()
                } else {
                    peer.clone()
                },
                kind: kind.into(),
                qps: run.qps,
                p50_ms: percentile_ms(&run.latencies, 50.0),
                p99_ms: percentile_ms(&run.latencies, 99.0),
                rss_mib: crate::process::rss_mib(server.pid).unwrap_or(0.0),
            });
        }
    }
    for i in NAMES..options.sandboxes {
        netctl.sandbox(&format!("c{i}"), true)?;
    }
    let memory = DnsMemory {
        build: build.name.clone(),
        sandboxes: options.sandboxes + 1,
        rss_empty_mib,
        rss_served_mib: netctl.rss_mib().unwrap_or(0.0),
    };
    Ok((rows, vec![memory]))
}

fn ipv4(sandbox: &netctl_plugin_api::SandboxInspect) -> String {
    sandbox.network_settings.networks[crate::netctl_host::NETWORK]
        .ip_address
        .clone()
}

fn which(tool: &str) -> anyhow::Result<()> {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()?
        .status
        .success();
    if !found {
        bail!("{tool} is missing: run scripts/install-deps --bench");
    }
    Ok(())
}

/// The daemon re-reads the host's resolv.conf within a second.
fn wait_for_upstream(netctl: &NetctlHost) -> anyhow::Result<()> {
    for _ in 0..50 {
        let explained = netctl
            .runtime
            .block_on(netctl.client.sandbox_dns("client"))?;
        if !explained.upstreams.is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("netctl never picked up the upstream from its resolv.conf")
}

/// `dig +short NAME` from the client's sandbox must print `expected`.
fn verify(netns: &Path, server: &str, name: &str, expected: &str) -> anyhow::Result<()> {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", netns.display()))
        .args([
            "dig",
            "+short",
            "+tries=3",
            "+time=2",
            &format!("@{server}"),
            name,
        ])
        .output()
        .context("running dig")?;
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if answer != expected {
        bail!("{server} answered {name} with {answer:?}, not {expected}");
    }
    Ok(())
}

/// `taskset`: every thread of `pid` on `cpu`.
fn pin(pid: u32, cpu: u32) -> anyhow::Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()?;
    if !out.status.success() {
        bail!("taskset {pid}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

struct QueryFiles {
    local: PathBuf,
    forwarded: PathBuf,
}

impl QueryFiles {
    fn write(dir: &Path, names: usize) -> anyhow::Result<Self> {
        let local = dir.join("queries-local");
        let forwarded = dir.join("queries-forwarded");
        let lines = |f: &dyn Fn(usize) -> String| (0..names).map(f).collect::<String>();
        std::fs::write(&local, lines(&|i| format!("c{i} A\n")))?;
        std::fs::write(&forwarded, lines(&|i| format!("f{i}.example.test A\n")))?;
        Ok(Self { local, forwarded })
    }
}

struct Run {
    qps: f64,
    latencies: Vec<Duration>,
    /// dnsperf's lines for queries not answered NOERROR.
    failed: Vec<String>,
}

impl Run {
    /// Counted answers must be answers: more than 1% lost or refused fails the run.
    fn mostly_answered(self) -> anyhow::Result<Self> {
        let total = self.latencies.len() + self.failed.len();
        if self.failed.len() * 100 > total {
            bail!(
                "{} of {} queries failed, such as {:?}",
                self.failed.len(),
                total,
                &self.failed[..self.failed.len().min(3)]
            );
        }
        Ok(self)
    }
}

/// dnsperf from inside the client sandbox, on CPU 1: one pass over `file` when `seconds` is
/// `None`, else for that long. `-v` prints each query's latency, written to a file.
fn dnsperf(
    netns: &Path,
    server: &str,
    file: &Path,
    seconds: Option<u32>,
    clients: u32,
) -> anyhow::Result<Run> {
    let log = file.with_extension("out");
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={}", netns.display()))
        .args(["taskset", "-c", "1", "dnsperf", "-v", "-s", server, "-d"])
        .arg(file)
        .args(["-c", &clients.to_string(), "-q", "64", "-t", "2"]);
    match seconds {
        Some(s) => cmd.args(["-l", &s.to_string()]),
        None => cmd.args(["-n", "1"]),
    };
    let out = cmd
        .stdout(std::fs::File::create(&log)?)
        .output()
        .context("running dnsperf")?;
    let text = std::fs::read_to_string(&log)?;
    if !out.status.success() {
        bail!("dnsperf: {}{}", String::from_utf8_lossy(&out.stderr), text);
    }
    parse_dnsperf(&text)
}

fn parse_dnsperf(text: &str) -> anyhow::Result<Run> {
    let mut latencies = Vec::new();
    let mut failed = Vec::new();
    let mut qps = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("> ") {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            if fields.first() != Some(&"NOERROR") {
                failed.push(line.to_string());
            } else if let Some(seconds) = fields.last().and_then(|s| s.parse::<f64>().ok()) {
                latencies.push(Duration::from_secs_f64(seconds));
            }
        } else if let Some(rest) = line.trim().strip_prefix("Queries per second:") {
            qps = rest.trim().parse().ok();
        }
    }
    Ok(Run {
        qps: qps.context("dnsperf printed no 'Queries per second'")?,
        latencies,
        failed,
    })
}

pub fn print(rows: &[DnsRow], memory: &[DnsMemory], json: bool) -> anyhow::Result<()> {
    if json {
        let doc = serde_json::json!({"rows": rows, "memory": memory});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "{:<13} {:<10} {:>10} {:>8} {:>8} {:>8} {:>12}",
        "peer", "kind", "qps", "p50 ms", "p99 ms", "rss MiB", "qps/netctl"
    );
    for row in rows {
        let netctl = rows
            .iter()
            .find(|r| r.peer == "netctl" && r.kind == row.kind)
            .map(|r| r.qps);
        let ratio = match netctl {
            Some(base) if base > 0.0 => format!("{:.2}", row.qps / base),
            _ => "-".into(),
        };
        println!(
            "{:<13} {:<10} {:>10.0} {:>8.3} {:>8.3} {:>8.1} {:>12}",
            row.peer, row.kind, row.qps, row.p50_ms, row.p99_ms, row.rss_mib, ratio
        );
    }
    println!();
    for memory in memory {
        println!(
            "{} daemon RSS: {:.1} MiB with no sandboxes, {:.1} MiB serving {} (+{:.1} MiB)",
            memory.build,
            memory.rss_empty_mib,
            memory.rss_served_mib,
            memory.sandboxes,
            memory.rss_served_mib - memory.rss_empty_mib
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unanswered_queries_are_failures_without_latency() {
        let text = "> NOERROR c0.netctl A 0.000170\n\
                    > T f15.example.test A\n\
                    > NXDOMAIN nope A 0.000200\n\
                    Queries per second:   1234.5\n";
        let run = parse_dnsperf(text).unwrap();
        assert_eq!(run.qps, 1234.5);
        assert_eq!(run.latencies, vec![Duration::from_micros(170)]);
        assert_eq!(run.failed.len(), 2);
        assert!(run.mostly_answered().is_err());
    }

    #[test]
    fn one_loss_in_a_thousand_is_tolerated() {
        let mut text = "> NOERROR c0.netctl A 0.000170\n".repeat(999);
        text.push_str("> T c1.netctl A\nQueries per second: 10\n");
        assert!(parse_dnsperf(&text).unwrap().mostly_answered().is_ok());
    }
}
