//! netctl's network drivers behind one object-safe trait ([`Driver`]), listed in one
//! [`Registry`]: bridge, gwbridge, host, null, overlay and ingress, each in a module of its own. A driver owns its
//! options, its kernel objects, their restoration after a restart and their garbage; the
//! daemon asks a driver's [`Capabilities`] and never branches on its name.
//!
//! [`firewall`] is the nftables policy the drivers share: one table of netctl's own whose
//! rule count never grows with networks, containers or published ports.

pub mod bridge;
pub mod cluster;
mod driver;
mod error;
pub mod firewall;
pub mod gwbridge;
pub mod host;
pub mod ingress;
pub mod null;
pub mod options;
pub mod overlay;
mod passive;
mod registry;
pub mod service_balancer;

pub use cluster::ClusterDriver;
pub use driver::{
    Capabilities, Claim, Driver, EndpointSpec, JoinKind, JoinTarget, NetworkDefaults, NetworkRole,
    NetworkSettings, NetworkSpec, SandboxNamespace, Scope, SubnetSpec, Wanted,
};
pub use error::DriverError;
pub use passive::PassiveDriver;
pub use registry::{Registry, Settings, DEFAULT_DRIVER};
