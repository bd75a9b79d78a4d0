//! `nft monitor`, reduced to what a table's owner needs to know: that something may have
//! deleted or flushed part of the ruleset.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

/// What the monitor saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The monitor (re)started: anything may have happened while it was not running.
    Started,
    /// A deletion or flush that is not of a single set or map element (a table owner's own
    /// unpublishing makes those), after the rest of its burst arrived.
    Structure(String),
}

/// Runs `nft monitor` in the caller's namespace for as long as the receiver lives,
/// restarting it when it ends. Costs nothing while nobody touches the ruleset.
pub fn watch() -> mpsc::Receiver<Change> {
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        while !tx.is_closed() {
            match spawn_monitor() {
                Ok(mut child) => {
                    let stdout = child.stdout.take().expect("piped stdout");
                    if tx.send(Change::Started).await.is_err() {
                        return;
                    }
                    let mut lines = BufReader::new(stdout).lines();
                    while let Ok(Some(line)) = lines.next_line().await {
                        if touches_structure(&line) {
                            // Let the rest of a burst (a whole ruleset flush) arrive first.
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            if tx.send(Change::Structure(line)).await.is_err() {
                                return;
                            }
                        }
                    }
                    tracing::warn!("nft monitor ended; restarting it");
                }
                Err(e) => tracing::warn!(error = %e, "cannot run nft monitor"),
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    rx
}

fn spawn_monitor() -> std::io::Result<tokio::process::Child> {
    let mut monitor = Command::new("nft");
    monitor
        .arg("monitor")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true);
    // SAFETY: prctl is async-signal-safe. The monitor must not outlive a process that is
    // killed (kill_on_drop needs an orderly exit).
    unsafe {
        monitor.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                .map_err(std::io::Error::from)
        });
    }
    monitor.spawn()
}

fn touches_structure(event: &str) -> bool {
    (event.starts_with("delete ") || event.starts_with("flush "))
        && !event.starts_with("delete element")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_structural_deletions_count() {
        assert!(touches_structure("delete table inet netctl"));
        assert!(touches_structure("flush ruleset"));
        assert!(touches_structure(
            "delete rule inet netctl forward handle 4"
        ));
        assert!(!touches_structure(
            "delete element inet netctl any4_addr { tcp . 8080 : 172.30.0.2 }"
        ));
        assert!(!touches_structure(
            "add element inet netctl any4_addr { tcp . 8080 : 172.30.0.2 }"
        ));
    }
}
