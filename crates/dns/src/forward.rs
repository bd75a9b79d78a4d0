//! Asking upstream servers, from the daemon's own namespace (the host's): a loopback
//! upstream such as systemd-resolved's 127.0.0.53 works like any other.
//!
//! Servers are asked in order, but a server that has not answered within [`HEDGE_AFTER`] does
//! not hold the query up: the next one is asked too, and the first usable answer wins. A
//! server that failed recently is asked last. An ask that fails at once is tried again
//! shortly ([`RETRY_AFTER`]): one refused packet is no reason for a SERVFAIL when the
//! server answers the next. Nothing waits past [`GIVE_UP_AFTER`].

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use crate::locks::Lock;
use crate::settings::Upstream;
use crate::wire;

/// How long one server has before the next is asked as well.
pub const HEDGE_AFTER: Duration = Duration::from_millis(250);
/// When every server has had its chance: the client gets SERVFAIL, well before its own
/// timeout (glibc: 5 s).
pub const GIVE_UP_AFTER: Duration = Duration::from_millis(2500);
/// A server whose ask failed at once is asked again this long after each failure (then
/// twice as long), at most [`RETRIES`] times.
const RETRY_AFTER: Duration = Duration::from_millis(100);
/// A server still silent this long after it was asked, with no other server left to ask,
/// is asked again (the query or its answer may have been lost: UDP is not retransmitted
/// by anyone else, and the client gets our SERVFAIL before its own retry), at most
/// [`RETRIES`] times.
const RETRANSMIT_AFTER: Duration = Duration::from_millis(500);
const RETRIES: usize = 2;
/// An ask's outcome until it has one.
const SILENT: &str = "silent";
/// A server that failed within this long is tried after the others.
const REMEMBER_FAILURE: Duration = Duration::from_secs(30);

/// Which servers failed lately.
#[derive(Default)]
pub struct Health {
    failed: Mutex<HashMap<SocketAddr, Instant>>,
}

impl Health {
    fn order<'a>(&self, upstreams: &'a [Upstream]) -> Vec<&'a Upstream> {
        let failed = self.failed.locked();
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
        let failed = self.failed.locked();
        failed
            .get(&server)
            .map(Instant::elapsed)
            .filter(|ago| *ago < REMEMBER_FAILURE)
    }

    fn record(&self, server: SocketAddr, ok: bool) {
        let mut failed = self.failed.locked();
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
    let ask = |server: SocketAddr, after: Duration| async move {
        tokio::time::sleep(after).await;
        let answer = if tcp {
            ask_tcp(query, server).await
        } else {
            ask_udp(query, server).await
        };
        (server, answer)
    };
    let start = |server: SocketAddr, after: Duration, attempts: &mut Vec<Attempt>| {
        attempts.push(Attempt {
            server,
            failed_ago: health.failed_ago(server),
            outcome: SILENT.into(),
        });
        ask(server, after)
    };
    // Servers asked and not yet heard from, in the order they were asked.
    let mut silent = Vec::new();
    let mut refusal = None;
    let first = waiting.next()?.addr;
    silent.push(first);
    asking.push(start(first, Duration::ZERO, attempts));
    let retransmit = tokio::time::sleep(RETRANSMIT_AFTER);
    tokio::pin!(retransmit);
    loop {
        let hedge = tokio::time::sleep(HEDGE_AFTER);
        tokio::select! {
            Some((server, answer)) = asking.next() => {
                let asked_before: Vec<_> = silent.iter().take_while(|s| **s != server).copied().collect();
                silent.retain(|s| *s != server);
                let answered = answer.is_ok();
                // The oldest of its asks still pending: asks come back about in order.
                let pending = attempts.iter_mut().find(|a| a.server == server && a.outcome == SILENT);
                if let Some(attempt) = pending {
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
                // An error at once (a refused port, a route or neighbour not there yet) is
                // not the server's last word: it is asked again a moment later, while the
                // others are asked too. Only its last try counts against it.
                let tries = attempts.iter().filter(|a| a.server == server).count();
                if !answered && tries <= RETRIES {
                    silent.push(server);
                    asking.push(start(server, RETRY_AFTER * tries as u32, attempts));
                } else {
                    // A server that refuses is alive: only silence and errors count.
                    health.record(server, answered);
                }
                match waiting.next() {
                    Some(next) => {
                        silent.push(next.addr);
                        asking.push(start(next.addr, Duration::ZERO, attempts));
                    }
                    None if asking.is_empty() => return refusal,
                    None => {}
                }
            }
            _ = hedge, if waiting.len() > 0 => {
                if let Some(next) = waiting.next() {
                    silent.push(next.addr);
                    asking.push(start(next.addr, Duration::ZERO, attempts));
                }
            }
            _ = &mut retransmit => {
                retransmit.as_mut().reset(tokio::time::Instant::now() + RETRANSMIT_AFTER);
                let again = silent.iter().copied().find(|s| {
                    attempts.iter().filter(|a| a.server == *s).count() <= RETRIES
                });
                if let (Some(server), 0) = (again, waiting.len()) {
                    asking.push(start(server, Duration::ZERO, attempts));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A query for `www.example.test` A with id 7.
    fn query() -> Vec<u8> {
        let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["www", "example", "test"] {
            q.push(label.len() as u8);
            q.extend_from_slice(label.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        q
    }

    fn upstream(addr: SocketAddr) -> Upstream {
        Upstream {
            text: addr.to_string(),
            addr,
        }
    }

    /// Answers each query on `socket` with NOERROR.
    async fn answering(socket: UdpSocket) {
        let mut buf = [0u8; 512];
        while let Ok((n, from)) = socket.recv_from(&mut buf).await {
            let mut answer = buf[..n].to_vec();
            answer[2] |= 0x80;
            let _ = socket.send_to(&answer, from).await;
        }
    }

    /// The only upstream's port is closed for the first ask (the kernel refuses it at
    /// once): the ask is tried again and answered, not turned into a SERVFAIL.
    #[tokio::test]
    async fn an_ask_refused_at_once_is_tried_again() {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            answering(UdpSocket::bind(addr).await.unwrap()).await;
        });
        let started = Instant::now();
        let forwarded = forward(&query(), &[upstream(addr)], false, &Health::default()).await;
        let answer = forwarded.answer.expect("answered on the second try");
        assert_eq!(wire::rcode(&answer), 0);
        assert_eq!(wire::id(&answer), 7);
        assert!(forwarded.attempts.len() >= 2, "{:?}", forwarded.attempts);
        assert!(
            forwarded.attempts[0].outcome.contains("udp receive"),
            "{:?}",
            forwarded.attempts
        );
        assert!(started.elapsed() < GIVE_UP_AFTER);
    }

    /// A server that stays closed: SERVFAIL (no answer) after the retries, well before
    /// the deadline, each try in the record.
    #[tokio::test]
    async fn a_server_that_keeps_refusing_gives_up_soon() {
        let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = probe.local_addr().unwrap();
        drop(probe);
        let started = Instant::now();
        let health = Health::default();
        let forwarded = forward(&query(), &[upstream(addr)], false, &health).await;
        assert!(forwarded.answer.is_none());
        assert_eq!(forwarded.attempts.len(), RETRIES + 1);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert!(health.failed_ago(addr).is_some());
    }
}
