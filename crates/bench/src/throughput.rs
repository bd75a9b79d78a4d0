//! `netctl-bench throughput`: iperf3 TCP (one stream, 3 s, median of 3 runs) over each path.

use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use netctl_netns_fixtures::{Host, Underlay};
use netctl_plugin_api::ports::{PortMapping, Protocol};
use netctl_plugin_api::PublishRequest;
use serde::Serialize;

use crate::netctl_host::{NetctlHost, NETWORK};

#[derive(Debug, Clone, Serialize)]
pub struct ThroughputRow {
    pub path: String,
    pub gbit_s: f64,
    pub note: String,
}

pub(crate) const IPERF_PORT: u16 = 5201;
const PUBLISHED_PORT: u16 = 15201;
const PROXY_PORT: u16 = 25201;
const DOCKER_PROXY: &str = "/usr/sbin/docker-proxy";

/// A netctl host with a server and a client sandbox on one bridge, and an outside host on an
/// underlay (198.51.100.1 is the netctl host).
struct Setup {
    netctl: NetctlHost,
    outside: Host,
    server_netns: String,
    client_netns: String,
    server_ip: String,
}

impl Setup {
    fn new() -> anyhow::Result<Self> {
        let netctl = NetctlHost::new(&crate::netctl_host::Build::this())?;
        let outside = Host::new();
        Underlay::join(&netctl.host, &outside, "198.51.100");
        let server = netctl.sandbox("server", true)?;
        let client = netctl.sandbox("client", true)?;
        let publish = PublishRequest {
            container: "server".into(),
            port_bindings: vec![PortMapping {
                proto: Protocol::Tcp,
                host_ip: None,
                host_port: PUBLISHED_PORT,
                host_port_end: PUBLISHED_PORT,
                container_port: IPERF_PORT,
            }],
        };
        netctl
            .runtime
            .block_on(netctl.client.network_publish(NETWORK, &publish))?;
        let server_ip = server.network_settings.networks[NETWORK].ip_address.clone();
        Ok(Self {
            netctl,
            outside,
            server_netns: server.network_settings.sandbox_key,
            client_netns: client.network_settings.sandbox_key,
            server_ip,
        })
    }
}

/// `nsenter --net=NETNS PROGRAM`.
pub(crate) fn in_netns(netns: &str, program: &str) -> Command {
    let mut cmd = Command::new("nsenter");
    cmd.arg(format!("--net={netns}")).arg(program);
    cmd
}

/// One iperf3 run: a one-shot server started by `server`, a client by `client` to `target`.
pub(crate) fn iperf(
    mut server: Command,
    mut client: Command,
    target: &str,
    port: u16,
) -> anyhow::Result<f64> {
    let mut srv: Child = server
        .args(["-s", "-1", "-p", &IPERF_PORT.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    std::thread::sleep(Duration::from_millis(300));
    let out = client
        .args(["-c", target, "-p", &port.to_string(), "-t", "3", "-J"])
        .output()?;
    let _ = srv.kill();
    let _ = srv.wait();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    report["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|bps| bps / 1e9)
        .ok_or_else(|| anyhow::anyhow!("iperf3 to {target}:{port} failed: {}", report["error"]))
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(|a, b| a.total_cmp(b));
    runs[runs.len() / 2]
}

/// `docker-proxy` in the netctl host's namespace, forwarding PROXY_PORT to the server; it
/// reports readiness on file descriptor 3, as dockerd expects.
fn docker_proxy(setup: &Setup) -> anyhow::Result<Child> {
    anyhow::ensure!(
        std::path::Path::new(DOCKER_PROXY).exists(),
        "{DOCKER_PROXY} is missing: run scripts/install-deps --bench"
    );
    let (read, write): (OwnedFd, OwnedFd) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let write_fd = write.as_raw_fd();
    let mut cmd = setup.netctl.host.command(DOCKER_PROXY);
    cmd.args([
        "-proto",
        "tcp",
        "-host-ip",
        "198.51.100.1",
        "-host-port",
        &PROXY_PORT.to_string(),
    ])
    .args([
        "-container-ip",
        &setup.server_ip,
        "-container-port",
        &IPERF_PORT.to_string(),
    ]);
    // SAFETY: dup2 and fcntl are async-signal-safe; `write` stays open until after the fork.
    // When the pipe already is fd 3, dup2 would do nothing and leave it close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            if write_fd == 3 {
                nix::fcntl::fcntl(
                    std::os::fd::BorrowedFd::borrow_raw(3),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )
                .map(drop)
                .map_err(std::io::Error::from)
            } else {
                let write = std::os::fd::BorrowedFd::borrow_raw(write_fd);
                // The new fd 3 must stay open across exec: do not let its OwnedFd close it.
                nix::unistd::dup2_raw(write, 3)
                    .map(std::mem::forget)
                    .map_err(std::io::Error::from)
            }
        });
    }
    let child = cmd.spawn()?;
    drop(write);
    let mut ready = [0u8; 1];
    std::fs::File::from(read).read_exact(&mut ready)?;
    Ok(child)
}

pub fn run(paths: &[String]) -> anyhow::Result<Vec<ThroughputRow>> {
    let setup = Setup::new()?;
    let outside_ns = format!("/run/netns/{}", setup.outside.netns());
    let host_ns = format!("/run/netns/{}", setup.netctl.host.netns());
    let mut rows = Vec::new();
    for path in paths {
        let (note, runs): (&str, anyhow::Result<Vec<f64>>) = match path.as_str() {
            "veth" => (
                "outside host -> netctl host over the underlay veth (ceiling)",
                (0..3)
                    .map(|_| {
                        iperf(
                            in_netns(&host_ns, "iperf3"),
                            in_netns(&outside_ns, "iperf3"),
                            "198.51.100.1",
                            IPERF_PORT,
                        )
                    })
                    .collect(),
            ),
            "bridge" => (
                "sandbox -> sandbox on one netctl bridge",
                (0..3)
                    .map(|_| {
                        iperf(
                            in_netns(&setup.server_netns, "iperf3"),
                            in_netns(&setup.client_netns, "iperf3"),
                            &setup.server_ip,
                            IPERF_PORT,
                        )
                    })
                    .collect(),
            ),
            "published" => (
                "outside host -> published port (nft DNAT) -> sandbox",
                (0..3)
                    .map(|_| {
                        iperf(
                            in_netns(&setup.server_netns, "iperf3"),
                            in_netns(&outside_ns, "iperf3"),
                            "198.51.100.1",
                            PUBLISHED_PORT,
                        )
                    })
                    .collect(),
            ),
            "docker-proxy" => (
                "outside host -> docker-proxy (userland) -> sandbox",
                docker_proxy(&setup).and_then(|mut proxy| {
                    let runs = (0..3)
                        .map(|_| {
                            iperf(
                                in_netns(&setup.server_netns, "iperf3"),
                                in_netns(&outside_ns, "iperf3"),
                                "198.51.100.1",
                                PROXY_PORT,
                            )
                        })
                        .collect();
                    let _ = proxy.kill();
                    let _ = proxy.wait();
                    runs
                }),
            ),
            other => anyhow::bail!(
                "unknown path {other:?} (known: veth, bridge, published, docker-proxy)"
            ),
        };
        let gbit_s = median(runs?);
        eprintln!("{path}: {gbit_s:.2} Gbit/s");
        rows.push(ThroughputRow {
            path: path.clone(),
            gbit_s,
            note: note.into(),
        });
    }
    Ok(rows)
}

pub fn print(rows: &[ThroughputRow], json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(rows)?);
        return Ok(());
    }
    let published = rows
        .iter()
        .find(|r| r.path == "published")
        .map(|r| r.gbit_s);
    println!(
        "{:<13} {:>8} {:>14}  what",
        "path", "Gbit/s", "vs published"
    );
    for r in rows {
        let ratio = published
            .map(|p| format!("{:.2}", r.gbit_s / p))
            .unwrap_or_else(|| "-".into());
        println!("{:<13} {:>8.2} {:>14}  {}", r.path, r.gbit_s, ratio, r.note);
    }
    Ok(())
}
