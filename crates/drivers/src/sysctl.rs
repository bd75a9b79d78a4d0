//! Sysctls of the namespace the daemon runs in (`/proc/sys/net` shows the caller's namespace).

use crate::DriverError;

/// `sysctl -w KEY=VALUE`, skipped when the value is already set.
pub fn ensure(key: &str, value: &str) -> Result<(), DriverError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    let err = |source| DriverError::Sysctl {
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
pub fn ensure_ipv6(key: &str, value: &str) -> Result<(), DriverError> {
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        return Ok(());
    }
    ensure(key, value)
}

/// Turns on IPv4 (and, when asked, IPv6) forwarding in the daemon's namespace.
pub fn enable_forwarding(ipv6: bool) -> Result<(), DriverError> {
    ensure("net.ipv4.ip_forward", "1")?;
    if ipv6 {
        ensure("net.ipv6.conf.all.forwarding", "1")?;
    }
    Ok(())
}
