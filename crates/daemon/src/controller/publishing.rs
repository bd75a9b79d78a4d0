//! Publishing ports on an endpoint that already exists (`netctl network publish`, and what
//! Docker's ProgramExternalConnectivity asks for).

use drivers::firewall::Firewall;
use plugin_api::ports::PortMapping;
use plugin_api::ApiError;

use super::errors::{from_daemon, from_driver};
use super::state::State;
use super::{conntrack, ports, Controller};
use crate::model::{DriverKind, EndpointRecord, NetworkRecord};
use crate::store::Change;

impl Controller {
    /// Adds `mappings` to the sandbox's endpoint on `network`; returns them with their host
    /// ports decided. All of them, or none.
    pub async fn publish(
        &self,
        network: &str,
        sandbox: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<PortMapping>, ApiError> {
        let mut state = self.state.lock().await;
        let net = state.network(network)?.clone();
        let endpoint = self.endpoint_of(&state, &net.id, &net.name, sandbox)?;
        self.publish_endpoint(&mut state, &net, &endpoint, mappings)
            .await
    }

    /// Publishes `mappings` on `endpoint` (persisted, then programmed; all or none).
    pub(super) async fn publish_endpoint(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        endpoint: &EndpointRecord,
        mappings: &[PortMapping],
    ) -> Result<Vec<PortMapping>, ApiError> {
        if net.driver != DriverKind::Bridge || net.internal {
            return Err(ApiError::invalid(format!(
                "ports cannot be published on network {}",
                net.name
            )));
        }
        let taken = state.take_ports(
            net,
            mappings,
            endpoint.ipv4.is_some(),
            endpoint.ipv6.is_some(),
        )?;
        let mut updated = endpoint.clone();
        updated.ports.extend(taken.iter().cloned());
        if let Err(e) = self.store.apply(&[Change::PutEndpoint(&updated)]) {
            state.ports.release_all(&taken);
            return Err(from_daemon(e));
        }
        if let Err(e) = Firewall
            .publish(&ports::forwards_of(endpoint, &taken))
            .await
        {
            let _ = self.store.apply(&[Change::PutEndpoint(endpoint)]);
            state.ports.release_all(&taken);
            return Err(from_driver(e));
        }
        state.endpoints.insert(updated.id.clone(), updated);
        Ok(taken)
    }

    /// Removes the endpoint's published ports that match `mappings` (by host address, host
    /// port and protocol), or all of them when `mappings` is empty.
    pub async fn unpublish(
        &self,
        network: &str,
        sandbox: &str,
        mappings: &[PortMapping],
    ) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let net = state.network(network)?.clone();
        let endpoint = self.endpoint_of(&state, &net.id, &net.name, sandbox)?;
        let matches = |p: &PortMapping| {
            mappings.is_empty()
                || mappings.iter().any(|m| {
                    m.proto == p.proto && m.host_port == p.host_port && m.host_ip == p.host_ip
                })
        };
        let (removed, kept): (Vec<_>, Vec<_>) =
            endpoint.ports.iter().cloned().partition(|p| matches(p));
        if removed.is_empty() {
            return Err(ApiError::not_found(
                "no such published port on this endpoint",
            ));
        }
        let updated = EndpointRecord {
            ports: kept,
            ..endpoint.clone()
        };
        self.store
            .apply(&[Change::PutEndpoint(&updated)])
            .map_err(from_daemon)?;
        state.endpoints.insert(updated.id.clone(), updated);
        state.ports.release_all(&removed);
        let forwards = ports::forwards_of(&endpoint, &removed);
        Firewall.unpublish(&forwards).await.map_err(from_driver)?;
        for f in forwards.iter().filter(|f| f.proto == "udp") {
            conntrack::forget_udp(f.target.is_ipv6(), f.host_port).await;
        }
        Ok(())
    }

    fn endpoint_of(
        &self,
        state: &super::state::State,
        network_id: &str,
        network_name: &str,
        sandbox: &str,
    ) -> Result<EndpointRecord, ApiError> {
        let sbx = state.sandbox(sandbox)?;
        state
            .endpoint(network_id, &sbx.record.id)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "sandbox {} is not connected to network {network_name}",
                    sbx.record.name
                ))
            })
    }
}
