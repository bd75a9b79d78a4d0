//! One DHCP client, either family, driven by its own task: the state machine of
//! `netctl-dhcp` with a socket on the endpoint's interface, inside its namespace.

use std::net::SocketAddr;
use std::time::Instant;

use netctl_ipam::dhcp::{v4, v6};
use netctl_kernel::dhcp as sockets;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use super::{Change, Family, Lease, LeaseEvent};

/// Either family's client; the v6 one sends to All_DHCP_Relay_Agents_and_Servers on its
/// interface.
pub(super) enum Client {
    V4(v4::Client),
    V6 { client: v6::Client, ifindex: u32 },
}

/// What the task does with a client's events.
pub(super) enum Step {
    Send(Vec<u8>, SocketAddr),
    Change(Change),
}

impl Client {
    pub fn family(&self) -> Family {
        match self {
            Self::V4(_) => Family::V4,
            Self::V6 { .. } => Family::V6,
        }
    }

    pub fn start(&mut self, remembered: Option<Lease>) -> Vec<Step> {
        let now = Instant::now();
        match (self, remembered) {
            (Self::V4(c), Some(Lease::V4(lease))) => v4_steps(c.start(now, Some(lease))),
            (Self::V4(c), _) => v4_steps(c.start(now, None)),
            (Self::V6 { client, ifindex }, Some(Lease::V6(lease))) => {
                v6_steps(client.start(now, Some(lease)), *ifindex)
            }
            (Self::V6 { client, ifindex }, _) => v6_steps(client.start(now, None), *ifindex),
        }
    }

    pub fn next_wake(&self) -> Option<Instant> {
        match self {
            Self::V4(c) => c.next_wake(),
            Self::V6 { client, .. } => client.next_wake(),
        }
    }

    pub fn poll(&mut self) -> Vec<Step> {
        let now = Instant::now();
        match self {
            Self::V4(c) => v4_steps(c.poll(now)),
            Self::V6 { client, ifindex } => v6_steps(client.poll(now), *ifindex),
        }
    }

    pub fn handle(&mut self, packet: &[u8]) -> Vec<Step> {
        let now = Instant::now();
        match self {
            Self::V4(c) => v4_steps(c.handle(packet, now)),
            Self::V6 { client, ifindex } => v6_steps(client.handle(packet, now), *ifindex),
        }
    }

    pub fn release(&mut self) -> Vec<Step> {
        match self {
            Self::V4(c) => v4_steps(c.release()),
            Self::V6 { client, ifindex } => v6_steps(client.release(Instant::now()), *ifindex),
        }
    }
}

fn v4_steps(events: Vec<v4::Event>) -> Vec<Step> {
    events
        .into_iter()
        .map(|event| match event {
            v4::Event::Send { packet, to } => {
                let target = match to {
                    v4::Destination::Broadcast => sockets::all_servers_v4(),
                    v4::Destination::Server(ip) => {
                        SocketAddr::new(ip.into(), sockets::SERVER_PORT_V4)
                    }
                };
                Step::Send(packet, target)
            }
            v4::Event::Bound(lease) => Step::Change(Change::Bound(Lease::V4(lease))),
            v4::Event::Refused { reason } => Step::Change(Change::Refused(
                reason.unwrap_or_else(|| "DHCPNAK without a message".into()),
            )),
            v4::Event::Expired => Step::Change(Change::Expired),
        })
        .collect()
}

fn v6_steps(events: Vec<v6::Event>, ifindex: u32) -> Vec<Step> {
    events
        .into_iter()
        .map(|event| match event {
            v6::Event::Send(packet) => Step::Send(packet, sockets::all_servers_v6(ifindex)),
            v6::Event::Bound(lease) => Step::Change(Change::Bound(Lease::V6(lease))),
            v6::Event::Refused { status, message } => {
                Step::Change(Change::Refused(format!("{status:?}: {message}")))
            }
            v6::Event::Expired => Step::Change(Change::Expired),
        })
        .collect()
}

/// What a running client is told.
pub(super) enum Command {
    /// Give the lease back, then stop; answers once the release is sent.
    Release(oneshot::Sender<()>),
}

/// Where a client's changes go: to whoever waits for its first lease, then to the daemon.
pub(super) struct Outlets {
    pub endpoint: String,
    pub first: Option<mpsc::UnboundedSender<Change>>,
    pub events: mpsc::UnboundedSender<LeaseEvent>,
}

impl Outlets {
    fn report(&mut self, family: Family, change: Change) {
        if let Some(first) = &self.first {
            let bound = matches!(change, Change::Bound(_));
            let _ = first.send(change);
            if bound {
                self.first = None;
            }
            return;
        }
        let _ = self.events.send(LeaseEvent {
            endpoint: self.endpoint.clone(),
            family,
            change,
        });
    }
}

/// Runs the client until it is released, or until nobody can command it any more (the
/// endpoint is gone without a release: the daemon stopping, a failed first lease).
pub(super) async fn run(
    mut client: Client,
    socket: UdpSocket,
    mut commands: mpsc::UnboundedReceiver<Command>,
    mut outlets: Outlets,
    remembered: Option<Lease>,
) {
    let family = client.family();
    let mut steps = client.start(remembered);
    let mut buf = vec![0u8; 1500];
    loop {
        for step in steps.drain(..) {
            match step {
                Step::Send(packet, to) => send(&socket, &packet, to, &outlets.endpoint).await,
                Step::Change(change) => outlets.report(family, change),
            }
        }
        let wake = client.next_wake();
        let sleep = async {
            match wake {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = socket.recv(&mut buf) => {
                if let Ok(n) = received {
                    steps = client.handle(&buf[..n]);
                }
            }
            () = sleep => steps = client.poll(),
            command = commands.recv() => {
                let Some(Command::Release(done)) = command else {
                    return;
                };
                for step in client.release() {
                    if let Step::Send(packet, to) = step {
                        send(&socket, &packet, to, &outlets.endpoint).await;
                    }
                }
                let _ = done.send(());
                return;
            }
        }
    }
}

/// Gives `lease` back through `socket` with a client made for the purpose: the client that
/// held it ran where its socket no longer works (a container's namespace, gone).
pub(super) async fn release_once(mut client: Client, socket: UdpSocket, lease: Lease, who: &str) {
    // Taking the lease up makes the client hold it; what it would send for that is dropped.
    let _ = client.start(Some(lease));
    for step in client.release() {
        if let Step::Send(packet, to) = step {
            send(&socket, &packet, to, who).await;
        }
    }
}

/// A failed send is retried by the client's own clock; it is only logged.
async fn send(socket: &UdpSocket, packet: &[u8], to: SocketAddr, endpoint: &str) {
    if let Err(e) = socket.send_to(packet, to).await {
        tracing::debug!(endpoint, %to, error = %e, "cannot send a DHCP packet");
    }
}
