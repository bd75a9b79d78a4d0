//! Applying changes to daemon.json's `dns*` settings and to the host's resolv.conf while the
//! daemon runs. The listening sockets are never touched: the settings are swapped under them,
//! so no query is lost.
//!
//! The files and their directories are watched with inotify, so a change applies at once; a
//! look every second catches what inotify cannot see (a symlinked resolv.conf whose link
//! changes elsewhere). Settings are applied, and the change logged, only when they differ
//! from the ones in force — never because the daemon just started.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use netctl_dns::DnsSettings;
use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify};
use tokio::sync::mpsc;

use super::dns::host_dns;
use super::Controller;
use crate::config::DaemonConfig;

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

/// inotify on the files and on their directories, read by a thread of its own that says
/// when one of the files may have changed. Writes are watched on the files themselves and
/// only names on the directories: a busy directory (/etc; a log written beside the file)
/// wakes nobody.
struct FileWatch {
    changes: mpsc::Receiver<()>,
    /// How often the thread woke: the tests hold it to "not for writes beside the files".
    #[cfg_attr(not(test), allow(dead_code))]
    wakeups: Arc<AtomicU64>,
}

/// On a file: its content written, or the file gone (a watch follows a symlink, so this is
/// also a symlinked resolv.conf's target being replaced).
const ON_FILE: AddWatchFlags = AddWatchFlags::IN_CLOSE_WRITE
    .union(AddWatchFlags::IN_MODIFY)
    .union(AddWatchFlags::IN_DELETE_SELF)
    .union(AddWatchFlags::IN_MOVE_SELF);
/// On a directory: names made, replaced or removed.
const ON_DIRECTORY: AddWatchFlags = AddWatchFlags::IN_CREATE
    .union(AddWatchFlags::IN_MOVED_TO)
    .union(AddWatchFlags::IN_MOVED_FROM)
    .union(AddWatchFlags::IN_DELETE);

impl FileWatch {
    fn new(files: &[&Path]) -> nix::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_CLOEXEC)?;
        let mut watched: Vec<(OsString, PathBuf)> = Vec::new();
        for file in files {
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            // A file whose directory does not exist yet (no /etc/netctl) is left to the
            // look every second.
            match inotify.add_watch(dir.unwrap_or(Path::new(".")), ON_DIRECTORY) {
                Ok(_) => {
                    if let Some(name) = file.file_name() {
                        watched.push((name.to_os_string(), file.to_path_buf()));
                    }
                    // Not there yet: its directory says when it comes.
                    let _ = inotify.add_watch(*file, ON_FILE);
                }
                Err(e) => tracing::debug!(file = %file.display(), error = %e, "not watched"),
            }
        }
        if watched.is_empty() {
            return Err(nix::errno::Errno::ENOENT);
        }
        let (tx, changes) = mpsc::channel(1);
        let wakeups = Arc::new(AtomicU64::new(0));
        let woke = wakeups.clone();
        std::thread::Builder::new()
            .name("dns-sources".into())
            .spawn(move || loop {
                let read = inotify.read_events();
                woke.fetch_add(1, Ordering::Relaxed);
                let events = match read {
                    Ok(events) => events,
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read inotify events; looking every second");
                        return;
                    }
                };
                let mut ours = false;
                for event in &events {
                    match &event.name {
                        // A name in a directory: ours is (re)made or gone; a new file gets
                        // a watch of its own.
                        Some(name) => {
                            if let Some((_, path)) = watched.iter().find(|(n, _)| n == name) {
                                ours = true;
                                let _ = inotify.add_watch(path.as_path(), ON_FILE);
                            }
                        }
                        // One of the files.
                        None if !event.mask.contains(AddWatchFlags::IN_IGNORED) => ours = true,
                        None => {}
                    }
                }
                // A full channel already says "changed".
                if ours && tx.try_send(()).is_err() && tx.is_closed() {
                    return;
                }
            })
            .map_err(|_| nix::errno::Errno::EAGAIN)?;
        Ok(Self { changes, wakeups })
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
        // What the file says, without the flags that override it (`-G`, `--metrics-addr`):
        // those are no change of the file's.
        config: DaemonConfig::load(&controller.paths.config, false)
            .unwrap_or_else(|_| controller.config.clone()),
    };
    let mut inotify = match FileWatch::new(&[&sources.config_path, &sources.resolv_path]) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!("netctl-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn run(f: impl std::future::Future<Output = ()>) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    /// Whether the watch reports a change within a while.
    async fn reported(watch: &mut FileWatch) -> bool {
        tokio::time::timeout(Duration::from_millis(300), watch.changed())
            .await
            .is_ok()
    }

    #[test]
    fn writes_beside_the_files_wake_nobody() {
        let dir = Scratch::new("watch-beside");
        let resolv = dir.0.join("resolv.conf");
        std::fs::write(&resolv, "nameserver 192.0.2.1\n").unwrap();
        // A log kept open and written line by line, as a benchmark's would be.
        let mut log = std::fs::File::create(dir.0.join("queries.out")).unwrap();
        run(async {
            let mut watch = FileWatch::new(&[&resolv]).unwrap();
            for i in 0..1000 {
                std::io::Write::write_all(&mut log, format!("query {i}\n").as_bytes()).unwrap();
            }
            assert!(
                !reported(&mut watch).await,
                "another file's writes are not ours"
            );
            assert_eq!(
                watch.wakeups.load(Ordering::Relaxed),
                0,
                "nor do they wake the thread"
            );
            std::fs::write(&resolv, "nameserver 192.0.2.2\n").unwrap();
            assert!(reported(&mut watch).await, "written in place");
        });
    }

    #[test]
    fn a_file_replaced_or_made_later_stays_watched() {
        let dir = Scratch::new("watch-replaced");
        let resolv = dir.0.join("resolv.conf");
        let config = dir.0.join("daemon.json");
        std::fs::write(&resolv, "nameserver 192.0.2.1\n").unwrap();
        run(async {
            let mut watch = FileWatch::new(&[&config, &resolv]).unwrap();
            let staged = dir.0.join("resolv.conf.new");
            std::fs::write(&staged, "nameserver 192.0.2.2\n").unwrap();
            assert!(!reported(&mut watch).await, "a staged file is not ours");
            std::fs::rename(&staged, &resolv).unwrap();
            assert!(reported(&mut watch).await, "replaced by a rename");
            std::fs::write(&resolv, "nameserver 192.0.2.3\n").unwrap();
            assert!(reported(&mut watch).await, "the new file written in place");
            std::fs::write(&config, "{}").unwrap();
            assert!(reported(&mut watch).await, "made where there was none");
            std::fs::write(&config, r#"{"dns": ["192.0.2.53"]}"#).unwrap();
            assert!(reported(&mut watch).await, "the made file written in place");
        });
    }
}
