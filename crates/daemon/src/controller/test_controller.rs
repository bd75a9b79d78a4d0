//! A controller for unit tests of its decisions (the cluster mirror's, say): real drivers
//! and state, a local store in a temporary directory, and nothing done to the kernel at
//! construction. Decisions are functions of the state and the records; carrying them out
//! is the kernel tests' business.

use std::path::Path;
use std::sync::Arc;

use netctl_drivers::{Registry, Settings};
use netctl_ipam::{Ipam, PoolTemplate};
use netctl_kernel::Netlink;
use netctl_store::LocalStore;
use tokio::sync::Mutex;

use super::cluster::ClusterLink;
use super::firewall::FirewallGate;
use super::namespaces::Namespaces;
use super::state::State;
use super::Controller;
use crate::config::DaemonConfig;
use crate::leases::LeaseClients;
use crate::locks::Locks;
use crate::model::NodeRecord;
use crate::paths::Paths;

/// This node's id in the unit tests.
pub const THIS_NODE: &str = "node-a";

impl Controller {
    /// Inside a tokio runtime (its netlink socket needs one).
    pub fn for_unit_tests(dir: &Path) -> Controller {
        let host = Netlink::connect().expect("a netlink socket");
        let drivers = Registry::new(
            host.clone(),
            &Settings {
                manage_forwarding: false,
                overlay_dir: dir.join("overlay"),
            },
        );
        let state = State::new(Ipam::new(
            PoolTemplate::from_table(netctl_ipam::DEFAULT_LOCAL_POOLS),
            PoolTemplate::from_table(netctl_ipam::DEFAULT_GLOBAL_POOLS),
        ));
        let (leases, lease_events) = LeaseClients::new();
        Controller {
            firewall: FirewallGate::new(state.ports.sockets()),
            cluster_writes: Default::default(),
            state: Mutex::new(state),
            locks: Locks::default(),
            cluster: ClusterLink::default(),
            store: Arc::new(LocalStore::open(&dir.join("netctl.redb")).expect("a store")),
            drivers,
            namespaces: Namespaces::default(),
            background_leaves: Default::default(),
            host,
            dns: netctl_dns::Dns::new().expect("the DNS thread"),
            leases: Arc::new(leases),
            lease_events: Mutex::new(Some(lease_events)),
            services_applied: Mutex::default(),
            node: NodeRecord {
                id: THIS_NODE.into(),
                hostname: THIS_NODE.into(),
                created: String::new(),
            },
            config: DaemonConfig::default(),
            paths: Paths {
                data_root: dir.join("data"),
                exec_root: dir.join("run"),
                socket: dir.join("netctl.sock"),
                config: dir.join("daemon.json"),
                host_resolv_conf: dir.join("resolv.conf"),
                docker_plugin_socket: None,
            },
        }
    }
}
