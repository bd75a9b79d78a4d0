//! The overlay driver: VXLAN networks that span the nodes of a cluster.
//!
//! On each node, an overlay network with a local endpoint has a namespace of its own holding
//! a bridge (with the network's gateway address) and a VXLAN device whose UDP socket lives
//! in the daemon's namespace, on the underlay ([`DataPath`]).
//!
//! Why a namespace per network, as Docker does: the overlay's subnet and gateway then never
//! enter the node's own routing table, so an overlay is isolated from the node's other
//! networks and from its root namespace by construction, not by firewall rules, and two
//! overlays may even use overlapping subnets. Endpoints' veths have their host end there.
//!
//! Nothing is learned: for every remote endpoint the node writes an FDB entry (its MAC
//! behind its node's VTEP) and a permanent neighbour entry (its address at that MAC), so
//! the VXLAN device answers ARP itself (`proxy`) and nothing is flooded for known
//! endpoints. Broadcast and multicast go to every other node with endpoints on the network
//! through all-zero FDB entries, one per node (head-end replication).
//!
//! The driver does not know the cluster: the daemon tells it this node's underlay
//! ([`crate::ClusterDriver::set_underlay`]) and every remote endpoint it learns from the cluster
//! store ([`crate::ClusterDriver::add_remote`]).

mod datapath;
mod driver;
mod options;

pub use datapath::{
    mtu_over, DataPath, Remote, Segment, BRIDGE, DEFAULT_VXLAN_PORT, VXLAN, VXLAN_OVERHEAD,
};
pub use driver::{OverlayDriver, Underlay, NAME};
pub use options::{OverlayConfig, MAX_VNI};
