//! The protocols netctl speaks, without the kernel: request and answer types, a router that
//! decodes requests and calls a trait the daemon implements, and a client for the CLI.
//!
//! Field names follow `docker network inspect` and `docker container inspect` where Docker
//! has one, so scripts written against Docker read netctl's JSON unchanged.

pub mod client;
pub mod docker;
mod error;
pub mod management;
pub mod ports;
mod types;

pub use error::{ApiError, ErrorCode};
pub use types::*;

/// Version prefix of every management API path.
pub const API_VERSION: &str = "v1";
