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
//! [`UDP_IDLE`] without traffic. SCTP is not proxied.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;

/// A UDP flow is forgotten after this long without a datagram either way (Docker's
/// proxy: 90 s).
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
    pub fn start(&self, spec: &ProxySpec, socket: &OwnedFd) {
        let key = (spec.proto, spec.host_ip, spec.host_port);
        let mut running = self.running.lock().expect("proxies");
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

    pub fn stop(&self, proto: Proto, host_ip: Option<IpAddr>, host_port: u16) {
        let stopped = self
            .running
            .lock()
            .expect("proxies")
            .remove(&(proto, host_ip, host_port));
        if let Some((_, task)) = stopped {
            task.abort();
        }
    }

    /// Stops every proxy not in `wanted`.
    pub fn retain(&self, wanted: &[ProxySpec]) {
        self.running
            .lock()
            .expect("proxies")
            .retain(|key, (_, task)| {
                let keep = wanted
                    .iter()
                    .any(|s| (s.proto, s.host_ip, s.host_port) == *key);
                if !keep {
                    task.abort();
                }
                keep
            });
    }
}

fn serve(spec: &ProxySpec, socket: &OwnedFd) -> std::io::Result<JoinHandle<()>> {
    let socket = socket.try_clone()?;
    let target = spec.target;
    Ok(match spec.proto {
        Proto::Tcp => {
            nix::sys::socket::listen(&socket, nix::sys::socket::Backlog::new(1024)?)?;
            let listener = std::net::TcpListener::from(socket);
            listener.set_nonblocking(true)?;
            let listener = TcpListener::from_std(listener)?;
            tokio::spawn(relay_tcp(listener, target))
        }
        Proto::Udp => {
            let socket = std::net::UdpSocket::from(socket);
            socket.set_nonblocking(true)?;
            tokio::spawn(relay_udp(Arc::new(UdpSocket::from_std(socket)?), target))
        }
    })
}

async fn relay_tcp(listener: TcpListener, target: SocketAddr) {
    loop {
        let (mut client, _) = match listener.accept().await {
            Ok(accepted) => accepted,
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

async fn relay_udp(socket: Arc<UdpSocket>, target: SocketAddr) {
    let flows: Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>> = Arc::default();
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let existing = flows.lock().expect("udp flows").get(&client).cloned();
        let flow = match existing {
            Some(flow) => flow,
            None => match open_flow(&socket, &flows, client, target).await {
                Some(flow) => flow,
                None => continue,
            },
        };
        let _ = flow.send(&buf[..n]).await;
    }
}

/// A socket connected to the container for one client, and the task that returns its
/// replies to the client until the flow goes idle.
async fn open_flow(
    listener: &Arc<UdpSocket>,
    flows: &Arc<Mutex<HashMap<SocketAddr, Arc<UdpSocket>>>>,
    client: SocketAddr,
    target: SocketAddr,
) -> Option<Arc<UdpSocket>> {
    if flows.lock().expect("udp flows").len() >= UDP_FLOWS {
        return None;
    }
    let local: SocketAddr = match target {
        SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("address"),
        SocketAddr::V6(_) => "[::]:0".parse().expect("address"),
    };
    let upstream = UdpSocket::bind(local).await.ok()?;
    upstream.connect(target).await.ok()?;
    let upstream = Arc::new(upstream);
    flows
        .lock()
        .expect("udp flows")
        .insert(client, upstream.clone());
    let (listener, flows, replies) = (listener.clone(), flows.clone(), upstream.clone());
    tokio::spawn(async move {
        let mut buf = vec![0u8; 65535];
        while let Ok(Ok(n)) = tokio::time::timeout(UDP_IDLE, replies.recv(&mut buf)).await {
            let _ = listener.send_to(&buf[..n], client).await;
        }
        flows.lock().expect("udp flows").remove(&client);
    });
    Some(upstream)
}
