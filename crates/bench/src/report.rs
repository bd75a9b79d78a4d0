//! Rows as a table for people or JSON for scripts.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct AttachRow {
    pub peer: String,
    pub n: usize,
    pub attach_p50_ms: f64,
    pub attach_p99_ms: f64,
    pub detach_p50_ms: f64,
    /// RSS of the netctl daemon; `None` for peers, which run no daemon.
    pub rss_mib: Option<f64>,
    /// Why the peer could not reach this `n`; the numbers are then zero.
    pub error: Option<String>,
}

pub fn print(rows: &[AttachRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    println!(
        "{:<9} {:>6} {:>14} {:>14} {:>14} {:>9} {:>15}",
        "peer", "n", "attach p50 ms", "attach p99 ms", "detach p50 ms", "rss MiB", "p50 vs netctl"
    );
    for row in rows {
        let netctl = rows
            .iter()
            .find(|r| r.peer == "netctl" && r.n == row.n)
            .map(|r| r.attach_p50_ms);
        let ratio = match netctl {
            Some(base) if base > 0.0 => format!("{:.1}x", row.attach_p50_ms / base),
            _ => "-".into(),
        };
        let rss = row
            .rss_mib
            .map(|r| format!("{r:.1}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<9} {:>6} {:>14.2} {:>14.2} {:>14.2} {:>9} {:>15}",
            row.peer, row.n, row.attach_p50_ms, row.attach_p99_ms, row.detach_p50_ms, rss, ratio
        );
    }
    Ok(())
}
