//! The gateway bridge (Docker's `docker_gwbridge`): one local bridge per cluster node that
//! gives sandboxes on overlay networks their way out. An overlay is east–west only; every
//! endpoint on a non-internal overlay also gets an interface here, with the sandbox's default
//! route, and leaves the node masqueraded to the node's own address.
//!
//! Its kernel objects are a bridge network's (made by [`BridgeDriver`]); what differs are
//! the defaults and the role: inter-container communication off (sandboxes meet on their
//! overlays, not here), no published ports and no DNS names of its own.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::bridge::{parse_options_icc_off, BridgeDriver};
use crate::firewall::FirewallNetwork;
use crate::{
    Capabilities, Driver, DriverError, EndpointSpec, JoinTarget, NetworkDefaults, NetworkRole,
    NetworkSettings, NetworkSpec, SandboxNamespace, Scope, Wanted,
};

/// The driver's name, and the name of the network the daemon makes with it.
pub const GATEWAY_BRIDGE: &str = "gwbridge";

/// Docker's option for masquerading; the gateway bridge exists to masquerade, so only
/// `true` is accepted.
const OPT_MASQUERADE: [&str; 2] = [
    "masquerade",
    "com.docker.network.bridge.enable_ip_masquerade",
];

#[derive(Debug, Clone)]
pub struct GatewayBridgeDriver {
    bridge: BridgeDriver,
}

impl GatewayBridgeDriver {
    pub fn new(bridge: BridgeDriver) -> Self {
        Self { bridge }
    }
}

#[async_trait]
impl Driver for GatewayBridgeDriver {
    fn name(&self) -> &'static str {
        GATEWAY_BRIDGE
    }

    fn host_link_prefixes(&self) -> &'static [&'static str] {
        self.bridge.host_link_prefixes()
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            addresses: true,
            gateway: true,
            publishes_ports: false,
            serves_dns: false,
            needs_cluster: false,
            namespace: SandboxNamespace::Own,
            exclusive: false,
            singleton: None,
            exits_via_gateway_bridge: false,
            role: NetworkRole::GatewayBridge,
        }
    }

    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError> {
        parse_options(options, defaults)
    }

    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.bridge.create_network(net).await
    }

    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.bridge.delete_network(net).await
    }

    async fn restore_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        self.bridge.restore_network(net).await
    }

    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        target: JoinTarget<'_>,
    ) -> Result<(), DriverError> {
        self.bridge.join(net, ep, target).await
    }

    fn runtime_interface(&self, ep: &EndpointSpec) -> Option<String> {
        self.bridge.runtime_interface(ep)
    }

    async fn leave(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), DriverError> {
        self.bridge.leave(net, ep).await
    }

    /// Nothing of its own: the bridge driver collects these links with its own.
    async fn collect_garbage(&self, _wanted: &Wanted) -> Result<(), DriverError> {
        Ok(())
    }

    fn collected_by(&self) -> &'static str {
        self.bridge.name()
    }

    async fn released_by_runtime(&self, net: &NetworkSpec, ep: &EndpointSpec) -> bool {
        self.bridge.released_by_runtime(net, ep).await
    }

    fn firewall(&self, net: &NetworkSpec) -> Option<FirewallNetwork> {
        self.bridge.firewall(net)
    }

    fn device(&self, net: &NetworkSpec) -> Option<String> {
        self.bridge.device(net)
    }
}

/// A bridge network's options, with ICC off by default, masquerading that cannot be turned
/// off and no internal mode.
fn parse_options(
    options: &BTreeMap<String, String>,
    defaults: &NetworkDefaults,
) -> Result<NetworkSettings, DriverError> {
    let mut options = options.clone();
    for key in OPT_MASQUERADE {
        if let Some(value) = options.remove(key) {
            if !crate::options::parse_bool(key, &value)? {
                return Err(DriverError::InvalidOption(format!(
                    "{key}=false: the gateway bridge is how overlay sandboxes reach the \
                     outside, masqueraded; use --internal overlays for none"
                )));
            }
        }
    }
    let settings = parse_options_icc_off(&options, defaults)?;
    if settings.internal {
        return Err(DriverError::InvalidOption(
            "a gateway bridge cannot be internal: it exists to reach the outside".into(),
        ));
    }
    Ok(settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pairs: &[(&str, &str)]) -> Result<NetworkSettings, DriverError> {
        let options = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        parse_options(&options, &NetworkDefaults { mtu: 1500 })
    }

    #[test]
    fn icc_is_off_unless_asked_and_masquerade_stays_on() {
        assert_eq!(parse(&[]).unwrap().config["icc"], false);
        assert_eq!(
            parse(&[("com.docker.network.bridge.enable_icc", "true")])
                .unwrap()
                .config["icc"],
            true
        );
        for key in OPT_MASQUERADE {
            assert!(parse(&[(key, "true")]).is_ok());
            let refused = parse(&[(key, "false")]).unwrap_err().to_string();
            assert!(refused.contains("masqueraded"), "{refused}");
        }
        assert!(parse(&[("internal", "true")]).is_err());
    }
}
