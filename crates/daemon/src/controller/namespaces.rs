//! The sandboxes' network namespaces, open for as long as the daemon serves them: a
//! namespace's netlink connection is opened once, when it is made or found again at start.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use netctl_kernel::netns::{HeldNamespaces, NetnsId};
use netctl_kernel::Netns;
use parking_lot::Mutex;

use crate::model::{SandboxMode, SandboxRecord};
use crate::paths::Paths;

#[derive(Default)]
pub(super) struct Namespaces {
    open: Mutex<HashMap<String, Arc<Netns>>>,
}

impl Namespaces {
    pub fn get(&self, sandbox_id: &str) -> Option<Arc<Netns>> {
        self.open.lock().get(sandbox_id).cloned()
    }

    pub fn insert(&self, sandbox_id: &str, netns: Netns) {
        self.open
            .lock()
            .insert(sandbox_id.to_string(), Arc::new(netns));
    }

    /// Forgets the namespace; dropping the last handle closes its file and netlink socket.
    pub fn remove(&self, sandbox_id: &str) {
        self.open.lock().remove(sandbox_id);
    }
}

/// How one of netctl's own namespaces was found at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Restored {
    /// Bound where it was.
    Opened,
    /// Its mount was gone, but something still held it (a process inside it, at this path):
    /// bound again.
    Rebound(PathBuf),
    /// Gone altogether: made anew, for its endpoints to be plugged in again.
    Rebuilt,
}

/// Where sandboxes' namespaces are now: at their own path, or wherever something else still
/// holds them. A namespace's mount can outlive the daemon or not: under `ip netns exec` the
/// daemon runs in a mount namespace of its own, and its mounts go with it. The /proc scan is
/// made once per pass, and only when a path does not lead to its namespace.
#[derive(Default)]
pub(super) struct NamespaceSearch {
    held: Option<HeldNamespaces>,
}

impl NamespaceSearch {
    /// A path that opens the namespace `id`, `at` first. A namespace found by its inode is
    /// checked by its cookie: the inode of a namespace that is gone may be another's now.
    fn locate(&mut self, at: &Path, id: NetnsId) -> Option<PathBuf> {
        if id.is_at(at) {
            return Some(at.to_path_buf());
        }
        self.held
            .get_or_insert_with(HeldNamespaces::scan)
            .path_of(id.inode)
            .filter(|held| id.is_at(held))
            .map(Path::to_path_buf)
    }

    /// Whether a runtime's container let its namespace go.
    pub fn gone(&mut self, sandbox: &SandboxRecord) -> bool {
        sandbox
            .netns_id()
            .is_some_and(|id| self.locate(&sandbox.netns, id).is_none())
    }

    /// Reopens a runtime's namespace at start.
    pub async fn reopen_runtime(&mut self, sandbox: &SandboxRecord) -> Result<Netns, String> {
        let path = sandbox
            .netns_id()
            .and_then(|id| self.locate(&sandbox.netns, id))
            .ok_or("the namespace is gone")?;
        Netns::open_runtime(&path).await.map_err(|e| e.to_string())
    }

    /// One of netctl's own namespaces at start (`inode`: what it was when last seen): opened
    /// where it is bound; bound again where something still holds it; else made anew.
    /// `open`: the daemon's own handle on it, when it has one (a running daemon's repair).
    pub async fn restore_own(
        &mut self,
        sandbox: &SandboxRecord,
        remembered: Option<NetnsId>,
        open: Option<&Netns>,
    ) -> Result<(Netns, Restored), String> {
        let path = &sandbox.netns;
        if netctl_kernel::netns::exists(path) {
            let netns = Netns::open(path).await.map_err(|e| e.to_string())?;
            return Ok((netns, Restored::Opened));
        }
        if sandbox.mode == SandboxMode::Host {
            let netns = Netns::bind_current(path).await.map_err(|e| e.to_string())?;
            return Ok((netns, Restored::Opened));
        }
        let held = match open {
            Some(netns) => Some(netns.fd_path()),
            None => remembered.and_then(|id| self.locate(path, id)),
        };
        if let Some(held) = held {
            let netns = Netns::rebind(path, &held)
                .await
                .map_err(|e| e.to_string())?;
            return Ok((netns, Restored::Rebound(held)));
        }
        let _ = netctl_kernel::netns::remove(path);
        let netns = Netns::create(path).await.map_err(|e| e.to_string())?;
        Ok((netns, Restored::Rebuilt))
    }
}

/// Keeps the identity of a sandbox's namespace (`INODE COOKIE`) beside its other files in
/// the exec-root, which lives as long as the namespace can (both end with a reboot). It is
/// what finds the namespace again when its mount is lost while a process inside still holds
/// it. Not in the store: it is known only once the namespace is made, and a store write per
/// sandbox would cost every attach more than the rest of its bookkeeping.
pub(super) fn remember_id(paths: &Paths, sandbox_id: &str, netns: &Netns) {
    let Ok(id) = netns.id() else {
        return;
    };
    let path = paths.netns_id(sandbox_id);
    let line = match id.cookie {
        Some(cookie) => format!("{} {cookie}", id.inode),
        None => id.inode.to_string(),
    };
    let written = path
        .parent()
        .map_or(Ok(()), std::fs::create_dir_all)
        .and_then(|()| std::fs::write(&path, line));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep the namespace's inode");
    }
}

/// The identity [`remember_id`] kept, if any (an older netctl kept the inode alone).
pub(super) fn remembered_id(paths: &Paths, sandbox_id: &str) -> Option<NetnsId> {
    let kept = std::fs::read_to_string(paths.netns_id(sandbox_id)).ok()?;
    let mut fields = kept.split_whitespace();
    let inode = fields.next()?.parse().ok()?;
    let cookie = match fields.next() {
        Some(cookie) => Some(cookie.parse().ok()?),
        None => None,
    };
    Some(NetnsId { inode, cookie })
}
