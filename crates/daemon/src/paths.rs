//! Where the daemon keeps things, and what it is (version and commit).

use std::path::PathBuf;

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

/// netctl's version, and the commit it was built from (`unknown` outside a checkout).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
pub const GIT_COMMIT: &str = env!("NETCTL_GIT_COMMIT");

pub const DEFAULT_CONFIG: &str = "/etc/netctl/daemon.json";
pub const DEFAULT_DATA_ROOT: &str = "/var/lib/netctl";
pub const DEFAULT_EXEC_ROOT: &str = "/run/netctl";
pub const DEFAULT_SOCKET: &str = "/run/netctl/netctl.sock";
pub const DEFAULT_HOST_RESOLV_CONF: &str = "/etc/resolv.conf";
pub const DEFAULT_DOCKER_PLUGIN_SOCKET: &str = "/run/docker/plugins/netctl.sock";
