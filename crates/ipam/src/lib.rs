//! IP address management for netctl.
//!
//! Pure logic: address spaces hold pools, a pool hands out addresses. Nothing here touches the
//! kernel; the caller passes in the host's routes when a subnet has to be chosen automatically.
//! Every structure costs memory in proportion to the addresses in use, never to the size of a
//! pool, so a /8 or a /64 is as cheap as a /24.
//!
//! Where a LAN's own DHCP server owns the addresses, [`dhcp`] says who each endpoint is to
//! that server, and hands the daemon the DHCP clients that lease for it.

pub mod addr;
mod default_pools;
pub mod dhcp;
mod error;
mod intervals;
mod pool;
mod space;

pub use default_pools::{
    PoolTemplate, DEFAULT_GLOBAL_POOLS, DEFAULT_IPV6_POOL, DEFAULT_LOCAL_POOLS,
};
pub use error::IpamError;
pub use pool::{Pool, PoolRequest};
pub use space::{AddressSpace, Ipam, Scope};
