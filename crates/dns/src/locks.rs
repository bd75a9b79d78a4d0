//! The server's locks: std's, poison ignored in one place. A panic while a lock is held
//! leaves the data as whole as any single update leaves it (each holder changes one map
//! entry or replaces one value), so the next holder goes on with it rather than taking the
//! whole DNS server down with it.
//!
//! Why not parking_lot, as the daemon uses: on this server's hot path (the cache and the
//! directory, taken for every query) it answered ~12% fewer forwarded queries per second in
//! `netctl-bench dns` than std's futex locks (3 of 3 same-run pairs, December 2026).

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

pub(crate) trait Lock<T> {
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T> Lock<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(crate) trait ReadWrite<T> {
    fn reading(&self) -> RwLockReadGuard<'_, T>;
    fn writing(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T> ReadWrite<T> for RwLock<T> {
    fn reading(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn writing(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}
