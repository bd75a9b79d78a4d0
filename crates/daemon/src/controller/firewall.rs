//! Keeping netctl's nft table as the state says: rebuilt on start, on `netctl firewall
//! reload`, and whenever someone deletes or flushes it behind the daemon's back.
//!
//! Every write to the table goes through one gate, and a rebuild reads the state inside it:
//! a port published while the table is rebuilt is either in the rebuilt table or added after
//! it, never lost between the two. The gate is taken before the state lock, never while
//! holding it.

use std::sync::Arc;

use netctl_drivers::firewall::{Firewall, FirewallNetwork, PortForward};
use netctl_drivers::DriverError;
use netctl_kernel::nft::Change;
use tokio::sync::Mutex;

use super::ports::HeldSockets;
use super::specs::network_spec;
use super::state::State;
use super::{ports, Controller};
use crate::controller::error::EngineError;
use crate::proxy::Proxies;

pub(super) struct FirewallGate {
    table: Mutex<Firewall>,
    /// What the kernel cannot translate (IPv6 loopback) goes through these.
    proxies: Proxies,
    sockets: HeldSockets,
}

impl FirewallGate {
    pub fn new(sockets: HeldSockets) -> Self {
        Self {
            table: Mutex::default(),
            proxies: Proxies::default(),
            sockets,
        }
    }

    pub async fn publish(&self, forwards: &[PortForward]) -> Result<(), EngineError> {
        let table = self.table.lock().await;
        table.publish(forwards).await.map_err(EngineError::from)?;
        ports::start_proxies(&self.proxies, &self.sockets, &ports::proxies(forwards));
        Ok(())
    }

    /// Withdraws the ports and forgets their UDP flows, so that traffic does not keep going
    /// to the old container until the flows time out.
    pub async fn unpublish(&self, forwards: &[PortForward]) -> Result<(), EngineError> {
        for spec in ports::proxies(forwards) {
            self.proxies
                .stop(spec.proto, spec.host_ip, spec.host_port)
                .await;
        }
        let unpublished = {
            let table = self.table.lock().await;
            table.unpublish(forwards).await.map_err(EngineError::from)
        };
        for forward in forwards.iter().filter(|f| f.proto == "udp") {
            netctl_kernel::conntrack::forget_udp(forward.target.is_ipv6(), forward.host_port).await;
        }
        unpublished
    }
}

impl Controller {
    /// The endpoint's published ports the table lacks.
    pub(super) async fn port_differences(&self, ep: &crate::model::EndpointRecord) -> Vec<String> {
        let table = self.firewall.table.lock().await;
        let mut differences = Vec::new();
        for forward in ports::forwards(ep) {
            if !table.is_published(&forward).await {
                differences.push(format!(
                    "port {}/{} → {}:{} is not published",
                    forward.host_port, forward.proto, forward.target, forward.target_port
                ));
            }
        }
        differences
    }

    /// What the table should hold: each network's elements (from its driver) and every
    /// published port.
    fn firewall_contents(&self, state: &State) -> (Vec<FirewallNetwork>, Vec<PortForward>) {
        let networks = state
            .networks()
            .filter_map(|n| self.drivers.get(&n.driver)?.firewall(&network_spec(n)))
            .collect();
        let forwards = state.endpoints().flat_map(ports::forwards).collect();
        (networks, forwards)
    }

    /// Replaces the whole table with one built from the state, in one transaction; the
    /// proxies follow.
    pub(super) async fn sync_firewall(&self) -> Result<(), DriverError> {
        let table = self.firewall.table.lock().await;
        let (networks, forwards) = self.firewall_contents(&*self.state.lock().await);
        table.sync(&networks, &forwards).await?;
        let proxies = ports::proxies(&forwards);
        self.firewall.proxies.retain(&proxies).await;
        ports::start_proxies(&self.firewall.proxies, &self.firewall.sockets, &proxies);
        Ok(())
    }

    /// `netctl firewall reload`
    pub async fn reload_firewall(&self) -> Result<(), EngineError> {
        self.sync_firewall().await.map_err(EngineError::from)?;
        tracing::info!("firewall reloaded");
        Ok(())
    }

    /// Rebuilds the table if it no longer has the shape netctl gave it.
    async fn heal_firewall(&self) {
        let table = self.firewall.table.lock().await;
        let (networks, forwards) = self.firewall_contents(&*self.state.lock().await);
        match table.is_intact(networks.len()).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(
                    "netctl's nft table was deleted or flushed behind its back; restoring it"
                );
                metrics::counter!("netctl_reconcile_repairs_total", "what" => "firewall")
                    .increment(1);
                if let Err(e) = table.sync(&networks, &forwards).await {
                    tracing::error!(error = %e, "cannot restore the nft table");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot check the nft table"),
        }
    }
}

/// Heals the table after any deletion or flush `nft monitor` reports, and whenever the
/// monitor (re)starts (it may have missed something).
pub async fn watch_firewall(controller: Arc<Controller>) {
    let mut changes = netctl_kernel::nft::watch();
    while let Some(change) = changes.recv().await {
        if let Change::Structure(what) = &change {
            tracing::debug!(%what, "ruleset changed");
        }
        controller.heal_firewall().await;
    }
}
