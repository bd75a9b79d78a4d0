//! Sockets that hold host ports: bound, never listening. A process already on the port is
//! found out by the bind; once bound, no process can take the port. Packets DNAT'd elsewhere
//! never reach these sockets.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use nix::errno::Errno;
use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockProtocol, SockType,
    SockaddrStorage,
};

/// A transport protocol with ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Tcp,
    Udp,
    Sctp,
}

/// Why a port could not be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HoldError {
    #[error("in use by a process on the host")]
    InUse,
    #[error("not an address of this host")]
    NotLocal,
    #[error("protocol not supported by this kernel")]
    Unsupported,
    #[error("{0}")]
    Other(Errno),
}

/// `bind()` without `listen()` on `ip:port` (`None`: every address; `[::]` with IPv6-only
/// off, so both families, or 0.0.0.0 where the kernel has no IPv6).
pub fn hold(ip: Option<IpAddr>, transport: Transport, port: u16) -> Result<OwnedFd, HoldError> {
    let held = match ip {
        Some(ip) => bound(ip, true, transport, port),
        None => {
            bound(IpAddr::V6(Ipv6Addr::UNSPECIFIED), false, transport, port).or_else(|e| match e {
                Errno::EAFNOSUPPORT => {
                    bound(IpAddr::V4(Ipv4Addr::UNSPECIFIED), false, transport, port)
                }
                other => Err(other),
            })
        }
    };
    held.map_err(|e| match e {
        Errno::EADDRINUSE => HoldError::InUse,
        Errno::EADDRNOTAVAIL => HoldError::NotLocal,
        Errno::EPROTONOSUPPORT => HoldError::Unsupported,
        other => HoldError::Other(other),
    })
}

fn bound(ip: IpAddr, v6only: bool, transport: Transport, port: u16) -> nix::Result<OwnedFd> {
    let (kind, protocol) = match transport {
        Transport::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Transport::Udp => (SockType::Datagram, SockProtocol::Udp),
        Transport::Sctp => (SockType::Stream, SockProtocol::Sctp),
    };
    let family = if ip.is_ipv6() {
        AddressFamily::Inet6
    } else {
        AddressFamily::Inet
    };
    let fd = socket(family, kind, SockFlag::SOCK_CLOEXEC, protocol)?;
    if ip.is_ipv6() {
        setsockopt(&fd, sockopt::Ipv6V6Only, &v6only)?;
    }
    bind(
        fd.as_raw_fd(),
        &SockaddrStorage::from(SocketAddr::new(ip, port)),
    )?;
    Ok(fd)
}

/// `sysctl net.ipv4.ip_local_port_range` of the caller's namespace: where ports that nobody
/// named are taken from.
pub fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

/// Raises the open files limit as dockerd's and containerd's units do (`LimitNOFILE`): every
/// held port is a descriptor, and every sandbox holds several (its namespace, a netlink
/// socket, its DNS server's sockets). Root may go past the hard limit, up to the kernel's
/// `fs.nr_open`; anyone else up to the hard limit. The load benchmark's 10,000 sandboxes
/// ran out at a hard limit of 20,000.
pub fn raise_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return;
    };
    let most = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .unwrap_or(hard)
        .min(MOST_OPEN_FILES);
    if most > hard && setrlimit(Resource::RLIMIT_NOFILE, most, most).is_ok() {
        return;
    }
    if soft < hard {
        if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            tracing::warn!(error = %e, "cannot raise the open files limit");
        }
    }
}

/// systemd's `LimitNOFILE=infinity`, as dockerd's unit has it.
const MOST_OPEN_FILES: u64 = 1 << 20;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_open_files_limit_is_raised_at_least_to_the_hard_limit() {
        use nix::sys::resource::{getrlimit, Resource};
        let (_, hard_before) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        raise_file_limit();
        let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
        assert_eq!(soft, hard);
        assert!(hard >= hard_before);
        assert!(hard <= MOST_OPEN_FILES.max(hard_before));
    }

    #[test]
    fn a_held_port_cannot_be_held_twice() {
        let first = hold(Some("127.0.0.1".parse().unwrap()), Transport::Udp, 0);
        // Port 0 takes any free port; ask the kernel which.
        let first = first.expect("a free port");
        let local: SockaddrStorage = nix::sys::socket::getsockname(first.as_raw_fd()).unwrap();
        let port = local.as_sockaddr_in().unwrap().port();
        assert_eq!(
            hold(Some("127.0.0.1".parse().unwrap()), Transport::Udp, port).unwrap_err(),
            HoldError::InUse
        );
        assert_eq!(
            hold(Some("192.0.2.77".parse().unwrap()), Transport::Udp, port).unwrap_err(),
            HoldError::NotLocal
        );
    }
}
