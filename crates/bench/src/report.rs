//! Rows as a table for people or JSON for scripts. A row that did not run prints `-` where
//! its figures would be, never a zero that reads like a measurement.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AttachRow {
    pub peer: String,
    pub n: usize,
    /// `None` when the peer could not reach this `n` (see `error`).
    pub attach_p50_ms: Option<f64>,
    pub attach_p99_ms: Option<f64>,
    pub detach_p50_ms: Option<f64>,
    /// RSS of the netctl daemon; `None` for peers, which run no daemon.
    pub rss_mib: Option<f64>,
    /// Why the peer could not reach this `n`.
    pub error: Option<String>,
}

/// `sandboxes` attaches to as many sandboxes sent at once, `rounds` times.
#[derive(Debug, Clone, Serialize)]
pub struct ConcurrentRow {
    pub peer: String,
    pub sandboxes: usize,
    pub rounds: usize,
    /// From the first request to the last answer, per round.
    pub wall_p50_ms: f64,
    /// Each request from sending to its answer, over every round.
    pub request_p50_ms: f64,
    pub request_p99_ms: f64,
}

/// `value` with `decimals`, or `-`.
pub fn figure(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

pub fn print(rows: &[AttachRow], concurrent: &[ConcurrentRow], json: bool) -> anyhow::Result<()> {
    if json {
        let doc = serde_json::json!({"attach": rows, "concurrent": concurrent});
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    println!(
        "{:<12} {:>6} {:>14} {:>14} {:>14} {:>9} {:>15}",
        "peer", "n", "attach p50 ms", "attach p99 ms", "detach p50 ms", "rss MiB", "p50 vs netctl"
    );
    for row in rows {
        let netctl = rows
            .iter()
            .find(|r| r.peer == "netctl" && r.n == row.n)
            .and_then(|r| r.attach_p50_ms);
        let ratio = match (row.attach_p50_ms, netctl) {
            (Some(p50), Some(base)) if base > 0.0 => format!("{:.1}x", p50 / base),
            _ => "-".into(),
        };
        println!(
            "{:<12} {:>6} {:>14} {:>14} {:>14} {:>9} {:>15}",
            row.peer,
            row.n,
            figure(row.attach_p50_ms, 2),
            figure(row.attach_p99_ms, 2),
            figure(row.detach_p50_ms, 2),
            figure(row.rss_mib, 1),
            ratio
        );
        if let Some(error) = &row.error {
            println!("{:<12} {:>6} not measured: {error}", "", "");
        }
    }
    if !concurrent.is_empty() {
        println!();
        println!(
            "{:<12} {:>10} {:>7} {:>12} {:>15} {:>15}",
            "peer", "sandboxes", "rounds", "wall p50 ms", "request p50 ms", "request p99 ms"
        );
        for row in concurrent {
            println!(
                "{:<12} {:>10} {:>7} {:>12.2} {:>15.2} {:>15.2}",
                row.peer,
                row.sandboxes,
                row.rounds,
                row.wall_p50_ms,
                row.request_p50_ms,
                row.request_p99_ms
            );
        }
    }
    Ok(())
}
