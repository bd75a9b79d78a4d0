//! Docker's own overlay as the peer: two dockerds (20.10) in test hosts on the same kind of
//! LAN, `docker swarm init/join`, an `--attachable` overlay network; the same convergence
//! and throughput measurements as netctl's, through the Engine API and in the containers'
//! namespaces.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use netctl_netns_fixtures::{Dockerd, Host, Lan};

use super::{iperf, median_of_3, reply_time, row, Row};

const NETWORK: &str = "sov";

struct Swarm {
    engines: Vec<Dockerd>,
    _hosts: Vec<Host>,
    _lan: Lan,
}

impl Swarm {
    fn new() -> anyhow::Result<Self> {
        let lan = Lan::new();
        let hosts = vec![Host::new(), Host::new()];
        lan.plug(&hosts[0], "203.0.113.21");
        lan.plug(&hosts[1], "203.0.113.22");
        let engines: Vec<Dockerd> = hosts.iter().map(Dockerd::start).collect();
        for engine in &engines {
            engine.import_busybox();
        }
        let swarm = Self {
            engines,
            _hosts: hosts,
            _lan: lan,
        };
        swarm.docker(
            0,
            &[
                "swarm",
                "init",
                "--advertise-addr",
                "203.0.113.21",
                "--listen-addr",
                "203.0.113.21:2377",
            ],
        )?;
        let token = swarm.docker(0, &["swarm", "join-token", "-q", "worker"])?;
        swarm.docker(
            1,
            &[
                "swarm",
                "join",
                "--token",
                &token,
                "--advertise-addr",
                "203.0.113.22",
                "203.0.113.21:2377",
            ],
        )?;
        swarm.docker(
            0,
            &[
                "network",
                "create",
                "-d",
                "overlay",
                "--attachable",
                "--subnet",
                "10.220.0.0/16",
                NETWORK,
            ],
        )?;
        Ok(swarm)
    }

    fn docker(&self, engine: usize, args: &[&str]) -> anyhow::Result<String> {
        let out = self.engines[engine].docker(args);
        anyhow::ensure!(out.ok(), "docker {args:?}: {}", out.stderr.trim());
        Ok(out.stdout.trim().to_string())
    }

    /// A `sleep` container on the overlay with `ip`; its PID (its namespace is iperf3's).
    fn container(&self, engine: usize, name: &str, ip: &str) -> anyhow::Result<String> {
        self.docker(
            engine,
            &[
                "run",
                "-d",
                "--name",
                name,
                "--network",
                NETWORK,
                "--ip",
                ip,
                "busybox:local",
                "sleep",
                "3600",
            ],
        )?;
        self.docker(engine, &["inspect", "-f", "{{.State.Pid}}", name])
    }

    /// `POST /networks/NETWORK/connect` on the Engine API, without the CLI's start-up.
    fn connect(&self, engine: usize, container: &str, ip: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "Container": container,
            "EndpointConfig": {"IPAMConfig": {"IPv4Address": ip}},
        })
        .to_string();
        let mut stream = UnixStream::connect(self.engines[engine].socket())?;
        write!(
            stream,
            "POST /v1.41/networks/{NETWORK}/connect HTTP/1.0\r\nHost: docker\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        anyhow::ensure!(
            answer.starts_with("HTTP/1.0 200") || answer.starts_with("HTTP/1.1 200"),
            "connect {container}: {answer}"
        );
        Ok(())
    }
}

/// The network namespace of the container whose process is `pid`.
fn container_netns(pid: &str) -> String {
    format!("/proc/{pid}/ns/net")
}

fn in_container(pid: &str, program: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.args(["-t", pid, "-n", program]);
    cmd
}

/// Convergence (`endpoints` samples) and throughput rows for Docker's swarm overlay.
pub fn run(endpoints: usize, underlay_gbit: Option<f64>) -> anyhow::Result<Vec<Row>> {
    let swarm = Swarm::new()?;
    let mut rows = vec![convergence(&swarm, endpoints)?];
    let server = swarm.container(0, "iperf-server", "10.220.9.1")?;
    let client = swarm.container(1, "iperf-client", "10.220.9.2")?;
    let (server, client) = (container_netns(&server), container_netns(&client));
    let gbit = median_of_3(|| iperf(&server, &client, "10.220.9.1"))?;
    rows.push(Row {
        what: "throughput".into(),
        peer: "docker swarm".into(),
        samples: 3,
        p50: Some(gbit),
        p99: None,
        unit: "Gbit/s".into(),
        note: match underlay_gbit {
            Some(u) => format!("attachable overlay, {:.2}x underlay", gbit / u),
            None => "attachable overlay".into(),
        },
    });
    Ok(rows)
}

fn convergence(swarm: &Swarm, endpoints: usize) -> anyhow::Result<Row> {
    let probe = swarm.container(1, "probe", "10.220.0.2")?;
    for (key, value) in [
        ("net.ipv4.neigh.eth0.retrans_time_ms", "1"),
        ("net.ipv4.neigh.eth0.mcast_solicit", "100000"),
        ("net.ipv4.neigh.eth0.ucast_solicit", "100000"),
    ] {
        let status = in_container(&probe, "sysctl")
            .args(["-qw", &format!("{key}={value}")])
            .status()?;
        anyhow::ensure!(status.success(), "sysctl {key} in the probe");
    }
    let mut took = Vec::new();
    for i in 0..endpoints {
        let ip = format!("10.220.{}.{}", 1 + i / 250, 1 + i % 250);
        let name = format!("c{i}");
        swarm.docker(
            0,
            &[
                "run",
                "-d",
                "--name",
                &name,
                "busybox:local",
                "sleep",
                "3600",
            ],
        )?;
        let mut ping = in_container(&probe, "ping")
            .args(["-D", "-n", "-i", "0.001", "-w", "10", &ip])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        std::thread::sleep(Duration::from_millis(30));
        let started = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs_f64();
        let sent = Instant::now();
        swarm.connect(0, &name, &ip)?;
        let stdout = ping.stdout.take().expect("ping's stdout");
        let first = BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| reply_time(&line));
        let _ = ping.kill();
        let _ = ping.wait();
        match first {
            Some(first) => took.push(Duration::from_secs_f64((first - started).max(0.0))),
            None => anyhow::bail!("no reply from {ip} within 10 s of {:?}", sent.elapsed()),
        }
    }
    Ok(row(
        "convergence",
        "docker swarm",
        &took,
        "docker network connect on A -> first reply to B",
    ))
}
