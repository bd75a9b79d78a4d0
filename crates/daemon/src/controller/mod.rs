//! The controller: the one owner and writer of networks, sandboxes and endpoints.
//!
//! Every change is a transaction ([`crate::txn`]): validated and planned under the state
//! lock (nothing changed yet), persisted, then carried out in the kernel with no lock that
//! unrelated requests wait on — only the locks of the objects it touches ([`crate::locks`]).
//! A failure undoes what was done, in reverse, and leaves the store and the state as before.

mod background_leaves;
mod cluster;
mod dhcp;
mod dns;
mod dns_sources;
mod docker;
mod effects;
mod endpoints;
pub mod error;
mod executor;
mod firewall;
mod gateway_bridge;
mod kernel_effects;
mod lease_datapath;
mod namespaces;
mod networks;
mod ports;
mod publishing;
mod queries;
mod reconcile;
mod runtime;
mod sandboxes;
mod specs;
mod state;
mod subnets;
#[cfg(test)]
mod test_controller;
#[cfg(test)]
mod test_records;
mod txn;
mod view;

use std::sync::Arc;

use netctl_drivers::{Registry, Settings};
use netctl_ipam::{Ipam, PoolTemplate};
use netctl_kernel::Netlink;
use netctl_store::{LocalStore, Store};
use tokio::sync::Mutex;

use self::background_leaves::BackgroundLeaves;
pub use self::cluster::run_cluster;
pub use self::dhcp::watch_leases;
pub use self::dns_sources::watch_dns_sources;
pub use self::error::{EngineError, ErrorKind};
pub use self::firewall::watch_firewall;
use self::firewall::FirewallGate;
use self::namespaces::Namespaces;
use self::state::State;
use crate::config::DaemonConfig;
use crate::error::DaemonError;
use crate::leases::{LeaseClients, LeaseEvent};
use crate::locks::Locks;
use crate::model::NodeRecord;
use crate::paths::Paths;

pub struct Controller {
    state: Mutex<State>,
    /// Held shared by a transaction from its plan until its cluster write is answered (it
    /// lets the state lock go meanwhile), and alone by the cluster mirror while it brings
    /// the cluster's news into the state: the mirror never sees a plan whose write is in
    /// flight (a listing taken before the write would otherwise delete what the plan
    /// made, and a competitor's record would meet addresses the plan may yet give back).
    /// Both take it before the state lock.
    cluster_writes: tokio::sync::RwLock<()>,
    locks: Locks,
    /// This node's cluster, if it is in one.
    cluster: cluster::ClusterLink,
    store: Arc<dyn Store>,
    drivers: Registry,
    /// The sandboxes' open namespaces.
    namespaces: Namespaces,
    /// Endpoints' interfaces being removed in the background.
    background_leaves: BackgroundLeaves,
    firewall: FirewallGate,
    /// Netlink in the daemon's own namespace (the "host" of every sandbox).
    host: Netlink,
    /// The embedded DNS server of every sandbox.
    dns: Arc<netctl_dns::Dns>,
    /// The DHCP clients of the endpoints on DHCP networks.
    leases: Arc<LeaseClients>,
    /// Their news after each one's first lease, until [`watch_leases`] takes them.
    lease_events: Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<LeaseEvent>>>,
    /// What the cluster's services last set on this node (names, sandbox tables).
    services_applied: Mutex<cluster::AppliedServices>,
    /// This daemon's node.
    node: NodeRecord,
    config: DaemonConfig,
    paths: Paths,
}

impl Controller {
    /// Opens the store (moving an older layout into the current one), reconciles the kernel
    /// to it, and returns a controller ready to serve.
    pub async fn start(config: DaemonConfig, paths: Paths) -> Result<Self, DaemonError> {
        make_directories(&paths)?;
        let host = Netlink::connect().map_err(|source| DaemonError::Io {
            what: "netlink socket",
            path: "/proc/self/ns/net".into(),
            source,
        })?;
        warn_of_inert_settings(&config);
        let settings = Settings {
            manage_forwarding: config.ip_forward.unwrap_or(true),
            overlay_dir: paths.exec_root.join("overlay"),
        };
        let drivers = Registry::new(host.clone(), &settings);
        let (local, node) = open_store(&paths, &drivers).await?;
        let mut state = State::new(Ipam::new(
            config.local_pool_templates(),
            PoolTemplate::from_table(netctl_ipam::DEFAULT_GLOBAL_POOLS),
        ));
        state.spread_seed = u64::from_str_radix(&node.id[..16.min(node.id.len())], 16).unwrap_or(0);
        let (leases, lease_events) = LeaseClients::new();
        let firewall = FirewallGate::new(state.ports.sockets());
        let controller = Self {
            cluster_writes: Default::default(),
            state: Mutex::new(state),
            locks: Locks::default(),
            cluster: cluster::ClusterLink::default(),
            store: Arc::new(local),
            drivers,
            namespaces: Namespaces::default(),
            background_leaves: BackgroundLeaves::default(),
            firewall,
            host,
            dns: netctl_dns::Dns::new().map_err(|source| DaemonError::Io {
                what: "DNS thread",
                path: paths.exec_root.clone(),
                source,
            })?,
            leases: Arc::new(leases),
            lease_events: Mutex::new(Some(lease_events)),
            services_applied: Mutex::default(),
            node,
            config,
            paths,
        };
        controller.dns.set_defaults(
            controller.config.dns_settings(),
            dns::host_dns(&controller.paths.host_resolv_conf),
        );
        controller.take_over_the_kernel().await?;
        Ok(controller)
    }

    /// The kernel brought to what the store holds, the DHCP clients resumed, and what the
    /// runtimes let go while the daemon was down reclaimed.
    async fn take_over_the_kernel(&self) -> Result<(), DaemonError> {
        self.reconcile().await?;
        self.resume_leases().await;
        let collected = self.collect_gone(false).await;
        if !collected.endpoints.is_empty() {
            tracing::info!(
                endpoints = collected.endpoints.len(),
                errors = collected.errors.len(),
                "reclaimed containers whose runtime let their namespace go"
            );
        }
        // A node in a cluster has its gateway bridge (made at init or join; again here
        // should it have been removed while unused).
        if self.cluster.membership().is_some() {
            if let Err(e) = self.ensure_gateway_bridge().await {
                tracing::error!(error = %e, "no gateway bridge yet");
            }
        }
        Ok(())
    }
}

fn make_directories(paths: &Paths) -> Result<(), DaemonError> {
    for dir in [
        &paths.data_root,
        &paths.exec_root,
        &paths.exec_root.join("netns"),
    ] {
        std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
            what: "create directory",
            path: dir.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Says which of daemon.json's settings do nothing here, so nobody counts on them.
fn warn_of_inert_settings(config: &DaemonConfig) {
    for setting in config.inert_settings() {
        tracing::warn!("daemon.json: {setting} is accepted but has no effect");
    }
    for name in config.roles.unknown_names() {
        tracing::warn!("daemon.json roles: this host has no {name}; its role applies once it has");
    }
}

/// The local store, moved to the current layout if an older netctl wrote it, and this
/// node's record in it.
async fn open_store(
    paths: &Paths,
    drivers: &Registry,
) -> Result<(LocalStore, NodeRecord), DaemonError> {
    let local = LocalStore::open(&paths.data_root.join("netctl.redb"))
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    let node = reconcile::this_node(&local).await?;
    let moved = crate::migrate::upgrade(&local, &node.id, &|driver, options, mtu| {
        let driver = drivers
            .get(driver)
            .ok_or_else(|| format!("no driver {driver:?} in this netctl"))?;
        let settings = driver
            .parse_options(options, &netctl_drivers::NetworkDefaults { mtu })
            .map_err(|e| e.to_string())?;
        Ok((driver.name().to_string(), settings.config))
    })?;
    if moved {
        tracing::info!("store moved to the current layout");
    }
    Ok((local, node))
}
