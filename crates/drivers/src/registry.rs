//! Every driver this build has, by name: the one place a driver is added.

use std::path::PathBuf;
use std::sync::Arc;

use netctl_kernel::Netlink;

use crate::bridge::BridgeDriver;
use crate::gwbridge::GatewayBridgeDriver;
use crate::ingress::IngressDriver;
use crate::overlay::{DataPath, OverlayDriver};
use crate::{host, null, ClusterDriver, Driver, NetworkRole};

/// The driver of a network created without `--driver` (Docker's default).
pub const DEFAULT_DRIVER: &str = "bridge";

/// How the daemon was configured, for the drivers that care.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Turn on IP forwarding where a network needs it (daemon.json `ip-forward`).
    pub manage_forwarding: bool,
    /// Where overlay networks' namespaces are bind-mounted.
    pub overlay_dir: PathBuf,
}

#[derive(Clone)]
pub struct Registry {
    drivers: Vec<Arc<dyn Driver>>,
    /// The cluster-wide ones again, as such: the daemon feeds them the cluster's endpoints.
    cluster: Vec<Arc<dyn ClusterDriver>>,
}

impl Registry {
    /// The drivers, working in the namespace `host` was opened in.
    pub fn new(host: Netlink, settings: &Settings) -> Self {
        let overlay = Arc::new(OverlayDriver::new(DataPath::new(
            host.clone(),
            settings.overlay_dir.clone(),
        )));
        let bridge = BridgeDriver::new(host, settings.manage_forwarding);
        let cluster: Vec<Arc<dyn ClusterDriver>> =
            vec![overlay.clone(), Arc::new(IngressDriver::new(overlay))];
        let mut drivers: Vec<Arc<dyn Driver>> = vec![
            Arc::new(bridge.clone()),
            Arc::new(GatewayBridgeDriver::new(bridge)),
            Arc::new(host::driver()),
            Arc::new(null::driver()),
        ];
        drivers.extend(cluster.iter().map(|d| d.clone() as Arc<dyn Driver>));
        Self { drivers, cluster }
    }

    /// The cluster-wide driver called `name`.
    pub fn cluster_driver(&self, name: &str) -> Option<&Arc<dyn ClusterDriver>> {
        self.cluster.iter().find(|d| d.name() == name)
    }

    /// The cluster-wide drivers that keep their own datapath (not another's, as the
    /// ingress keeps its segments in the overlay's): each is told once.
    pub fn cluster_datapaths(&self) -> impl Iterator<Item = &Arc<dyn ClusterDriver>> {
        self.cluster.iter().filter(|d| d.collected_by() == d.name())
    }

    /// The driver called `name`, or one of its aliases.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Driver>> {
        self.drivers
            .iter()
            .find(|d| d.name() == name || d.aliases().contains(&name))
    }

    /// The driver whose networks play `role` (the gateway bridge's, the ingress's).
    pub fn with_role(&self, role: NetworkRole) -> Option<&Arc<dyn Driver>> {
        self.drivers.iter().find(|d| d.capabilities().role == role)
    }

    pub fn all(&self) -> impl Iterator<Item = &Arc<dyn Driver>> {
        self.drivers.iter()
    }

    /// Whether `link`, a link of the daemon's namespace, is one a driver made.
    pub fn made_link(&self, link: &str) -> bool {
        self.drivers
            .iter()
            .any(|d| d.host_link_prefixes().iter().any(|p| link.starts_with(p)))
    }

    /// `bridge, host and null`, for messages.
    pub fn names(&self) -> String {
        let names: Vec<&str> = self.drivers.iter().map(|d| d.name()).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}
