//! `netctl-bench publish`: the install time of one more published port when N are already
//! published (N filled in one request per peer, then one more port published and withdrawn
//! `--samples` times, timed from the request to its answer).

mod cni;
mod netavark;
mod netctl;

use std::time::Duration;

use serde::Serialize;

use crate::stats::percentile_ms;

#[derive(Debug, Clone, Serialize)]
pub struct PublishRow {
    pub peer: String,
    pub n: usize,
    pub publish_p50_ms: f64,
    pub publish_p99_ms: f64,
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
    samples: usize,
    cap: usize,
) -> anyhow::Result<Vec<PublishRow>> {
    let mut rows = Vec::new();
    for name in peers {
        let mut publisher: Box<dyn Publisher> = match name.as_str() {
            "netctl" => Box::new(netctl::Netctl::new()?),
            "netavark" => Box::new(netavark::Netavark::new()?),
            "cni" => Box::new(cni::Cni::new()?),
            other => anyhow::bail!("unknown peer {other:?} (known: netctl, netavark, cni)"),
        };
        for &n in counts {
            let skip = |why: String| PublishRow {
                peer: name.clone(),
                n,
                publish_p50_ms: 0.0,
                publish_p99_ms: 0.0,
                rss_mib: None,
                note: Some(why),
            };
            if name != "netctl" && n > cap {
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
                        publish_p50_ms: percentile_ms(&times, 50.0),
                        publish_p99_ms: percentile_ms(&times, 99.0),
                        rss_mib: publisher.rss_mib(),
                        note: publisher.note(),
                    };
                    eprintln!("{name}: n={n} publish p50 {:.3} ms", row.publish_p50_ms);
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
        "{:<9} {:>6} {:>15} {:>15} {:>9}  note",
        "peer", "n", "publish p50 ms", "publish p99 ms", "rss MiB"
    );
    for r in rows {
        let rss = r
            .rss_mib
            .map(|v| format!("{v:.1}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<9} {:>6} {:>15.3} {:>15.3} {:>9}  {}",
            r.peer,
            r.n,
            r.publish_p50_ms,
            r.publish_p99_ms,
            rss,
            r.note.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// First host port of the fill; the probe publishes `PROBE_PORT`.
const FILL_BASE: u16 = 20000;
const PROBE_PORT: u16 = 31000;
