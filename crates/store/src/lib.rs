//! netctl's store: desired state as keys and values, applied in atomic batches and watched
//! from a revision.
//!
//! A key names a scope, a kind and an id (`local/network/3f2a…`). The `local` scope lives on
//! one host, in a redb file ([`LocalStore`]); the `global` scope is a cluster's and lives in
//! etcd (a backend with the same [`Store`] interface). Values are opaque bytes: the caller
//! owns their encoding and schema versions.

mod access;
mod batch;
mod cluster;
mod error;
mod key;
mod local;
mod watch;

pub use access::{Grant, ROOT_ROLE};
pub use batch::{Batch, Op};
pub use cluster::{ClusterStore, LeaseId, StoreTls, REQUEST_TIMEOUT};
pub use error::StoreError;
pub use key::{Key, Prefix, Scope};
pub use local::LocalStore;
pub use watch::{Changes, Event, Watch};

use async_trait::async_trait;

/// A point in a store's history: each applied batch makes the next one.
pub type Revision = u64;

/// One key's value, and the revision that last changed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Key,
    pub value: Vec<u8>,
    pub revision: Revision,
}

/// Everything under a prefix, as of one revision.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: Vec<Entry>,
    pub revision: Revision,
}

/// A backend for one scope.
#[async_trait]
pub trait Store: Send + Sync {
    /// The scope whose keys this store holds; keys of another scope are refused.
    fn scope(&self) -> Scope;

    /// Every entry under `prefix`.
    async fn load(&self, prefix: &Prefix) -> Result<Snapshot, StoreError>;

    /// Applies every operation of `batch`, or none of them (a `Create` of a key that exists
    /// fails the whole batch with [`StoreError::Exists`]). Durable when it returns.
    async fn apply(&self, batch: Batch) -> Result<Revision, StoreError> {
        let revision = self.apply_unsynced(batch).await?;
        self.sync(revision).await?;
        Ok(revision)
    }

    /// [`Store::apply`], but durable only once [`Store::sync`] of the revision it returns
    /// has returned; loads and watches see it at once. A crash before that may lose it (and
    /// every batch after it), never part of it.
    ///
    /// This lets a caller hold its own lock only while the batch is ordered, and wait for the
    /// disk outside that lock, beside other work.
    async fn apply_unsynced(&self, batch: Batch) -> Result<Revision, StoreError>;

    /// Waits until every batch up to `revision` is durable. Callers waiting at the same
    /// time share one flush.
    async fn sync(&self, revision: Revision) -> Result<(), StoreError>;

    /// The changes under `prefix` after revision `from`, as they are applied. Fails with
    /// [`StoreError::Compacted`] when the store no longer has them: load again, then watch
    /// from the snapshot's revision.
    fn watch(&self, prefix: &Prefix, from: Revision) -> Result<Watch, StoreError>;
}
