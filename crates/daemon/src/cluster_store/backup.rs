//! `netctl cluster backup FILE` and `netctl cluster restore FILE`: netctl's keyspace in the
//! cluster store, as a JSON file, and back into an empty store.
//!
//! Nodes' liveness keys are left out: they belong to leases, which do not survive into
//! another etcd; nodes come back `down` until their daemons announce themselves again.

use netctl_store::{Batch, ClusterStore, Key, Prefix, Scope, Store};
use serde::{Deserialize, Serialize};

use super::members::MembershipError;

/// What a backup file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    pub format: u32,
    /// The store's revision it was taken at.
    pub revision: u64,
    pub entries: Vec<BackupEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupEntry {
    /// `global/KIND/ID`.
    pub key: String,
    /// The stored value: netctl's records are JSON text.
    pub value: String,
}

const FORMAT: u32 = 1;

/// etcd refuses transactions of more than 128 operations by default.
const OPS_PER_BATCH: usize = 100;

/// Kinds that are not carried over.
const LEASED: &[&str] = &["node.alive"];

fn is_leased(key: &Key) -> bool {
    LEASED.contains(&key.kind.as_str())
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("the cluster store is not empty ({0} netctl keys): restore only into an empty etcd")]
    NotEmpty(usize),
    #[error("backup: {0}")]
    Malformed(String),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    #[error(transparent)]
    Store(#[from] netctl_store::StoreError),
}

/// Everything netctl keeps in the cluster store, as of one revision.
pub async fn backup(store: &ClusterStore) -> Result<Backup, BackupError> {
    let snapshot = store.load(&Prefix::scope(Scope::Global)).await?;
    let entries = snapshot
        .entries
        .into_iter()
        .filter(|e| !is_leased(&e.key))
        .map(|e| {
            let value = String::from_utf8(e.value)
                .map_err(|_| BackupError::Malformed(format!("{} is not text", e.key)))?;
            Ok(BackupEntry {
                key: e.key.encode(),
                value,
            })
        })
        .collect::<Result<_, BackupError>>()?;
    Ok(Backup {
        format: FORMAT,
        revision: snapshot.revision,
        entries,
    })
}

/// Writes `backup` into an empty store. The cluster's own record goes last, so a restore
/// cut short leaves no cluster anyone could join; run it again after emptying the store.
pub async fn restore(store: &ClusterStore, backup: &Backup) -> Result<usize, BackupError> {
    if backup.format != FORMAT {
        return Err(BackupError::Malformed(format!(
            "format {} (this netctl reads {FORMAT})",
            backup.format
        )));
    }
    // Nodes that are up announce themselves on their leases at once; those keys are
    // never in a backup, and do not make a store "not empty".
    let present = store
        .load(&Prefix::scope(Scope::Global))
        .await?
        .entries
        .iter()
        .filter(|e| !is_leased(&e.key))
        .count();
    if present > 0 {
        return Err(BackupError::NotEmpty(present));
    }
    let mut keys = Vec::new();
    for entry in &backup.entries {
        let key = Key::decode(&entry.key)
            .filter(|k| k.scope == Scope::Global)
            .ok_or_else(|| BackupError::Malformed(format!("key {:?}", entry.key)))?;
        keys.push((key, entry.value.as_bytes().to_vec()));
    }
    // Nodes and networks before what refers to them (a node watching meanwhile sees
    // them in that order), the cluster's record last.
    keys.sort_by_key(|(key, _)| match key.kind.as_str() {
        "node" => 0,
        "network" => 1,
        "cluster" => 3,
        _ => 2,
    });
    for chunk in keys.chunks(OPS_PER_BATCH) {
        let batch = chunk.iter().fold(Batch::new(), |batch, (key, value)| {
            batch.create(key.clone(), value.clone())
        });
        store.apply(batch).await?;
    }
    Ok(keys.len())
}
