//! dnsmasq as a test's "outside world" DNS server, in a test host's namespace.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{command_in, in_netns_at, Host};

/// A dnsmasq serving only what its options say (no upstreams, no /etc/hosts), logging every
/// query. Stopped by PID on drop.
pub struct Dnsmasq {
    child: Child,
    log: PathBuf,
    pub address: String,
}

impl Dnsmasq {
    /// Answers on `address`:53 (UDP and TCP) in `host`'s namespace; `records` are dnsmasq
    /// options such as `--address=/example.test/203.0.113.1` or `--host-record=NAME,IP,TTL`.
    pub fn start(host: &Host, address: &str, records: &[&str]) -> Self {
        Self::spawn(&host.netns_path(), host.dir(), address, records, true)
    }

    /// As [`Dnsmasq::start`] without logging queries (a log line per query would be most of
    /// the work in a benchmark).
    pub fn quiet(host: &Host, address: &str, options: &[&str]) -> Self {
        Self::spawn(&host.netns_path(), host.dir(), address, options, false)
    }

    /// As [`Dnsmasq::quiet`], in the namespace at `netns` (a sandbox's), logging to `dir`.
    pub fn quiet_in(netns: &Path, dir: &Path, address: &str, options: &[&str]) -> Self {
        Self::spawn(netns, dir, address, options, false)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn spawn(netns: &Path, dir: &Path, address: &str, records: &[&str], log_queries: bool) -> Self {
        let log = dir.join(format!("dnsmasq-{address}.log"));
        let out = File::create(&log).expect("dnsmasq log");
        let mut cmd = command_in(netns, "dnsmasq");
        if log_queries {
            cmd.arg("--log-queries");
        }
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--log-facility=-",
            "--user=root",
            "--pid-file=",
            "--port=53",
        ])
        .arg(format!("--listen-address={address}"))
        .args(records)
        .stdin(Stdio::null())
        .stdout(out.try_clone().expect("log"))
        .stderr(out);
        let child = cmd
            .spawn()
            .expect("spawn dnsmasq (apt-get install dnsmasq-base)");
        let server = Self {
            child,
            log,
            address: address.to_string(),
        };
        server.wait_ready(netns);
        server
    }

    fn wait_ready(&self, netns: &Path) {
        let ip: std::net::IpAddr = self.address.parse().expect("address");
        let target = SocketAddr::new(ip, 53);
        let deadline = Instant::now() + Duration::from_secs(10);
        let netns = netns.to_string_lossy().into_owned();
        while !in_netns_at(&netns, move || {
            TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
        }) {
            assert!(
                Instant::now() < deadline,
                "dnsmasq on {} not ready:\n{}",
                self.address,
                self.queries()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its log: one line per query it received.
    pub fn queries(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops it without closing its sockets: queries reach it and go unanswered, as with a
    /// server that hangs or a path that drops packets.
    pub fn pause(&self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGSTOP);
    }

    pub fn resume(&self) {
        let _ = kill(Pid::from_raw(self.child.id() as i32), Signal::SIGCONT);
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGKILL);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = self.child.wait();
    }
}
