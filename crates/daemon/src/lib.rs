//! The netctl daemon: the one owner of every network, sandbox and endpoint.
//!
//! It persists desired state first, then programs the kernel, then answers. On start it
//! reconciles: it converges the kernel to the store and removes what it owns and no longer
//! wants, so a crash at any moment loses nothing and leaks nothing.

pub mod config;
mod controller;
mod error;
mod ids;
mod model;
mod server;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

pub use config::DaemonConfig;
pub use controller::{raise_file_limit, watch_dns_sources, watch_firewall, Controller};
pub use error::DaemonError;

/// Where the daemon keeps things; flags override daemon.json, which overrides the defaults.
#[derive(Debug, Clone)]
pub struct Paths {
    pub data_root: PathBuf,
    pub exec_root: PathBuf,
    pub socket: PathBuf,
    /// daemon.json, watched for changes to its `dns*` settings.
    pub config: PathBuf,
    /// The host's resolv.conf: upstreams when neither the sandbox nor daemon.json name any.
    pub host_resolv_conf: PathBuf,
    /// Where dockerd finds the remote plugin; `None` serves no plugin.
    pub docker_plugin_socket: Option<PathBuf>,
}

pub const DEFAULT_CONFIG: &str = "/etc/netctl/daemon.json";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/netctl";
pub const DEFAULT_EXEC_ROOT: &str = "/run/netctl";
pub const DEFAULT_SOCKET: &str = "/run/netctl/netctl.sock";
pub const DEFAULT_HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
pub const DEFAULT_DOCKER_PLUGIN_SOCKET: &str = "/run/docker/plugins/netctl.sock";

/// Starts the daemon and serves until `shutdown` resolves.
pub async fn run(
    config: DaemonConfig,
    paths: Paths,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    let api = server::bind_api(&paths.socket).await?;
    raise_file_limit();
    // In a container (a Docker managed plugin), /proc/sys is read-only: bridges need their
    // sysctls set.
    if let Err(e) = drivers::sysctl::make_writable() {
        tracing::warn!(error = %e, "/proc/sys stays read-only; setting up bridges will fail");
    }
    let controller = Arc::new(Controller::start(config, paths.clone()).await?);
    tokio::spawn(watch_firewall(controller.clone()));
    tokio::spawn(watch_dns_sources(controller.clone()));
    if let Some(socket) = &paths.docker_plugin_socket {
        server::start_docker_plugin(controller.clone(), socket).await?;
    }
    server::serve(controller, api, &paths.socket, shutdown).await
}
