//! Sandbox network namespaces, kept as bind mounts of nsfs files under the exec-root.
//!
//! A namespace is made on a short-lived thread (unshare affects only the calling thread), and
//! a netlink socket is opened on that thread before it exits. A socket stays in the namespace
//! it was opened in, so the daemon keeps that one connection for the sandbox's whole life and
//! never has to enter the namespace again.

use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

use crate::netlink::Netlink;
use crate::KernelError;

/// An open network namespace and a netlink connection inside it.
#[derive(Debug)]
pub struct Netns {
    path: PathBuf,
    file: File,
    netlink: Netlink,
    cookie: u64,
}

/// What tells one network namespace from every other while the machine runs. The nsfs
/// inode is what paths and /proc show, but the kernel hands a freed namespace's inode to the
/// next one made (the lowest free number), so an inode alone can lead to a stranger's
/// namespace; the cookie (`SO_NETNS_COOKIE`) is never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetnsId {
    pub inode: u64,
    /// `None` only for one remembered by a netctl that kept no cookies: the inode must do.
    pub cookie: Option<u64>,
}

impl NetnsId {
    /// Whether `other` is this namespace (by inode alone where either cookie is unknown).
    pub fn matches(&self, other: &NetnsId) -> bool {
        self.inode == other.inode
            && match (self.cookie, other.cookie) {
                (Some(mine), Some(theirs)) => mine == theirs,
                _ => true,
            }
    }

    /// Whether the namespace at `path` is this one.
    pub fn is_at(&self, path: &Path) -> bool {
        id_at(path).is_some_and(|found| self.matches(&found))
    }
}

impl Netns {
    /// `ip netns add`: a new namespace bind-mounted at `path`, with loopback up. A sandbox's:
    /// nothing in it is set through /proc/sys. The kernel keeps one `/proc/sys/net` entry for
    /// every namespace whose settings were ever looked at, all in one hash chain that every
    /// such lookup walks: with thousands of sandboxes, a write there cost an attach ~6 ms.
    pub async fn create(path: &Path) -> Result<Self, KernelError> {
        Self::create_with(path, false).await
    }

    /// As [`Netns::create`], and interfaces made in the namespace from now on skip IPv6
    /// duplicate address detection (see [`skip_ipv6_dad`]): for a namespace of netctl's own
    /// that holds bridges (an overlay's), made once per network.
    pub async fn create_skipping_dad(path: &Path) -> Result<Self, KernelError> {
        Self::create_with(path, true).await
    }

    async fn create_with(path: &Path, skip_dad: bool) -> Result<Self, KernelError> {
        netctl_crashpoint::step(&format!("create namespace {}", path.display()));
        let target = path.to_path_buf();
        let netns = on_thread(path, move || {
            unshare(CloneFlags::CLONE_NEWNET).map_err(io)?;
            if skip_dad {
                skip_ipv6_dad();
            }
            bind_netns(Path::new(THREAD_NETNS), &target)
        })
        .await?;
        netns.netlink.set_up(1).await?;
        Ok(netns)
    }

    /// Bind-mounts the caller's own namespace at `path` (sandboxes on the `host` network).
    pub async fn bind_current(path: &Path) -> Result<Self, KernelError> {
        let target = path.to_path_buf();
        on_thread(path, move || bind_netns(Path::new(THREAD_NETNS), &target)).await
    }

    /// `mount --bind HELD PATH`: a namespace that its mount at `path` lost (the mount lived
    /// in a mount namespace that is gone) but that something else still holds, such as a
    /// process inside it (`/proc/PID/ns/net`), bound at `path` again and opened.
    pub async fn rebind(path: &Path, held: &Path) -> Result<Self, KernelError> {
        netctl_crashpoint::step(&format!("bind namespace {}", path.display()));
        bind_netns(held, path).map_err(netns_err(path, "bind"))?;
        Self::open(path).await
    }

    /// Opens a namespace that already exists at `path`.
    pub async fn open(path: &Path) -> Result<Self, KernelError> {
        let file = File::open(path).map_err(netns_err(path, "open"))?;
        if !is_nsfs(&file) {
            return Err(KernelError::Netns {
                path: path.into(),
                what: "open",
                source: std::io::Error::other("not a network namespace"),
            });
        }
        on_thread(path, move || {
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io)
        })
        .await
    }

    /// Opens a runtime's namespace (a CNI container's) and brings its loopback up, as the
    /// CNI `loopback` plugin would: the sandbox's DNS server answers on it.
    pub async fn open_runtime(path: &Path) -> Result<Self, KernelError> {
        let netns = Self::open(path).await?;
        netns.netlink.set_up(1).await?;
        Ok(netns)
    }

    /// The namespace's identity (see [`NetnsId`]).
    pub fn id(&self) -> Result<NetnsId, KernelError> {
        Ok(NetnsId {
            inode: self.inode()?,
            cookie: Some(self.cookie),
        })
    }

    /// The namespace's inode, as paths to it show it.
    pub fn inode(&self) -> Result<u64, KernelError> {
        use std::os::unix::fs::MetadataExt;
        self.file
            .metadata()
            .map(|m| m.ino())
            .map_err(netns_err(&self.path, "stat"))
    }

    /// A path this process can open the namespace by, for as long as `self` lives.
    pub fn fd_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.file.as_raw_fd()))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn netlink(&self) -> &Netlink {
        &self.netlink
    }

    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// The calling thread's own namespace, open (`/proc/thread-self/ns/net`): for links made
/// with their other end "in" it, to be taken by a runtime from there.
pub fn own() -> Result<File, KernelError> {
    let path = "/proc/thread-self/ns/net";
    File::open(path).map_err(netns_err(Path::new(path), "open"))
}

/// True when `path` is a live network namespace mount.
pub fn exists(path: &Path) -> bool {
    File::open(path).map(|f| is_nsfs(&f)).unwrap_or(false)
}

/// `ip netns delete`: unmounts and removes the file; a missing one is not an error.
pub fn remove(path: &Path) -> Result<(), KernelError> {
    netctl_crashpoint::step(&format!("remove namespace {}", path.display()));
    match umount2(path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(netns_err(path, "unmount")(io(e))),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(netns_err(path, "remove")(e)),
    }
}

/// The inode of the network namespace at `path`, if it is one.
pub fn inode_at(path: &Path) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let file = File::open(path).ok().filter(is_nsfs)?;
    file.metadata().ok().map(|m| m.ino())
}

/// The identity of the network namespace at `path`, if it is one. Its cookie is read from a
/// socket made inside it, on a short-lived thread that enters it.
pub fn id_at(path: &Path) -> Option<NetnsId> {
    let inode = inode_at(path)?;
    let file = File::open(path).ok()?;
    let cookie = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(io)?;
                current_cookie()
            })
            .join()
    });
    Some(NetnsId {
        inode,
        cookie: Some(cookie.ok()?.ok()?),
    })
}

/// The calling thread's network namespace cookie, from a throwaway socket made in it.
fn current_cookie() -> std::io::Result<u64> {
    use nix::sys::socket::{socket, AddressFamily, SockFlag, SockType};
    let socket = socket(
        AddressFamily::Unix,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(io)?;
    let mut cookie: u64 = 0;
    let mut len = std::mem::size_of::<u64>() as libc::socklen_t;
    // SAFETY: the fd is open for the whole call, and `cookie`/`len` are a valid u64 buffer
    // and its size, as SO_NETNS_COOKIE writes (nix has no wrapper for this option).
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_NETNS_COOKIE,
            (&mut cookie as *mut u64).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cookie)
}

/// The network namespaces other processes hold, by inode, each with a path that opens it:
/// a process's own (`/proc/PID/ns/net`), or a bind mount in any mount namespace (seen
/// through `/proc/PID/root`). A namespace not among them is held by nothing but this
/// process: its owner let it go. Used for runtimes' namespaces, which the daemon keeps open
/// itself and so cannot watch die. One scan of /proc; read it once per pass.
#[derive(Debug, Default)]
pub struct HeldNamespaces {
    paths: std::collections::HashMap<u64, PathBuf>,
    /// Where each bind mount is in its own mount namespace, and how it is reached from
    /// here.
    mounts: Vec<(PathBuf, PathBuf)>,
}

impl HeldNamespaces {
    pub fn scan() -> Self {
        let me = std::process::id().to_string();
        let pids: Vec<String> = std::fs::read_dir("/proc")
            .map(|dir| {
                dir.flatten()
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| n.bytes().all(|b| b.is_ascii_digit()) && *n != me)
                    .collect()
            })
            .unwrap_or_default();
        let mut held = Self::default();
        let mut mount_namespaces = std::collections::HashSet::new();
        for pid in &pids {
            let own = PathBuf::from(format!("/proc/{pid}/ns/net"));
            if let Some(inode) = inode_of(&own) {
                held.paths.entry(inode).or_insert(own);
            }
            let fresh = inode_of(Path::new(&format!("/proc/{pid}/ns/mnt")))
                .is_some_and(|mnt| mount_namespaces.insert(mnt));
            if fresh {
                held.add_mounts_of(pid);
            }
        }
        held
    }

    /// The nsfs mounts of network namespaces in `pid`'s mount namespace:
    /// `36 35 0:4 net:[4026532281] /run/netns/c1 rw shared:5 - nsfs nsfs rw`.
    fn add_mounts_of(&mut self, pid: &str) {
        let Ok(mounts) = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")) else {
            return;
        };
        for line in mounts.lines() {
            let mut fields = line.split(' ');
            let (Some(root), Some(mount_point)) = (fields.nth(3), fields.next()) else {
                continue;
            };
            let inode = root
                .strip_prefix("net:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse().ok());
            if let Some(inode) = inode {
                let mount_point = mount_point.replace("\\040", " ");
                let path = PathBuf::from(format!("/proc/{pid}/root{mount_point}"));
                self.mounts.push((mount_point.into(), path.clone()));
                self.paths.entry(inode).or_insert(path);
            }
        }
    }

    /// A path that opens the namespace bound at `mount_point` in another process's mount
    /// namespace (a runtime's sandbox key, which this one may see only as a placeholder).
    pub fn mounted_at(&self, mount_point: &Path) -> Option<&Path> {
        self.mounts
            .iter()
            .find(|(at, _)| at == mount_point)
            .map(|(_, path)| path.as_path())
    }

    /// A path that opens the namespace, if some other process holds it.
    pub fn path_of(&self, inode: u64) -> Option<&Path> {
        self.paths.get(&inode).map(PathBuf::as_path)
    }
}

fn inode_of(path: &Path) -> Option<u64> {
    std::fs::metadata(path)
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

fn is_nsfs(file: &File) -> bool {
    fstatfs(file.as_fd())
        .map(|s| s.filesystem_type() == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Interfaces made in this namespace from now on skip IPv6 duplicate address detection:
/// their MACs are unique, and while a link-local address is still tentative (a second) the
/// sandbox cannot resolve its IPv6 gateway. Runs on the thread that is in the namespace, as
/// /proc/sys/net shows the caller's namespace. Without IPv6 there is nothing to set.
fn skip_ipv6_dad() {
    let _ = std::fs::write("/proc/sys/net/ipv6/conf/default/accept_dad", "0");
}

/// The calling thread's network namespace.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// `mount --bind SOURCE TARGET`, the target file made first.
fn bind_netns(source: &Path, target: &Path) -> std::io::Result<()> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    File::create(target)?;
    mount(
        Some(source),
        target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(io)
}

/// Runs `enter` on a fresh OS thread (which may leave the daemon's namespace for good), then
/// opens a netlink connection there and the namespace file at `path`.
async fn on_thread(
    path: &Path,
    enter: impl FnOnce() -> std::io::Result<()> + Send + 'static,
) -> Result<Netns, KernelError> {
    let runtime = tokio::runtime::Handle::current();
    let path_buf = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = enter()
            .map_err(netns_err(&path_buf, "enter"))
            .and_then(|()| {
                let _guard = runtime.enter();
                let netlink = Netlink::connect().map_err(netns_err(&path_buf, "netlink"))?;
                let file = File::open(&path_buf).map_err(netns_err(&path_buf, "open"))?;
                let cookie = current_cookie().map_err(netns_err(&path_buf, "cookie"))?;
                Ok(Netns {
                    path: path_buf,
                    file,
                    netlink,
                    cookie,
                })
            });
        let _ = tx.send(result);
    });
    rx.await.map_err(|_| KernelError::Netns {
        path: path.into(),
        what: "thread",
        source: std::io::Error::other("namespace thread panicked"),
    })?
}

/// Runs `work` on a fresh OS thread that has entered the namespace at `path` and ends with
/// it (never a pooled thread: it would stay in the namespace). For work that acts on its
/// caller's namespace, such as running `nft`.
pub async fn run_in<T: Send + 'static>(
    path: &Path,
    work: impl FnOnce() -> Result<T, KernelError> + Send + 'static,
) -> Result<T, KernelError> {
    let file = File::open(path).map_err(netns_err(path, "open"))?;
    let path_buf = path.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let result = setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
            .map_err(|e| netns_err(&path_buf, "enter")(io(e)))
            .and_then(|()| work());
        let _ = tx.send(result);
    });
    rx.await.map_err(|_| KernelError::Netns {
        path: path.into(),
        what: "thread",
        source: std::io::Error::other("namespace thread panicked"),
    })?
}

fn netns_err(path: &Path, what: &'static str) -> impl FnOnce(std::io::Error) -> KernelError {
    let path = path.to_path_buf();
    move |source| KernelError::Netns { path, what, source }
}

fn io(e: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e as i32)
}
