//! The controller: the one owner and writer of networks, sandboxes and endpoints.
//!
//! Every change runs under one lock, in this order: validate (nothing changed yet), persist the
//! desired state, program the kernel, answer. A failure after persisting rolls back what was
//! done, so the state is exactly as before the request.

mod api;
mod conntrack;
mod dns;
mod docker;
mod drivers;
mod endpoints;
mod errors;
mod firewall;
mod networks;
mod ports;
mod publishing;
mod reconcile;
mod sandboxes;
mod state;
mod view;

use std::sync::Arc;

use ::drivers::netlink::Netlink;
use tokio::sync::Mutex;

pub use self::dns::watch_dns_sources;
use crate::store::Store;
use crate::{DaemonConfig, Paths};
use drivers::Drivers;
pub use firewall::watch_firewall;
pub use ports::raise_file_limit;
use state::State;

pub struct Controller {
    state: Mutex<State>,
    store: Store,
    drivers: Drivers,
    /// Netlink in the daemon's own namespace (the "host" of every sandbox).
    host: Netlink,
    config: DaemonConfig,
    paths: Paths,
    /// The embedded DNS server of every sandbox.
    dns: Arc<::dns::Dns>,
}

/// The sandbox's namespace, shared with in-flight operations.
type NetnsRef = Arc<::drivers::netns::Netns>;
