//! The `local` scope on one host: a redb file. One table holds every key (its value prefixed
//! by the revision that wrote it), another the store's own facts (format, revision).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use crate::watch::Feed;
use crate::{
    Batch, Changes, Entry, Event, Key, Op, Prefix, Revision, Scope, Snapshot, Store, StoreError,
    Watch,
};

const OBJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("objects");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const REVISION: &str = "revision";
const FORMAT: &str = "format";
/// This file's layout: keys in `objects`, values prefixed by their revision.
const FORMAT_VERSION: u64 = 1;
/// Batches kept for watches that start in the past: this many at most, weighing at most
/// `HISTORY_BYTES`.
const HISTORY: usize = 256;
const HISTORY_BYTES: usize = 256 * 1024;

pub struct LocalStore {
    db: Arc<Database>,
    path: PathBuf,
    feed: Feed,
    /// The last revision applied.
    applied: AtomicU64,
    /// The last revision on disk. Its lock is held through a flush, so callers that come
    /// meanwhile wait for it and then find their batch flushed by the next one.
    synced: tokio::sync::Mutex<Revision>,
}

/// Tables of an older layout, by name: each a list of (key, value) as text.
pub type LegacyTables = BTreeMap<String, Vec<(String, String)>>;

impl LocalStore {
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).or_backend(path, "open")?;
        let txn = db.begin_write().or_backend(path, "open")?;
        let revision = {
            let mut meta = txn.open_table(META).or_backend(path, "open")?;
            txn.open_table(OBJECTS).or_backend(path, "open")?;
            if meta.get(FORMAT).or_backend(path, "open")?.is_none() {
                meta.insert(FORMAT, FORMAT_VERSION)
                    .or_backend(path, "open")?;
            }
            let revision = meta.get(REVISION).or_backend(path, "open")?;
            revision.map(|r| r.value()).unwrap_or(0)
        };
        txn.commit().or_backend(path, "open")?;
        Ok(Self {
            db: Arc::new(db),
            path: path.to_path_buf(),
            feed: Feed::new(revision, HISTORY, HISTORY_BYTES),
            applied: AtomicU64::new(revision),
            synced: tokio::sync::Mutex::new(revision),
        })
    }

    /// Moves the tables of an older layout (`tables`, text keys and text values) into this
    /// one, in one transaction: `convert` turns their contents into a batch, which is applied,
    /// and the old tables are deleted. Returns whether there was anything to move; a
    /// failure changes nothing.
    pub fn import_legacy(
        &self,
        tables: &[&str],
        convert: impl FnOnce(LegacyTables) -> Result<Batch, String>,
    ) -> Result<bool, StoreError> {
        let what = "migrate";
        let txn = self.db.begin_write().or_backend(&self.path, what)?;
        let present: Vec<String> = txn
            .list_tables()
            .or_backend(&self.path, what)?
            .map(|t| t.name().to_string())
            .filter(|name| tables.contains(&name.as_str()))
            .collect();
        if present.is_empty() {
            txn.abort().or_backend(&self.path, what)?;
            return Ok(false);
        }
        let mut legacy = LegacyTables::new();
        for name in &present {
            let definition: TableDefinition<&str, &str> = TableDefinition::new(name);
            let table = txn.open_table(definition).or_backend(&self.path, what)?;
            let mut rows = Vec::new();
            for row in table.iter().or_backend(&self.path, what)? {
                let (key, value) = row.or_backend(&self.path, what)?;
                rows.push((key.value().to_string(), value.value().to_string()));
            }
            legacy.insert(name.clone(), rows);
        }
        let batch = convert(legacy).map_err(|message| StoreError::Backend {
            what: format!("migrate {}", self.path.display()),
            message,
        })?;
        let changes = self.write(&txn, &batch)?;
        for name in &present {
            let definition: TableDefinition<&str, &str> = TableDefinition::new(name);
            txn.delete_table(definition).or_backend(&self.path, what)?;
        }
        txn.commit().or_backend(&self.path, what)?;
        self.feed.publish(changes);
        Ok(true)
    }

    /// Applies `batch` inside `txn`; returns what changed, for watchers once committed.
    fn write(&self, txn: &redb::WriteTransaction, batch: &Batch) -> Result<Changes, StoreError> {
        let what = "write";
        let mut objects = txn.open_table(OBJECTS).or_backend(&self.path, what)?;
        let mut meta = txn.open_table(META).or_backend(&self.path, what)?;
        let revision = meta
            .get(REVISION)
            .or_backend(&self.path, what)?
            .map(|r| r.value())
            .unwrap_or(0)
            + 1;
        for op in &batch.ops {
            if op.key().scope != Scope::Local {
                return Err(StoreError::WrongScope {
                    key: op.key().clone(),
                    scope: Scope::Local,
                });
            }
            if let Op::Create { key, .. } = op {
                if objects
                    .get(key.encode().as_str())
                    .or_backend(&self.path, what)?
                    .is_some()
                {
                    return Err(StoreError::Exists(key.clone()));
                }
            }
        }
        let mut events = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            let text = op.key().encode();
            match op {
                Op::Put { key, value } | Op::Create { key, value } => {
                    let mut stored = revision.to_le_bytes().to_vec();
                    stored.extend_from_slice(value);
                    objects
                        .insert(text.as_str(), stored.as_slice())
                        .or_backend(&self.path, what)?;
                    events.push(Event::Put(Entry {
                        key: key.clone(),
                        value: value.clone(),
                        revision,
                    }));
                }
                Op::Delete { key } => {
                    if objects
                        .remove(text.as_str())
                        .or_backend(&self.path, what)?
                        .is_some()
                    {
                        events.push(Event::Delete {
                            key: key.clone(),
                            revision,
                        });
                    }
                }
            }
        }
        meta.insert(REVISION, revision)
            .or_backend(&self.path, what)?;
        Ok(Changes { revision, events })
    }
}

#[async_trait]
impl Store for LocalStore {
    fn scope(&self) -> Scope {
        Scope::Local
    }

    async fn load(&self, prefix: &Prefix) -> Result<Snapshot, StoreError> {
        let what = "read";
        let txn = self.db.begin_read().or_backend(&self.path, what)?;
        let objects = txn.open_table(OBJECTS).or_backend(&self.path, what)?;
        let meta = txn.open_table(META).or_backend(&self.path, what)?;
        let start = prefix.encode();
        let mut entries = Vec::new();
        for row in objects
            .range(start.as_str()..)
            .or_backend(&self.path, what)?
        {
            let (key, value) = row.or_backend(&self.path, what)?;
            let text = key.value();
            if !text.starts_with(&start) {
                break;
            }
            let corrupt = |message: &str| StoreError::Corrupt {
                key: text.to_string(),
                message: message.to_string(),
            };
            let key = Key::decode(text).ok_or_else(|| corrupt("not a key"))?;
            let stored = value.value();
            let (revision, value) = stored
                .split_first_chunk::<8>()
                .ok_or_else(|| corrupt("no revision"))?;
            entries.push(Entry {
                key,
                value: value.to_vec(),
                revision: u64::from_le_bytes(*revision),
            });
        }
        let revision = meta
            .get(REVISION)
            .or_backend(&self.path, what)?
            .map(|r| r.value())
            .unwrap_or(0);
        Ok(Snapshot { entries, revision })
    }

    async fn apply_unsynced(&self, batch: Batch) -> Result<Revision, StoreError> {
        netctl_crashpoint::step(&"a local store write");
        let what = "write";
        let mut txn = self.db.begin_write().or_backend(&self.path, what)?;
        txn.set_durability(Durability::None)
            .or_backend(&self.path, what)?;
        let changes = match self.write(&txn, &batch) {
            Ok(changes) => changes,
            Err(e) => {
                txn.abort().or_backend(&self.path, what)?;
                return Err(e);
            }
        };
        txn.commit().or_backend(&self.path, what)?;
        let revision = changes.revision;
        self.applied.fetch_max(revision, Ordering::AcqRel);
        self.feed.publish(changes);
        Ok(revision)
    }

    /// An empty durable commit: redb writes every earlier commit with it.
    async fn sync(&self, revision: Revision) -> Result<(), StoreError> {
        let mut synced = self.synced.lock().await;
        if *synced >= revision {
            return Ok(());
        }
        netctl_crashpoint::step(&"a local store sync");
        let covered = self.applied.load(Ordering::Acquire);
        let db = self.db.clone();
        let flushed = tokio::task::spawn_blocking(move || {
            let txn = db.begin_write().map_err(|e| e.to_string())?;
            txn.commit().map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())
        .and_then(|flushed| flushed);
        flushed.or_backend(&self.path, "sync")?;
        *synced = covered;
        Ok(())
    }

    fn watch(&self, prefix: &Prefix, from: Revision) -> Result<Watch, StoreError> {
        self.feed.watch(prefix, from)
    }
}

/// redb's many error types as the store's one.
trait OrBackend<T> {
    fn or_backend(self, path: &Path, what: &str) -> Result<T, StoreError>;
}

impl<T, E: std::fmt::Display> OrBackend<T> for Result<T, E> {
    fn or_backend(self, path: &Path, what: &str) -> Result<T, StoreError> {
        self.map_err(|e| StoreError::Backend {
            what: format!("{what} {}", path.display()),
            message: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(kind: &str, id: &str) -> Key {
        Key::new(Scope::Local, kind, id)
    }

    fn store() -> (tempdir::Dir, LocalStore) {
        let dir = tempdir::Dir::new();
        let store = LocalStore::open(&dir.path.join("store.redb")).unwrap();
        (dir, store)
    }

    /// A scratch directory, removed on drop (no crate needed for one test helper).
    mod tempdir {
        pub struct Dir {
            pub path: std::path::PathBuf,
        }

        impl Dir {
            pub fn new() -> Self {
                let mut bytes = [0u8; 8];
                std::io::Read::read_exact(
                    &mut std::fs::File::open("/dev/urandom").unwrap(),
                    &mut bytes,
                )
                .unwrap();
                let path = std::env::temp_dir()
                    .join(format!("netctl-store-{}", u64::from_ne_bytes(bytes)));
                std::fs::create_dir_all(&path).unwrap();
                Self { path }
            }
        }

        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn batches_apply_whole_and_survive_reopening() {
        let (dir, store) = store();
        run(async {
            let r1 = store
                .apply(
                    Batch::new()
                        .put(key("network", "a"), b"1".to_vec())
                        .put(key("network", "b"), b"2".to_vec())
                        .put(key("sandbox", "a"), b"3".to_vec()),
                )
                .await
                .unwrap();
            let r2 = store
                .apply(Batch::new().delete(key("network", "b")))
                .await
                .unwrap();
            assert_eq!((r1, r2), (1, 2));
            let nets = store
                .load(&Prefix::kind(Scope::Local, "network"))
                .await
                .unwrap();
            assert_eq!(nets.revision, 2);
            assert_eq!(nets.entries.len(), 1);
            assert_eq!(nets.entries[0].value, b"1");
            assert_eq!(nets.entries[0].revision, 1);
        });
        drop(store);
        let store = LocalStore::open(&dir.path.join("store.redb")).unwrap();
        run(async {
            let all = store.load(&Prefix::scope(Scope::Local)).await.unwrap();
            assert_eq!(all.revision, 2);
            assert_eq!(all.entries.len(), 2);
        });
    }

    /// Set in the child process of the crash test: the store file it works on.
    const CRASH_CHILD: &str = "NETCTL_STORE_CRASH_CHILD";

    /// The child applies and syncs one batch, applies another without syncing, and aborts.
    #[test]
    fn a_synced_batch_survives_a_crash_and_an_unsynced_one_goes_whole() {
        if let Ok(path) = std::env::var(CRASH_CHILD) {
            let store = LocalStore::open(Path::new(&path)).unwrap();
            run(async {
                let synced = store
                    .apply_unsynced(Batch::new().put(key("network", "a"), b"1".to_vec()))
                    .await
                    .unwrap();
                store.sync(synced).await.unwrap();
                store
                    .apply_unsynced(
                        Batch::new()
                            .put(key("network", "b"), b"2".to_vec())
                            .delete(key("network", "a")),
                    )
                    .await
                    .unwrap();
            });
            std::process::abort();
        }
        let (dir, store) = store();
        drop(store);
        let path = dir.path.join("store.redb");
        let child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "local::tests::a_synced_batch_survives_a_crash_and_an_unsynced_one_goes_whole",
                "--test-threads=1",
            ])
            .env(CRASH_CHILD, &path)
            .output()
            .unwrap();
        assert!(!child.status.success(), "the child aborts");
        let store = LocalStore::open(&path).unwrap();
        run(async {
            let all = store.load(&Prefix::scope(Scope::Local)).await.unwrap();
            let ids: Vec<&str> = all.entries.iter().map(|e| e.key.id.as_str()).collect();
            assert_eq!(ids, ["a"], "the synced batch, none of the other");
            assert_eq!(all.revision, 1);
        });
    }

    #[test]
    fn a_create_of_an_existing_key_fails_the_whole_batch() {
        let (_dir, store) = store();
        run(async {
            store
                .apply(Batch::new().create(key("name", "web"), b"x".to_vec()))
                .await
                .unwrap();
            let e = store
                .apply(
                    Batch::new()
                        .put(key("network", "n2"), b"y".to_vec())
                        .create(key("name", "web"), b"y".to_vec()),
                )
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::Exists(_)), "{e}");
            let all = store.load(&Prefix::scope(Scope::Local)).await.unwrap();
            assert_eq!(all.entries.len(), 1, "nothing of the failed batch");
            assert_eq!(all.revision, 1);
            let e = store
                .apply(Batch::new().put(Key::new(Scope::Global, "network", "n"), vec![]))
                .await
                .unwrap_err();
            assert!(matches!(e, StoreError::WrongScope { .. }), "{e}");
        });
    }

    #[test]
    fn watches_see_later_batches_under_their_prefix_in_order() {
        let (_dir, store) = store();
        run(async {
            store
                .apply(Batch::new().put(key("network", "a"), b"1".to_vec()))
                .await
                .unwrap();
            // From revision 0: the batch already applied, then the ones to come.
            let mut all = store.watch(&Prefix::scope(Scope::Local), 0).unwrap();
            let mut nets = store
                .watch(&Prefix::kind(Scope::Local, "network"), 1)
                .unwrap();
            store
                .apply(Batch::new().put(key("sandbox", "s"), b"2".to_vec()))
                .await
                .unwrap();
            store
                .apply(Batch::new().delete(key("network", "a")))
                .await
                .unwrap();
            let first = all.next().await.unwrap();
            assert_eq!(first.revision, 1);
            assert_eq!(all.next().await.unwrap().revision, 2);
            let third = all.next().await.unwrap();
            assert_eq!(third.revision, 3);
            assert!(matches!(&third.events[0], Event::Delete { key, .. } if key.id == "a"));
            // The network watch skips the sandbox's batch.
            let change = nets.next().await.unwrap();
            assert_eq!(change.revision, 3);
            assert_eq!(change.events.len(), 1);
        });
    }

    #[test]
    fn a_watch_from_before_the_kept_history_is_refused() {
        let (_dir, store) = store();
        run(async {
            for i in 0..(HISTORY as u64 + 5) {
                store
                    .apply(Batch::new().put(key("n", &i.to_string()), vec![]))
                    .await
                    .unwrap();
            }
            let e = store.watch(&Prefix::scope(Scope::Local), 1).err().unwrap();
            assert!(matches!(e, StoreError::Compacted { .. }), "{e}");
            assert!(store.watch(&Prefix::scope(Scope::Local), 10).is_ok());
        });
    }

    #[test]
    fn heavy_batches_leave_the_history_sooner() {
        let (_dir, store) = store();
        run(async {
            let heavy = vec![0u8; HISTORY_BYTES / 2 + 1];
            for i in 0..3 {
                store
                    .apply(Batch::new().put(key("endpoint", &i.to_string()), heavy.clone()))
                    .await
                    .unwrap();
            }
            let e = store.watch(&Prefix::scope(Scope::Local), 1).err().unwrap();
            assert!(matches!(e, StoreError::Compacted { oldest: 2, .. }), "{e}");
            // The newest stays, however heavy.
            let mut watch = store.watch(&Prefix::scope(Scope::Local), 2).unwrap();
            assert_eq!(watch.next().await.unwrap().revision, 3);
        });
    }

    #[test]
    fn legacy_tables_move_in_one_transaction() {
        let (dir, store) = store();
        drop(store);
        let path = dir.path.join("store.redb");
        {
            let db = Database::create(&path).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let def: TableDefinition<&str, &str> = TableDefinition::new("networks");
                let mut t = txn.open_table(def).unwrap();
                t.insert("n1", "{\"name\":\"web\"}").unwrap();
            }
            txn.commit().unwrap();
        }
        let store = LocalStore::open(&path).unwrap();
        // A failing conversion changes nothing.
        assert!(store
            .import_legacy(&["networks"], |_| Err("no".into()))
            .is_err());
        let moved = store
            .import_legacy(&["networks", "sandboxes"], |tables| {
                assert_eq!(tables.len(), 1);
                let (id, value) = &tables["networks"][0];
                Ok(Batch::new().put(key("network", id), value.as_bytes().to_vec()))
            })
            .unwrap();
        assert!(moved);
        assert!(!store
            .import_legacy(&["networks"], |_| unreachable!())
            .unwrap());
        run(async {
            let all = store.load(&Prefix::scope(Scope::Local)).await.unwrap();
            assert_eq!(all.entries[0].key, key("network", "n1"));
        });
    }
}
