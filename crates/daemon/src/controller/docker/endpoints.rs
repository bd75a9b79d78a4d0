//! NetworkDriver endpoint calls: a veth per Docker endpoint, left in this namespace for
//! dockerd, and its published ports.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use plugin_api::docker::{
    Connectivity, CreateEndpoint, CreateEndpointResponse, EndpointInterface, InterfaceName,
    JoinResponse, PortBinding, PORTMAP_OPTION,
};
use plugin_api::ports::{PortMapping, Protocol};
use plugin_api::ApiError;

use crate::controller::drivers::{endpoint_spec, network_spec};
use crate::controller::errors::{from_daemon, from_driver};
use crate::controller::Controller;
use crate::model::{format_mac, generate_mac, parse_mac, EndpointRecord, NetworkRecord};
use crate::store::Change;

fn interface_address(text: &str) -> Result<Option<IpNetwork>, ApiError> {
    match text {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|_| ApiError::invalid(format!("invalid interface address {text:?}"))),
    }
}

/// Docker's `com.docker.network.portmap` entries as netctl's mappings.
fn port_mappings(
    options: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Vec<PortMapping>, ApiError> {
    let Some(value) = options.get(PORTMAP_OPTION).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let bindings: Vec<PortBinding> = serde_json::from_value(value.clone())
        .map_err(|e| ApiError::invalid(format!("invalid port map: {e}")))?;
    bindings
        .iter()
        .map(|b| {
            let proto = match b.proto {
                6 => Protocol::Tcp,
                17 => Protocol::Udp,
                132 => Protocol::Sctp,
                other => {
                    return Err(ApiError::invalid(format!(
                        "unknown protocol number {other}"
                    )))
                }
            };
            let host_ip = match b.host_ip.as_str() {
                "" => None,
                text => Some(
                    text.parse::<IpAddr>()
                        .map_err(|_| ApiError::invalid(format!("invalid host address {text:?}")))?,
                ),
            };
            Ok(PortMapping {
                proto,
                host_ip,
                host_port: b.host_port,
                host_port_end: b.host_port_end.max(b.host_port),
                container_port: b.port,
            })
        })
        .collect()
}

/// The endpoint dockerd asks for, and whether netctl chose its MAC (dockerd gave none).
fn endpoint_record(
    net: &NetworkRecord,
    req: CreateEndpoint,
) -> Result<(EndpointRecord, bool), ApiError> {
    let interface = req.interface.unwrap_or_default();
    let ipv4 = interface_address(&interface.address)?;
    let ipv6 = interface_address(&interface.address_ipv6)?;
    let given_mac = match interface.mac_address.as_str() {
        "" => None,
        text => Some(
            parse_mac(text)
                .ok_or_else(|| ApiError::invalid(format!("invalid MAC address {text:?}")))?,
        ),
    };
    // As Docker's bridge driver does: 02:42 and the IPv4 address.
    let mac = given_mac.unwrap_or_else(|| generate_mac(ipv4.map(|a| a.ip())));
    let short = &req.endpoint_id[..req.endpoint_id.len().min(12)];
    let record = EndpointRecord {
        ifname: format!("{}{short}", ::drivers::DOCKER_PEER_PREFIX),
        host_ifname: format!("{}{short}", ::drivers::VETH_PREFIX),
        id: req.endpoint_id,
        network_id: net.id.clone(),
        sandbox_id: String::new(),
        mac: Some(mac),
        ipv4,
        ipv6,
        aliases: Vec::new(),
        route_metric: 0,
        ports: Vec::new(),
        docker: true,
        joined: false,
    };
    Ok((record, given_mac.is_none()))
}

impl Controller {
    pub(super) async fn docker_create_endpoint(
        &self,
        req: CreateEndpoint,
    ) -> Result<CreateEndpointResponse, ApiError> {
        let mut state = self.state.lock().await;
        if state.endpoints.contains_key(&req.endpoint_id) {
            return Ok(CreateEndpointResponse::default());
        }
        let net = state
            .docker_network(&req.network_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("network {} not found", req.network_id)))?;
        let (endpoint, mac_generated) = endpoint_record(&net, req)?;
        self.store
            .apply(&[Change::PutEndpoint(&endpoint)])
            .map_err(from_daemon)?;
        let made = self
            .drivers
            .bridge
            .ensure_docker_port(&network_spec(&net), &endpoint_spec(&net, &endpoint))
            .await;
        if let Err(e) = made {
            let _ = self.drivers.leave(&net, &endpoint).await;
            let _ = self.store.apply(&[Change::DeleteEndpoint(&endpoint.id)]);
            return Err(from_driver(e));
        }
        let mac = endpoint.mac.unwrap_or_default();
        state.endpoints.insert(endpoint.id.clone(), endpoint);
        // Only a field dockerd left empty may be filled in.
        Ok(CreateEndpointResponse {
            interface: mac_generated.then(|| EndpointInterface {
                mac_address: format_mac(&mac),
                ..Default::default()
            }),
        })
    }

    /// Idempotent: dockerd swallows this call's errors.
    pub(super) async fn docker_delete_endpoint(&self, endpoint_id: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let Some(endpoint) = state.docker_endpoint(endpoint_id).cloned() else {
            return Ok(());
        };
        self.store
            .apply(&[Change::DeleteEndpoint(endpoint_id)])
            .map_err(from_daemon)?;
        state.endpoints.remove(endpoint_id);
        state.ports.release_all(&endpoint.ports);
        self.withdraw_ports(&endpoint).await;
        if let Some(net) = state.networks.get(&endpoint.network_id) {
            self.drivers
                .bridge
                .delete_docker_port_later(&endpoint_spec(net, &endpoint));
        }
        Ok(())
    }

    /// The veth for dockerd to move, and the gateways (none on an internal network: without
    /// a gateway in the answer dockerd would add its docker_gwbridge to the container).
    pub(super) async fn docker_join(&self, endpoint_id: &str) -> Result<JoinResponse, ApiError> {
        let mut state = self.state.lock().await;
        let mut endpoint = state
            .docker_endpoint(endpoint_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("endpoint {endpoint_id} not found")))?;
        // Remembered so that, should dockerd delete the endpoint while netctl is down, the
        // veth it hands back is recognised as left over (see reconcile).
        if !endpoint.joined {
            endpoint.joined = true;
            self.store
                .apply(&[Change::PutEndpoint(&endpoint)])
                .map_err(from_daemon)?;
            state
                .endpoints
                .insert(endpoint.id.clone(), endpoint.clone());
        }
        let net = &state.networks[&endpoint.network_id];
        let gateway_of = |address: Option<IpNetwork>| {
            address
                .and_then(|a| net.subnets.iter().find(|s| s.subnet.contains(a.ip())))
                .filter(|_| !net.internal)
                .map(|s| s.gateway.to_string())
                .unwrap_or_default()
        };
        Ok(JoinResponse {
            interface_name: InterfaceName {
                src_name: endpoint.ifname.clone(),
                dst_prefix: "eth".into(),
            },
            gateway: gateway_of(endpoint.ipv4),
            gateway_ipv6: gateway_of(endpoint.ipv6),
            disable_gateway_service: false,
        })
    }

    /// `-p` / `-P`: dockerd programs nothing for a remote driver; host ports of 0 are
    /// netctl's to choose.
    pub(super) async fn docker_publish(&self, req: Connectivity) -> Result<(), ApiError> {
        let mappings = port_mappings(&req.options)?;
        if mappings.is_empty() {
            return Ok(());
        }
        let mut state = self.state.lock().await;
        let endpoint = state
            .docker_endpoint(&req.endpoint_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::not_found(format!("endpoint {} not found", req.endpoint_id))
            })?;
        let net = state.networks[&endpoint.network_id].clone();
        // Published again after a gateway change: what it had goes first.
        self.docker_withdraw(&mut state, &endpoint).await?;
        let endpoint = state.endpoints[&req.endpoint_id].clone();
        self.publish_endpoint(&mut state, &net, &endpoint, &mappings)
            .await
            .map(drop)
    }

    pub(super) async fn docker_unpublish(&self, endpoint_id: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let Some(endpoint) = state.docker_endpoint(endpoint_id).cloned() else {
            return Ok(());
        };
        self.docker_withdraw(&mut state, &endpoint).await
    }

    async fn docker_withdraw(
        &self,
        state: &mut crate::controller::state::State,
        endpoint: &EndpointRecord,
    ) -> Result<(), ApiError> {
        if endpoint.ports.is_empty() {
            return Ok(());
        }
        let updated = EndpointRecord {
            ports: Vec::new(),
            ..endpoint.clone()
        };
        self.store
            .apply(&[Change::PutEndpoint(&updated)])
            .map_err(from_daemon)?;
        state.ports.release_all(&endpoint.ports);
        self.withdraw_ports(endpoint).await;
        state.endpoints.insert(updated.id.clone(), updated);
        Ok(())
    }
}
