//! netctl's embedded DNS server: one daemon answers at 127.0.0.11:53 (UDP and TCP) inside
//! every sandbox.
//!
//! Names of the endpoints on the networks a sandbox shares are answered from the
//! [`Directory`]; everything else goes to the sandbox's upstreams ([`settings`]) through a
//! hedging forwarder with a TTL-honouring cache. Sandboxes on internal networks only never
//! forward.

mod cache;
pub mod directory;
mod forward;
mod listener;
mod locks;
mod query;
pub mod settings;
pub mod wire;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

pub use directory::{Directory, EndpointNames, ServiceNames};
pub use forward::HEDGE_AFTER;
pub use listener::Redirect;
pub use query::{Forward, Reply};
pub use settings::{DnsSettings, Resolution, Source, Upstream};

use crate::locks::{Lock, ReadWrite};

/// Where each sandbox finds its resolver (Docker's address).
pub const SERVER_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    #[error("invalid {what} {value:?}: {why}")]
    Invalid {
        what: &'static str,
        value: String,
        why: String,
    },
    #[error("DNS server in namespace {}: {why}", netns.display())]
    Bind { netns: PathBuf, why: String },
}

/// The daemon-wide settings below every sandbox's own.
#[derive(Default)]
struct Defaults {
    daemon: DnsSettings,
    host: DnsSettings,
}

/// The server: the directory, the cache, and the listeners of every sandbox.
pub struct Dns {
    /// The DNS thread's runtime: every socket and query task lives there.
    runtime: tokio::runtime::Handle,
    directory: Directory,
    cache: cache::Cache,
    health: forward::Health,
    defaults: RwLock<Defaults>,
    /// Each sandbox's own settings, kept to recompute its resolution when defaults change.
    own: Mutex<HashMap<String, DnsSettings>>,
    listeners: Mutex<HashMap<String, listener::Listener>>,
}

impl Dns {
    /// Starts the DNS thread.
    pub fn new() -> std::io::Result<Arc<Self>> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("dns".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))?;
        Ok(Arc::new(Self {
            runtime: handle,
            directory: Directory::default(),
            cache: cache::Cache::default(),
            health: forward::Health::default(),
            defaults: RwLock::default(),
            own: Mutex::default(),
            listeners: Mutex::default(),
        }))
    }

    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// daemon.json's `dns*` settings and the host's resolv.conf. Applies to every sandbox at
    /// once; queries in flight finish with what they started with.
    pub fn set_defaults(&self, daemon: DnsSettings, host: DnsSettings) {
        let mut defaults = self.defaults.writing();
        *defaults = Defaults { daemon, host };
        let own = self.own.locked();
        self.directory.update_resolutions(|id| {
            own.get(id)
                .map(|o| Arc::new(Resolution::new(o, &defaults.daemon, &defaults.host)))
        });
    }

    /// daemon.json's and the host's settings in force.
    pub fn defaults(&self) -> (DnsSettings, DnsSettings) {
        let defaults = self.defaults.reading();
        (defaults.daemon.clone(), defaults.host.clone())
    }

    /// Registers a sandbox with its own settings; returns what it resolves with.
    pub fn add_sandbox(&self, id: &str, own: &DnsSettings) -> Arc<Resolution> {
        let defaults = self.defaults.reading();
        let resolution = Arc::new(Resolution::new(own, &defaults.daemon, &defaults.host));
        self.own.locked().insert(id.to_string(), own.clone());
        self.directory.set_sandbox(id, resolution.clone());
        resolution
    }

    /// What the sandbox resolves with now.
    pub fn resolution(&self, id: &str) -> Option<Arc<Resolution>> {
        self.directory.view(id).map(|v| v.resolution)
    }

    /// Whether the sandbox may forward (it has a network that is not internal).
    pub fn may_forward(&self, id: &str) -> bool {
        self.directory.view(id).is_some_and(|v| v.may_forward)
    }

    /// Serves 127.0.0.11:53 in the sandbox's namespace: sockets on a port of 127.0.0.11 that
    /// `redirect` sends port 53 to.
    pub async fn serve(
        self: &Arc<Self>,
        id: &str,
        netns: &Path,
        redirect: Redirect,
    ) -> Result<(), DnsError> {
        let listener = listener::Listener::start(self.clone(), id, netns, redirect).await?;
        // A sandbox removed while its server was starting is not served (dropping the
        // listener closes its sockets). Checked and kept under `own`'s lock, which
        // `remove_sandbox` takes before it removes the listener: either the check sees the
        // removal, or the removal sees the listener.
        let own = self.own.locked();
        if own.contains_key(id) {
            self.listeners.locked().insert(id.to_string(), listener);
        }
        Ok(())
    }

    /// Stops serving the sandbox and forgets it.
    pub fn remove_sandbox(&self, id: &str) {
        self.own.locked().remove(id);
        self.listeners.locked().remove(id);
        self.directory.remove_sandbox(id);
    }
}
