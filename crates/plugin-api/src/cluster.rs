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
    /// For a store served over TLS with client certificates (`https://`): the
    /// administrator's credentials and the CA that signs the nodes' certificates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_tls: Option<StoreTlsMaterial>,
}

/// PEM texts: the CA etcd trusts (certificate and key: managers issue each node's
/// certificate with it), and a client certificate and key of etcd's `root` user.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StoreTlsMaterial {
    pub ca: String,
    pub ca_key: String,
    pub cert: String,
    pub key: String,
}

impl std::fmt::Debug for StoreTlsMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreTlsMaterial").finish_non_exhaustive()
    }
}

/// `POST /v1/cluster/join`
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterJoinRequest {
    pub token: String,
    pub advertise_addr: String,
    #[serde(default)]
    pub store: Vec<String>,
    /// For a TLS store: the cluster CA's certificate (PEM), which the manager and the
    /// store are verified against…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_ca: Option<String>,
    /// …and the manager that issues this node's certificate (`ADDRESS[:PORT]`, port 2377
    /// by default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
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
    /// The etcd user this node is to a TLS store; `None` over plain HTTP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_user: Option<String>,
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
