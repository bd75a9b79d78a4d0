//! One daemon per network namespace. Two daemons in one namespace would each take the
//! other's bridges, veths and nft table for leftovers and remove or rebuild them in turn, so
//! a daemon holds a lock before it touches anything: an abstract Unix socket, which the
//! kernel keeps per network namespace (not per file system, so a second daemon with another
//! data-root and socket meets it too) and releases when the daemon dies, however it dies.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};

use crate::DaemonError;

/// The lock's name in the namespace's abstract socket space.
const LOCK_NAME: &[u8] = b"netctl-daemon";

/// Held for the daemon's life; the kernel drops it with the process.
#[derive(Debug)]
pub struct InstanceLock(#[allow(dead_code)] UnixListener);

impl InstanceLock {
    /// Takes the namespace's lock, or says which process holds it.
    pub fn take() -> Result<Self, DaemonError> {
        let addr = SocketAddr::from_abstract_name(LOCK_NAME).map_err(lock_error)?;
        match UnixListener::bind_addr(&addr) {
            Ok(listener) => Ok(Self(listener)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                let holder = match holder_pid(&addr) {
                    Some(pid) => format!("another netctl daemon (pid {pid})"),
                    None => "another netctl daemon".to_string(),
                };
                Err(DaemonError::Refused(format!(
                    "{holder} manages this network namespace: run one daemon per namespace (stop it first, or start this one in a namespace of its own)"
                )))
            }
            Err(e) => Err(lock_error(e)),
        }
    }
}

/// The holder's pid: the credentials a listening socket passes to whoever connects
/// (`SO_PEERCRED` are the listener's as of its `listen`).
fn holder_pid(addr: &SocketAddr) -> Option<i32> {
    let stream = UnixStream::connect_addr(addr).ok()?;
    nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|cred| cred.pid())
}

fn lock_error(source: std::io::Error) -> DaemonError {
    DaemonError::Io {
        what: "take the namespace's daemon lock",
        path: "@netctl-daemon".into(),
        source,
    }
}
