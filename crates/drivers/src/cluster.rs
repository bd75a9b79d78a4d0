//! What a cluster-wide driver does beyond a local one. Such a driver does not know the
//! cluster: the daemon tells it this node's underlay, gives each network the VXLAN id it
//! claimed in the cluster store, and hands it the endpoints of other nodes as the store
//! reports them. The daemon reaches the overlay datapath only through this trait.

use async_trait::async_trait;

use crate::{Driver, DriverError};

pub use crate::overlay::{Remote, Underlay, DEFAULT_VXLAN_PORT};

#[async_trait]
pub trait ClusterDriver: Driver {
    /// The network's VXLAN id in its config (what the driver made of `-o vxlan-id`): 0 until
    /// the cluster gives it one.
    fn vni(&self, config: &serde_json::Value) -> u32;

    /// The config with the VXLAN id the cluster gave the network.
    fn with_vni(&self, config: &serde_json::Value, vni: u32) -> serde_json::Value;

    /// This node's underlay, once it is in a cluster (`None` once it has left).
    fn set_underlay(&self, underlay: Option<Underlay>);

    /// An endpoint on another node: its entries on the network's segment, now if this node
    /// has the segment, else when it is made. Idempotent.
    async fn add_remote(&self, vni: u32, endpoint: &str, remote: Remote)
        -> Result<(), DriverError>;

    /// A remote endpoint's entries taken out. Idempotent.
    async fn remove_remote(&self, vni: u32, endpoint: &str) -> Result<(), DriverError>;

    /// The kernel entries of remote endpoints the daemon did not report (those that left
    /// while it was not watching) removed, on every segment this node has.
    async fn prune(&self) -> Result<(), DriverError>;
}
