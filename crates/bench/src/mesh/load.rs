//! A short HTTP-like exchange, served and driven from inside namespaces: a request line and
//! a two-byte answer, either one per connection (new connections per second) or many over
//! kept connections (requests per second).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use netctl_netns_fixtures::in_netns_at;

const REQUEST: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n";
const REQUEST_CLOSE: &[u8] = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n";
const RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// Threads of a server: more than the clients' concurrency, each serving one connection at
/// a time.
const SERVER_THREADS: usize = 40;

/// Serves the exchange on `port` in the namespace at `netns`, for the rest of the process.
pub fn serve(netns: &str, port: u16) -> anyhow::Result<()> {
    let listener = in_netns_at(netns, move || TcpListener::bind(("0.0.0.0", port)))?;
    for _ in 0..SERVER_THREADS {
        let listener = listener.try_clone()?;
        std::thread::spawn(move || {
            while let Ok((stream, _)) = listener.accept() {
                answer(stream);
            }
        });
    }
    Ok(())
}

/// Answers every request on the connection until the client closes it or asks to.
fn answer(mut stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let mut buf = [0u8; 512];
    loop {
        // The client sends one small request and waits: one read is one request.
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stream.write_all(RESPONSE).is_err() {
            return;
        }
        if buf[..n].windows(10).any(|w| w == b"Connection") {
            return;
        }
    }
}

/// What a run achieved.
pub struct Rate {
    pub per_second: f64,
    pub failures: u64,
}

/// `concurrency` clients in the namespace at `netns` exchange with `target` for `length`:
/// each over a new connection when `new_connections`, else over one kept connection each.
pub fn drive(
    netns: &str,
    target: SocketAddr,
    concurrency: usize,
    length: Duration,
    new_connections: bool,
) -> Rate {
    in_netns_at(netns, move || {
        let done = AtomicU64::new(0);
        let failed = AtomicU64::new(0);
        let started = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..concurrency {
                scope.spawn(|| {
                    let (ok, bad) = if new_connections {
                        one_per_connection(target, started, length)
                    } else {
                        kept_connection(target, started, length)
                    };
                    done.fetch_add(ok, Ordering::Relaxed);
                    failed.fetch_add(bad, Ordering::Relaxed);
                });
            }
        });
        Rate {
            per_second: done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64(),
            failures: failed.load(Ordering::Relaxed),
        }
    })
}

fn one_per_connection(target: SocketAddr, started: Instant, length: Duration) -> (u64, u64) {
    let (mut ok, mut bad) = (0, 0);
    while started.elapsed() < length {
        match exchange_once(target) {
            Ok(()) => ok += 1,
            Err(_) => bad += 1,
        }
    }
    (ok, bad)
}

fn exchange_once(target: SocketAddr) -> std::io::Result<()> {
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.set_nodelay(true)?;
    stream.write_all(REQUEST_CLOSE)?;
    let mut answer = Vec::with_capacity(RESPONSE.len());
    stream.read_to_end(&mut answer)?;
    if answer != RESPONSE {
        return Err(std::io::Error::other("short answer"));
    }
    Ok(())
}

fn kept_connection(target: SocketAddr, started: Instant, length: Duration) -> (u64, u64) {
    let Ok(mut stream) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return (0, 1);
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let _ = stream.set_nodelay(true);
    let mut answer = [0u8; RESPONSE.len()];
    let mut ok = 0;
    while started.elapsed() < length {
        if stream.write_all(REQUEST).is_err() || stream.read_exact(&mut answer).is_err() {
            return (ok, 1);
        }
        ok += 1;
    }
    (ok, 0)
}
