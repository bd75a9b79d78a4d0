//! Host ports: which are published, choosing free ones, and a bound (not listening) socket
//! held on each, so that a host process already on the port is detected and none can take it
//! later. DNAT happens before any socket sees a packet, so these sockets never receive one.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::Arc;

use netctl_drivers::firewall::PortForward;
use netctl_kernel::ports::{ephemeral_range, hold, HoldError};
use netctl_plugin_api::ports::PortMapping;
use parking_lot::Mutex;

use crate::controller::error::{EngineError, ErrorKind};
use crate::model::{EndpointRecord, PublishedPort, Transport};
use crate::proxy::{Proto, Proxies, ProxySpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct HostPort {
    /// `None`: every address.
    ip: Option<IpAddr>,
    proto: Transport,
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

/// How netctl reserves a published host port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Reservation {
    /// A socket bound on it for as long as it is published.
    Held,
    /// Checked free on the host, then left to the runtime, which binds it itself after the
    /// attach (podman does, and fails if netctl holds the port).
    Probed,
    /// Only recorded: a runtime's port taken again at start, which the runtime may hold.
    Recorded,
}

impl Reservation {
    /// How a port reserved this way is taken back (a restart, an undone removal): the
    /// runtime may hold a runtime's port by then.
    pub fn again(self) -> Self {
        match self {
            Self::Held => Self::Held,
            Self::Probed | Self::Recorded => Self::Recorded,
        }
    }
}

#[derive(Default)]
pub(super) struct HostPorts {
    /// The ports published, with netctl's socket on those it holds.
    held: HashMap<HostPort, Option<Arc<OwnedFd>>>,
    /// The same sockets, for the proxies, which start and stop outside the state lock.
    sockets: HeldSockets,
}

/// The sockets held on published ports, by protocol, host address and port.
#[derive(Default, Clone)]
pub(super) struct HeldSockets(Arc<Mutex<HashMap<HostPort, Arc<OwnedFd>>>>);

impl HeldSockets {
    fn get(&self, proto: Transport, ip: Option<IpAddr>, port: u16) -> Option<Arc<OwnedFd>> {
        let key = HostPort { ip, proto, port };
        self.0.lock().get(&key).cloned()
    }
}

impl HostPorts {
    /// Takes `port`, or says why not: already published, or in use on the host.
    fn reserve(&mut self, wanted: HostPort, how: Reservation) -> Result<(), EngineError> {
        if let Some(taken) = self.held.keys().find(|k| k.overlaps(&wanted)) {
            return Err(EngineError::conflict(format!(
                "port {} is already published ({})",
                wanted.describe(),
                taken.describe()
            )));
        }
        let transport = match wanted.proto {
            Transport::Tcp => netctl_kernel::ports::Transport::Tcp,
            Transport::Udp => netctl_kernel::ports::Transport::Udp,
            Transport::Sctp => netctl_kernel::ports::Transport::Sctp,
        };
        let socket = hold(wanted.ip, transport, wanted.port).map_err(|e| match e {
            HoldError::InUse => EngineError::conflict(format!(
                "port {} is in use by a process on the host",
                wanted.describe()
            )),
            HoldError::NotLocal => match wanted.ip {
                // A new network namespace has lo down, and lo without its addresses.
                Some(ip) if ip.is_loopback() => EngineError::invalid(format!(
                    "{ip} is not an address here: the loopback interface lo is down (or has no \
                     {ip}) in the daemon's network namespace; `ip link set lo up` there"
                )),
                ip => EngineError::invalid(format!(
                    "{} is not an address of this host",
                    ip.map(|i| i.to_string()).unwrap_or_default()
                )),
            },
            HoldError::Unsupported => EngineError::invalid(format!(
                "{} is not supported by this kernel",
                wanted.proto.name()
            )),
            HoldError::Other(other) => {
                EngineError::internal(format!("reserving port {}: {other}", wanted.describe()))
            }
        })?;
        let socket = (how == Reservation::Held).then(|| Arc::new(socket));
        if let Some(socket) = &socket {
            let mut shared = self.sockets.0.lock();
            shared.insert(wanted, socket.clone());
        }
        self.held.insert(wanted, socket);
        Ok(())
    }

    fn release(&mut self, port: &HostPort) {
        self.held.remove(port);
        self.sockets.0.lock().remove(port);
    }

    /// The held sockets, for the proxies.
    pub fn sockets(&self) -> HeldSockets {
        self.sockets.clone()
    }

    /// Reserves the mapping's host port, choosing one when it is 0 or a range; returns the
    /// port as published.
    fn take(
        &mut self,
        mapping: &PortMapping,
        how: Reservation,
    ) -> Result<PublishedPort, EngineError> {
        let proto = Transport::from(mapping.proto);
        let key = |port| HostPort {
            ip: mapping.host_ip,
            proto,
            port,
        };
        let decided = |port| PublishedPort {
            transport: proto,
            host_ip: mapping.host_ip,
            host_port: port,
            container_port: mapping.container_port,
            service: None,
        };
        if mapping.host_port != 0 && mapping.host_port == mapping.host_port_end {
            self.reserve(key(mapping.host_port), how)?;
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
            if self.reserve(key(port), how).is_ok() {
                return Ok(decided(port));
            }
        }
        Err(EngineError::new(
            ErrorKind::Exhausted,
            format!(
                "no free host port for {}/{} in {first}-{last}",
                mapping.container_port,
                mapping.proto.name()
            ),
        ))
    }

    /// Takes every mapping, or none of them.
    pub fn take_all(
        &mut self,
        mappings: &[PortMapping],
        how: Reservation,
    ) -> Result<Vec<PublishedPort>, EngineError> {
        let mut taken = Vec::new();
        for mapping in mappings {
            match self.take(mapping, how) {
                Ok(decided) => taken.push(decided),
                Err(e) => {
                    self.release_all(&taken);
                    return Err(e);
                }
            }
        }
        Ok(taken)
    }

    /// Holds published ports again (a restart, or an undone removal).
    pub fn retake_all(
        &mut self,
        ports: &[PublishedPort],
        how: Reservation,
    ) -> Result<(), EngineError> {
        let mut taken = Vec::new();
        for p in ports {
            let key = HostPort {
                ip: p.host_ip,
                proto: p.transport,
                port: p.host_port,
            };
            if let Err(e) = self.reserve(key, how) {
                self.release_all(&taken);
                return Err(e);
            }
            taken.push(p.clone());
        }
        Ok(())
    }

    /// Whether `port` could be published on every address: nothing here or on the host
    /// holds it.
    pub fn is_free(&mut self, proto: Transport, port: u16) -> bool {
        let key = HostPort {
            ip: None,
            proto,
            port,
        };
        if self.reserve(key, Reservation::Probed).is_err() {
            return false;
        }
        self.release(&key);
        true
    }

    pub fn release_all(&mut self, ports: &[PublishedPort]) {
        for p in ports {
            self.release(&HostPort {
                ip: p.host_ip,
                proto: p.transport,
                port: p.host_port,
            });
        }
    }
}

/// The kernel's forwards for an endpoint's published ports: a wildcard binding goes to each
/// of the endpoint's addresses, a specific one to the address of its family.
pub(super) fn forwards(ep: &EndpointRecord) -> Vec<PortForward> {
    forwards_of(ep, &ep.ports)
}

/// As [`forwards`], for some of the endpoint's ports (being added or withdrawn).
pub(super) fn forwards_of(ep: &EndpointRecord, mappings: &[PublishedPort]) -> Vec<PortForward> {
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
                proto: m.transport.name(),
                host_port: m.host_port,
                target,
                target_port: m.container_port,
            })
        })
        .collect()
}

/// The forwards' host ports that need the loopback proxy (see `crate::proxy`): TCP and UDP
/// published on every address (IPv6 traffic the kernel does not DNAT lands on the held
/// `[::]` socket: `::1`'s, and all of it for an IPv4-only container) or on `::1` itself. A
/// port goes to the container's IPv6 address when it has one.
pub(super) fn proxies(forwards: &[PortForward]) -> Vec<ProxySpec> {
    let mut wanted: HashMap<(Proto, Option<IpAddr>, u16), SocketAddr> = HashMap::new();
    for f in forwards {
        let proto = match f.proto {
            "tcp" => Proto::Tcp,
            "udp" => Proto::Udp,
            _ => continue,
        };
        if f.host_ip
            .is_some_and(|ip| ip != IpAddr::V6(Ipv6Addr::LOCALHOST))
        {
            continue;
        }
        let target = SocketAddr::new(f.target, f.target_port);
        wanted
            .entry((proto, f.host_ip, f.host_port))
            .and_modify(|t| {
                if target.is_ipv6() {
                    *t = target;
                }
            })
            .or_insert(target);
    }
    wanted
        .into_iter()
        .map(|((proto, host_ip, host_port), target)| ProxySpec {
            proto,
            host_ip,
            host_port,
            target,
        })
        .collect()
}

/// Starts the proxies `specs` need on their held sockets (a port netctl does not hold, a
/// runtime's, has none).
pub(super) fn start_proxies(proxies: &Proxies, sockets: &HeldSockets, specs: &[ProxySpec]) {
    for spec in specs {
        let transport = match spec.proto {
            Proto::Tcp => Transport::Tcp,
            Proto::Udp => Transport::Udp,
        };
        if let Some(socket) = sockets.get(transport, spec.host_ip, spec.host_port) {
            proxies.start(spec, &socket);
        }
    }
}

fn random_u32() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    u32::from_ne_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port(ip: Option<&str>, proto: Transport, port: u16) -> HostPort {
        HostPort {
            ip: ip.map(|i| i.parse().unwrap()),
            proto,
            port,
        }
    }

    #[test]
    fn wildcard_bindings_overlap_every_address_of_the_same_port_and_protocol() {
        let any = port(None, Transport::Tcp, 8080);
        assert!(any.overlaps(&port(Some("127.0.0.1"), Transport::Tcp, 8080)));
        assert!(!any.overlaps(&port(Some("127.0.0.1"), Transport::Udp, 8080)));
        assert!(!any.overlaps(&port(None, Transport::Tcp, 8081)));
        let lo = port(Some("127.0.0.1"), Transport::Tcp, 8080);
        assert!(!lo.overlaps(&port(Some("::1"), Transport::Tcp, 8080)));
    }
}
