//! The daemon's DHCP clients: for each endpoint of a DHCP network, one client per family,
//! each a task of the daemon's runtime with its own socket on the endpoint's interface (no
//! client process per container, no helper daemon). A client reports its first lease to
//! whoever attaches the endpoint, and every later change (renewed, refused, expired) to the
//! controller, which keeps the kernel, the names and the store in step.

mod client;
mod records;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use netctl_ipam::dhcp::{self as identity, v4, v6};
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use self::client::{Client, Command, Outlets};
pub(crate) use self::records::{lease_from_record, lease_record};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Family {
    V4,
    V6,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Self::V4 => "DHCPv4",
            Self::V6 => "DHCPv6",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lease {
    V4(v4::Lease),
    V6(v6::Lease),
}

/// What became of a client's lease.
#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// Granted, newly or renewed.
    Bound(Lease),
    /// The server refused the address (the client asks anew).
    Refused(String),
    /// It ran out with no server answering (the client asks anew).
    Expired,
}

#[derive(Debug, Clone)]
pub(crate) struct LeaseEvent {
    pub endpoint: String,
    pub family: Family,
    pub change: Change,
}

/// The interface a client leases for.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub endpoint: String,
    /// A path to its namespace any thread of the daemon can open.
    pub netns: PathBuf,
    pub ifname: String,
    /// Its index inside the namespace.
    pub ifindex: u32,
    pub mac: [u8; 6],
    /// Sent as option 12.
    pub hostname: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum LeaseError {
    #[error("cannot open a {family} socket on {ifname}: {source}")]
    Socket {
        family: &'static str,
        ifname: String,
        source: netctl_kernel::KernelError,
    },
    #[error(
        "no {family} server answered on {ifname} within {secs} s (none is reachable, or \
         it has no address to give)"
    )]
    NoAnswer {
        family: &'static str,
        ifname: String,
        secs: u64,
    },
    #[error("the {family} server refused a lease on {ifname}: {reason}")]
    Refused {
        family: &'static str,
        ifname: String,
        reason: String,
    },
}

pub(crate) struct LeaseClients {
    running: Mutex<HashMap<(String, Family), mpsc::UnboundedSender<Command>>>,
    events: mpsc::UnboundedSender<LeaseEvent>,
}

impl LeaseClients {
    /// The clients, and where their changes after the first lease arrive.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<LeaseEvent>) {
        let (events, changes) = mpsc::unbounded_channel();
        let clients = Self {
            running: Mutex::default(),
            events,
        };
        (clients, changes)
    }

    /// Starts a client and waits for its first lease, at most `bound`. A refusal is
    /// reported only if no lease follows in time (the client asks again after one).
    pub async fn acquire(
        &self,
        target: &Target,
        family: Family,
        bound: Duration,
    ) -> Result<Lease, LeaseError> {
        let (first, mut firsts) = mpsc::unbounded_channel();
        self.spawn(target, family, None, Some(first)).await?;
        let deadline = tokio::time::Instant::now() + bound;
        let mut refusal = None;
        loop {
            match tokio::time::timeout_at(deadline, firsts.recv()).await {
                Ok(Some(Change::Bound(lease))) => return Ok(lease),
                Ok(Some(Change::Refused(reason))) => refusal = Some(reason),
                Ok(Some(Change::Expired)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.forget(&target.endpoint);
        Err(match refusal {
            Some(reason) => LeaseError::Refused {
                family: family.name(),
                ifname: target.ifname.clone(),
                reason,
            },
            None => LeaseError::NoAnswer {
                family: family.name(),
                ifname: target.ifname.clone(),
                secs: bound.as_secs(),
            },
        })
    }

    /// Starts a client that confirms a remembered lease (or asks for one); what it gets
    /// comes as events.
    pub async fn resume(
        &self,
        target: &Target,
        family: Family,
        remembered: Option<Lease>,
    ) -> Result<(), LeaseError> {
        self.spawn(target, family, remembered, None).await
    }

    async fn spawn(
        &self,
        target: &Target,
        family: Family,
        remembered: Option<Lease>,
        first: Option<mpsc::UnboundedSender<Change>>,
    ) -> Result<(), LeaseError> {
        let socket = open_socket(target, family).await?;
        let client = new_client(target, family);
        let (commands, inbox) = mpsc::unbounded_channel();
        let replaced = self
            .running
            .lock()
            .insert((target.endpoint.clone(), family), commands);
        // A client already running for it (a resume racing an attach) stops; no release:
        // the lease is the same one.
        drop(replaced);
        let outlets = Outlets {
            endpoint: target.endpoint.clone(),
            first,
            events: self.events.clone(),
        };
        tokio::spawn(client::run(client, socket, inbox, outlets, remembered));
        Ok(())
    }

    /// Gives the endpoint's leases back to their servers and stops its clients; returns
    /// once the releases are sent (the interface must still be there). Whether a client
    /// was running to send one.
    pub async fn release(&self, endpoint: &str) -> bool {
        let commands: Vec<_> = {
            let mut running = self.running.lock();
            [Family::V4, Family::V6]
                .into_iter()
                .filter_map(|family| running.remove(&(endpoint.to_string(), family)))
                .collect()
        };
        let mut released = false;
        for command in commands {
            let (done, sent) = oneshot::channel();
            if command.send(Command::Release(done)).is_ok() {
                released |= matches!(
                    tokio::time::timeout(Duration::from_secs(1), sent).await,
                    Ok(Ok(()))
                );
            }
        }
        released
    }

    /// Gives `lease` back from `target` with no client running for it (the one that held it
    /// is stopped): for a lease whose client's namespace is gone.
    pub async fn release_from(&self, target: &Target, lease: Lease) -> Result<(), LeaseError> {
        self.forget(&target.endpoint);
        let family = match lease {
            Lease::V4(_) => Family::V4,
            Lease::V6(_) => Family::V6,
        };
        let socket = open_socket(target, family).await?;
        let client = new_client(target, family);
        client::release_once(client, socket, lease, &target.endpoint).await;
        Ok(())
    }

    /// Stops the endpoint's clients without a release (dropping a client's command
    /// channel ends its task).
    pub fn forget(&self, endpoint: &str) {
        let mut running = self.running.lock();
        running.retain(|(id, _), _| id != endpoint);
    }

    /// How many clients run (for the benchmark's memory figure and the log).
    pub fn count(&self) -> usize {
        self.running.lock().len()
    }
}

fn new_client(target: &Target, family: Family) -> Client {
    let xid = seed();
    match family {
        Family::V4 => Client::V4(v4::Client::new(
            v4::Identity {
                mac: target.mac,
                client_id: identity::client_id(&target.endpoint),
                hostname: target.hostname.clone(),
            },
            xid,
        )),
        Family::V6 => Client::V6 {
            client: v6::Client::new(
                v6::Identity {
                    duid: identity::duid(&target.endpoint),
                    iaid: identity::iaid(&target.endpoint),
                },
                xid,
                Instant::now(),
            ),
            ifindex: target.ifindex,
        },
    }
}

/// Transaction ids start somewhere unpredictable, so no other client's answer matches.
fn seed() -> u32 {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("the kernel's random source");
    u32::from_ne_bytes(bytes)
}

/// The client's socket, opened on a thread inside the endpoint's namespace.
async fn open_socket(target: &Target, family: Family) -> Result<tokio::net::UdpSocket, LeaseError> {
    let ifname = target.ifname.clone();
    let opened = netctl_kernel::netns::run_in(&target.netns, move || {
        let socket = match family {
            Family::V4 => netctl_kernel::dhcp::socket_v4(&ifname),
            Family::V6 => netctl_kernel::dhcp::socket_v6(&ifname),
        };
        let socket = socket.and_then(|s| s.set_nonblocking(true).map(|()| s));
        socket.map_err(|source| netctl_kernel::KernelError::Io {
            what: "DHCP client socket",
            source,
        })
    })
    .await;
    let fail = |source| LeaseError::Socket {
        family: family.name(),
        ifname: target.ifname.clone(),
        source,
    };
    let socket = opened.map_err(fail)?;
    tokio::net::UdpSocket::from_std(socket).map_err(|source| {
        fail(netctl_kernel::KernelError::Io {
            what: "DHCP client socket",
            source,
        })
    })
}
