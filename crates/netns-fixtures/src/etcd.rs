//! An etcd cluster from Debian's etcd-server, each member on a host (namespace) of its own
//! on a [`Lan`], at 203.0.113.101, .102, …: a test's cluster store.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{in_netns_at, Host, Lan};

/// Members stopped by PID on drop; their data dies with their hosts' scratch directories.
pub struct EtcdCluster {
    members: Vec<Member>,
    /// Served over TLS with client certificates, with these files (`netctl cluster certs`'s
    /// names: ca.pem, etcd.pem, etcd-key.pem, root.pem, root-key.pem).
    tls: Option<PathBuf>,
}

struct Member {
    host: Host,
    name: String,
    address: String,
    child: Option<Child>,
}

impl EtcdCluster {
    /// Starts `size` members on `lan` and waits until the cluster answers.
    pub fn start(lan: &Lan, size: usize) -> Self {
        Self::start_with(lan, size, None)
    }

    /// The members' addresses, for their certificates.
    pub fn addresses(size: usize) -> Vec<String> {
        (0..size)
            .map(|i| format!("203.0.113.{}", 101 + i))
            .collect()
    }

    /// [`EtcdCluster::start`], over TLS (clients and peers) with client certificates
    /// required, from the files in `certs` (see [`EtcdCluster::addresses`]).
    pub fn start_tls(lan: &Lan, size: usize, certs: &Path) -> Self {
        Self::start_with(lan, size, Some(certs.to_path_buf()))
    }

    fn start_with(lan: &Lan, size: usize, tls: Option<PathBuf>) -> Self {
        let members: Vec<Member> = (0..size)
            .map(|i| {
                let host = Host::new();
                let address = format!("203.0.113.{}", 101 + i);
                lan.plug(&host, &address);
                Member {
                    host,
                    name: format!("m{}", i + 1),
                    address,
                    child: None,
                }
            })
            .collect();
        let mut cluster = Self { members, tls };
        for i in 0..size {
            cluster.start_member(i);
        }
        cluster.wait_healthy();
        cluster
    }

    /// `http://203.0.113.101:2379`, … — every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|m| format!("{}://{}:2379", self.scheme(), m.address))
            .collect()
    }

    /// [`EtcdCluster::endpoints`] joined by commas, as `--store` takes them.
    pub fn endpoints_arg(&self) -> String {
        self.endpoints().join(",")
    }

    fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    fn initial_cluster(&self) -> String {
        self.members
            .iter()
            .map(|m| format!("{}={}://{}:2380", m.name, self.scheme(), m.address))
            .collect::<Vec<_>>()
            .join(",")
    }

    fn start_member(&mut self, i: usize) {
        let initial_cluster = self.initial_cluster();
        // The cluster's id comes from this token and the member list: the same on all.
        let token = format!("netctl-{}", self.members[0].host.tag());
        let scheme = self.scheme();
        let tls = self.tls.clone();
        let member = &mut self.members[i];
        let log = File::create(member.host.dir().join("etcd.log")).expect("etcd log");
        let data = member.host.dir().join("etcd-data");
        let client = format!("{scheme}://{}:2379", member.address);
        let peer = format!("{scheme}://{}:2380", member.address);
        let mut cmd = member.host.command("etcd");
        cmd.args(["--name", &member.name])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &initial_cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", &token])
            // Short election timings: a test's network has no latency to speak of.
            .args(["--heartbeat-interval", "50", "--election-timeout", "500"]);
        if let Some(dir) = &tls {
            for side in ["", "peer-"] {
                cmd.arg(format!("--{side}cert-file"))
                    .arg(dir.join("etcd.pem"))
                    .arg(format!("--{side}key-file"))
                    .arg(dir.join("etcd-key.pem"))
                    .arg(format!("--{side}trusted-ca-file"))
                    .arg(dir.join("ca.pem"))
                    .arg(format!("--{side}client-cert-auth"));
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        member.child = Some(
            cmd.spawn()
                .expect("spawn etcd (apt-get install etcd-server)"),
        );
    }

    /// Stops member `i` (0-based) with SIGKILL, as a crash would.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// Starts member `i` again on its data after [`EtcdCluster::kill`].
    pub fn restart(&mut self, i: usize) {
        if self.members[i].child.is_none() {
            self.start_member(i);
        }
    }

    /// `etcdctl` against the cluster, run on member 0's host; over TLS as etcd's `root`.
    pub fn etcdctl(&self, args: &[&str]) -> crate::Output {
        match &self.tls {
            Some(dir) => self.etcdctl_as(&dir.join("root.pem"), &dir.join("root-key.pem"), args),
            None => self.etcdctl_with(&[], args),
        }
    }

    /// `etcdctl` over TLS with the client certificate `cert` and its key `key`: as the
    /// certificate's user.
    pub fn etcdctl_as(&self, cert: &Path, key: &Path, args: &[&str]) -> crate::Output {
        let ca = self.tls.as_ref().expect("a TLS cluster").join("ca.pem");
        let flags = [
            format!("--cacert={}", ca.display()),
            format!("--cert={}", cert.display()),
            format!("--key={}", key.display()),
        ];
        self.etcdctl_with(&flags, args)
    }

    /// `etcdctl` with `flags` before `args`.
    pub fn etcdctl_with(&self, flags: &[String], args: &[&str]) -> crate::Output {
        let out = self.members[0]
            .host
            .command("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.endpoints_arg())
            .args(flags)
            .args(args)
            .output()
            .expect("run etcdctl (apt-get install etcd-client)");
        crate::Output::from(out)
    }

    /// Waits until every running member takes client connections and a write succeeds.
    pub fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        for member in self.members.iter().filter(|m| m.child.is_some()) {
            let target: SocketAddr = format!("{}:2379", member.address).parse().unwrap();
            let netns = member.host.netns_path().to_string_lossy().into_owned();
            while !in_netns_at(&netns, move || {
                TcpStream::connect_timeout(&target, Duration::from_millis(200)).is_ok()
            }) {
                assert!(Instant::now() < deadline, "etcd {} not up", member.name);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        loop {
            let out = self.etcdctl(&["put", "/fixture/ready", "1"]);
            if out.ok() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "etcd cluster not healthy: {}\n{}",
                out.stderr,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every member's log, for a failing test's message.
    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let log = std::fs::read_to_string(m.host.dir().join("etcd.log"));
                format!("--- etcd {}:\n{}", m.name, log.unwrap_or_default())
            })
            .collect()
    }

    /// A command on member 0's host: something that needs to reach the cluster.
    pub fn command(&self, program: &str) -> Command {
        self.members[0].host.command(program)
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}
