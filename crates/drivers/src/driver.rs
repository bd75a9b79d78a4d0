//! What a driver is asked to build, and the trait every driver implements.

use std::future::Future;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::netns::Netns;
use crate::DriverError;

/// The kernel-facing description of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub id: String,
    /// Name of the bridge device (bridge driver).
    pub bridge: String,
    /// The bridge's MAC, fixed so that it does not change as ports come and go.
    pub bridge_mac: [u8; 6],
    pub mtu: u32,
    /// Inter-container communication on this network.
    pub icc: bool,
    /// No traffic in or out of the subnet.
    pub internal: bool,
    /// Gateway address and subnet prefix per subnet, e.g. `172.30.0.1/24`.
    pub gateways: Vec<IpNetwork>,
}

impl NetworkSpec {
    /// The subnets, from the gateway addresses.
    pub fn subnets(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        self.gateways
            .iter()
            .map(|g| IpNetwork::new(g.network(), g.prefix()).expect("same prefix"))
    }
}

/// The kernel-facing description of one endpoint: one interface in one sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    /// Name of the host end of the veth.
    pub host_ifname: String,
    /// Name of the interface inside the sandbox (eth0, eth1…).
    pub ifname: String,
    pub mac: [u8; 6],
    pub mtu: u32,
    /// Addresses with the subnet prefix, e.g. `172.30.0.130/24`.
    pub addresses: Vec<IpNetwork>,
    /// Default routes through these gateways (none on internal networks).
    pub gateways: Vec<IpAddr>,
    /// Metric of the default routes: the first network a sandbox joined keeps the lowest.
    pub route_metric: u32,
}

/// A network driver. Every method is idempotent: on a second call with the same arguments it
/// finds its objects in place and changes nothing.
pub trait NetworkDriver: Send + Sync {
    /// Creates (or re-asserts) the network's kernel objects.
    fn create_network(
        &self,
        net: &NetworkSpec,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Removes the network's kernel objects; missing objects are not an error.
    fn delete_network(
        &self,
        net: &NetworkSpec,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Plugs the sandbox into the network.
    fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        sandbox: &Netns,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;

    /// Unplugs the sandbox; a missing interface is not an error.
    fn leave(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
    ) -> impl Future<Output = Result<(), DriverError>> + Send;
}
