//! The protocols netctl speaks, without the kernel: request and answer types of the
//! management API and of Docker's remote plugin API. With the `http` feature (on by
//! default), also the routers that decode requests and call traits the daemon implements,
//! and a client for the CLI; without it the crate needs neither tokio nor a server, as a CNI
//! plugin process run once per call would want.
//!
//! Field names follow `docker network inspect` and `docker container inspect` where Docker
//! has one, so scripts written against Docker read netctl's JSON unchanged.

#[cfg(feature = "http")]
pub mod access;
#[cfg(feature = "http")]
pub mod client;
pub mod cluster;
pub mod docker;
mod error;
#[cfg(feature = "http")]
pub mod management;
pub mod ports;
pub mod runtime;
pub mod service_ports;
mod types;

pub use error::{ApiError, ErrorCode};
pub use types::*;

/// Version prefix of every management API path.
pub const API_VERSION: &str = "v1";
