//! Each node's etcd user, in a cluster whose store is TLS with client certificates.
//!
//! A node's user is `netctl-node-ID`, the common name of its certificate. A manager's
//! user has etcd's `root` role. A worker's has a role of its own that reads the `global`
//! scope and writes only what is the worker's: its node record and liveness key, its
//! endpoints (`global/endpoint/ID/…`), and address claims on global networks (an attach
//! claims its address itself, without a manager in the way). So a worker's certificate,
//! even in etcdctl's hands, cannot make or remove a network, a service, a VNI, a subnet,
//! the cluster's record or another node's records, and cannot read the CA's key.

use netctl_pki::{Authority, Credential};
use netctl_store::{ClusterStore, Grant, Key, Prefix, Scope, StoreError};
use serde::{Deserialize, Serialize};

use super::members::Role;
use crate::model::EndpointRecord;
use crate::persist::Record;

/// Where the cluster's CA lives in the store, readable by managers only.
const CA_SECRET: &str = "ca";

#[derive(Debug, thiserror::Error)]
pub enum CredentialError {
    #[error("the cluster's CA in the store: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Pki(#[from] netctl_pki::PkiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The etcd user of node `node_id`.
pub fn node_user(node_id: &str) -> String {
    format!("netctl-node-{node_id}")
}

/// What a worker may touch besides reading the `global` scope.
pub fn worker_grants(node_id: &str) -> Vec<Grant> {
    vec![
        Grant::Read(Prefix::scope(Scope::Global)),
        Grant::WriteKey(Key::new(Scope::Global, "node", node_id)),
        Grant::WriteKey(Key::new(Scope::Global, "node.alive", node_id)),
        Grant::WriteUnder(
            Prefix::kind(Scope::Global, EndpointRecord::KIND),
            format!("{node_id}/"),
        ),
        Grant::WriteUnder(Prefix::kind(Scope::Global, "address"), String::new()),
    ]
}

/// Gives node `node_id` the etcd user its role calls for (again, after a promotion or a
/// demotion).
pub async fn admit(store: &ClusterStore, node_id: &str, role: Role) -> Result<(), StoreError> {
    store
        .set_user(
            &node_user(node_id),
            &worker_grants(node_id),
            role == Role::Manager,
        )
        .await
}

#[derive(Serialize, Deserialize)]
struct StoredAuthority {
    cert_pem: String,
    key_pem: String,
}

/// Keeps the cluster's CA where the managers find it.
pub async fn keep_authority(store: &ClusterStore, ca: &Credential) -> Result<(), StoreError> {
    let stored = StoredAuthority {
        cert_pem: ca.cert_pem.clone(),
        key_pem: ca.key_pem.clone(),
    };
    store
        .put_secret(
            CA_SECRET,
            serde_json::to_vec(&stored).expect("the CA serializes"),
        )
        .await
}

/// The cluster's CA: `None` in a store without one (plain HTTP clusters);
/// [`StoreError::Denied`] on a worker.
pub async fn authority(store: &ClusterStore) -> Result<Option<Authority>, CredentialError> {
    let Some(bytes) = store.secret(CA_SECRET).await? else {
        return Ok(None);
    };
    let stored: StoredAuthority =
        serde_json::from_slice(&bytes).map_err(|e| CredentialError::Corrupt(e.to_string()))?;
    Ok(Some(Authority::from_pem(&Credential {
        cert_pem: stored.cert_pem,
        key_pem: stored.key_pem,
    })?))
}
