//! Records as the API shows them (`docker network inspect` / `docker container inspect`).

use std::collections::BTreeMap;

use netctl_plugin_api::{
    EndpointSettings, IpamConfig, IpamInspect, LeaseInspect, NetworkEndpoint, NetworkInspect,
    NetworkSettings, PortBinding, SandboxInspect,
};

use netctl_drivers::Registry;

use super::specs::{gateway_for, network_spec};
use super::state::State;
use crate::model::{
    format_mac, EndpointRecord, LeaseRecord, NetworkRecord, SandboxRecord, SubnetOwner,
};
use crate::paths::Paths;

pub(super) fn network(state: &State, drivers: &Registry, net: &NetworkRecord) -> NetworkInspect {
    let containers = state
        .endpoints_of_network(&net.id)
        .filter_map(|ep| match &ep.sandbox_id {
            Some(id) => {
                let name = match state.sandbox_by_id(id) {
                    Some(sandbox) => sandbox.name.clone(),
                    // Another node's: its sandbox is known by the names it carries.
                    None => ep.names.first()?.clone(),
                };
                let mut entry = network_endpoint(&name, ep);
                entry.node = node_name(state, ep);
                Some((id.clone(), entry))
            }
            // A runtime's container: dockerd does not tell the plugin its containers' names.
            None => {
                let name = format!("docker:{}", &ep.id[..ep.id.len().min(12)]);
                let mut entry = network_endpoint(&name, ep);
                entry.node = node_name(state, ep);
                Some((ep.id.clone(), entry))
            }
        })
        .collect();
    let driver = drivers.get(&net.driver);
    NetworkInspect {
        name: net.name.clone(),
        id: net.id.clone(),
        created: net.created.clone(),
        scope: driver
            .map(|d| d.capabilities().scope.name())
            .unwrap_or("local")
            .into(),
        driver: net.driver.clone(),
        enable_ipv6: net.ipv6,
        ipam: IpamInspect {
            driver: match net.subnet_owner {
                SubnetOwner::External => "docker",
                SubnetOwner::Network => "default",
                SubnetOwner::Dhcp => "dhcp",
            }
            .into(),
            options: BTreeMap::new(),
            config: net
                .subnets
                .iter()
                .map(|s| IpamConfig {
                    subnet: Some(s.subnet.to_string()),
                    ip_range: s.ip_range.map(|r| r.to_string()),
                    gateway: Some(s.gateway.to_string()),
                    auxiliary_addresses: s
                        .aux_addresses
                        .iter()
                        .map(|(k, v)| (k.clone(), v.to_string()))
                        .collect(),
                })
                .collect(),
        },
        internal: net.internal,
        containers,
        options: {
            let mut options = net.options.clone();
            if let Some(driver) = driver {
                options.extend(driver.inspect_options(&network_spec(net)));
            }
            options
        },
        labels: net.labels.clone(),
        bridge: driver.and_then(|d| d.device(&network_spec(net))),
    }
}

/// The node of an endpoint on a global network, by hostname.
fn node_name(state: &State, ep: &EndpointRecord) -> Option<String> {
    state.global.nodes.get(&ep.node).map(|n| n.hostname.clone())
}

fn network_endpoint(name: &str, ep: &EndpointRecord) -> NetworkEndpoint {
    NetworkEndpoint {
        node: None,
        leases: ep
            .leases
            .v4
            .iter()
            .chain(&ep.leases.v6)
            .map(lease)
            .collect(),
        name: name.to_string(),
        endpoint_id: ep.id.clone(),
        mac_address: ep.mac.as_ref().map(format_mac).unwrap_or_default(),
        ipv4_address: ep.ipv4.map(|a| a.to_string()).unwrap_or_default(),
        ipv6_address: ep.ipv6.map(|a| a.to_string()).unwrap_or_default(),
    }
}

fn lease(lease: &LeaseRecord) -> LeaseInspect {
    let at = |after_s: u64| {
        let when = std::time::UNIX_EPOCH
            + std::time::Duration::from_millis(lease.acquired_ms)
            + std::time::Duration::from_secs(after_s);
        humantime::format_rfc3339_seconds(when).to_string()
    };
    LeaseInspect {
        address: lease.address.to_string(),
        server: lease.server.clone(),
        expires: at(lease.valid_s),
        renews: at(lease.renew_after_s),
    }
}

pub(super) fn sandbox(state: &State, paths: &Paths, sandbox: &SandboxRecord) -> SandboxInspect {
    let networks = state
        .endpoints_of_sandbox(&sandbox.id)
        .filter_map(|ep| {
            let net = state.network_by_id(&ep.network_id)?;
            Some((net.name.clone(), endpoint_settings(net, ep)))
        })
        .collect();
    let ports = docker_ports(state.endpoints_of_sandbox(&sandbox.id));
    SandboxInspect {
        id: sandbox.id.clone(),
        name: sandbox.name.clone(),
        hostname: sandbox.hostname.clone(),
        created: sandbox.created.clone(),
        resolv_conf_path: paths.resolv_conf(&sandbox.id).display().to_string(),
        hosts_path: paths.hosts(&sandbox.id).display().to_string(),
        extra_hosts: sandbox
            .extra_hosts
            .iter()
            .map(ToString::to_string)
            .collect(),
        network_settings: NetworkSettings {
            sandbox_key: sandbox.netns.display().to_string(),
            networks,
            ports,
        },
    }
}

/// Published ports keyed `PORT/PROTO`, each with its host sides: one per family for a
/// port published on every address, as Docker shows them.
fn docker_ports<'a>(
    endpoints: impl Iterator<Item = &'a EndpointRecord>,
) -> BTreeMap<String, Vec<PortBinding>> {
    let mut ports: BTreeMap<String, Vec<PortBinding>> = BTreeMap::new();
    for port in endpoints.flat_map(|ep| ep.ports.iter()) {
        let key = format!("{}/{}", port.container_port, port.transport.name());
        let host_port = port.host_port.to_string();
        let hosts = match port.host_ip {
            Some(ip) => vec![ip.to_string()],
            None => vec!["0.0.0.0".into(), "::".into()],
        };
        ports
            .entry(key)
            .or_default()
            .extend(hosts.into_iter().map(|host_ip| PortBinding {
                host_ip,
                host_port: host_port.clone(),
            }));
    }
    ports
}

fn endpoint_settings(net: &NetworkRecord, ep: &EndpointRecord) -> EndpointSettings {
    let gateway = |addr: Option<ipnetwork::IpNetwork>| {
        addr.and_then(|a| gateway_for(net, a.ip()).or_else(|| ep.leased_router(a)))
            .map(|g| g.to_string())
            .unwrap_or_default()
    };
    EndpointSettings {
        network_id: net.id.clone(),
        endpoint_id: ep.id.clone(),
        gateway: gateway(ep.ipv4),
        ip_address: ep.ipv4.map(|a| a.ip().to_string()).unwrap_or_default(),
        ip_prefix_len: ep.ipv4.map(|a| a.prefix()).unwrap_or(0),
        ipv6_gateway: gateway(ep.ipv6),
        global_ipv6_address: ep.ipv6.map(|a| a.ip().to_string()).unwrap_or_default(),
        global_ipv6_prefix_len: ep.ipv6.map(|a| a.prefix()).unwrap_or(0),
        mac_address: ep.mac.as_ref().map(format_mac).unwrap_or_default(),
        aliases: ep.aliases.clone(),
        interface: ep.ifname.clone(),
        ports: ep.ports.iter().map(super::publishing::mapping).collect(),
    }
}
