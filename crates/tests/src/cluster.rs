//! A cluster of hosts for the multi-host tests: a LAN with a 1400-byte MTU, a 3-member etcd
//! cluster from Debian's etcd-server (one member per namespace), and a netctl daemon per host.

use std::time::{Duration, Instant};

use netctl_netns_fixtures::{EtcdCluster, Host, Lan};

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
        let cluster = Self::new_tls(hosts);
        cluster.hosts[0]
            .netctl(&[
                "cluster",
                "init",
                "--advertise-addr",
                &Self::address(0),
                "--store",
                &cluster.etcd.endpoints_arg(),
                "--store-ca",
                &cluster.cert("ca.pem"),
                "--store-ca-key",
                &cluster.cert("ca-key.pem"),
                "--store-cert",
                &cluster.cert("root.pem"),
                "--store-key",
                &cluster.cert("root-key.pem"),
            ])
            .expect_ok();
        for i in 1..hosts {
            let role = if i == 1 { "manager" } else { "worker" };
            cluster.join_tls(i, &cluster.token(role)).expect_ok();
        }
        cluster
    }

    /// Host `i` joins a TLS cluster with `token`, through host 0.
    pub fn join_tls(&self, i: usize, token: &str) -> netctl_netns_fixtures::Output {
        self.hosts[i].netctl(&[
            "cluster",
            "join",
            "--token",
            token,
            "--advertise-addr",
            &Self::address(i),
            "--store",
            &self.etcd.endpoints_arg(),
            "--store-ca",
            &self.cert("ca.pem"),
            "--manager",
            &Self::address(0),
        ])
    }

    pub fn address(i: usize) -> String {
        format!("203.0.113.{}", 11 + i)
    }

    /// Host 0 makes the cluster; host 1 joins as a manager, the others as workers.
    pub fn formed(hosts: usize) -> Self {
        let cluster = Self::new(hosts);
        let store = cluster.etcd.endpoints_arg();
        cluster.hosts[0]
            .netctl(&[
                "cluster",
                "init",
                "--advertise-addr",
                &Self::address(0),
                "--store",
                &store,
            ])
            .expect_ok();
        for i in 1..hosts {
            let role = if i == 1 { "manager" } else { "worker" };
            cluster.join(i, role);
        }
        cluster
    }

    pub fn token(&self, role: &str) -> String {
        self.hosts[0]
            .netctl(&["cluster", "join-token", "-q", role])
            .expect_ok()
            .trim()
            .to_string()
    }

    pub fn join(&self, i: usize, role: &str) {
        let token = self.token(role);
        self.hosts[i]
            .netctl(&[
                "cluster",
                "join",
                "--token",
                &token,
                "--advertise-addr",
                &Self::address(i),
                "--store",
                &self.etcd.endpoints_arg(),
            ])
            .expect_ok();
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

/// `network create ov --driver overlay --subnet 10.200.0.0/16` on `host`.
pub fn create_overlay(host: &Host) {
    host.netctl(&[
        "network",
        "create",
        "ov",
        "--driver",
        "overlay",
        "--subnet",
        "10.200.0.0/16",
    ])
    .expect_ok();
}

/// Until `ov` is mirrored on `host`.
pub fn wait_for_network(host: &Host) {
    within(Duration::from_secs(5), || {
        host.netctl(&["network", "inspect", "ov"]).ok()
    })
    .expect("the network is mirrored");
}
