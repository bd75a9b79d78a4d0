//! Host ports: which are published, choosing free ones, and a bound (not listening) socket
//! held on each, so that a host process already on the port is detected and none can take it
//! later. DNAT happens before any socket sees a packet, so these sockets never receive one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;

use drivers::firewall::PortForward;
use nix::sys::socket::{
    bind, setsockopt, socket, sockopt, AddressFamily, SockFlag, SockProtocol, SockType,
    SockaddrStorage,
};
use plugin_api::ports::{PortMapping, Protocol};
use plugin_api::ApiError;

use crate::model::EndpointRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HostPort {
    /// `None`: every address.
    ip: Option<IpAddr>,
    proto: Protocol,
    port: u16,
}

impl HostPort {
    fn overlaps(&self, other: &HostPort) -> bool {
        self.proto == other.proto
            && self.port == other.port
            && (self.ip.is_none() || other.ip.is_none() || self.ip == other.ip)
    }

    fn describe(&self) -> String {
        let ip = match self.ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
        };
        format!("{ip}:{}/{}", self.port, self.proto.name())
    }
}

#[derive(Default)]
pub(super) struct HostPorts {
    held: HashMap<HostPort, OwnedFd>,
}

impl HostPorts {
    /// Takes `port`, or says why not: already published, or in use on the host.
    fn reserve(&mut self, wanted: HostPort) -> Result<(), ApiError> {
        if let Some(taken) = self.held.keys().find(|k| k.overlaps(&wanted)) {
            return Err(ApiError::conflict(format!(
                "port {} is already published ({})",
                wanted.describe(),
                taken.describe()
            )));
        }
        let socket = bind_socket(&wanted).map_err(|e| match e {
            nix::errno::Errno::EADDRINUSE => ApiError::conflict(format!(
                "port {} is in use by a process on the host",
                wanted.describe()
            )),
            nix::errno::Errno::EADDRNOTAVAIL => ApiError::invalid(format!(
                "{} is not an address of this host",
                wanted.ip.map(|i| i.to_string()).unwrap_or_default()
            )),
            nix::errno::Errno::EPROTONOSUPPORT => ApiError::invalid(format!(
                "{} is not supported by this kernel",
                wanted.proto.name()
            )),
            other => ApiError::internal(format!("reserving port {}: {other}", wanted.describe())),
        })?;
        self.held.insert(wanted, socket);
        Ok(())
    }

    fn release(&mut self, port: &HostPort) {
        self.held.remove(port);
    }

    /// Reserves the mapping's host port, choosing one when it is 0 or a range; returns the
    /// mapping with its host port decided.
    pub fn take(&mut self, mapping: &PortMapping) -> Result<PortMapping, ApiError> {
        let key = |port| HostPort {
            ip: mapping.host_ip,
            proto: mapping.proto,
            port,
        };
        let decided = |port| PortMapping {
            host_port: port,
            host_port_end: port,
            ..mapping.clone()
        };
        if mapping.host_port != 0 && mapping.host_port == mapping.host_port_end {
            self.reserve(key(mapping.host_port))?;
            return Ok(decided(mapping.host_port));
        }
        let (first, last) = if mapping.host_port == 0 {
            ephemeral_range()
        } else {
            (mapping.host_port, mapping.host_port_end)
        };
        // Start at a random place so that consecutive choices spread over the range.
        let span = (last - first) as u32 + 1;
        let start = random_u32() % span;
        for offset in 0..span {
            let port = first + ((start + offset) % span) as u16;
            if self.reserve(key(port)).is_ok() {
                return Ok(decided(port));
            }
        }
        Err(ApiError::new(
            plugin_api::ErrorCode::Exhausted,
            format!(
                "no free host port for {}/{} in {first}-{last}",
                mapping.container_port,
                mapping.proto.name()
            ),
        ))
    }

    /// Takes every mapping, or none of them.
    pub fn take_all(&mut self, mappings: &[PortMapping]) -> Result<Vec<PortMapping>, ApiError> {
        let mut taken = Vec::new();
        for mapping in mappings {
            match self.take(mapping) {
                Ok(decided) => taken.push(decided),
                Err(e) => {
                    self.release_all(&taken);
                    return Err(e);
                }
            }
        }
        Ok(taken)
    }

    pub fn release_all(&mut self, mappings: &[PortMapping]) {
        for m in mappings {
            self.release(&HostPort {
                ip: m.host_ip,
                proto: m.proto,
                port: m.host_port,
            });
        }
    }
}

/// The kernel's forwards for an endpoint's published ports: a wildcard binding goes to each
/// of the endpoint's addresses, a specific one to the address of its family.
pub(super) fn forwards(ep: &EndpointRecord) -> Vec<PortForward> {
    forwards_of(ep, &ep.ports)
}

/// As [`forwards`], for some of the endpoint's mappings (being added or withdrawn).
pub(super) fn forwards_of(ep: &EndpointRecord, mappings: &[PortMapping]) -> Vec<PortForward> {
    mappings
        .iter()
        .flat_map(|m| {
            let targets: Vec<IpAddr> = [ep.ipv4, ep.ipv6]
                .into_iter()
                .flatten()
                .map(|a| a.ip())
                .filter(|t| m.host_ip.is_none_or(|h| h.is_ipv6() == t.is_ipv6()))
                .collect();
            targets.into_iter().map(move |target| PortForward {
                host_ip: m.host_ip,
                proto: m.proto.name(),
                host_port: m.host_port,
                target,
                target_port: m.container_port,
            })
        })
        .collect()
}

/// `bind()` without `listen()`: enough to own the port. A wildcard binding takes `[::]` with
/// IPv6-only off, so it covers both families (or 0.0.0.0 where IPv6 is disabled).
fn bind_socket(port: &HostPort) -> nix::Result<OwnedFd> {
    let (kind, protocol) = match port.proto {
        Protocol::Tcp => (SockType::Stream, SockProtocol::Tcp),
        Protocol::Udp => (SockType::Datagram, SockProtocol::Udp),
        Protocol::Sctp => (SockType::Stream, SockProtocol::Sctp),
    };
    let open = |ip: IpAddr, v6only: bool| -> nix::Result<OwnedFd> {
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
            std::os::fd::AsRawFd::as_raw_fd(&fd),
            &SockaddrStorage::from(SocketAddr::new(ip, port.port)),
        )?;
        Ok(fd)
    };
    match port.ip {
        Some(ip) => open(ip, true),
        None => open(IpAddr::V6(Ipv6Addr::UNSPECIFIED), false).or_else(|e| match e {
            nix::errno::Errno::EAFNOSUPPORT => {
                open(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), false)
            }
            other => Err(other),
        }),
    }
}

/// `/proc/sys/net/ipv4/ip_local_port_range` of the daemon's namespace.
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut parts = text.split_whitespace().map(|p| p.parse::<u16>().ok());
            Some((parts.next()??, parts.next()??))
        })
        .unwrap_or((32768, 60999))
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    u32::from_ne_bytes(bytes)
}

/// Raises the soft limit on open files to the hard one: every published port holds a socket.
pub fn raise_file_limit() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < hard {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(error = %e, "cannot raise the open files limit");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: Option<&str>, proto: Protocol, port: u16) -> HostPort {
        HostPort {
            ip: ip.map(|i| i.parse().unwrap()),
            proto,
            port,
        }
    }

    #[test]
    fn wildcard_bindings_overlap_every_address_of_the_same_port_and_protocol() {
        let any = port(None, Protocol::Tcp, 8080);
        assert!(any.overlaps(&port(Some("127.0.0.1"), Protocol::Tcp, 8080)));
        assert!(!any.overlaps(&port(Some("127.0.0.1"), Protocol::Udp, 8080)));
        assert!(!any.overlaps(&port(None, Protocol::Tcp, 8081)));
        let lo = port(Some("127.0.0.1"), Protocol::Tcp, 8080);
        assert!(!lo.overlaps(&port(Some("::1"), Protocol::Tcp, 8080)));
    }
}
