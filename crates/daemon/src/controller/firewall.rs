//! Keeping netctl's nft table as the state says: rebuilt on start, on `netctl firewall
//! reload`, and whenever someone deletes or flushes it behind the daemon's back.

use std::sync::Arc;
use std::time::Duration;

use drivers::firewall::{Firewall, FirewallNetwork};
use drivers::DriverError;
use plugin_api::ApiError;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::drivers::network_spec;
use super::errors::from_driver;
use super::state::State;
use super::{ports, Controller};
use crate::model::DriverKind;

impl Controller {
    /// Replaces the whole table with one built from `state`, in one transaction.
    pub(super) async fn sync_firewall(&self, state: &State) -> Result<(), DriverError> {
        let networks: Vec<FirewallNetwork> = bridge_networks(state)
            .map(|n| FirewallNetwork::from(&network_spec(n)))
            .collect();
        let forwards: Vec<_> = state.endpoints.values().flat_map(ports::forwards).collect();
        Firewall.sync(&networks, &forwards).await
    }

    /// `netctl firewall reload`
    pub async fn reload_firewall(&self) -> Result<(), ApiError> {
        let state = self.state.lock().await;
        self.sync_firewall(&state).await.map_err(from_driver)?;
        tracing::info!("firewall reloaded");
        Ok(())
    }

    /// Rebuilds the table if it no longer has the shape netctl gave it.
    async fn heal_firewall(&self) {
        let state = self.state.lock().await;
        match Firewall.is_intact(bridge_networks(&state).count()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "netctl's nft table was deleted or flushed behind its back; restoring it"
                );
                if let Err(e) = self.sync_firewall(&state).await {
                    tracing::error!(error = %e, "cannot restore the nft table");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check the nft table"),
        }
    }
}

fn bridge_networks(state: &State) -> impl Iterator<Item = &crate::model::NetworkRecord> {
    state
        .networks
        .values()
        .filter(|n| n.driver == DriverKind::Bridge)
}

/// Watches `nft monitor` and heals the table after any deletion or flush that is not of a
/// single set or map element (netctl's own unpublishing makes those). Costs nothing while
/// nobody touches the firewall; restarts the monitor if it ends.
pub async fn watch_firewall(controller: Arc<Controller>) {
    loop {
        let mut monitor = Command::new("nft");
        monitor
            .arg("monitor")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe. The monitor must not outlive a daemon that is
        // killed (kill_on_drop needs an orderly exit).
        unsafe {
            monitor.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)
                    .map_err(std::io::Error::from)
            });
        }
        let child = monitor.spawn();
        match child {
            Ok(mut child) => {
                let stdout = child.stdout.take().expect("piped stdout");
                let mut lines = BufReader::new(stdout).lines();
                // Anything missed while the monitor was not running.
                controller.heal_firewall().await;
                while let Ok(Some(line)) = lines.next_line().await {
                    if touches_structure(&line) {
                        // Let the rest of a burst (a whole ruleset flush) arrive first.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        controller.heal_firewall().await;
                    }
                }
                tracing::warn!("nft monitor ended; restarting it");
            }
            Err(e) => tracing::warn!(error = %e, "cannot run nft monitor"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn touches_structure(event: &str) -> bool {
    (event.starts_with("delete ") || event.starts_with("flush "))
        && !event.starts_with("delete element")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_structural_deletions_wake_the_healer() {
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
