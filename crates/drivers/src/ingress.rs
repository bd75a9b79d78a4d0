//! The ingress network (swarm's routing mesh): the one overlay every node joins so that a
//! port a service publishes answers on every node. Its kernel objects are an overlay's (a
//! segment per node, VXLAN between nodes); what differs is its role: its endpoints are the
//! nodes' ingress sandboxes and the published services' replicas, it serves no DNS names,
//! and a cluster has one of it.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;

use crate::cluster::{Remote, Underlay};
use crate::overlay::OverlayDriver;
use crate::{
    Capabilities, ClusterDriver, Driver, DriverError, EndpointSpec, JoinTarget, NetworkDefaults,
    NetworkRole, NetworkSettings, NetworkSpec, Wanted,
};

/// The driver's name, and the name of the network a cluster starts with.
pub const INGRESS: &str = "ingress";

/// Docker's ingress subnet.
pub const DEFAULT_SUBNET: &str = "10.0.0.0/24";

pub struct IngressDriver {
    overlay: Arc<OverlayDriver>,
}

impl IngressDriver {
    pub fn new(overlay: Arc<OverlayDriver>) -> Self {
        Self { overlay }
    }
}

#[async_trait]
impl Driver for IngressDriver {
    fn name(&self) -> &'static str {
        INGRESS
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            // Nobody resolves a replica by its ingress address: its names are on its own
            // overlay.
            serves_dns: false,
            role: NetworkRole::Ingress,
            ..self.overlay.capabilities()
        }
    }

    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError> {
        let settings = self.overlay.parse_options(options, defaults)?;
        if settings.internal {
            return Err(DriverError::InvalidOption(
                "an ingress network cannot be internal: it carries published ports".into(),
            ));
        }
        Ok(settings)
    }

    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.overlay.create_network(net).await
    }

    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.overlay.delete_network(net).await
    }

    async fn restore_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.overlay.restore_network(net).await
    }

    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        target: JoinTarget<'_>,
    ) -> Result<(), DriverError> {
        self.overlay.join(net, ep, target).await
    }

    fn runtime_interface(&self, ep: &EndpointSpec) -> Option<String> {
        self.overlay.runtime_interface(ep)
    }

    async fn leave(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), DriverError> {
        self.overlay.leave(net, ep).await
    }

    /// Nothing of its own: the overlay driver collects these segments with its own.
    async fn collect_garbage(&self, _wanted: &Wanted) -> Result<(), DriverError> {
        Ok(())
    }

    fn collected_by(&self) -> &'static str {
        self.overlay.name()
    }

    fn inspect_options(&self, net: &NetworkSpec) -> BTreeMap<String, String> {
        self.overlay.inspect_options(net)
    }

    fn device(&self, net: &NetworkSpec) -> Option<String> {
        self.overlay.device(net)
    }
}

/// The ingress network's segment is an overlay segment: the overlay driver keeps it.
#[async_trait]
impl ClusterDriver for IngressDriver {
    fn vni(&self, config: &serde_json::Value) -> u32 {
        self.overlay.vni(config)
    }

    fn with_vni(&self, config: &serde_json::Value, vni: u32) -> serde_json::Value {
        ClusterDriver::with_vni(self.overlay.as_ref(), config, vni)
    }

    fn set_underlay(&self, underlay: Option<Underlay>) {
        ClusterDriver::set_underlay(self.overlay.as_ref(), underlay)
    }

    async fn add_remote(
        &self,
        vni: u32,
        endpoint: &str,
        remote: Remote,
    ) -> Result<(), DriverError> {
        ClusterDriver::add_remote(self.overlay.as_ref(), vni, endpoint, remote).await
    }

    async fn remove_remote(&self, vni: u32, endpoint: &str) -> Result<(), DriverError> {
        ClusterDriver::remove_remote(self.overlay.as_ref(), vni, endpoint).await
    }

    async fn prune(&self) -> Result<(), DriverError> {
        ClusterDriver::prune(self.overlay.as_ref()).await
    }
}
