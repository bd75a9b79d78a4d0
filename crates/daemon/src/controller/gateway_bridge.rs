//! The gateway bridge network (`gwbridge`, Docker's `docker_gwbridge`): made when the node
//! enters a cluster, joined by every sandbox on a non-internal overlay as its way out, and
//! removed when the node leaves and nothing uses it.

use netctl_drivers::{Capabilities, NetworkRole};
use netctl_plugin_api::NetworkCreateRequest;

use super::endpoints::EndpointRequest;
use super::state::State;
use super::txn::Txn;
use super::Controller;
use crate::controller::error::EngineError;
use crate::model::{EndpointRecord, NetworkRecord, SandboxRecord, SandboxRole};

/// Whether a sandbox on `net` leaves the node through the gateway bridge.
pub(super) fn exits_via_gateway_bridge(net: &NetworkRecord, caps: &Capabilities) -> bool {
    caps.exits_via_gateway_bridge && !net.internal
}

impl Controller {
    /// Makes the gateway bridge network unless it exists, from the default address pools.
    pub(super) async fn ensure_gateway_bridge(&self) -> Result<(), EngineError> {
        if self.gateway_bridge().await.is_some() {
            return Ok(());
        }
        let driver = self.gateway_bridge_driver()?;
        let made = self
            .create_network(NetworkCreateRequest {
                name: driver.into(),
                driver: Some(driver.into()),
                ..Default::default()
            })
            .await;
        match made {
            Ok(_) => Ok(()),
            // Made by a concurrent request meanwhile.
            Err(_) if self.gateway_bridge().await.is_some() => Ok(()),
            Err(e) => Err(e.context(format!("cannot make the gateway bridge network {driver}"))),
        }
    }

    /// Makes it when joining `network` needs it (a non-internal overlay).
    pub(super) async fn ensure_gateway_bridge_for(&self, network: &str) -> Result<(), EngineError> {
        let needed = {
            let state = self.state.lock().await;
            let net = state.network(network)?;
            exits_via_gateway_bridge(net, &self.capabilities(net)?)
        };
        if needed {
            self.ensure_gateway_bridge().await?;
        }
        Ok(())
    }

    async fn gateway_bridge(&self) -> Option<NetworkRecord> {
        let state = self.state.lock().await;
        self.gateway_bridge_in(&state).cloned()
    }

    /// The gateway bridge network, when it is made.
    pub(super) fn gateway_bridge_in<'s>(&self, state: &'s State) -> Option<&'s NetworkRecord> {
        state
            .networks()
            .find(|n| self.role(n) == NetworkRole::GatewayBridge)
    }

    /// The name of the driver that makes the gateway bridge; its network has that name too
    /// (`gwbridge`).
    fn gateway_bridge_driver(&self) -> Result<&'static str, EngineError> {
        self.drivers
            .with_role(NetworkRole::GatewayBridge)
            .map(|d| d.name())
            .ok_or_else(|| EngineError::internal("this daemon has no gateway bridge driver"))
    }

    /// The connect to the gateway bridge that joining `net` brings along, if the sandbox
    /// has none yet. Its interface comes after the overlay's, with the default route.
    pub(super) fn plan_gateway_bridge(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        sandbox: &SandboxRecord,
    ) -> Result<Option<Txn>, EngineError> {
        // A load balancer only answers on its network; the ingress sandbox's leg on the
        // gateway bridge is where the node hands it published traffic.
        if !sandbox.mode.has_own_namespace()
            || sandbox.role == SandboxRole::LoadBalancer
            || !exits_via_gateway_bridge(net, &self.capabilities(net)?)
        {
            return Ok(None);
        }
        let gateway = self.gateway_bridge_in(state).cloned().ok_or_else(|| {
            EngineError::unavailable(
                "the gateway bridge network is missing; it is made again on the next connect",
            )
        })?;
        if state.attachment(&gateway.id, &sandbox.id).is_some() {
            return Ok(None);
        }
        let wanted = EndpointRequest::parse(&Default::default())?;
        self.plan_connect(state, &gateway, sandbox, wanted)
            .map(Some)
    }

    /// The sandbox's gateway bridge endpoint, when no network it is still on needs it.
    fn unneeded_gateway_endpoint(&self, state: &State, sandbox_id: &str) -> Option<EndpointRecord> {
        let mut gateway_endpoint = None;
        for ep in state.endpoints_of_sandbox(sandbox_id) {
            let Some(net) = state.network_by_id(&ep.network_id) else {
                continue;
            };
            if self.role(net) == NetworkRole::GatewayBridge {
                gateway_endpoint = Some(ep.clone());
            } else if self
                .capabilities(net)
                .is_ok_and(|caps| exits_via_gateway_bridge(net, &caps))
            {
                return None;
            }
        }
        gateway_endpoint
    }

    /// Disconnects the sandbox from the gateway bridge once nothing it is on needs it.
    pub(super) async fn release_gateway_bridge(&self, sandbox_id: &str) -> Result<(), EngineError> {
        let found = {
            let state = self.state.lock().await;
            self.unneeded_gateway_endpoint(&state, sandbox_id)
                .map(|ep| (ep.network_id.clone(), ep.sandbox_id.clone()))
        };
        if let Some((network_id, Some(sandbox_id))) = found {
            self.disconnect_one(&network_id, &sandbox_id).await?;
        }
        Ok(())
    }

    /// After leaving the cluster: every sandbox's gateway endpoint that no network needs any
    /// more goes, then the network itself when nothing is left on it.
    pub(super) async fn drop_gateway_bridge(&self) -> Result<(), EngineError> {
        let Some(gateway) = self.gateway_bridge().await else {
            return Ok(());
        };
        let sandboxes: Vec<String> = {
            let state = self.state.lock().await;
            state
                .endpoints_of_network(&gateway.id)
                .filter_map(|e| e.sandbox_id.clone())
                .collect()
        };
        for sandbox in sandboxes {
            self.release_gateway_bridge(&sandbox).await?;
        }
        let unused = self
            .state
            .lock()
            .await
            .endpoints_of_network(&gateway.id)
            .next()
            .is_none();
        if unused {
            self.remove_network(&gateway.id).await?;
        }
        Ok(())
    }
}
