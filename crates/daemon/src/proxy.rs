//! The one place netctl needs a userland proxy: a published port reached over IPv6 where
//! the kernel cannot translate it. The kernel cannot DNAT IPv6 loopback traffic to another
//! address (IPv6 has no `route_localnet`: a packet from `::1` may not leave `lo`), so
//! `curl http://localhost:8080` (which tries `::1` first) would hang or be refused; and an
//! IPv4-only container has no IPv6 address to DNAT to at all. The socket netctl already
//! holds on the published port (`[::]:PORT`, or `[::1]:PORT`) is where such connections
//! land: it listens, and each connection is relayed to the container, as Docker's
//! userland proxy does. Everything else stays in the kernel's DNAT.
//!
//! TCP bytes move with splice(2) through a pipe (the `tokio-splice2` crate), never copied
//! into the daemon; UDP datagrams are relayed per client, with a flow forgotten after
//! [`UDP_IDLE`] without a reply. SCTP is not proxied.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::net::{TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// A UDP flow is forgotten after this long without a reply (Docker's proxy: 90 s).
const UDP_IDLE: Duration = Duration::from_secs(90);
/// Flows kept at once per port; datagrams of further clients are dropped until one ends.
const UDP_FLOWS: usize = 4096;
/// How long a connection to the container may take before the client's is closed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Proto {
    Tcp,
    Udp,
}

/// One proxied host port: where connections land, and where they go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxySpec {
    pub proto: Proto,
    /// `None`: every address (`[::]`).
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    pub target: SocketAddr,
}

/// A proxied host port: protocol, host address (`None`: every one) and port.
type PortKey = (Proto, Option<IpAddr>, u16);

/// A running proxy: where it relays to, and its task.
type Running = (SocketAddr, JoinHandle<()>);

/// The running proxies, by host port.
#[derive(Default)]
pub struct Proxies {
    running: Mutex<HashMap<PortKey, Running>>,
}

impl Proxies {
    /// Starts a proxy for `spec` on `socket` (the held socket of its host port), replacing
    /// one with another target; one already running as asked is left alone.
    pub fn start(&self, spec: &ProxySpec, socket: &Arc<OwnedFd>) {
        let key = (spec.proto, spec.host_ip, spec.host_port);
        let mut running = self.running.lock();
        if running
            .get(&key)
            .is_some_and(|(target, _)| *target == spec.target)
        {
            return;
        }
        let task = match serve(spec, socket) {
            Ok(task) => task,
            Err(e) => {
                tracing::warn!(port = spec.host_port, error = %e, "cannot proxy the port's IPv6 loopback traffic");
                return;
            }
        };
        if let Some((_, old)) = running.insert(key, (spec.target, task)) {
            old.abort();
        }
    }

    /// Stops the port's proxy, and returns once its task is gone: its share of the held
    /// socket is then dropped, so the port is free again when the unpublish answers.
    pub async fn stop(&self, proto: Proto, host_ip: Option<IpAddr>, host_port: u16) {
        let stopped = self.running.lock().remove(&(proto, host_ip, host_port));
        if let Some((_, task)) = stopped {
            task.abort();
            let _ = task.await;
        }
    }

    /// Stops every proxy not in `wanted`.
    pub async fn retain(&self, wanted: &[ProxySpec]) {
        let unwanted: Vec<PortKey> = self
            .running
            .lock()
            .keys()
            .filter(|key| {
                !wanted
                    .iter()
                    .any(|s| (s.proto, s.host_ip, s.host_port) == **key)
            })
            .copied()
            .collect();
        for (proto, host_ip, host_port) in unwanted {
            self.stop(proto, host_ip, host_port).await;
        }
    }
}

/// The held socket, shared with the port's holder rather than duplicated: a published
/// port costs one descriptor, proxied or not (10,000 ports must fit the open-files limit).
/// Readiness comes from the runtime's reactor ([`AsyncFd`]); reads and writes go through a
/// std socket type over the same descriptor that never closes it.
struct Shared<T: FromRawFd> {
    ready: AsyncFd<Arc<OwnedFd>>,
    io: ManuallyDrop<T>,
}

impl<T: FromRawFd> Shared<T> {
    fn new(socket: Arc<OwnedFd>) -> std::io::Result<Self> {
        let fd = socket.as_raw_fd();
        // SAFETY: `fd` stays open for as long as `ready` holds the `Arc`, and `io` is never
        // dropped (ManuallyDrop), so it never closes the descriptor it does not own.
        let io = ManuallyDrop::new(unsafe { T::from_raw_fd(fd) });
        // SAFETY: the `Arc<OwnedFd>` keeps the descriptor open, and always the same, for as
        // long as the `AsyncFd` owns it.
        let ready = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(Self { ready, io })
    }
}

fn nonblocking(socket: &OwnedFd) -> std::io::Result<()> {
    use nix::fcntl::{fcntl, FcntlArg, OFlag};
    let flags = OFlag::from_bits_truncate(fcntl(socket, FcntlArg::F_GETFL)?);
    fcntl(socket, FcntlArg::F_SETFL(flags | OFlag::O_NONBLOCK))?;
    Ok(())
}

fn serve(spec: &ProxySpec, socket: &Arc<OwnedFd>) -> std::io::Result<JoinHandle<()>> {
    nonblocking(socket)?;
    let target = spec.target;
    Ok(match spec.proto {
        Proto::Tcp => {
            nix::sys::socket::listen(&**socket, nix::sys::socket::Backlog::new(1024)?)?;
            let listener = Shared::<std::net::TcpListener>::new(socket.clone())?;
            tokio::spawn(relay_tcp(listener, target))
        }
        Proto::Udp => {
            let socket = Shared::<std::net::UdpSocket>::new(socket.clone())?;
            tokio::spawn(relay_udp(socket, target))
        }
    })
}

async fn relay_tcp(listener: Shared<std::net::TcpListener>, target: SocketAddr) {
    loop {
        let accepted = match listener.ready.readable().await {
            Ok(mut ready) => match ready.try_io(|_| listener.io.accept()) {
                Ok(accepted) => accepted,
                Err(_would_block) => continue,
            },
            Err(e) => {
                tracing::debug!(error = %e, "proxy readiness");
                return;
            }
        };
        let client = accepted.and_then(|(client, _)| {
            client.set_nonblocking(true)?;
            TcpStream::from_std(client)
        });
        let mut client = match client {
            Ok(client) => client,
            Err(e) => {
                tracing::debug!(error = %e, "proxy accept");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        tokio::spawn(async move {
            let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await;
            let Ok(Ok(mut upstream)) = connected else {
                tracing::debug!(%target, "proxy: the container did not accept");
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = upstream.set_nodelay(true);
            if let Err(e) = tokio_splice2::copy_bidirectional(&mut client, &mut upstream).await {
                tracing::debug!(%target, error = %e, "proxied connection ended");
            }
        });
    }
}

/// The connected sockets of the clients' flows.
type Flows = Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>;

/// Relays datagrams from clients to the container, and the container's replies back. Only
/// this task holds the port's socket (the flows hand their replies over a channel), so
/// stopping it frees the port at once.
async fn relay_udp(socket: Shared<std::net::UdpSocket>, target: SocketAddr) {
    let flows: Flows = Arc::default();
    let mut flow_tasks = tokio::task::JoinSet::new();
    let (replies_tx, mut replies) = tokio::sync::mpsc::channel::<(SocketAddr, Vec<u8>)>(1024);
    let mut buf = vec![0u8; 65535];
    loop {
        tokio::select! {
            ready = socket.ready.readable() => {
                let Ok(mut ready) = ready else {
                    return;
                };
                let Ok(received) = ready.try_io(|_| socket.io.recv_from(&mut buf)) else {
                    continue;
                };
                let Ok((n, client)) = received else {
                    continue;
                };
                let existing = flows.lock().get(&client).cloned();
                let flow = match existing {
                    Some(flow) => flow,
                    None => match open_flow(&mut flow_tasks, &flows, &replies_tx, client, target).await {
                        Some(flow) => flow,
                        None => continue,
                    },
                };
                let _ = flow.send(&buf[..n]).await;
            }
            Some((client, reply)) = replies.recv() => {
                // A reply that would block is dropped, as a router drops what it cannot queue.
                let _ = socket.io.send_to(&reply, client);
            }
            Some(_) = flow_tasks.join_next(), if !flow_tasks.is_empty() => {}
        }
    }
}

/// A socket connected to the container for one client, and the task that hands its
/// replies back until the flow goes idle.
async fn open_flow(
    flow_tasks: &mut tokio::task::JoinSet<()>,
    flows: &Flows,
    replies_tx: &tokio::sync::mpsc::Sender<(SocketAddr, Vec<u8>)>,
    client: SocketAddr,
    target: SocketAddr,
) -> Option<Arc<UdpSocket>> {
    if flows.lock().len() >= UDP_FLOWS {
        return None;
    }
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let upstream = UdpSocket::bind(local).await.ok()?;
    upstream.connect(target).await.ok()?;
    let upstream = Arc::new(upstream);
    flows.lock().insert(client, upstream.clone());
    let (flows, replies_tx, from_container) = (flows.clone(), replies_tx.clone(), upstream.clone());
    flow_tasks.spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, from_container.recv(&mut buf)).await {
            if replies_tx.send((client, buf[..n].to_vec())).await.is_err() {
                break;
            }
        }
        flows.lock().remove(&client);
    });
    Some(upstream)
}
