//! Writes whose outcome is unknown: etcd may apply a transaction whose answer was lost (the
//! quorum went away mid-request) once quorum is back. The daemon told its caller the write
//! failed, so it must not stay: this watches for it and undoes it.

use std::time::Duration;

use netctl_store::{Batch, ClusterStore, Prefix, Store, StoreError};

/// How often the store is asked whether the write landed.
const ASK_EVERY: Duration = Duration::from_secs(1);
/// How long it is asked: a write etcd has not applied in ten minutes it never will (its
/// request has timed out on the server long before).
const ASK_FOR: Duration = Duration::from_secs(600);

/// A write to the cluster store whose answer did not come (quorum lost) may still be
/// applied once quorum is back. Until the store answers again, this checks whether it
/// landed, and if so, undoes it with `revert`: the caller was told it failed.
pub fn settle_unknown_write(store: ClusterStore, written: Batch, revert: Batch) {
    tokio::spawn(async move {
        for _ in 0..ASK_FOR.as_secs() / ASK_EVERY.as_secs() {
            tokio::time::sleep(ASK_EVERY).await;
            match landed(&store, &written).await {
                Ok(false) => return,
                Ok(true) => {
                    tracing::warn!("a cluster write reported as failed landed later; undoing it");
                    if let Err(e) = store.apply(revert.clone()).await {
                        tracing::warn!(error = %e, "cannot undo it yet");
                        continue;
                    }
                    return;
                }
                Err(_) => continue,
            }
        }
    });
}

/// Whether every key `written` puts holds exactly what it put.
async fn landed(store: &ClusterStore, written: &Batch) -> Result<bool, StoreError> {
    use netctl_store::Op;
    for op in &written.ops {
        let (Op::Put { key, value } | Op::Create { key, value }) = op else {
            continue;
        };
        let snapshot = store.load(&Prefix::kind(key.scope, &key.kind)).await?;
        let holds = snapshot
            .entries
            .iter()
            .any(|e| &e.key == key && &e.value == value);
        if !holds {
            return Ok(false);
        }
    }
    Ok(true)
}
