//! Cluster and node requests and answers of the management API (`netctl cluster …`,
//! `netctl node …`).

use serde::{Deserialize, Serialize};

/// `POST /v1/cluster/init`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterInitRequest {
    /// This node's address on the underlay: its VTEP, and where other nodes reach it.
    pub advertise_addr: String,
    /// The cluster store's client URLs; empty: daemon.json's `cluster-store`.
    #[serde(default)]
    pub store: Vec<String>,
    /// The cluster's VXLAN UDP port (4789 when unset).
    #[serde(default)]
    pub vxlan_port: Option<u16>,
}

/// `POST /v1/cluster/join`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterJoinRequest {
    pub token: String,
    pub advertise_addr: String,
    #[serde(default)]
    pub store: Vec<String>,
}

/// `POST /v1/cluster/leave`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterLeaveRequest {
    /// Leave even as the last manager of a cluster with other nodes, or with endpoints on
    /// global networks (they are removed).
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/cluster/join-token`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinTokenRequest {
    /// `worker` or `manager`.
    pub role: String,
    /// Make a new token; the old one stops working.
    #[serde(default)]
    pub rotate: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct JoinToken {
    pub role: String,
    pub token: String,
    /// The whole command a new node runs.
    pub command: String,
}

/// `GET /v1/cluster`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub created: String,
    #[serde(rename = "VXLANPort")]
    pub vxlan_port: u16,
    pub store: Vec<String>,
    /// Whether this node reaches the store now.
    pub store_reachable: bool,
    pub this_node: NodeInspect,
    pub managers: usize,
    pub workers: usize,
    pub global_networks: usize,
}

/// `GET /v1/nodes`, `GET /v1/nodes/{id}`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeInspect {
    #[serde(rename = "ID")]
    pub id: String,
    pub hostname: String,
    pub address: String,
    /// `manager` or `worker`.
    pub role: String,
    /// `ready` or `down`.
    pub status: String,
    /// Its endpoints on global networks.
    pub endpoints: usize,
    pub joined: String,
    /// The node that answered.
    pub this_node: bool,
}

/// `POST /v1/nodes/{id}/remove`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct NodeRemoveRequest {
    /// Remove a node that is still ready.
    #[serde(default)]
    pub force: bool,
}

/// `POST /v1/cluster/restore`: a backup, into an empty store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterRestoreRequest {
    /// Where to restore; empty: this node's cluster store, or daemon.json's.
    #[serde(default)]
    pub store: Vec<String>,
    /// What `netctl cluster backup` wrote.
    pub backup: serde_json::Value,
}

/// What a restore put back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterRestored {
    pub keys: usize,
}

/// `POST /v1/services`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceCreateRequest {
    pub name: String,
    /// The global network its virtual IP is on, which its replicas must be on too.
    pub network: String,
    /// Sandboxes on that network, on any node: a name unique in the cluster, or
    /// `NODE/SANDBOX` (a node's id, id prefix or hostname).
    #[serde(default)]
    pub replicas: Vec<String>,
    /// `--publish` as given (`8080:80`, `5353:53/udp`, `mode=host,published=…,target=…`).
    #[serde(default)]
    pub publish: Vec<String>,
}

/// `POST /v1/services/{name}/update`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceUpdateRequest {
    /// The whole new replica set.
    pub replicas: Vec<String>,
}

/// One replica of a service, as inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceReplica {
    pub sandbox: String,
    pub node: String,
    pub endpoint_id: String,
    pub address: String,
    /// Its node is ready (a down node's replicas get no connections).
    pub ready: bool,
}

/// `GET /v1/services/{name}`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServiceInspect {
    pub id: String,
    pub name: String,
    pub network: String,
    #[serde(rename = "VirtualIP")]
    pub virtual_ip: String,
    pub replicas: Vec<ServiceReplica>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<crate::service_ports::ServicePort>,
    pub created: String,
}
