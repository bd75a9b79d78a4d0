//! NetworkDriver endpoint calls: an interface per Docker endpoint, left by the driver in
//! this namespace for dockerd, and its published ports.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netctl_plugin_api::docker::{
    Connectivity, CreateEndpoint, CreateEndpointResponse, EndpointInterface, InterfaceName,
    JoinResponse, PortBinding, PORTMAP_OPTION,
};
use netctl_plugin_api::ports::{PortMapping, Protocol};
use netctl_store::Batch;

use crate::controller::effects::Effect;
use crate::controller::error::EngineError;
use crate::controller::gateway_bridge::exits_via_gateway_bridge;
use crate::controller::specs::{endpoint_spec, gateway_for, network_spec};
use crate::controller::state::State;
use crate::controller::txn::Txn;
use crate::controller::Controller;
use crate::model::{
    format_mac, generate_mac, parse_mac, DockerEndpointRecord, EndpointRecord, NetworkRecord,
};
use crate::persist::BatchExt;

fn interface_address(text: &str) -> Result<Option<IpNetwork>, EngineError> {
    match text {
        "" => Ok(None),
        text => text
            .parse()
            .map(Some)
            .map_err(|_| EngineError::invalid(format!("invalid interface address {text:?}"))),
    }
}

/// Docker's `com.docker.network.portmap` entries as netctl's mappings.
fn port_mappings(
    options: &std::collections::BTreeMap<String, serde_json::Value>,
) -> Result<Vec<PortMapping>, EngineError> {
    let Some(value) = options.get(PORTMAP_OPTION).filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let bindings: Vec<PortBinding> = serde_json::from_value(value.clone())
        .map_err(|e| EngineError::invalid(format!("invalid port map: {e}")))?;
    bindings
        .iter()
        .map(|b| {
            let proto = match b.proto {
                6 => Protocol::Tcp,
                17 => Protocol::Udp,
                132 => Protocol::Sctp,
                other => {
                    return Err(EngineError::invalid(format!(
                        "unknown protocol number {other}"
                    )))
                }
            };
            let host_ip =
                match b.host_ip.as_str() {
                    "" => None,
                    text => Some(text.parse::<IpAddr>().map_err(|_| {
                        EngineError::invalid(format!("invalid host address {text:?}"))
                    })?),
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
    node: &str,
    req: CreateEndpoint,
    leased_mac: Option<[u8; 6]>,
) -> Result<(EndpointRecord, bool), EngineError> {
    let interface = req.interface.unwrap_or_default();
    let ipv4 = interface_address(&interface.address)?;
    let ipv6 = interface_address(&interface.address_ipv6)?;
    let given_mac = match interface.mac_address.as_str() {
        "" => None,
        text => Some(
            parse_mac(text)
                .ok_or_else(|| EngineError::invalid(format!("invalid MAC address {text:?}")))?,
        ),
    };
    // The MAC its DHCP lease was asked with, else as Docker's bridge driver does: 02:42
    // and the IPv4 address.
    let mac = given_mac
        .or(leased_mac)
        .unwrap_or_else(|| generate_mac(ipv4.map(|a| a.ip())));
    let record = EndpointRecord {
        id: req.endpoint_id,
        names: Vec::new(),
        network_id: net.id.clone(),
        sandbox_id: None,
        node: node.to_string(),
        ifname: String::new(),
        mac: Some(mac),
        ipv4,
        ipv6,
        aliases: Vec::new(),
        route_metric: 0,
        ports: Vec::new(),
        balancer: false,
        chained: false,
        leases: Default::default(),
    };
    Ok((record, given_mac.is_none()))
}

/// What dockerd is told at Join: the interface to move, named `eth…` in the container, and
/// its gateways. An overlay carries no default route (`exits_elsewhere`): answered without a
/// gateway, dockerd gives the container its own docker_gwbridge for the way out, as it does
/// for its own overlays. On a DHCP network the router is the lease's.
fn join_answer(
    net: &NetworkRecord,
    endpoint: &EndpointRecord,
    exits_elsewhere: bool,
    leased_router: Option<IpAddr>,
) -> JoinResponse {
    let gateway = |address: Option<IpNetwork>| {
        address
            .filter(|_| !exits_elsewhere)
            .and_then(|a| gateway_for(net, a.ip()))
            .or(leased_router.filter(|r| address.is_some_and(|a| a.is_ipv4() == r.is_ipv4())))
            .map(|g| g.to_string())
            .unwrap_or_default()
    };
    JoinResponse {
        interface_name: InterfaceName {
            src_name: endpoint.ifname.clone(),
            dst_prefix: "eth".into(),
        },
        gateway: gateway(endpoint.ipv4),
        gateway_ipv6: gateway(endpoint.ipv6),
        disable_gateway_service: false,
    }
}

impl Controller {
    pub async fn docker_create_endpoint(
        &self,
        req: CreateEndpoint,
    ) -> Result<CreateEndpointResponse, EngineError> {
        let net_id = {
            let state = self.state.lock().await;
            if state.endpoint(&req.endpoint_id).is_some() {
                return Ok(CreateEndpointResponse::default());
            }
            state
                .docker_network(&req.network_id)
                .map(|n| n.id.clone())
                .ok_or_else(|| {
                    EngineError::not_found(format!("network {} not found", req.network_id))
                })?
        };
        let endpoint_id = req.endpoint_id.clone();
        let leased_mac = match req
            .interface
            .as_ref()
            .and_then(|i| interface_address(&i.address).ok().flatten())
        {
            Some(address) => self
                .docker_lease_of(address.ip())
                .await
                .map(|(_, leased)| leased.mac),
            None => None,
        };
        let _held = self.locks.hold(&[&net_id], &[], &[&endpoint_id]).await;
        let (filled, _) = self
            .transact_claiming(
                |state| {
                    let net = state.network_by_id(&net_id).cloned().ok_or_else(|| {
                        EngineError::not_found(format!("network {} not found", req.network_id))
                    })?;
                    if state.endpoint(&endpoint_id).is_some() {
                        return Ok((Txn::new("nothing to do"), Filled::default()));
                    }
                    self.plan_docker_endpoint(state, &net, &req, leased_mac)
                },
                crate::controller::endpoints::lost_address,
            )
            .await?;
        // Only a field dockerd left empty may be filled in.
        Ok(CreateEndpointResponse {
            interface: filled.mac.map(|mac| EndpointInterface {
                mac_address: format_mac(&mac),
                address: filled.address.map(|a| a.to_string()).unwrap_or_default(),
                ..Default::default()
            }),
        })
    }

    /// Records Docker's endpoint (its address taken here on a global network) and returns
    /// the transaction that makes its interface, for dockerd to move.
    fn plan_docker_endpoint(
        &self,
        state: &mut State,
        net: &NetworkRecord,
        req: &CreateEndpoint,
        leased_mac: Option<[u8; 6]>,
    ) -> Result<(Txn, Filled), EngineError> {
        let (mut endpoint, mut generated) =
            endpoint_record(net, &self.node.id, req.clone(), leased_mac)?;
        // A global network's addresses are the cluster's: dockerd (its IPAM null) gave none,
        // and hears which one in the answer.
        let chosen = if self.is_global(net) && endpoint.ipv4.is_none() {
            endpoint.ipv4 = state.allocate_address(net, false, None)?;
            if generated {
                endpoint.mac = Some(generate_mac(endpoint.ipv4.map(|a| a.ip())));
            }
            generated = true;
            endpoint.ipv4
        } else {
            None
        };
        let driver = self
            .drivers
            .get(&net.driver)
            .ok_or_else(|| EngineError::internal("no driver for Docker's networks"))?;
        endpoint.ifname = driver
            .runtime_interface(&endpoint_spec(net, &endpoint, false))
            .unwrap_or_default();
        let docker = DockerEndpointRecord {
            endpoint_id: endpoint.id.clone(),
            joined: false,
        };
        state.insert_endpoint(endpoint.clone());
        state
            .docker
            .endpoints
            .insert(endpoint.id.clone(), docker.clone());
        let mut txn = Txn::new(format!("create Docker endpoint {}", endpoint.id));
        let (persist, revert) = self.endpoint_records(net, &endpoint);
        txn.persist = persist.put_record(&docker);
        txn.revert = revert.delete_record::<DockerEndpointRecord>(&endpoint.id);
        txn.effects = vec![Effect::Join {
            driver: net.driver.clone(),
            net: network_spec(net),
            ep: endpoint_spec(net, &endpoint, false),
            sandbox: None,
        }];
        let filled = Filled {
            mac: endpoint.mac.filter(|_| generated),
            address: chosen,
        };
        let net = net.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.remove_endpoint(&endpoint.id);
            state.docker.endpoints.remove(&endpoint.id);
            if chosen.is_some() {
                state.release_endpoint(&net, &endpoint);
            }
        });
        Ok((txn, filled))
    }

    /// Idempotent: dockerd swallows this call's errors. The answer does not wait for the
    /// kernel to unregister the interface: dockerd waits for it, and would gain nothing.
    pub async fn docker_delete_endpoint(&self, endpoint_id: &str) -> Result<(), EngineError> {
        let Some(net_id) = self.docker_endpoint_network(endpoint_id).await else {
            return Ok(());
        };
        let _held = self.locks.hold(&[&net_id], &[], &[endpoint_id]).await;
        let (_, done) = self
            .transact(|state| {
                let (Some(endpoint), Some(net)) = (
                    state.endpoint(endpoint_id).cloned(),
                    state.network_by_id(&net_id).cloned(),
                ) else {
                    return Ok((Txn::new("nothing to do"), ()));
                };
                let docker = state.docker.endpoints.remove(endpoint_id);
                let mut txn = Txn::new(format!("delete Docker endpoint {endpoint_id}"));
                txn.persist = self
                    .endpoint_removal(&net, &endpoint)
                    .delete_record::<DockerEndpointRecord>(endpoint_id);
                txn.effects = self
                    .plan_leave(state, &net, None, &endpoint)
                    .into_iter()
                    .map(|effect| match effect {
                        Effect::Leave { driver, net, ep } => Effect::LeaveLater { driver, net, ep },
                        other => other,
                    })
                    .collect();
                txn.unplan = Box::new(move |state: &mut State| {
                    state.retake_endpoint(&net, &endpoint);
                    state.insert_endpoint(endpoint);
                    if let Some(docker) = docker {
                        state
                            .docker
                            .endpoints
                            .insert(docker.endpoint_id.clone(), docker);
                    }
                });
                Ok((txn, ()))
            })
            .await?;
        done.into_result("endpoint deleted")
    }

    /// The network of an endpoint dockerd made, if there is one.
    async fn docker_endpoint_network(&self, endpoint_id: &str) -> Option<String> {
        let state = self.state.lock().await;
        state.docker.endpoints.get(endpoint_id)?;
        state.endpoint(endpoint_id).map(|e| e.network_id.clone())
    }

    /// The interface for dockerd to move, and the gateways. dockerd adds its docker_gwbridge
    /// to a container whose non-internal networks answered none.
    pub async fn docker_join(
        &self,
        endpoint_id: &str,
        sandbox_key: &str,
    ) -> Result<JoinResponse, EngineError> {
        let not_found = || EngineError::not_found(format!("endpoint {endpoint_id} not found"));
        let net_id = self
            .docker_endpoint_network(endpoint_id)
            .await
            .ok_or_else(not_found)?;
        // On a DHCP network: the lease's router is the gateway.
        let leased = {
            let state = self.state.lock().await;
            state.endpoint(endpoint_id).and_then(|e| e.ipv4)
        };
        let leased_router = match leased {
            Some(address) => self.docker_lease_router(address.ip()).await,
            None => None,
        };
        let _held = self.locks.hold(&[&net_id], &[], &[endpoint_id]).await;
        let (answer, _) = self
            .transact(|state| {
                let endpoint = state.endpoint(endpoint_id).cloned().ok_or_else(not_found)?;
                let net = state
                    .network_by_id(&net_id)
                    .cloned()
                    .ok_or_else(not_found)?;
                let exits_elsewhere = exits_via_gateway_bridge(&net, &self.capabilities(&net)?);
                let answer = join_answer(&net, &endpoint, exits_elsewhere, leased_router);
                // Remembered so that, should dockerd delete the endpoint while netctl is
                // down, the interface it hands back is recognised as left over.
                let mut txn = Txn::new(format!("join Docker endpoint {endpoint_id}"));
                let joined = DockerEndpointRecord {
                    endpoint_id: endpoint_id.to_string(),
                    joined: true,
                };
                let before = state
                    .docker
                    .endpoints
                    .insert(endpoint_id.to_string(), joined.clone());
                if before.as_ref() != Some(&joined) {
                    txn.persist = Batch::new().put_record(&joined);
                }
                txn.unplan = Box::new(move |state: &mut State| {
                    if let Some(before) = before {
                        state
                            .docker
                            .endpoints
                            .insert(before.endpoint_id.clone(), before);
                    }
                });
                Ok((txn, answer))
            })
            .await?;
        if let Some(address) = leased {
            self.follow_docker_lease(address.ip(), sandbox_key).await;
        }
        Ok(answer)
    }

    /// `-p` / `-P`: dockerd programs nothing for a remote driver; host ports of 0 are
    /// netctl's to choose. Published again after a gateway change: what it had goes first.
    pub async fn docker_publish(&self, req: Connectivity) -> Result<(), EngineError> {
        let mappings = port_mappings(&req.options)?;
        if mappings.is_empty() {
            return Ok(());
        }
        let net_id = self
            .docker_endpoint_network(&req.endpoint_id)
            .await
            .ok_or_else(|| {
                EngineError::not_found(format!("endpoint {} not found", req.endpoint_id))
            })?;
        let _held = self.locks.hold(&[&net_id], &[], &[&req.endpoint_id]).await;
        self.docker_withdraw(&req.endpoint_id).await?;
        self.transact(|state| {
            let endpoint = state.endpoint(&req.endpoint_id).cloned().ok_or_else(|| {
                EngineError::not_found(format!("endpoint {} not found", req.endpoint_id))
            })?;
            let net = state.network_by_id(&net_id).cloned().ok_or_else(|| {
                EngineError::not_found(format!("endpoint {} not found", req.endpoint_id))
            })?;
            self.plan_publish(state, &net, &endpoint, &mappings)
        })
        .await?;
        Ok(())
    }

    pub async fn docker_unpublish(&self, endpoint_id: &str) -> Result<(), EngineError> {
        let Some(net_id) = self.docker_endpoint_network(endpoint_id).await else {
            return Ok(());
        };
        let _held = self.locks.hold(&[&net_id], &[], &[endpoint_id]).await;
        self.docker_withdraw(endpoint_id).await
    }

    /// Takes every published port off the endpoint (its locks held by the caller).
    async fn docker_withdraw(&self, endpoint_id: &str) -> Result<(), EngineError> {
        let (_, done) = self
            .transact(|state| {
                let Some(endpoint) = state.endpoint(endpoint_id).cloned() else {
                    return Ok((Txn::new("nothing to do"), ()));
                };
                if endpoint.ports.is_empty() {
                    return Ok((Txn::new("nothing to do"), ()));
                }
                let ports = endpoint.ports.clone();
                Ok((Self::plan_unpublish(state, &endpoint, &ports), ()))
            })
            .await?;
        done.into_result("ports withdrawn")
    }
}

/// What netctl filled in of an endpoint dockerd left open: the MAC it generated, and on a
/// global network the address it took.
#[derive(Default)]
struct Filled {
    mac: Option<[u8; 6]>,
    address: Option<IpNetwork>,
}

#[cfg(test)]
mod tests {
    use netctl_plugin_api::docker::{CreateEndpoint, EndpointInterface};

    use super::*;
    use crate::controller::executor::test::describe;
    use crate::controller::test_records::network;
    use crate::model::SubnetOwner;

    fn planned(interface: EndpointInterface) -> (Vec<String>, Filled, State) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let controller = Controller::for_unit_tests(dir.path());
        let mut state = State::new(netctl_ipam::Ipam::new(Vec::new(), Vec::new()));
        let net = network("n1", "web", "bridge", SubnetOwner::External);
        state.insert_network(net.clone());
        let req = CreateEndpoint {
            network_id: "d1".into(),
            endpoint_id: "e1".into(),
            interface: Some(interface),
            options: Default::default(),
        };
        let (txn, filled) = controller
            .plan_docker_endpoint(&mut state, &net, &req, None)
            .expect("planned");
        (txn.effects.iter().map(describe).collect(), filled, state)
    }

    #[tokio::test]
    async fn docker_s_endpoint_is_made_for_dockerd_to_move_and_told_its_mac() {
        let (effects, filled, state) = planned(EndpointInterface {
            address: "172.30.0.5/24".into(),
            ..Default::default()
        });
        assert_eq!(effects, ["join e1"]);
        // As Docker's bridge driver does: 02:42 and the IPv4 address.
        assert_eq!(filled.mac, Some([0x02, 0x42, 172, 30, 0, 5]));
        assert_eq!(filled.address, None);
        assert!(state.docker.endpoints.contains_key("e1"));
    }

    #[tokio::test]
    async fn a_mac_dockerd_gave_is_not_answered_back() {
        let (_, filled, _) = planned(EndpointInterface {
            address: "172.30.0.5/24".into(),
            mac_address: "02:00:00:00:00:07".into(),
            ..Default::default()
        });
        assert_eq!(filled.mac, None);
    }

    fn on_subnet() -> (NetworkRecord, EndpointRecord) {
        let mut net = network("n1", "web", "bridge", SubnetOwner::External);
        net.subnets.push(crate::model::SubnetRecord {
            subnet: "172.30.0.0/24".parse().unwrap(),
            gateway: "172.30.0.1".parse().unwrap(),
            ip_range: None,
            aux_addresses: Default::default(),
            explicit: false,
        });
        let mut ep = crate::controller::test_records::endpoint("e1", "n1", "");
        ep.ifname = "ncr0123".into();
        ep.ipv4 = Some("172.30.0.5/24".parse().unwrap());
        ep.ipv6 = None;
        (net, ep)
    }

    #[test]
    fn join_names_the_interface_and_its_subnet_s_gateway() {
        let (net, ep) = on_subnet();
        let answer = join_answer(&net, &ep, false, None);
        assert_eq!(answer.interface_name.src_name, "ncr0123");
        assert_eq!(answer.interface_name.dst_prefix, "eth");
        assert_eq!(answer.gateway, "172.30.0.1");
        assert_eq!(answer.gateway_ipv6, "");
    }

    #[test]
    fn an_endpoint_that_exits_elsewhere_or_is_internal_gets_no_gateway() {
        let (mut net, ep) = on_subnet();
        assert_eq!(join_answer(&net, &ep, true, None).gateway, "");
        net.internal = true;
        assert_eq!(join_answer(&net, &ep, false, None).gateway, "");
    }

    #[test]
    fn a_leased_address_gets_the_lease_s_router() {
        let (mut net, ep) = on_subnet();
        net.subnets.clear();
        let router = Some("192.0.2.1".parse().unwrap());
        assert_eq!(join_answer(&net, &ep, false, router).gateway, "192.0.2.1");
        assert_eq!(join_answer(&net, &ep, false, None).gateway, "");
    }
}
