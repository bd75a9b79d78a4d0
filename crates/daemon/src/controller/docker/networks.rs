//! NetworkDriver.CreateNetwork / DeleteNetwork: a netctl bridge network per Docker network.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use plugin_api::docker::{CreateNetwork, IpamData};
use plugin_api::ApiError;
use serde_json::Value;

use crate::controller::errors::{from_daemon, from_driver};
use crate::controller::networks::BridgeOptions;
use crate::controller::Controller;
use crate::ids::{new_id, now_rfc3339};
use crate::model::{DriverKind, NetworkRecord, SubnetRecord};
use crate::store::Change;

const GENERIC: &str = "com.docker.network.generic";
const ENABLE_IPV6: &str = "com.docker.network.enable_ipv6";
const INTERNAL: &str = "com.docker.network.internal";
/// The label that marks a network as Docker's in `netctl network ls/inspect`.
pub const DOCKER_ID_LABEL: &str = "com.docker.network.id";

/// `-o key=value`: strings, though dockerd sends what JSON it was given.
fn generic_options(options: &BTreeMap<String, Value>) -> BTreeMap<String, String> {
    let Some(Value::Object(map)) = options.get(GENERIC) else {
        return BTreeMap::new();
    };
    map.iter()
        .map(|(k, v)| {
            let value = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), value)
        })
        .collect()
}

fn flag(options: &BTreeMap<String, Value>, key: &str) -> bool {
    match options.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    }
}

/// `10.20.0.1/16` → the address.
fn address(text: &str) -> Result<IpAddr, ApiError> {
    text.split('/')
        .next()
        .unwrap_or_default()
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid address {text:?}")))
}

fn subnet_record(data: &IpamData) -> Result<SubnetRecord, ApiError> {
    let subnet: IpNetwork = data
        .pool
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid pool {:?}", data.pool)))?;
    let gateway = match data.gateway.as_str() {
        "" => super::ipam::first_host(&subnet).unwrap_or(subnet.ip()),
        text => address(text)?,
    };
    let aux_addresses = data
        .aux_addresses
        .iter()
        .map(|(name, a)| Ok((name.clone(), address(a)?)))
        .collect::<Result<_, ApiError>>()?;
    Ok(SubnetRecord {
        subnet,
        gateway,
        ip_range: None,
        aux_addresses,
        explicit: true,
    })
}

impl Controller {
    pub(super) async fn docker_create_network(&self, req: CreateNetwork) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        if state.docker_network(&req.network_id).is_some() {
            return Ok(());
        }
        let options = generic_options(&req.options);
        let parsed = BridgeOptions::parse(&options, self.config.mtu())?;
        let subnets = req
            .ipv4_data
            .iter()
            .chain(&req.ipv6_data)
            .map(subnet_record)
            .collect::<Result<Vec<_>, _>>()?;
        let id = new_id();
        let short = &req.network_id[..req.network_id.len().min(12)];
        let record = NetworkRecord {
            bridge: format!("{}{}", ::drivers::BRIDGE_PREFIX, &id[..12]),
            id,
            name: format!("docker-{short}"),
            driver: DriverKind::Bridge,
            created: now_rfc3339(),
            mtu: parsed.mtu,
            icc: parsed.icc,
            internal: parsed.internal || flag(&req.options, INTERNAL),
            ipv6: flag(&req.options, ENABLE_IPV6),
            subnets,
            scope: ipam::Scope::Local,
            options,
            labels: BTreeMap::from([(DOCKER_ID_LABEL.to_string(), req.network_id.clone())]),
            builtin: false,
            docker_id: Some(req.network_id),
        };
        self.install_network(&mut state, record).await.map(drop)
    }

    /// Idempotent: dockerd swallows this call's errors. Endpoints dockerd did not delete
    /// (the plugin was down) go with the network.
    pub(super) async fn docker_delete_network(&self, docker_id: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let Some(net) = state.docker_network(docker_id).cloned() else {
            return Ok(());
        };
        let leftovers: Vec<_> = state.endpoints_of_network(&net.id).cloned().collect();
        let mut changes: Vec<Change> = leftovers
            .iter()
            .map(|e| Change::DeleteEndpoint(&e.id))
            .collect();
        changes.push(Change::DeleteNetwork(&net.id));
        self.store.apply(&changes).map_err(from_daemon)?;
        for ep in &leftovers {
            state.endpoints.remove(&ep.id);
            state.ports.release_all(&ep.ports);
            self.withdraw_ports(ep).await;
            let _ = self.drivers.leave(&net, ep).await;
        }
        state.networks.remove(&net.id);
        self.drivers
            .delete_network(&net)
            .await
            .map_err(from_driver)?;
        tracing::info!(network = %net.name, "Docker network removed");
        Ok(())
    }
}
