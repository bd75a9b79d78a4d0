//! Endpoint keys from before a node's records moved under its id: `global/endpoint/ID`
//! becomes `global/endpoint/NODE/ID`, the layout etcd's per-node roles are written for.

use netctl_store::{Batch, ClusterStore, Prefix, Scope, Store, StoreError};

use crate::model::EndpointRecord;
use crate::persist::{decode, BatchExt, Record};

/// Moves every old-layout endpoint key of `node` (of every node when `None`: a manager's
/// pass) to its new key, each in one transaction (the delete first, so a watcher sees the
/// endpoint go and come back rather than go for good). Returns how many moved.
pub async fn rekey_endpoints(
    store: &ClusterStore,
    node: Option<&str>,
) -> Result<usize, StoreError> {
    let listing = store
        .load(&Prefix::kind(Scope::Global, EndpointRecord::KIND))
        .await?;
    let mut moved = 0;
    for entry in listing.entries.iter().filter(|e| !e.key.id.contains('/')) {
        let Ok(ep) = decode::<EndpointRecord>(&entry.key, &entry.value) else {
            continue;
        };
        if node.is_some_and(|n| n != ep.node) {
            continue;
        }
        store
            .apply(Batch::new().delete(entry.key.clone()).put_global(&ep))
            .await?;
        moved += 1;
    }
    Ok(moved)
}
