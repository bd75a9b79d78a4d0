//! `netctl-bench publish`: the install time of one more published port when N are already
//! published (N filled in one request per peer, then one more port published and withdrawn
//! `--samples` times, timed from the request to its answer).

mod cni;
mod netavark;
mod netctl;

use std::time::Duration;

use serde::Serialize;

use crate::netctl_host::Build;
use crate::report::figure;
use crate::stats::percentile_ms;

#[derive(Debug, Clone, Serialize)]
pub struct PublishRow {
    pub peer: String,
    pub n: usize,
    /// `None` when the row was not run (see `note`).
    pub publish_p50_ms: Option<f64>,
    pub publish_p99_ms: Option<f64>,
    pub rss_mib: Option<f64>,
    /// What the timed operation includes beyond publishing, or why the row is missing.
    pub note: Option<String>,
}

/// One way of publishing ports.
pub trait Publisher {
    /// Makes sure `n` ports are published in all (fill, untimed).
    fn fill(&mut self, n: usize) -> anyhow::Result<()>;
    /// Publishes one more port; returns the time from the request to its answer.
    fn publish_one(&mut self) -> anyhow::Result<Duration>;
    /// Withdraws that port again (untimed).
    fn withdraw_one(&mut self) -> anyhow::Result<()>;
    fn rss_mib(&self) -> Option<f64>;
    /// What a sample includes besides the port itself.
    fn note(&self) -> Option<String>;
}

pub fn run(
    counts: &[usize],
    peers: &[String],
    builds: &[Build],
    samples: usize,
    cap: usize,
) -> anyhow::Result<Vec<PublishRow>> {
    let mut rows = Vec::new();
    for name in peers {
        let build = builds.iter().find(|b| b.name == *name);
        let mut publisher: Box<dyn Publisher> = match name.as_str() {
            _ if build.is_some() => Box::new(netctl::Netctl::new(build.expect("found"))?),
            "netavark" => Box::new(netavark::Netavark::new()?),
            "cni" => Box::new(cni::Cni::new()?),
            other => anyhow::bail!("unknown peer {other:?} (known: netctl, netavark, cni)"),
        };
        for &n in counts {
            let skip = |why: String| PublishRow {
                peer: name.clone(),
                n,
                publish_p50_ms: None,
                publish_p99_ms: None,
                rss_mib: None,
                note: Some(why),
            };
            if build.is_none() && n > cap {
                rows.push(skip(format!(
                    "not run: peers are capped at N={cap} (--peer-cap)"
                )));
                continue;
            }
            let measured = publisher.fill(n).and_then(|()| {
                (0..samples)
                    .map(|_| {
                        let t = publisher.publish_one()?;
                        publisher.withdraw_one()?;
                        Ok(t)
                    })
                    .collect::<anyhow::Result<Vec<_>>>()
            });
            match measured {
                Ok(times) => {
                    let row = PublishRow {
                        peer: name.clone(),
                        n,
                        publish_p50_ms: Some(percentile_ms(&times, 50.0)),
                        publish_p99_ms: Some(percentile_ms(&times, 99.0)),
                        rss_mib: publisher.rss_mib(),
                        note: publisher.note(),
                    };
                    eprintln!("{name}: n={n} publish p50 {:?} ms", row.publish_p50_ms);
                    rows.push(row);
                }
                Err(e) => {
                    eprintln!("{name}: n={n} failed: {e:#}");
                    rows.push(skip(format!(
                        "failed: {}",
                        e.to_string().lines().next().unwrap_or_default()
                    )));
                    break;
                }
            }
        }
    }
    Ok(rows)
}

pub fn print(rows: &[PublishRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<12} {:>6} {:>15} {:>15} {:>9}  note",
        "peer", "n", "publish p50 ms", "publish p99 ms", "rss MiB"
    );
    for r in rows {
        println!(
            "{:<12} {:>6} {:>15} {:>15} {:>9}  {}",
            r.peer,
            r.n,
            figure(r.publish_p50_ms, 3),
            figure(r.publish_p99_ms, 3),
            figure(r.rss_mib, 1),
            r.note.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// First host port of the fill; the probe publishes `PROBE_PORT`.
const FILL_BASE: u16 = 20000;
const PROBE_PORT: u16 = 31000;
