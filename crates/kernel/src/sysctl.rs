//! Sysctls of the namespace the daemon runs in (`/proc/sys/net` shows the caller's namespace).

use crate::KernelError;

/// `sysctl -w KEY=VALUE`, skipped when the value is already set.
pub fn ensure(key: &str, value: &str) -> Result<(), KernelError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let err = |source| KernelError::Sysctl {
        key: key.to_string(),
        source,
    };
    let current = std::fs::read_to_string(&path).map_err(err)?;
    if current.trim() != value {
        std::fs::write(&path, value).map_err(err)?;
    }
    Ok(())
}

/// As [`ensure`] for an IPv6 key; nothing to do where the kernel has IPv6 disabled.
pub fn ensure_ipv6(key: &str, value: &str) -> Result<(), KernelError> {
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    ensure(key, value)
}

/// Turns on IPv4 (and, when asked, IPv6) forwarding in the daemon's namespace.
pub fn enable_forwarding(ipv6: bool) -> Result<(), KernelError> {
    ensure("net.ipv4.ip_forward", "1")?;
    if ipv6 {
        ensure("net.ipv6.conf.all.forwarding", "1")?;
    }
    Ok(())
}

/// Makes /proc/sys writable in this mount namespace when it is mounted read-only, as in a
/// container (a Docker managed plugin runs in one): `mount -o remount,bind,rw /proc/sys`.
/// Needs CAP_SYS_ADMIN; a no-op where /proc/sys is writable already.
pub fn make_writable() -> Result<(), KernelError> {
    use nix::mount::{mount, MsFlags};
    use nix::sys::statvfs::{statvfs, FsFlags};
    let err = |e: nix::errno::Errno| KernelError::Sysctl {
        key: "/proc/sys (remount read-write)".into(),
        source: std::io::Error::from_raw_os_error(e as i32),
    };
    let flags = statvfs("/proc/sys").map_err(err)?.flags();
    if !flags.contains(FsFlags::ST_RDONLY) {
        return Ok(());
    }
    // Keep the mount's other flags: a remount that drops a locked one is refused.
    let mut keep = MsFlags::MS_REMOUNT | MsFlags::MS_BIND;
    for (fs, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
    ] {
        if flags.contains(fs) {
            keep |= ms;
        }
    }
    mount(None::<&str>, "/proc/sys", None::<&str>, keep, None::<&str>).map_err(err)
}
