//! Records for unit tests of planning: a network, a sandbox and an endpoint with the
//! fields a plan reads, the rest empty.

use std::path::PathBuf;

use crate::model::{
    AddressScope, EndpointRecord, NetworkRecord, SandboxMode, SandboxRecord, SubnetOwner,
};

pub fn network(id: &str, name: &str, driver: &str, owner: SubnetOwner) -> NetworkRecord {
    NetworkRecord {
        id: id.into(),
        name: name.into(),
        driver: driver.into(),
        created: String::new(),
        address_scope: AddressScope::Local,
        mtu: 1500,
        internal: false,
        ipv6: false,
        subnets: Vec::new(),
        subnet_owner: owner,
        options: Default::default(),
        driver_config: serde_json::Value::Null,
        labels: Default::default(),
    }
}

pub fn sandbox(id: &str, name: &str) -> SandboxRecord {
    SandboxRecord {
        id: id.into(),
        name: name.into(),
        hostname: name.into(),
        created: String::new(),
        netns: PathBuf::from(format!("/run/netctl/netns/{id}")),
        mode: SandboxMode::Isolated,
        dns: Default::default(),
        role: Default::default(),
        netns_inode: None,
        netns_cookie: None,
        extra_hosts: Vec::new(),
    }
}

pub fn endpoint(id: &str, network: &str, sandbox: &str) -> EndpointRecord {
    EndpointRecord {
        names: vec![sandbox.into()],
        id: id.into(),
        network_id: network.into(),
        sandbox_id: Some(sandbox.into()),
        node: "node".into(),
        ifname: "eth0".into(),
        mac: Some([2, 0, 0, 0, 0, 1]),
        ipv4: None,
        ipv6: None,
        aliases: vec![],
        route_metric: 100,
        ports: vec![],
        balancer: false,
        chained: false,
        leases: Default::default(),
    }
}
