//! One lock per object (network, sandbox, endpoint), held for a whole operation on it — its
//! kernel work included — so that operations on the same object happen one after another
//! while operations on different objects run side by side.
//!
//! An operation that uses a network without changing it (a connect) takes the network's lock
//! shared: a hundred connects to one network run together, and the network cannot be removed
//! or be half made meanwhile. To avoid deadlocks, locks are always taken in one order:
//! networks first, then sandboxes and endpoints, each group sorted by id.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;
use tokio::sync::{OwnedRwLockReadGuard, OwnedRwLockWriteGuard, RwLock};

#[derive(Default)]
pub struct Locks {
    /// Weak, so that a lock nobody holds or waits for goes away with its last guard.
    table: Mutex<HashMap<String, Weak<RwLock<()>>>>,
}

/// What an operation holds; dropping it releases everything.
#[derive(Default)]
pub struct Held {
    _shared: Vec<OwnedRwLockReadGuard<()>>,
    _exclusive: Vec<OwnedRwLockWriteGuard<()>>,
}

impl Locks {
    fn lock_of(&self, id: &str) -> Arc<RwLock<()>> {
        let mut table = self.table.lock();
        if let Some(lock) = table.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        // Now and then, forget the locks that nobody holds any more.
        if table.len() >= 1024 && table.len().is_power_of_two() {
            table.retain(|_, weak| weak.strong_count() > 0);
        }
        let lock = Arc::new(RwLock::new(()));
        table.insert(id.to_string(), Arc::downgrade(&lock));
        lock
    }

    /// Takes the networks' locks (shared, or exclusive for those in `changed`), then the
    /// other objects' locks exclusively.
    pub async fn hold(&self, networks: &[&str], changed: &[&str], objects: &[&str]) -> Held {
        let mut networks: Vec<&str> = networks.iter().chain(changed).copied().collect();
        let mut objects: Vec<&str> = objects.to_vec();
        for ids in [&mut networks, &mut objects] {
            ids.sort_unstable();
            ids.dedup();
        }
        let mut held = Held::default();
        for id in networks {
            let lock = self.lock_of(id);
            if changed.contains(&id) {
                held._exclusive.push(lock.write_owned().await);
            } else {
                held._shared.push(lock.read_owned().await);
            }
        }
        for id in objects {
            held._exclusive.push(self.lock_of(id).write_owned().await);
        }
        held
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn shared_holders_run_together_and_exclusive_ones_wait() {
        let locks = Arc::new(Locks::default());
        let a = locks.hold(&["net"], &[], &["s1"]).await;
        // Another sandbox on the same network: no waiting.
        let b =
            tokio::time::timeout(Duration::from_secs(1), locks.hold(&["net"], &[], &["s2"])).await;
        assert!(b.is_ok());
        // The network itself, exclusively: waits for both.
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move { locks.hold(&[], &["net"], &[]).await })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(a);
        drop(b);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("taken once the others are gone")
            .unwrap();
        assert!(locks.table.lock().values().all(|w| w.strong_count() == 0));
    }
}
