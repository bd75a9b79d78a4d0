//! Asking upstream servers, from the daemon's own namespace (the host's): a loopback
//! upstream such as systemd-resolved's 127.0.0.53 works like any other.
//!
//! Servers are asked in order, but a server that has not answered within [`HEDGE_AFTER`] does
//! not hold the query up: the next one is asked too, and the first usable answer wins. A
//! server that failed recently is asked last. Nothing waits past [`GIVE_UP_AFTER`].

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::settings::Upstream;
use crate::wire;

/// How long one server has before the next is asked as well.
pub const HEDGE_AFTER: Duration = Duration::from_millis(250);
/// When every server has had its chance: the client gets SERVFAIL, well before its own
/// timeout (glibc: 5 s).
pub const GIVE_UP_AFTER: Duration = Duration::from_millis(2500);
/// A server that failed within this long is tried after the others.
const REMEMBER_FAILURE: Duration = Duration::from_secs(30);

/// Which servers failed lately.
#[derive(Default)]
pub struct Health {
    failed: Mutex<HashMap<SocketAddr, Instant>>,
}

impl Health {
    fn order<'a>(&self, upstreams: &'a [Upstream]) -> Vec<&'a Upstream> {
        let failed = self.failed.lock().unwrap();
        let mut ordered: Vec<_> = upstreams.iter().collect();
        ordered.sort_by_key(|u| {
            failed
                .get(&u.addr)
                .is_some_and(|at| at.elapsed() < REMEMBER_FAILURE)
        });
        ordered
    }

    /// How long ago `server` failed, if that is recent enough to count.
    fn failed_ago(&self, server: SocketAddr) -> Option<Duration> {
        let failed = self.failed.lock().unwrap();
        failed
            .get(&server)
            .map(Instant::elapsed)
            .filter(|ago| *ago < REMEMBER_FAILURE)
    }

    fn record(&self, server: SocketAddr, ok: bool) {
        let mut failed = self.failed.lock().unwrap();
        if ok {
            failed.remove(&server);
        } else {
            failed.insert(server, Instant::now());
        }
    }
}

/// What asking one server came to, for the log of a query that got no usable answer.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub server: SocketAddr,
    /// How long ago it had last failed, when it was asked (it is then asked last).
    pub failed_ago: Option<Duration>,
    /// `answered NOERROR`, `refused`, `silent`, or the error and where it happened.
    pub outcome: String,
}

/// The answer, if any, and what each server asked came to.
#[derive(Debug, Default)]
pub struct Forwarded {
    pub answer: Option<Vec<u8>>,
    pub attempts: Vec<Attempt>,
}

/// The first usable answer to `query` from `upstreams`, with the query's ID. When every
/// server refused or failed, the last of those answers; `None` when none came in time.
/// `tcp` asks over TCP only (the client asked over TCP); otherwise UDP, and TCP for an
/// answer that came back truncated.
pub async fn forward(
    query: &[u8],
    upstreams: &[Upstream],
    tcp: bool,
    health: &Health,
) -> Forwarded {
    let mut attempts = Vec::new();
    let answer = ask_all(query, upstreams, tcp, health, &mut attempts).await;
    Forwarded { answer, attempts }
}

async fn ask_all(
    query: &[u8],
    upstreams: &[Upstream],
    tcp: bool,
    health: &Health,
    attempts: &mut Vec<Attempt>,
) -> Option<Vec<u8>> {
    let deadline = tokio::time::sleep(GIVE_UP_AFTER);
    tokio::pin!(deadline);
    let mut waiting = health.order(upstreams).into_iter();
    let mut asking = FuturesUnordered::new();
    let ask = |server: SocketAddr| async move {
        let answer = if tcp {
            ask_tcp(query, server).await
        } else {
            ask_udp(query, server).await
        };
        (server, answer)
    };
    let start = |server: SocketAddr, attempts: &mut Vec<Attempt>| {
        attempts.push(Attempt {
            server,
            failed_ago: health.failed_ago(server),
            outcome: "silent".into(),
        });
        ask(server)
    };
    // Servers asked and not yet heard from, in the order they were asked.
    let mut silent = Vec::new();
    let mut refusal = None;
    let first = waiting.next()?.addr;
    silent.push(first);
    asking.push(start(first, attempts));
    loop {
        let hedge = tokio::time::sleep(HEDGE_AFTER);
        tokio::select! {
            Some((server, answer)) = asking.next() => {
                let asked_before: Vec<_> = silent.iter().take_while(|s| **s != server).copied().collect();
                silent.retain(|s| *s != server);
                let answered = answer.is_ok();
                if let Some(attempt) = attempts.iter_mut().rev().find(|a| a.server == server) {
                    attempt.outcome = match &answer {
                        Ok(a) => format!("answered {}", wire::rcode_name(wire::rcode(a))),
                        Err(e) => e.to_string(),
                    };
                }
                match answer {
                    Ok(a) if !matches!(wire::rcode(&a), wire::SERVFAIL | wire::REFUSED) => {
                        health.record(server, true);
                        // Those asked earlier were overtaken: slow or gone.
                        asked_before.into_iter().for_each(|s| health.record(s, false));
                        return Some(a);
                    }
                    Ok(a) => refusal = Some(a),
                    Err(_) => {}
                }
                // A server that refuses is alive: only silence and errors count against it.
                health.record(server, answered);
                match waiting.next() {
                    Some(next) => {
                        silent.push(next.addr);
                        asking.push(start(next.addr, attempts));
                    }
                    None if asking.is_empty() => return refusal,
                    None => {}
                }
            }
            _ = hedge, if waiting.len() > 0 => {
                if let Some(next) = waiting.next() {
                    silent.push(next.addr);
                    asking.push(start(next.addr, attempts));
                }
            }
            _ = &mut deadline => {
                silent.into_iter().for_each(|s| health.record(s, false));
                return refusal;
            }
        }
    }
}

/// `query` under a fresh ID from the kernel's random source, so that only the server we
/// asked can answer it: an ID an off-path attacker could predict would let it poison the
/// cache (the source port, chosen by the kernel, is the other half of the guess).
fn with_fresh_id(query: &[u8]) -> (Vec<u8>, u16) {
    let mut ours = query.to_vec();
    let mut bytes = [0u8; 2];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    let id = u16::from_ne_bytes(bytes);
    wire::set_id(&mut ours, id);
    (ours, id)
}

fn is_answer_to(answer: &[u8], ours: &[u8], id: u16) -> bool {
    answer.len() >= wire::HEADER_LEN
        && wire::is_response(answer)
        && wire::id(answer) == id
        && wire::same_question(ours, answer)
}

/// Names the step an I/O error came from.
fn at(step: &'static str) -> impl Fn(io::Error) -> io::Error {
    move |e| io::Error::new(e.kind(), format!("{step}: {e}"))
}

async fn ask_udp(query: &[u8], server: SocketAddr) -> io::Result<Vec<u8>> {
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(at("udp bind"))?;
    socket.connect(server).await.map_err(at("udp connect"))?;
    let (ours, id) = with_fresh_id(query);
    socket.send(&ours).await.map_err(at("udp send"))?;
    let mut buf = vec![0u8; 65_535];
    loop {
        // A refused port (ICMP) fails here at once, and the next server is asked.
        let len = socket.recv(&mut buf).await.map_err(at("udp receive"))?;
        let answer = &buf[..len];
        if !is_answer_to(answer, &ours, id) {
            continue;
        }
        if wire::is_truncated(answer) {
            if let Ok(full) = ask_tcp(query, server).await {
                return Ok(full);
            }
        }
        let mut answer = answer.to_vec();
        wire::set_id(&mut answer, wire::id(query));
        return Ok(answer);
    }
}

async fn ask_tcp(query: &[u8], server: SocketAddr) -> io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(server)
        .await
        .map_err(at("tcp connect"))?;
    let (ours, id) = with_fresh_id(query);
    let mut framed = Vec::with_capacity(ours.len() + 2);
    framed.extend_from_slice(&(ours.len() as u16).to_be_bytes());
    framed.extend_from_slice(&ours);
    stream.write_all(&framed).await?;
    let len = stream.read_u16().await?;
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await?;
    if !is_answer_to(&answer, &ours, id) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "answer to another question",
        ));
    }
    wire::set_id(&mut answer, wire::id(query));
    Ok(answer)
}
