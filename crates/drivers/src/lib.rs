//! Turns desired networks and endpoints into kernel objects.
//!
//! Every operation here is idempotent: applying the same desired state twice changes nothing
//! the second time. Everything created is named with a fixed prefix ([`BRIDGE_PREFIX`],
//! [`VETH_PREFIX`]) or lives in netctl's own nft table, so the daemon can find it again.

pub mod bridge;
mod driver;
mod error;
pub mod firewall;
pub mod netlink;
pub mod netns;
pub mod passive;
pub mod sysctl;

pub use driver::{EndpointSpec, NetworkDriver, NetworkSpec};
pub use error::DriverError;

/// Prefix of every bridge netctl creates (`ncb` + 12 hex digits of the network id).
pub const BRIDGE_PREFIX: &str = "ncb";
/// Prefix of the host end of every veth netctl creates.
pub const VETH_PREFIX: &str = "ncv";
/// The container's end of a Docker endpoint's veth, until dockerd moves and renames it.
pub const DOCKER_PEER_PREFIX: &str = "ncs";
