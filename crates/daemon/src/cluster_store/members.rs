//! Who is in the cluster: the cluster's record, its join tokens, and its nodes.
//!
//! Keys (`global` scope):
//! - `cluster/info`: the cluster's id, VXLAN port and the SHA-256 of each role's token;
//! - `node/ID`: a node's address, hostname and role — it stays while the node is down, so
//!   `node ls` shows it `down` and its addresses stay its own until `node rm`;
//! - `node.alive/ID`: put with the node's lease; its presence is the node's `ready`.
//!
//! A token is `NETCTL-1-CLUSTER_ID-SECRET`; only its hash is in the store, so reading the
//! store gives no way in. The node that made a token keeps it (to print it again); rotating
//! makes a new secret and the old one stops working at once.

use std::collections::BTreeMap;

use netctl_store::{Batch, ClusterStore, Key, LeaseId, Prefix, Scope, Store, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::ids::{new_id, now_rfc3339};

/// What a node may do: managers change global networks and the cluster, workers attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Manager,
    Worker,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Self::Manager => "manager",
            Self::Worker => "worker",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub id: String,
    pub vxlan_port: u16,
    pub created: String,
    /// Role name → SHA-256 of its token, hex.
    pub token_hashes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterNode {
    pub id: String,
    pub hostname: String,
    /// Its VTEP and the address other nodes reach it at (`--advertise-addr`).
    pub address: String,
    pub role: Role,
    pub joined: String,
}

/// A node and whether its lease is alive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeStatus {
    pub node: ClusterNode,
    pub ready: bool,
}

/// Tokens just made, in the clear: shown once to whoever made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tokens {
    pub worker: String,
    pub manager: String,
}

impl Tokens {
    pub fn of(&self, role: Role) -> &str {
        match role {
            Role::Manager => &self.manager,
            Role::Worker => &self.worker,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MembershipError {
    #[error("this cluster store holds a cluster already (id {0}): join it with a token")]
    AlreadyInitialized(String),
    #[error("this cluster store holds no cluster: run `netctl cluster init` on a first node")]
    NoCluster,
    #[error("invalid join token: {0}")]
    BadToken(&'static str),
    #[error("node {0} not found")]
    NodeNotFound(String),
    #[error("stored {what}: {message}")]
    Corrupt { what: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn cluster_key() -> Key {
    Key::new(Scope::Global, "cluster", "info")
}

fn node_key(id: &str) -> Key {
    Key::new(Scope::Global, "node", id)
}

fn alive_key(id: &str) -> Key {
    Key::new(Scope::Global, "node.alive", id)
}

/// A node about to enter the cluster.
#[derive(Debug, Clone)]
pub struct Newcomer {
    pub id: String,
    pub hostname: String,
    pub address: String,
}

impl Newcomer {
    fn as_node(&self, role: Role) -> ClusterNode {
        ClusterNode {
            id: self.id.clone(),
            hostname: self.hostname.clone(),
            address: self.address.clone(),
            role,
            joined: now_rfc3339(),
        }
    }
}

/// `netctl cluster init`: makes the cluster (refused if the store has one) with `first` as
/// its first manager, in one transaction.
pub async fn init(
    store: &ClusterStore,
    first: &Newcomer,
    vxlan_port: u16,
) -> Result<(ClusterRecord, Tokens), MembershipError> {
    let id = new_id()[..25].to_string();
    let tokens = Tokens {
        worker: new_token(&id),
        manager: new_token(&id),
    };
    let record = ClusterRecord {
        id,
        vxlan_port,
        created: now_rfc3339(),
        token_hashes: BTreeMap::from([
            ("worker".to_string(), hash(&tokens.worker)),
            ("manager".to_string(), hash(&tokens.manager)),
        ]),
    };
    let batch = Batch::new()
        .create(cluster_key(), encode(&record))
        .put(node_key(&first.id), encode(&first.as_node(Role::Manager)));
    match store.apply(batch).await {
        Ok(_) => Ok((record, tokens)),
        Err(StoreError::Exists(_)) => Err(MembershipError::AlreadyInitialized(
            cluster(store).await?.id,
        )),
        Err(e) => Err(e.into()),
    }
}

/// The cluster's record.
pub async fn cluster(store: &ClusterStore) -> Result<ClusterRecord, MembershipError> {
    let snapshot = store.load(&Prefix::kind(Scope::Global, "cluster")).await?;
    let entry = snapshot
        .entries
        .into_iter()
        .find(|e| e.key == cluster_key())
        .ok_or(MembershipError::NoCluster)?;
    decode("cluster", &entry.value)
}

/// `netctl cluster join --token`: checks the token against the cluster's hashes and
/// records `newcomer` with the token's role. A wrong token writes nothing.
pub async fn join(
    store: &ClusterStore,
    token: &str,
    newcomer: &Newcomer,
) -> Result<(ClusterRecord, Role), MembershipError> {
    let (record, role) = check_token(store, token).await?;
    record_node(store, newcomer, role).await?;
    Ok((record, role))
}

/// The cluster and the role a join token is for, or why it is no good.
pub async fn check_token(
    store: &ClusterStore,
    token: &str,
) -> Result<(ClusterRecord, Role), MembershipError> {
    let (cluster_id, _) = parse_token(token)?;
    let record = cluster(store).await?;
    if cluster_id != record.id {
        return Err(MembershipError::BadToken("it is for another cluster"));
    }
    let digest = hash(token);
    let role = [Role::Manager, Role::Worker]
        .into_iter()
        .find(|r| record.token_hashes.get(r.name()) == Some(&digest))
        .ok_or(MembershipError::BadToken(
            "it does not match the cluster's (rotated, or mistyped)",
        ))?;
    Ok((record, role))
}

/// Records `newcomer` as a node of the cluster with `role`.
pub async fn record_node(
    store: &ClusterStore,
    newcomer: &Newcomer,
    role: Role,
) -> Result<(), MembershipError> {
    store
        .apply(Batch::new().put(node_key(&newcomer.id), encode(&newcomer.as_node(role))))
        .await?;
    Ok(())
}

/// `netctl cluster join-token --rotate ROLE`: a new secret for `role`; the old token stops
/// working, nodes that joined with it stay.
pub async fn rotate_token(store: &ClusterStore, role: Role) -> Result<String, MembershipError> {
    let mut record = cluster(store).await?;
    let token = new_token(&record.id);
    record
        .token_hashes
        .insert(role.name().to_string(), hash(&token));
    store
        .apply(Batch::new().put(cluster_key(), encode(&record)))
        .await?;
    Ok(token)
}

/// Says this node is alive for as long as `lease` is kept alive.
pub async fn announce(
    store: &ClusterStore,
    node_id: &str,
    lease: LeaseId,
) -> Result<(), MembershipError> {
    store
        .put_leased(&alive_key(node_id), b"ready".to_vec(), lease)
        .await?;
    Ok(())
}

/// Every node, `ready` when its lease lives.
pub async fn nodes(store: &ClusterStore) -> Result<Vec<NodeStatus>, MembershipError> {
    let records = store.load(&Prefix::kind(Scope::Global, "node")).await?;
    let alive = store
        .load(&Prefix::kind(Scope::Global, "node.alive"))
        .await?;
    let alive: Vec<String> = alive.entries.into_iter().map(|e| e.key.id).collect();
    records
        .entries
        .into_iter()
        .map(|entry| {
            let node: ClusterNode = decode("node", &entry.value)?;
            let ready = alive.contains(&node.id);
            Ok(NodeStatus { node, ready })
        })
        .collect()
}

/// Sets a node's role (`node promote|demote`).
pub async fn set_role(
    store: &ClusterStore,
    node_id: &str,
    role: Role,
) -> Result<ClusterNode, MembershipError> {
    let mut node = nodes(store)
        .await?
        .into_iter()
        .map(|s| s.node)
        .find(|n| n.id == node_id)
        .ok_or_else(|| MembershipError::NodeNotFound(node_id.to_string()))?;
    node.role = role;
    store
        .apply(Batch::new().put(node_key(node_id), encode(&node)))
        .await?;
    Ok(node)
}

/// Takes a node out of the cluster (`cluster leave`, `node rm`).
pub async fn remove_node(store: &ClusterStore, node_id: &str) -> Result<(), MembershipError> {
    store
        .apply(
            Batch::new()
                .delete(node_key(node_id))
                .delete(alive_key(node_id)),
        )
        .await?;
    Ok(())
}

fn new_token(cluster_id: &str) -> String {
    let secret = new_id();
    format!("NETCTL-1-{cluster_id}-{}", &secret[..32])
}

/// The cluster id and secret of a token, checked for shape.
fn parse_token(token: &str) -> Result<(&str, &str), MembershipError> {
    let rest = token
        .strip_prefix("NETCTL-1-")
        .ok_or(MembershipError::BadToken(
            "it does not start with NETCTL-1-",
        ))?;
    let (cluster, secret) = rest
        .split_once('-')
        .ok_or(MembershipError::BadToken("it has no secret"))?;
    let hex = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_hexdigit());
    if !hex(cluster) || secret.len() != 32 || !hex(secret) {
        return Err(MembershipError::BadToken("it is malformed"));
    }
    Ok((cluster, secret))
}

fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, MembershipError> {
    serde_json::from_slice(bytes).map_err(|e| MembershipError::Corrupt {
        what: what.to_string(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_back_and_malformed_ones_are_named() {
        let token = new_token("abc123");
        let (cluster, secret) = parse_token(&token).unwrap();
        assert_eq!(cluster, "abc123");
        assert_eq!(secret.len(), 32);
        assert!(matches!(
            parse_token("SWMTKN-1-abc-def"),
            Err(MembershipError::BadToken(_))
        ));
        assert!(parse_token("NETCTL-1-abc123-short").is_err());
        assert!(parse_token("NETCTL-1-abc123").is_err());
        assert_ne!(hash(&token), hash(&new_token("abc123")));
    }
}
