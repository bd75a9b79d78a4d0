//! The kernel as netctl uses it: netlink (links, addresses, routes, neighbours, bridge FDB
//! entries, VXLAN devices), network namespaces, sysctls, nftables transactions and their
//! monitor, conntrack, sockets that hold host ports, and DHCP clients' sockets.
//!
//! This crate knows nothing of networks, sandboxes or endpoints: it is given names, indexes,
//! addresses and ports. Each call's doc comment gives its `ip`, `nft` or `sysctl` equivalent.

pub mod conntrack;
pub mod dhcp;
mod error;
pub mod iptables;
pub mod netlink;
pub mod netns;
pub mod nft;
pub mod ports;
pub mod sysctl;
pub mod xfrm;

pub use error::KernelError;
pub use netlink::Netlink;
pub use netns::Netns;
