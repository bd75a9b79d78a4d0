//! Publishing ports on an endpoint that already exists (`netctl network publish`, and what
//! Docker's ProgramExternalConnectivity asks for).

use netctl_plugin_api::ports::PortMapping;
use netctl_store::Batch;

use super::effects::Effect;
use super::ports::forwards_of;
use super::state::State;
use super::txn::Txn;
use super::Controller;
use crate::controller::error::EngineError;
use crate::model::{EndpointRecord, NetworkRecord, PublishedPort};
use crate::persist::BatchExt;

impl Controller {
    /// Adds `mappings` to the sandbox's endpoint on `network`; returns them with their host
    /// ports decided. All of them, or none.
    pub async fn publish(
        &self,
        network: &str,
        sandbox: &str,
        mappings: &[PortMapping],
    ) -> Result<Vec<PortMapping>, EngineError> {
        self.publish_for(network, sandbox, mappings, None).await
    }

    /// [`Controller::publish`], the ports recorded as `service`'s when it is given (a
    /// service's publishing, which may use the gateway bridge).
    pub(super) async fn publish_for(
        &self,
        network: &str,
        sandbox: &str,
        mappings: &[PortMapping],
        service: Option<&str>,
    ) -> Result<Vec<PortMapping>, EngineError> {
        let (net_id, sandbox_id) = self.ids_of(network, sandbox).await?;
        let _held = self.locks.hold(&[&net_id], &[], &[&sandbox_id]).await;
        let (taken, _) = self
            .transact(|state| {
                let endpoint = endpoint_of(state, &net_id, network, &sandbox_id, sandbox)?;
                // endpoint_of found the network under this same state lock.
                let net = state
                    .network_by_id(&net_id)
                    .cloned()
                    .expect("endpoint_of found the network");
                self.plan_publish_for(state, &net, &endpoint, mappings, service)
            })
            .await?;
        Ok(taken.into_iter().map(|p| mapping(&p)).collect())
    }

    /// Withdraws exactly `ports` from the sandbox's endpoint on the network.
    pub(super) async fn withdraw(
        &self,
        net_id: &str,
        sandbox_id: &str,
        ports: &[PublishedPort],
    ) -> Result<(), EngineError> {
        let _held = self.locks.hold(&[net_id], &[], &[sandbox_id]).await;
        let (_, done) = self
            .transact(|state| {
                let endpoint = endpoint_of(state, net_id, net_id, sandbox_id, sandbox_id)?;
                let removed: Vec<PublishedPort> = endpoint
                    .ports
                    .iter()
                    .filter(|p| ports.contains(p))
                    .cloned()
                    .collect();
                Ok((Self::plan_unpublish(state, &endpoint, &removed), ()))
            })
            .await?;
        done.into_result("unpublished")
    }

    pub(super) async fn ids_of(
        &self,
        network: &str,
        sandbox: &str,
    ) -> Result<(String, String), EngineError> {
        let state = self.state.lock().await;
        Ok((
            state.network(network)?.id.clone(),
            state.sandbox(sandbox)?.id.clone(),
        ))
    }

    /// Takes the host ports and records them on the endpoint; returns the transaction that
    /// publishes them, and the ports as taken.
    pub(super) fn plan_publish(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        endpoint: &EndpointRecord,
        mappings: &[PortMapping],
    ) -> Result<(Txn, Vec<PublishedPort>), EngineError> {
        self.plan_publish_for(state, net, endpoint, mappings, None)
    }

    fn plan_publish_for(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        endpoint: &EndpointRecord,
        mappings: &[PortMapping],
        service: Option<&str>,
    ) -> Result<(Txn, Vec<PublishedPort>), EngineError> {
        let publishes = self.capabilities(net)?.publishes_ports || service.is_some();
        if !publishes || net.internal {
            return Err(EngineError::invalid(format!(
                "ports cannot be published on network {}",
                net.name
            )));
        }
        let how = state.reservation_for(endpoint);
        let mut taken = state.take_ports(
            net,
            mappings,
            endpoint.ipv4.is_some(),
            endpoint.ipv6.is_some(),
            how,
        )?;
        for port in &mut taken {
            port.service = service.map(str::to_string);
        }
        let mut updated = endpoint.clone();
        updated.ports.extend(taken.iter().cloned());
        state.insert_endpoint(updated.clone());
        let mut txn = Txn::new(format!("publish on endpoint {}", endpoint.id));
        txn.persist = Batch::new().put_record(&updated);
        txn.revert = Batch::new().put_record(endpoint);
        txn.effects = vec![Effect::Publish(forwards_of(endpoint, &taken))];
        let (before, released) = (endpoint.clone(), taken.clone());
        txn.unplan = Box::new(move |state: &mut State| {
            state.ports.release_all(&released);
            state.insert_endpoint(before);
        });
        Ok((txn, taken))
    }

    /// Removes the endpoint's published ports that match `mappings` (by host address, host
    /// port and protocol), or all of them when `mappings` is empty.
    pub async fn unpublish(
        &self,
        network: &str,
        sandbox: &str,
        mappings: &[PortMapping],
    ) -> Result<(), EngineError> {
        let (net_id, sandbox_id) = self.ids_of(network, sandbox).await?;
        let _held = self.locks.hold(&[&net_id], &[], &[&sandbox_id]).await;
        let (_, done) = self
            .transact(|state| {
                let endpoint = endpoint_of(state, &net_id, network, &sandbox_id, sandbox)?;
                let matches = |p: &PublishedPort| {
                    mappings.is_empty()
                        || mappings.iter().any(|m| {
                            m.proto.name() == p.transport.name()
                                && m.host_port == p.host_port
                                && m.host_ip == p.host_ip
                        })
                };
                let removed: Vec<_> = endpoint
                    .ports
                    .iter()
                    .filter(|p| matches(p))
                    .cloned()
                    .collect();
                if removed.is_empty() {
                    return Err(EngineError::not_found(
                        "no such published port on this endpoint",
                    ));
                }
                Ok((Self::plan_unpublish(state, &endpoint, &removed), ()))
            })
            .await?;
        done.into_result("unpublished")
    }

    /// Takes `removed` off the endpoint (their host ports given back); returns the
    /// transaction that withdraws them.
    pub(super) fn plan_unpublish(
        state: &mut State,
        endpoint: &EndpointRecord,
        removed: &[PublishedPort],
    ) -> Txn {
        let mut updated = endpoint.clone();
        updated.ports.retain(|p| !removed.contains(p));
        state.insert_endpoint(updated.clone());
        state.ports.release_all(removed);
        let mut txn = Txn::new(format!("unpublish on endpoint {}", endpoint.id));
        txn.persist = Batch::new().put_record(&updated);
        txn.effects = vec![Effect::Unpublish(forwards_of(endpoint, removed))];
        let (before, retaken) = (endpoint.clone(), removed.to_vec());
        let how = state.reservation_for(endpoint).again();
        txn.unplan = Box::new(move |state: &mut State| {
            if let Err(e) = state.ports.retake_all(&retaken, how) {
                tracing::error!(error = %e, "cannot hold published ports again");
            }
            state.insert_endpoint(before);
        });
        txn
    }
}

/// The endpoint of the sandbox on the network, by the ids looked up before the locks.
fn endpoint_of(
    state: &State,
    net_id: &str,
    network: &str,
    sandbox_id: &str,
    sandbox: &str,
) -> Result<EndpointRecord, EngineError> {
    let net = state
        .network_by_id(net_id)
        .ok_or_else(|| EngineError::not_found(format!("network {network} not found")))?;
    let sbx = state
        .sandbox_by_id(sandbox_id)
        .ok_or_else(|| EngineError::not_found(format!("sandbox {sandbox} not found")))?;
    state
        .attachment(net_id, sandbox_id)
        .cloned()
        .ok_or_else(|| {
            EngineError::not_found(format!(
                "sandbox {} is not connected to network {}",
                sbx.name, net.name
            ))
        })
}

/// A published port as the API shows it.
pub(super) fn mapping(port: &PublishedPort) -> PortMapping {
    PortMapping {
        proto: port.transport.into(),
        host_ip: port.host_ip,
        host_port: port.host_port,
        host_port_end: port.host_port,
        container_port: port.container_port,
    }
}
