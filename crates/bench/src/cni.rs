//! `netctl-bench cni`: CNI plugins exec'd as a runtime execs them (environment and stdin,
//! one process per call; a chain is one exec per plugin with the previous result, as libcni
//! does). Row `n`: one more container ADDed and DELed when n-1 are attached. netctl's plugin
//! (the `netctl` binary, which asks its daemon) beside the reference plugins' bridge +
//! host-local and bridge + host-local + portmap; netctl with a port mapping beside the
//! portmap chain. Then VERSION, which podman asks of every plugin on every command.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use netctl_netns_fixtures::Host;
use serde::Serialize;
use serde_json::{json, Value};

use crate::attach::sandboxes::Sandboxes;
use crate::netctl_host::{Build, NetctlHost, GATEWAY, NETWORK};
use crate::process::timed_output;
use crate::report::figure;
use crate::stats::percentile_ms;

const CNI_PATH: &str = "/usr/lib/cni";
const REFERENCE_GATEWAY: &str = "10.90.0.1";
/// The sample container's published port (fillers publish none).
const SAMPLE_PORT: u16 = 18080;

#[derive(Debug, Clone, Serialize)]
pub struct CniRow {
    pub peer: String,
    pub n: usize,
    pub add_p50_ms: Option<f64>,
    pub add_p99_ms: Option<f64>,
    pub del_p50_ms: Option<f64>,
    pub del_p99_ms: Option<f64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionRow {
    pub plugin: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// One plugin, or chain of plugins, as a runtime runs it.
trait Chain {
    /// ADD of container `i` (its namespace at `netns`), with the sample's port mapping when
    /// `publish`; returns the time of the whole chain.
    fn add(&mut self, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration>;
    fn del(&mut self, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration>;
    /// The network's gateway, which an attached container must reach.
    fn gateway(&self) -> &'static str;
}

/// `netctl` as the CNI plugin, with its daemon.
struct NetctlChain {
    netctl: NetctlHost,
    binary: PathBuf,
}

/// bridge + host-local, then portmap when `portmap` is set.
struct ReferenceChain {
    host: Host,
    portmap: bool,
    /// The bridge's result per container, for portmap's prevResult and the DEL chain.
    results: std::collections::HashMap<usize, Value>,
}

fn container_id(i: usize) -> String {
    format!("{:064x}", i + 1)
}

fn plugin_command(
    host: &Host,
    program: &std::path::Path,
    command: &str,
    i: usize,
    netns: &str,
) -> Command {
    let mut cmd = host.command(program);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container_id(i))
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", CNI_PATH);
    cmd
}

fn mappings(publish: bool) -> Value {
    if publish {
        json!([{"hostPort": SAMPLE_PORT, "containerPort": 80, "protocol": "tcp"}])
    } else {
        json!([])
    }
}

impl NetctlChain {
    fn new(build: &Build) -> anyhow::Result<Self> {
        let netctl = NetctlHost::new(build)?;
        let binary = build
            .binary
            .clone()
            .unwrap_or_else(netctl_netns_fixtures::netctl_bin);
        Ok(Self { netctl, binary })
    }

    fn run(&self, command: &str, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration> {
        let config = json!({
            "cniVersion": "1.0.0", "name": NETWORK, "type": "netctl",
            "socket": self.netctl.host.socket(),
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": mappings(publish)},
        });
        let cmd = plugin_command(&self.netctl.host, &self.binary, command, i, netns);
        Ok(timed_output(cmd, &config.to_string())?.0)
    }
}

impl Chain for NetctlChain {
    fn add(&mut self, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration> {
        self.run("ADD", i, netns, publish)
    }

    fn del(&mut self, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration> {
        self.run("DEL", i, netns, publish)
    }

    fn gateway(&self) -> &'static str {
        GATEWAY
    }
}

impl ReferenceChain {
    fn new(portmap: bool) -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(CNI_PATH).join("portmap").exists(),
            "{CNI_PATH}/portmap is missing: apt-get install containernetworking-plugins"
        );
        Ok(Self {
            host: Host::new(),
            portmap,
            results: Default::default(),
        })
    }

    fn bridge_conf(&self) -> Value {
        json!({
            "cniVersion": "0.4.0", "name": "bench", "type": "bridge", "bridge": "cni0",
            "isGateway": true, "ipMasq": true,
            "ipam": {"type": "host-local", "subnet": "10.90.0.0/16",
                     "gateway": REFERENCE_GATEWAY, "dataDir": self.host.dir().join("ipam")},
        })
    }

    fn portmap_conf(&self, prev: &Value, publish: bool) -> Value {
        json!({
            "cniVersion": "0.4.0", "name": "bench", "type": "portmap",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": mappings(publish)},
            "prevResult": prev,
        })
    }

    fn exec(
        &self,
        plugin: &str,
        command: &str,
        i: usize,
        netns: &str,
        conf: &Value,
    ) -> anyhow::Result<(Duration, String)> {
        let program = std::path::Path::new(CNI_PATH).join(plugin);
        let cmd = plugin_command(&self.host, &program, command, i, netns);
        timed_output(cmd, &conf.to_string())
    }
}

impl Chain for ReferenceChain {
    fn add(&mut self, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration> {
        let (mut took, out) = self.exec("bridge", "ADD", i, netns, &self.bridge_conf())?;
        let result: Value = serde_json::from_str(&out).context("bridge's result")?;
        if self.portmap {
            let conf = self.portmap_conf(&result, publish);
            took += self.exec("portmap", "ADD", i, netns, &conf)?.0;
        }
        self.results.insert(i, result);
        Ok(took)
    }

    fn del(&mut self, i: usize, netns: &str, publish: bool) -> anyhow::Result<Duration> {
        let prev = self.results.remove(&i).unwrap_or(Value::Null);
        let mut took = Duration::ZERO;
        if self.portmap {
            let conf = self.portmap_conf(&prev, publish);
            took += self.exec("portmap", "DEL", i, netns, &conf)?.0;
        }
        let mut conf = self.bridge_conf();
        conf["prevResult"] = prev;
        took += self.exec("bridge", "DEL", i, netns, &conf)?.0;
        Ok(took)
    }

    fn gateway(&self) -> &'static str {
        REFERENCE_GATEWAY
    }
}

/// What `netctl-bench cni` measures.
pub struct Options {
    pub counts: Vec<usize>,
    pub peers: Vec<String>,
    pub samples: usize,
}

/// The peers: `netctl` and `netctl+port` per build, `bridge` and `bridge+portmap`.
fn make_chain(name: &str, builds: &[Build]) -> anyhow::Result<(Box<dyn Chain>, bool)> {
    let (base, publish) = match name.strip_suffix("+port") {
        Some(base) => (base, true),
        None => (name, false),
    };
    if let Some(build) = builds.iter().find(|b| b.name == base) {
        return Ok((Box::new(NetctlChain::new(build)?), publish));
    }
    Ok(match name {
        "bridge" => (Box::new(ReferenceChain::new(false)?), false),
        "bridge+portmap" => (Box::new(ReferenceChain::new(true)?), true),
        other => anyhow::bail!(
            "unknown peer {other:?} (known: netctl, netctl+port, bridge, bridge+portmap)"
        ),
    })
}

pub fn run(options: &Options, builds: &[Build]) -> anyhow::Result<(Vec<CniRow>, Vec<VersionRow>)> {
    let mut rows = Vec::new();
    for name in &options.peers {
        let (mut chain, publish) = make_chain(name, builds)?;
        let mut sandboxes = Sandboxes::new(&name.replace('+', "-"));
        let mut attached = 0;
        for &n in &options.counts {
            let row = measure(
                chain.as_mut(),
                &mut sandboxes,
                &mut attached,
                n,
                options.samples,
                publish,
            )
            .map(|(add, del)| CniRow {
                peer: name.clone(),
                n,
                add_p50_ms: Some(percentile_ms(&add, 50.0)),
                add_p99_ms: Some(percentile_ms(&add, 99.0)),
                del_p50_ms: Some(percentile_ms(&del, 50.0)),
                del_p99_ms: Some(percentile_ms(&del, 99.0)),
                error: None,
            });
            match row {
                Ok(row) => {
                    eprintln!("{name}: n={n} ADD p50 {:?} ms", row.add_p50_ms);
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("{name}: n={n} failed: {e:#}");
                    rows.push(CniRow {
                        peer: name.clone(),
                        n,
                        add_p50_ms: None,
                        add_p99_ms: None,
                        del_p50_ms: None,
                        del_p99_ms: None,
                        error: Some(e.to_string().lines().next().unwrap_or_default().into()),
                    });
                    break;
                }
            }
        }
    }
    Ok((rows, versions(builds, options.samples.max(50))?))
}

/// Fills up to `n - 1` attached containers, then times `samples` ADD/DEL pairs of one more
/// (checked to reach its gateway, untimed).
fn measure(
    chain: &mut dyn Chain,
    sandboxes: &mut Sandboxes,
    attached: &mut usize,
    n: usize,
    samples: usize,
    publish: bool,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    while *attached + 1 < n {
        let i = *attached;
        if !std::path::Path::new(&sandboxes.path(i)).exists() {
            sandboxes.make(i)?;
        }
        chain.add(i, &sandboxes.path(i), false)?;
        *attached += 1;
    }
    // The sample container's index stays after the fillers' and is made once.
    let slot = *attached;
    if !std::path::Path::new(&sandboxes.path(slot)).exists() {
        sandboxes.make(slot)?;
    }
    let netns = sandboxes.path(slot);
    let (mut adds, mut dels) = (Vec::new(), Vec::new());
    for sample in 0..samples {
        adds.push(chain.add(slot, &netns, publish)?);
        if sample == 0 {
            reaches(&netns, chain.gateway())?;
        }
        dels.push(chain.del(slot, &netns, publish)?);
    }
    Ok((adds, dels))
}

fn reaches(netns: &str, gateway: &str) -> anyhow::Result<()> {
    let net = format!("--net={netns}");
    let script =
        format!("for t in 1 2 3; do ping -c1 -W1 {gateway} >/dev/null && exit 0; done; exit 1");
    let out = netctl_netns_fixtures::run("nsenter", &[&net, "sh", "-c", &script]);
    anyhow::ensure!(out.ok(), "the container at {netns} cannot reach {gateway}");
    Ok(())
}

/// VERSION: netctl's (no daemon involved) beside the bridge plugin's.
fn versions(builds: &[Build], samples: usize) -> anyhow::Result<Vec<VersionRow>> {
    let mut plugins: Vec<(String, PathBuf)> = builds
        .iter()
        .map(|b| {
            let binary = b
                .binary
                .clone()
                .unwrap_or_else(netctl_netns_fixtures::netctl_bin);
            (b.name.clone(), binary)
        })
        .collect();
    plugins.push(("bridge".into(), PathBuf::from(CNI_PATH).join("bridge")));
    let mut rows = Vec::new();
    for (name, program) in plugins {
        let mut times = Vec::new();
        for _ in 0..samples {
            let mut cmd = Command::new(&program);
            cmd.env_clear()
                .env("CNI_COMMAND", "VERSION")
                .env("CNI_CONTAINERID", "")
                .env("CNI_NETNS", "dummy")
                .env("CNI_IFNAME", "dummy")
                .env("CNI_PATH", "dummy");
            times.push(timed_output(cmd, r#"{"cniVersion":"1.0.0"}"#)?.0);
        }
        rows.push(VersionRow {
            plugin: name,
            p50_ms: percentile_ms(&times, 50.0),
            p99_ms: percentile_ms(&times, 99.0),
        });
    }
    Ok(rows)
}

pub fn print(rows: &[CniRow], versions: &[VersionRow], json: bool) -> anyhow::Result<()> {
    if json {
        let doc = serde_json::json!({"cni": rows, "version": versions});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "{:<16} {:>6} {:>11} {:>11} {:>11} {:>11} {:>16}",
        "peer", "n", "ADD p50 ms", "ADD p99 ms", "DEL p50 ms", "DEL p99 ms", "ADD p50 / netctl"
    );
    for row in rows {
        // The port-publishing rows compare with netctl publishing a port too.
        let base_name = if row.peer.ends_with("portmap") || row.peer.ends_with("+port") {
            "netctl+port"
        } else {
            "netctl"
        };
        let base = rows
            .iter()
            .find(|r| r.peer == base_name && r.n == row.n)
            .and_then(|r| r.add_p50_ms);
        let ratio = match (row.add_p50_ms, base) {
            (Some(p50), Some(base)) if base > 0.0 => format!("{:.1}x", p50 / base),
            _ => "-".into(),
        };
        println!(
            "{:<16} {:>6} {:>11} {:>11} {:>11} {:>11} {:>16}",
            row.peer,
            row.n,
            figure(row.add_p50_ms, 2),
            figure(row.add_p99_ms, 2),
            figure(row.del_p50_ms, 2),
            figure(row.del_p99_ms, 2),
            ratio
        );
        if let Some(error) = &row.error {
            println!("{:<16} {:>6} not measured: {error}", "", "");
        }
    }
    println!();
    println!("{:<16} {:>14} {:>14}", "VERSION", "p50 ms", "p99 ms");
    for row in versions {
        println!(
            "{:<16} {:>14.2} {:>14.2}",
            row.plugin, row.p50_ms, row.p99_ms
        );
    }
    Ok(())
}
