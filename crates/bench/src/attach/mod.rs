//! `netctl-bench attach`: one bridge, sandboxes attached one by one.

mod cni;
mod concurrent;
mod exec_peer;
mod netavark;
mod netctl;
pub mod sandboxes;

use std::time::Duration;

use anyhow::bail;
use netctl_netns_fixtures::Host;

use crate::netctl_host::Build;
use crate::report::{AttachRow, ConcurrentRow};
use crate::stats::percentile_ms;

/// One way of attaching a sandbox to a bridge network.
pub trait Peer {
    /// Makes sandbox `i`'s namespace (untimed).
    fn make_sandbox(&mut self, i: usize) -> anyhow::Result<()>;
    /// Attaches sandbox `i`; returns the time from the request to its answer.
    fn attach(&mut self, i: usize) -> anyhow::Result<Duration>;
    /// Detaches sandbox `i`; returns the time from the request to its answer.
    fn detach(&mut self, i: usize) -> anyhow::Result<Duration>;
    /// The path of sandbox `i`'s network namespace.
    fn netns_path(&self, i: usize) -> String;
    /// The network's gateway address.
    fn gateway(&self) -> &'static str;
    /// The test host the network lives in.
    fn host(&self) -> &Host;
    /// RSS of the peer's daemon, if it has one.
    fn rss_mib(&self) -> Option<f64>;
}

fn make_peer(name: &str, builds: &[Build]) -> anyhow::Result<Box<dyn Peer>> {
    if let Some(build) = builds.iter().find(|b| b.name == name) {
        return Ok(Box::new(netctl::NetctlPeer::new(build)?));
    }
    Ok(match name {
        "netavark" => Box::new(netavark::peer()?),
        "cni" => Box::new(cni::peer()?),
        other => bail!("unknown peer {other:?} (known: netctl, netavark, cni)"),
    })
}

/// What one `netctl-bench attach` measures.
pub struct Options<'a> {
    pub counts: &'a [usize],
    pub peers: &'a [String],
    pub samples: usize,
    /// The netctl builds among the peers (this one, and `--baseline`'s).
    pub builds: &'a [Build],
    /// Sandboxes attached at once in the concurrent measurement (0: none).
    pub concurrent: usize,
    pub rounds: usize,
}

pub fn run(options: &Options) -> anyhow::Result<(Vec<AttachRow>, Vec<ConcurrentRow>)> {
    let rows = one_at_a_time(options)?;
    let mut concurrent = Vec::new();
    if options.concurrent > 0 {
        for build in options.builds {
            let row = concurrent::measure(build, options.concurrent, options.rounds)?;
            eprintln!(
                "{}: {} concurrent attaches, wall p50 {:.2} ms",
                build.name, options.concurrent, row.wall_p50_ms
            );
            concurrent.push(row);
        }
    }
    Ok((rows, concurrent))
}

fn one_at_a_time(options: &Options) -> anyhow::Result<Vec<AttachRow>> {
    let (counts, samples) = (options.counts, options.samples);
    let mut rows = Vec::new();
    for name in options.peers {
        let mut peer = make_peer(name, options.builds)?;
        let mut progress = Progress::default();
        for &n in counts {
            match measure(peer.as_mut(), name, &mut progress, n, samples) {
                Ok(row) => {
                    eprintln!("{name}: n={n} attach p50 {:?} ms", row.attach_p50_ms);
                    rows.push(row);
                }
                Err(e) => {
                    // A peer that breaks down at some size says so in its row; the others go on.
                    eprintln!("{name}: n={n} failed: {e:#}");
                    rows.push(AttachRow {
                        peer: name.clone(),
                        n,
                        attach_p50_ms: None,
                        attach_p99_ms: None,
                        detach_p50_ms: None,
                        rss_mib: peer.rss_mib(),
                        error: Some(e.to_string().lines().next().unwrap_or_default().to_string()),
                    });
                    break;
                }
            }
        }
    }
    Ok(rows)
}

/// How many sandboxes exist and how many are attached.
#[derive(Default)]
struct Progress {
    made: usize,
    attached: usize,
}

/// Fills up to `n - 1` attached sandboxes, then times `samples` attach/detach pairs of one
/// more.
fn measure(
    peer: &mut dyn Peer,
    name: &str,
    progress: &mut Progress,
    n: usize,
    samples: usize,
) -> anyhow::Result<AttachRow> {
    let mut ensure_made = |peer: &mut dyn Peer, i: usize| -> anyhow::Result<()> {
        if progress.made == i {
            peer.make_sandbox(i)?;
            progress.made += 1;
        }
        Ok(())
    };
    while progress.attached + 1 < n {
        let i = progress.attached;
        ensure_made(peer, i)?;
        peer.attach(i)?;
        check(peer, name, i)?;
        progress.attached += 1;
    }
    let slot = progress.attached;
    ensure_made(peer, slot)?;
    let (mut attach_times, mut detach_times) = (Vec::new(), Vec::new());
    for _ in 0..samples {
        attach_times.push(peer.attach(slot)?);
        check(peer, name, slot)?;
        detach_times.push(peer.detach(slot)?);
    }
    Ok(AttachRow {
        peer: name.to_string(),
        n,
        attach_p50_ms: Some(percentile_ms(&attach_times, 50.0)),
        attach_p99_ms: Some(percentile_ms(&attach_times, 99.0)),
        detach_p50_ms: Some(percentile_ms(&detach_times, 50.0)),
        rss_mib: peer.rss_mib(),
        error: None,
    })
}

/// Sandbox `i` must reach its gateway within three one-second probes. The kernel's
/// neighbour table is shared by all namespaces, and past gc_thresh2 (512 entries; raising it
/// is a root-namespace sysctl, out of bounds here) its forced garbage collection now and then
/// costs a first packet, for every peer alike. So the check allows retries, and removes the
/// neighbour entries it made (one in the sandbox, one on the host) to keep the table small.
/// The flush is best effort: with a thousand namespaces churning the shared table, its dump
/// is sometimes interrupted, which says nothing about the sandbox.
fn check(peer: &dyn Peer, name: &str, i: usize) -> anyhow::Result<()> {
    let net = format!("--net={}", peer.netns_path(i));
    let script = format!(
        "for try in 1 2 3; do if ping -c1 -W1 {} >/dev/null; then ip neigh flush all; exit 0; fi; done; exit 1",
        peer.gateway()
    );
    if !netctl_netns_fixtures::run("nsenter", &[&net, "sh", "-c", &script]).ok() {
        let inside = netctl_netns_fixtures::run(
            "nsenter",
            &[
                &net,
                "sh",
                "-c",
                "ip -br addr; ip -s link show eth0; ip neigh; ip route",
            ],
        );
        bail!(
            "{name}: sandbox {i} cannot reach its gateway after attach\n{}",
            inside.stdout
        );
    }
    peer.host().ip(&["neigh", "flush", "all"]);
    Ok(())
}

/// Sandbox `i`'s address in a /16 whose first two octets are `prefix` (skipping .0 and .1).
pub fn address(prefix: &str, i: usize) -> String {
    let host = i + 2;
    format!("{prefix}.{}.{}", host / 256, host % 256)
}
