//! The sockets behind 127.0.0.11:53 inside each sandbox, and the tasks that serve them.
//!
//! Sockets are opened on a short-lived thread that enters the sandbox's namespace; a socket
//! stays in the namespace it was opened in, so one thread serves every sandbox from wherever
//! the daemon runs, with no process or thread per sandbox.
//!
//! That thread runs a single-threaded runtime of its own: a query that wakes it is answered
//! by the same thread, without a hand-over between the workers of the daemon's runtime
//! (which cost a context switch per burst of queries, most of the time spent serving).

use std::fs::File;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sched::{setns, CloneFlags};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::Semaphore;
use tokio::task::{JoinHandle, JoinSet};

use crate::query::{Forward, Reply};
use crate::{forward, wire, Dns, DnsError, SERVER_ADDRESS};

/// Connections served at once per sandbox over TCP; more wait in the kernel's backlog.
const TCP_CONNECTIONS: usize = 64;
/// A TCP client that sends nothing for this long is disconnected (RFC 7766 suggests seconds).
const TCP_IDLE: Duration = Duration::from_secs(10);
/// Queries being forwarded at once per sandbox; beyond it, queries are dropped (the client
/// retries) instead of growing without bound while upstreams are down.
const FORWARDS: usize = 512;
/// Largest UDP query read; EDNS queries are a few hundred bytes.
const UDP_QUERY_MAX: usize = 4096;

/// One sandbox's serving tasks; dropping it stops them and closes the sockets.
pub(crate) struct Listener {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

impl Listener {
    pub(crate) async fn start(
        dns: Arc<Dns>,
        sandbox_id: &str,
        netns: &Path,
        redirect: Redirect,
    ) -> Result<Self, DnsError> {
        let (udp, tcp) = bind_in(netns.to_path_buf(), sandbox_id, redirect).await?;
        let id: Arc<str> = sandbox_id.into();
        // Registered with, and served by, the DNS thread's own runtime.
        let runtime = dns.runtime.clone();
        let (udp_dns, udp_id) = (dns.clone(), id.clone());
        Ok(Self {
            tasks: vec![
                runtime.spawn(async move {
                    match UdpSocket::from_std(udp) {
                        Ok(udp) => serve_udp(udp_dns, udp_id, Arc::new(udp)).await,
                        Err(e) => tracing::error!(sandbox = %udp_id, "DNS over UDP: {e}"),
                    }
                }),
                runtime.spawn(async move {
                    match TcpListener::from_std(tcp) {
                        Ok(tcp) => serve_tcp(dns, id, tcp).await,
                        Err(e) => tracing::error!(sandbox = %id, "DNS over TCP: {e}"),
                    }
                }),
            ],
        })
    }
}

/// Called inside the sandbox's namespace with the port the server listens on, to send
/// 127.0.0.11:53 there (the daemon installs nft rules that rewrite the port).
pub type Redirect = Box<dyn FnOnce(u16) -> Result<(), String> + Send>;

/// Where a sandbox's server listens: ports in this range, the first free one from a start
/// derived from the sandbox's ID, so that a restarted daemon usually listens where it did
/// before and the sandbox's rules stay as they were.
const PORTS: std::ops::Range<u16> = 40_000..60_000;
const PORT_TRIES: u16 = 256;

fn first_port(sandbox_id: &str) -> u16 {
    // FNV-1a: stable across runs and builds, unlike std's hasher.
    let hash = sandbox_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    PORTS.start + (hash % u32::from(PORTS.end - PORTS.start)) as u16
}

type Sockets = (std::net::UdpSocket, std::net::TcpListener);

/// UDP and TCP sockets on one port of 127.0.0.11 inside the calling thread's namespace.
fn bind_here(sandbox_id: &str) -> std::io::Result<(Sockets, u16)> {
    let span = PORTS.end - PORTS.start;
    let offset = first_port(sandbox_id) - PORTS.start;
    let mut last = std::io::Error::other("no port tried");
    for i in 0..PORT_TRIES {
        let port = PORTS.start + (offset + i) % span;
        let addr = SocketAddr::from((SERVER_ADDRESS, port));
        let bound = std::net::UdpSocket::bind(addr)
            .and_then(|udp| Ok((udp, std::net::TcpListener::bind(addr)?)));
        match bound {
            Ok((udp, tcp)) => {
                udp.set_nonblocking(true)?;
                tcp.set_nonblocking(true)?;
                return Ok(((udp, tcp), port));
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Binds the sockets inside the namespace at `netns` and has `redirect` send port 53 to them.
async fn bind_in(
    netns: PathBuf,
    sandbox_id: &str,
    redirect: Redirect,
) -> Result<Sockets, DnsError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let path = netns.clone();
    let id = sandbox_id.to_string();
    // A fresh thread: it leaves the daemon's namespace and ends with the job.
    std::thread::spawn(move || {
        let bound = (|| {
            let file = File::open(&path).map_err(|e| e.to_string())?;
            setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| e.to_string())?;
            let (sockets, port) = bind_here(&id).map_err(|e| e.to_string())?;
            redirect(port).map_err(|e| format!("redirecting port 53 to {port}: {e}"))?;
            Ok(sockets)
        })();
        let _ = tx.send(bound);
    });
    let bound = rx
        .await
        .unwrap_or_else(|_| Err("socket thread panicked".to_string()));
    bound.map_err(|why| DnsError::Bind { netns, why })
}

async fn serve_udp(dns: Arc<Dns>, sandbox: Arc<str>, socket: Arc<UdpSocket>) {
    let forwards = Arc::new(Semaphore::new(FORWARDS));
    let mut buf = vec![0u8; UDP_QUERY_MAX];
    loop {
        let (len, client) = match socket.recv_from(&mut buf).await {
            Ok(got) => got,
            Err(e) => {
                tracing::debug!(sandbox = %sandbox, "DNS receive: {e}");
                continue;
            }
        };
        let started = Instant::now();
        match dns.answer(&sandbox, &buf[..len], false) {
            Reply::Now(answer) => {
                let _ = socket.send_to(&answer, client).await;
                answered(started, LOCAL);
            }
            Reply::Forward(job) => {
                let Ok(permit) = forwards.clone().try_acquire_owned() else {
                    continue;
                };
                let (dns, socket, query) = (dns.clone(), socket.clone(), buf[..len].to_vec());
                tokio::spawn(async move {
                    let answer = dns.forward(&query, job, false).await;
                    let _ = socket.send_to(&answer, client).await;
                    answered(started, FORWARDED);
                    drop(permit);
                });
            }
            Reply::Drop => {}
        }
    }
}

async fn serve_tcp(dns: Arc<Dns>, sandbox: Arc<str>, listener: TcpListener) {
    // Owned here, so stopping the listener ends its connections too.
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        while connections.try_join_next().is_some() {}
        if connections.len() >= TCP_CONNECTIONS {
            continue;
        }
        connections.spawn(serve_connection(dns.clone(), sandbox.clone(), stream));
    }
}

/// Length-prefixed queries, one after another, until the client goes quiet or away.
async fn serve_connection(dns: Arc<Dns>, sandbox: Arc<str>, mut stream: TcpStream) {
    loop {
        let Ok(Ok(len)) = tokio::time::timeout(TCP_IDLE, stream.read_u16()).await else {
            return;
        };
        let mut query = vec![0u8; usize::from(len)];
        let Ok(Ok(_)) = tokio::time::timeout(TCP_IDLE, stream.read_exact(&mut query)).await else {
            return;
        };
        let started = Instant::now();
        let (answer, how) = match dns.answer(&sandbox, &query, true) {
            Reply::Now(answer) => (answer, LOCAL),
            Reply::Forward(job) => (dns.forward(&query, job, true).await, FORWARDED),
            Reply::Drop => return,
        };
        let mut framed = Vec::with_capacity(answer.len() + 2);
        framed.extend_from_slice(&(answer.len() as u16).to_be_bytes());
        framed.extend_from_slice(&answer);
        if stream.write_all(&framed).await.is_err() {
            return;
        }
        answered(started, how);
    }
}

/// Answered here: a local name, the cache, or an error this server gives itself.
const LOCAL: &str = "local";
/// Answered by an upstream.
const FORWARDED: &str = "forwarded";

/// Records how long a query took, from its arrival to its answer's sending.
fn answered(started: Instant, how: &'static str) {
    metrics::histogram!("netctl_dns_query_duration_seconds", "answer" => how)
        .record(started.elapsed());
}

impl Dns {
    /// Forwards, caches, and shapes the answer for the client: SERVFAIL when no upstream
    /// answered; header and question with TC when it is too big for the client's UDP buffer.
    pub(crate) async fn forward(&self, query: &[u8], job: Forward, tcp: bool) -> Vec<u8> {
        let forwarded = forward::forward(query, &job.resolution.upstreams, tcp, &self.health).await;
        let Some(answer) = forwarded.answer else {
            let asked: Vec<String> = forwarded
                .attempts
                .iter()
                .map(|a| match a.failed_ago {
                    Some(ago) => format!("{} (failed {ago:.1?} ago): {}", a.server, a.outcome),
                    None => format!("{}: {}", a.server, a.outcome),
                })
                .collect();
            tracing::debug!(sandbox = %job.sandbox, upstreams_from = ?job.resolution.upstreams_from, ?asked, "SERVFAIL: no upstream answered");
            return wire::error_reply(query, wire::SERVFAIL).unwrap_or_default();
        };
        self.cache.put(job.key, &answer);
        if answer.len() > job.limit {
            return wire::truncated(&answer);
        }
        answer
    }
}
