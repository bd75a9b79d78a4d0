//! Applying changes to daemon.json's `dns*` settings and to the host's resolv.conf while the
//! daemon runs. The listening sockets are never touched: the settings are swapped under them,
//! so no query is lost.
//!
//! The files' directories are watched with inotify, so a change applies at once; a look every
//! second catches what inotify cannot see (a resolv.conf that is a symlink to a file that
//! changes elsewhere). Settings are applied, and the change logged, only when they differ
//! from the ones in force — never because the daemon just started.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netctl_dns::DnsSettings;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::mpsc;

use super::dns::host_dns;
use super::Controller;
use crate::DaemonConfig;

/// The look that catches what inotify misses.
const LOOK_EVERY: Duration = Duration::from_secs(1);
/// Editors and package managers write a file in several steps: let them finish.
const SETTLE: Duration = Duration::from_millis(20);

/// A file's identity: changed content changes at least one of these.
type Stamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> Stamp {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

/// inotify on the files' directories (a file replaced by a rename is seen there), read by a
/// thread of its own that says when one of the files may have changed.
struct DirectoryWatch {
    changes: mpsc::Receiver<()>,
}

impl DirectoryWatch {
    fn new(files: &[&Path]) -> nix::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
        let flags = AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE
            | AddWatchFlags::IN_DELETE
            | AddWatchFlags::IN_MODIFY;
        let mut names: Vec<OsString> = Vec::new();
        for file in files {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            // A file whose directory does not exist yet (no /etc/netctl) is left to the
            // look every second.
            match inotify.add_watch(dir.unwrap_or(Path::new(".")), flags) {
                Ok(_) => names.extend(file.file_name().map(|n| n.to_os_string())),
                Err(e) => tracing::debug!(file = %file.display(), error = %e, "not watched"),
            }
        }
        if names.is_empty() {
            return Err(nix::errno::Errno::ENOENT);
        }
        let (tx, changes) = mpsc::channel(1);
        std::thread::Builder::new()
            .name("dns-sources".into())
            .spawn(move || loop {
                let events = match inotify.read_events() {
                    Ok(events) => events,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read inotify events; looking every second");
                        return;
                    }
                };
                let ours = events
                    .iter()
                    .any(|e| e.name.as_ref().is_some_and(|n| names.contains(n)));
                // A full channel already says "changed".
                if ours && tx.try_send(()).is_err() && tx.is_closed() {
                    return;
                }
            })
            .map_err(|_| nix::errno::Errno::EAGAIN)?;
        Ok(Self { changes })
    }

    /// Waits until one of the files may have changed.
    async fn changed(&mut self) {
        if self.changes.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
    }
}

/// What the watcher has seen of the two files.
struct Sources {
    config_path: PathBuf,
    resolv_path: PathBuf,
    seen: (Stamp, Stamp),
    /// The last daemon.json that could be used.
    config: DaemonConfig,
}

impl Sources {
    /// Reads the files when they changed since last time (or `always`); returns the
    /// settings they give.
    fn read(&mut self, always: bool) -> Option<(DnsSettings, DnsSettings)> {
        let now = (stamp(&self.config_path), stamp(&self.resolv_path));
        if now == self.seen && !always {
            return None;
        }
        let config_changed = now.0 != self.seen.0;
        self.seen = now;
        match DaemonConfig::load(&self.config_path, false) {
            Ok(new) => {
                if new.without_dns() != self.config.without_dns() {
                    tracing::warn!(path = %self.config_path.display(), "daemon.json changed: only dns, dns-search and dns-opts apply without a restart");
                }
                self.config = new;
            }
            Err(e) if config_changed || always => {
                tracing::error!(error = %e, "daemon.json changed but cannot be used; keeping the DNS settings in force");
            }
            Err(_) => {}
        }
        Some((self.config.dns_settings(), host_dns(&self.resolv_path)))
    }
}

pub async fn watch_dns_sources(controller: Arc<Controller>) {
    let mut sources = Sources {
        config_path: controller.paths.config.clone(),
        resolv_path: controller.paths.host_resolv_conf.clone(),
        seen: (None, None),
        config: controller.config.clone(),
    };
    let mut inotify = match DirectoryWatch::new(&[&sources.config_path, &sources.resolv_path]) {
        Ok(watch) => Some(watch),
        Err(e) => {
            tracing::info!(error = %e, "daemon.json and resolv.conf are looked at every second");
            None
        }
    };
    // The files may have changed between the daemon reading them and this watcher starting.
    let mut always = true;
    loop {
        if let Some(settings) = sources.read(always) {
            if settings != controller.dns.defaults() {
                controller.apply_dns_defaults(settings.0, settings.1).await;
                tracing::info!("DNS settings reloaded");
            }
        }
        // A file inotify reports is read even if its stamp looks the same.
        always = match &mut inotify {
            Some(watch) => {
                tokio::select! {
                    _ = watch.changed() => {
                        tokio::time::sleep(SETTLE).await;
                        true
                    }
                    _ = tokio::time::sleep(LOOK_EVERY) => false,
                }
            }
            None => {
                tokio::time::sleep(LOOK_EVERY).await;
                false
            }
        };
    }
}
