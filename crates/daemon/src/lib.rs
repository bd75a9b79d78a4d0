//! The netctl daemon: the one owner of every network, sandbox and endpoint.
//!
//! Every change is a transaction: it persists desired state first, then programs the kernel
//! (through the drivers), then answers; a failure undoes what was done. On start it
//! reconciles: it converges the kernel to the store and removes what it owns and no longer
//! wants, so a crash at any moment loses nothing and leaks nothing.

pub mod access;
mod app;
pub mod cluster_store;
pub mod config;
mod controller;
mod error;
pub mod front;
mod ids;
mod instance;
mod leases;
mod locks;
mod memory;
pub mod metrics;
mod migrate;
mod model;
mod paths;
mod persist;
mod proxy;
mod server;

pub use app::run;
pub use config::DaemonConfig;
pub use controller::Controller;
pub use error::DaemonError;
pub use paths::{
    Paths, DEFAULT_CONFIG, DEFAULT_DATA_ROOT, DEFAULT_DOCKER_PLUGIN_SOCKET, DEFAULT_EXEC_ROOT,
    DEFAULT_HOST_RESOLV_CONF, DEFAULT_SOCKET, GIT_COMMIT, VERSION,
};
