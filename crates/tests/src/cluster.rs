//! A cluster of hosts for the multi-host tests: a LAN with a 1400-byte MTU, a 3-member etcd
//! cluster from Debian's etcd-server (one member per namespace), and a netctl daemon per host.

use std::time::{Duration, Instant};

use netctl_netns_fixtures::{EtcdCluster, Host, Lan, Output};

use crate::json;

/// The nodes' liveness lease in these tests, in seconds.
pub const TTL: u64 = 2;

/// A LAN, an etcd cluster on it, and hosts with a daemon each (not yet in a cluster).
pub struct Cluster {
    pub hosts: Vec<Host>,
    pub etcd: EtcdCluster,
    pub lan: Lan,
    /// A TLS cluster's certificates (`netctl cluster certs`), in this host's directory.
    pub certs: Option<Host>,
    /// One etcd cluster at a time on two cores (see cluster_store.rs).
    _turn: std::sync::MutexGuard<'static, ()>,
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Cluster {
    pub fn new(hosts: usize) -> Self {
        Self::new_with(hosts, false)
    }

    /// [`Cluster::new`] with etcd over TLS, client certificates required, from
    /// `netctl cluster certs`.
    pub fn new_tls(hosts: usize) -> Self {
        Self::new_with(hosts, true)
    }

    fn new_with(hosts: usize, tls: bool) -> Self {
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lan = Lan::new();
        let certs = tls.then(|| {
            let certs = Host::new();
            let out = std::process::Command::new(netctl_netns_fixtures::netctl_bin())
                .args(["cluster", "certs", "--dir"])
                .arg(certs.dir().join("certs"))
                .arg("--host")
                .arg(EtcdCluster::addresses(3).join(","))
                .output()
                .expect("netctl cluster certs");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            certs
        });
        let etcd = match &certs {
            Some(certs) => EtcdCluster::start_tls(&lan, 3, &certs.dir().join("certs")),
            None => EtcdCluster::start(&lan, 3),
        };
        let hosts = (0..hosts)
            .map(|i| {
                let mut host = Host::new();
                lan.plug_with_mtu(&host, &Self::address(i), 1400);
                host.set_config(&format!(r#"{{"cluster-lease-ttl": {TTL}}}"#));
                host.start_daemon();
                host
            })
            .collect();
        Self {
            hosts,
            etcd,
            lan,
            certs,
            _turn: turn,
        }
    }

    /// A file of `netctl cluster certs`'s (a TLS cluster's).
    pub fn cert(&self, name: &str) -> String {
        let certs = self.certs.as_ref().expect("a TLS cluster");
        certs.dir().join("certs").join(name).display().to_string()
    }

    /// Host 0 makes a TLS cluster as etcd's `root`; host 1 joins as a manager, the others
    /// as workers, each through host 0's join service.
    pub fn formed_tls(hosts: usize) -> Self {
        Self::new_tls(hosts).form()
    }

    pub fn address(i: usize) -> String {
        format!("203.0.113.{}", 11 + i)
    }

    /// Host 0 makes the cluster; host 1 joins as a manager, the others as workers.
    pub fn formed(hosts: usize) -> Self {
        Self::new(hosts).form()
    }

    fn form(self) -> Self {
        let store = self.etcd.endpoints_arg();
        let address = Self::address(0);
        let mut init = vec![
            "cluster",
            "init",
            "--advertise-addr",
            &address,
            "--store",
            &store,
        ];
        let tls = self.certs.as_ref().map(|_| {
            [
                ("--store-ca", "ca.pem"),
                ("--store-ca-key", "ca-key.pem"),
                ("--store-cert", "root.pem"),
                ("--store-key", "root-key.pem"),
            ]
            .map(|(flag, file)| (flag, self.cert(file)))
        });
        for (flag, path) in tls.iter().flatten() {
            init.extend([*flag, path.as_str()]);
        }
        self.hosts[0].netctl(&init).expect_ok();
        for i in 1..self.hosts.len() {
            let role = if i == 1 { "manager" } else { "worker" };
            self.join(i, role);
        }
        self
    }

    pub fn token(&self, role: &str) -> String {
        self.hosts[0]
            .netctl(&["cluster", "join-token", "-q", role])
            .expect_ok()
            .trim()
            .to_string()
    }

    /// Host `i` joins with a new token for `role`.
    pub fn join(&self, i: usize, role: &str) {
        self.join_as(&self.hosts[i], &Self::address(i), &self.token(role))
            .expect_ok();
    }

    /// `host` joins at `address` with `token`; a TLS cluster's through host 0's join
    /// service.
    pub fn join_as(&self, host: &Host, address: &str, token: &str) -> Output {
        let store = self.etcd.endpoints_arg();
        let mut args = vec![
            "cluster",
            "join",
            "--token",
            token,
            "--advertise-addr",
            address,
            "--store",
            &store,
        ];
        let (ca, manager) = (
            self.certs.as_ref().map(|_| self.cert("ca.pem")),
            Self::address(0),
        );
        if let Some(ca) = &ca {
            args.extend(["--store-ca", ca, "--manager", &manager]);
        }
        host.netctl(&args)
    }

    pub fn nodes(&self, from: usize) -> serde_json::Value {
        json(
            &self.hosts[from]
                .netctl(&["node", "ls", "--format", "json"])
                .expect_ok(),
        )
    }
}

/// Polls `check` until it holds or `limit` passes; returns how long it took.
pub fn within(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let started = Instant::now();
    loop {
        if check() {
            return Some(started.elapsed());
        }
        if started.elapsed() > limit {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `network create ov --driver overlay --subnet 10.200.0.0/16`.
pub const OVERLAY: &[&str] = &[
    "network",
    "create",
    "ov",
    "--driver",
    "overlay",
    "--subnet",
    "10.200.0.0/16",
];

/// [`OVERLAY`] on `host`.
pub fn create_overlay(host: &Host) {
    host.netctl(OVERLAY).expect_ok();
}

/// Network `ov` made on host 0 and known on host 1, with sandbox `a` on host 0 and `b` on
/// host 1.
pub fn a_and_b(cluster: &Cluster) {
    create_overlay(&cluster.hosts[0]);
    wait_for_network(&cluster.hosts[1]);
    for (host, name) in [(&cluster.hosts[0], "a"), (&cluster.hosts[1], "b")] {
        host.netctl(&["sandbox", "create", name, "--network", "ov"])
            .expect_ok();
    }
}

/// Until `ov` is mirrored on `host`.
pub fn wait_for_network(host: &Host) {
    within(Duration::from_secs(5), || {
        host.netctl(&["network", "inspect", "ov"]).ok()
    })
    .expect("the network is mirrored");
}
