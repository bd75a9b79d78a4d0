use crate::{Key, Revision, Scope};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend failed (a file, a disk, a cluster member): nothing was applied.
    #[error("store {what}: {message}")]
    Backend { what: String, message: String },
    /// The cluster's store did not answer with a quorum: nothing was applied.
    #[error("cluster store unavailable: no quorum among {endpoints} ({message})")]
    Unavailable { endpoints: String, message: String },
    /// The store refused this node's etcd user (its role does not allow the request):
    /// nothing was applied.
    #[error("the cluster store refused this node: {0}")]
    Denied(String),
    /// A `Create` found its key already there: nothing was applied.
    #[error("{0} exists already")]
    Exists(Key),
    /// A key of another scope was given to this store.
    #[error("key {key} is not in this store's scope ({scope:?})")]
    WrongScope { key: Key, scope: Scope },
    /// The changes asked for are no longer kept: load again and watch from there.
    #[error("changes after revision {from} are no longer kept (oldest kept: {oldest})")]
    Compacted { from: Revision, oldest: Revision },
    /// A stored value could not be read back.
    #[error("stored value of {key}: {message}")]
    Corrupt { key: String, message: String },
}
