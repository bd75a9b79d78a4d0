//! Echo servers inside a namespace that report who called: for tests of published ports.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

use crate::netns_thread::in_netns_at;

/// How long a server keeps answering before its thread ends by itself.
const LIFETIME: Duration = Duration::from_secs(30);

/// A TCP server on `[::]:port` (both families) in the namespace at `netns`: each connection
/// gets its first line back, prefixed by `echo:`. The receiver yields each caller's address.
pub fn tcp_echo(netns: &str, port: u16) -> Receiver<SocketAddr> {
    let listener = in_netns_at(netns, move || {
        TcpListener::bind(("::", port)).expect("bind the echo server")
    });
    listener.set_nonblocking(true).expect("nonblocking");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + LIFETIME;
        while Instant::now() < deadline {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let _ = tx.send(canonical(peer));
                    std::thread::spawn(move || answer(stream));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    rx
}

/// IPv4 callers of a dual-stack socket show as `::ffff:a.b.c.d`; report them as IPv4.
fn canonical(peer: SocketAddr) -> SocketAddr {
    SocketAddr::new(peer.ip().to_canonical(), peer.port())
}

fn answer(stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(LIFETIME));
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    let mut line = String::new();
    while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
        let _ = writer.write_all(format!("echo:{line}").as_bytes());
        line.clear();
    }
}

/// A UDP server on `[::]:port`: each datagram comes back prefixed by `echo:`.
pub fn udp_echo(netns: &str, port: u16) -> Receiver<SocketAddr> {
    let socket = in_netns_at(netns, move || {
        UdpSocket::bind(("::", port)).expect("bind udp")
    });
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        let deadline = Instant::now() + LIFETIME;
        let mut buf = [0u8; 1500];
        while Instant::now() < deadline {
            if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                let _ = tx.send(canonical(peer));
                let mut reply = b"echo:".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = socket.send_to(&reply, peer);
            }
        }
    });
    rx
}

/// From the namespace at `netns`: sends `hello` over TCP to `target` and returns the answer,
/// or `None` if nothing answered within two seconds.
pub fn tcp_call(netns: &str, target: SocketAddr) -> Option<String> {
    in_netns_at(netns, move || {
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        stream.write_all(b"hello\n").ok()?;
        let mut line = String::new();
        BufReader::new(stream).read_line(&mut line).ok()?;
        Some(line.trim().to_string())
    })
}

/// From the namespace at `netns`: one UDP datagram to `target`, and its answer.
pub fn udp_call(netns: &str, target: SocketAddr) -> Option<String> {
    in_netns_at(netns, move || {
        let local: SocketAddr = if target.is_ipv6() {
            "[::]:0"
        } else {
            "0.0.0.0:0"
        }
        .parse()
        .ok()?;
        let socket = UdpSocket::bind(local).ok()?;
        socket.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        socket.send_to(b"hello", target).ok()?;
        let mut buf = [0u8; 1500];
        let (n, _) = socket.recv_from(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..n]).into_owned())
    })
}
