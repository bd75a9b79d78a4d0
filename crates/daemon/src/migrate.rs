//! Data-roots written before the store had scopes and schema versions (netctl 0.1 up to the
//! driver registry): one redb table per kind, bare JSON records, Docker's bookkeeping and
//! bridge settings on the core records. They are moved into the current layout in one
//! transaction when the store is opened; a failure leaves the file as it was.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use netctl_store::{Batch, LocalStore};
use serde::Deserialize;

use crate::error::DaemonError;
use crate::model::{
    AddressScope, DnsConfig, DockerEndpointRecord, DockerNetworkRecord, DockerPoolRecord,
    EndpointRecord, NetworkRecord, PublishedPort, SandboxMode, SandboxRecord, SubnetOwner,
    SubnetRecord, Transport,
};
use crate::persist::BatchExt;

const TABLES: [&str; 4] = ["networks", "sandboxes", "endpoints", "docker_pools"];

/// A driver's name and settings for a stored network: the name the registry knows it by
/// (old records said `none` for `null`), and what the driver makes of the network's options.
pub type Settle<'a> = dyn Fn(&str, &BTreeMap<String, String>, u32) -> Result<(String, serde_json::Value), String>
    + 'a;

/// Moves an old layout's tables into the current one; returns whether there was one.
pub fn upgrade(store: &LocalStore, node: &str, settle: &Settle<'_>) -> Result<bool, DaemonError> {
    store
        .import_legacy(&TABLES, |tables| convert(&tables, node, settle))
        .map_err(|e| DaemonError::Store(e.to_string()))
}

fn convert(
    tables: &BTreeMap<String, Vec<(String, String)>>,
    node: &str,
    settle: &Settle<'_>,
) -> Result<Batch, String> {
    let rows = |table: &str| tables.get(table).map(Vec::as_slice).unwrap_or(&[]);
    let mut batch = Batch::new();
    for (id, json) in rows("networks") {
        let old: NetworkV0 = parse(id, json)?;
        if let Some(docker_id) = &old.docker_id {
            batch = batch.put_record(&DockerNetworkRecord {
                bound: false,
                docker_id: docker_id.clone(),
                network_id: old.id.clone(),
            });
        }
        let (driver, config) = settle(&old.driver, &old.options, old.mtu)
            .map_err(|e| format!("network {}: {e}", old.name))?;
        batch = batch.put_record(&old.upgrade(driver, config));
    }
    for (id, json) in rows("sandboxes") {
        let old: SandboxV0 = parse(id, json)?;
        batch = batch.put_record(&old.upgrade());
    }
    for (id, json) in rows("endpoints") {
        let old: EndpointV0 = parse(id, json)?;
        if old.docker {
            batch = batch.put_record(&DockerEndpointRecord {
                endpoint_id: old.id.clone(),
                joined: old.joined,
            });
        }
        batch = batch.put_record(&old.upgrade(node));
    }
    for (id, json) in rows("docker_pools") {
        let old: PoolV0 = parse(id, json)?;
        batch = batch.put_record(&old.upgrade());
    }
    Ok(batch)
}

fn parse<'a, T: Deserialize<'a>>(id: &str, json: &'a str) -> Result<T, String> {
    serde_json::from_str(json).map_err(|e| format!("record {id}: {e}"))
}

fn local() -> AddressScope {
    AddressScope::Local
}

#[derive(Deserialize)]
struct NetworkV0 {
    id: String,
    name: String,
    driver: String,
    created: String,
    mtu: u32,
    internal: bool,
    ipv6: bool,
    subnets: Vec<SubnetRecord>,
    #[serde(default = "local")]
    scope: AddressScope,
    options: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    docker_id: Option<String>,
}

impl NetworkV0 {
    fn upgrade(self, driver: String, driver_config: serde_json::Value) -> NetworkRecord {
        NetworkRecord {
            id: self.id,
            name: self.name,
            driver,
            created: self.created,
            address_scope: self.scope,
            mtu: self.mtu,
            internal: self.internal,
            ipv6: self.ipv6,
            subnets: self.subnets,
            subnet_owner: if self.docker_id.is_some() {
                SubnetOwner::External
            } else {
                SubnetOwner::Network
            },
            options: self.options,
            driver_config,
            labels: self.labels,
        }
    }
}

#[derive(Deserialize)]
struct SandboxV0 {
    id: String,
    name: String,
    hostname: String,
    created: String,
    netns: PathBuf,
    mode: SandboxMode,
    #[serde(default)]
    dns: DnsConfig,
}

impl SandboxV0 {
    fn upgrade(self) -> SandboxRecord {
        SandboxRecord {
            id: self.id,
            name: self.name,
            hostname: self.hostname,
            created: self.created,
            netns: self.netns,
            mode: self.mode,
            dns: self.dns,
            role: Default::default(),
            netns_inode: None,
            netns_cookie: None,
            extra_hosts: Vec::new(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PortV0 {
    proto: Transport,
    #[serde(default, rename = "HostIP")]
    host_ip: Option<IpAddr>,
    host_port: u16,
    container_port: u16,
}

#[derive(Deserialize)]
struct EndpointV0 {
    id: String,
    network_id: String,
    /// Empty for Docker's.
    sandbox_id: String,
    ifname: String,
    mac: Option<[u8; 6]>,
    ipv4: Option<IpNetwork>,
    ipv6: Option<IpNetwork>,
    aliases: Vec<String>,
    route_metric: u32,
    #[serde(default)]
    ports: Vec<PortV0>,
    #[serde(default)]
    docker: bool,
    #[serde(default)]
    joined: bool,
}

impl EndpointV0 {
    fn upgrade(self, node: &str) -> EndpointRecord {
        EndpointRecord {
            names: Vec::new(),
            id: self.id,
            network_id: self.network_id,
            sandbox_id: (!self.docker && !self.sandbox_id.is_empty()).then_some(self.sandbox_id),
            node: node.to_string(),
            ifname: self.ifname,
            mac: self.mac,
            ipv4: self.ipv4,
            ipv6: self.ipv6,
            aliases: self.aliases,
            route_metric: self.route_metric,
            ports: self
                .ports
                .into_iter()
                .map(|p| PublishedPort {
                    transport: p.proto,
                    host_ip: p.host_ip,
                    host_port: p.host_port,
                    container_port: p.container_port,
                    service: None,
                })
                .collect(),
            balancer: false,
            chained: false,
            leases: Default::default(),
        }
    }
}

#[derive(Deserialize)]
struct PoolV0 {
    id: String,
    scope: AddressScope,
    subnet: IpNetwork,
    ip_range: Option<IpNetwork>,
    addresses: BTreeSet<IpAddr>,
}

impl PoolV0 {
    fn upgrade(self) -> DockerPoolRecord {
        DockerPoolRecord {
            id: self.id,
            address_scope: self.scope,
            subnet: self.subnet,
            ip_range: self.ip_range,
            addresses: self.addresses,
            dhcp: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netctl_store::Op;

    /// Records as netctl wrote them before this layout (copied from a data-root).
    const NETWORK: &str = r#"{"id":"7af3","name":"web","driver":"bridge","created":"2026-11-30T21:00:00Z","bridge":"ncb7af3","mtu":1400,"icc":false,"internal":false,"ipv6":false,"subnets":[{"subnet":"172.30.0.0/24","gateway":"172.30.0.1","ip_range":null,"aux_addresses":{},"explicit":true}],"scope":"local","options":{"icc":"false","mtu":"1400"},"labels":{},"builtin":false,"docker_id":null}"#;
    const NONE: &str = r#"{"id":"99","name":"none","driver":"none","created":"t","bridge":"","mtu":1500,"icc":true,"internal":false,"ipv6":false,"subnets":[],"scope":"local","options":{},"labels":{},"builtin":true,"docker_id":null}"#;
    const DOCKER_NETWORK: &str = r#"{"id":"d1","name":"docker-0123","driver":"bridge","created":"t","bridge":"ncbd1","mtu":1500,"icc":true,"internal":false,"ipv6":false,"subnets":[],"scope":"local","options":{},"labels":{},"builtin":false,"docker_id":"0123"}"#;
    const ENDPOINT: &str = r#"{"id":"e1","network_id":"7af3","sandbox_id":"s1","ifname":"eth0","host_ifname":"ncve1","mac":[2,66,172,30,0,2],"ipv4":"172.30.0.2/24","ipv6":null,"aliases":["api"],"route_metric":100,"ports":[{"Proto":"udp","HostIP":"127.0.0.1","HostPort":5353,"HostPortEnd":5353,"ContainerPort":53}],"docker":false,"joined":false}"#;
    const DOCKER_ENDPOINT: &str = r#"{"id":"de","network_id":"d1","sandbox_id":"","ifname":"ncsde","host_ifname":"ncvde","mac":[2,66,10,20,5,10],"ipv4":"10.20.5.10/16","ipv6":null,"aliases":[],"route_metric":0,"ports":[],"docker":true,"joined":true}"#;
    const SANDBOX: &str = r#"{"id":"s1","name":"a","hostname":"a","created":"t","netns":"/run/netctl/netns/s1","mode":"isolated","dns":{"servers":["192.0.2.53"],"search":[],"options":[]}}"#;
    const POOL: &str = r#"{"id":"netctl-1","scope":"local","subnet":"10.20.0.0/16","ip_range":"10.20.5.0/24","addresses":["10.20.0.1"]}"#;

    fn tables() -> BTreeMap<String, Vec<(String, String)>> {
        let row = |id: &str, json: &str| (id.to_string(), json.to_string());
        BTreeMap::from([
            (
                "networks".to_string(),
                vec![
                    row("7af3", NETWORK),
                    row("99", NONE),
                    row("d1", DOCKER_NETWORK),
                ],
            ),
            (
                "endpoints".to_string(),
                vec![row("e1", ENDPOINT), row("de", DOCKER_ENDPOINT)],
            ),
            ("sandboxes".to_string(), vec![row("s1", SANDBOX)]),
            ("docker_pools".to_string(), vec![row("netctl-1", POOL)]),
        ])
    }

    fn record<T: serde::de::DeserializeOwned>(batch: &Batch, key: &str) -> T {
        let value = batch
            .ops
            .iter()
            .find_map(|op| match op {
                Op::Put { key: k, value } if k.encode() == key => Some(value),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no {key}"));
        let envelope: serde_json::Value = serde_json::from_slice(value).unwrap();
        serde_json::from_value(envelope["record"].clone()).unwrap()
    }

    /// What the registry answers for the drivers these records name.
    fn settle(
        driver: &str,
        options: &BTreeMap<String, String>,
        _mtu: u32,
    ) -> Result<(String, serde_json::Value), String> {
        match driver {
            "none" => Ok(("null".into(), serde_json::Value::Null)),
            "bridge" => {
                let icc = options.get("icc").is_none_or(|v| v != "false");
                Ok(("bridge".into(), serde_json::json!({ "icc": icc })))
            }
            other => Err(format!("no driver {other}")),
        }
    }

    #[test]
    fn old_records_become_current_ones() {
        let batch = convert(&tables(), "node1", &settle).unwrap();
        let web: NetworkRecord = record(&batch, "local/network/7af3");
        assert_eq!(web.driver, "bridge");
        assert_eq!(web.driver_config, serde_json::json!({"icc": false}));
        assert_eq!((web.mtu, web.subnet_owner), (1400, SubnetOwner::Network));
        let none: NetworkRecord = record(&batch, "local/network/99");
        assert_eq!(none.driver, "null");
        let docker: NetworkRecord = record(&batch, "local/network/d1");
        assert_eq!(docker.subnet_owner, SubnetOwner::External);
        let binding: DockerNetworkRecord = record(&batch, "local/docker.network/0123");
        assert_eq!(binding.network_id, "d1");

        let ep: EndpointRecord = record(&batch, "local/endpoint/e1");
        assert_eq!(ep.sandbox_id.as_deref(), Some("s1"));
        assert_eq!(ep.node, "node1");
        assert_eq!(
            ep.ports,
            vec![PublishedPort {
                transport: Transport::Udp,
                host_ip: Some("127.0.0.1".parse().unwrap()),
                host_port: 5353,
                container_port: 53,
                service: None,
            }]
        );
        let dep: EndpointRecord = record(&batch, "local/endpoint/de");
        assert_eq!((dep.sandbox_id, dep.ifname.as_str()), (None, "ncsde"));
        let joined: DockerEndpointRecord = record(&batch, "local/docker.endpoint/de");
        assert!(joined.joined);

        let s: SandboxRecord = record(&batch, "local/sandbox/s1");
        assert_eq!(s.dns.servers, ["192.0.2.53"]);
        let pool: DockerPoolRecord = record(&batch, "local/docker.pool/netctl-1");
        assert_eq!(pool.addresses.len(), 1);
    }

    #[test]
    fn a_record_that_does_not_parse_stops_the_whole_move() {
        let mut tables = tables();
        tables.get_mut("sandboxes").unwrap()[0].1 = "{not json".into();
        let e = convert(&tables, "n", &settle).unwrap_err();
        assert!(e.contains("record s1"), "{e}");
    }
}
