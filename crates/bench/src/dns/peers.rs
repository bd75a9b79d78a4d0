//! The DNS servers under test, each serving the same names, in the netctl host's namespace.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context};
use netctl_netns_fixtures::{Dnsmasq, Host};

use crate::netctl_host::{NetctlHost, GATEWAY};

const AARDVARK: &str = "/usr/lib/podman/aardvark-dns";

/// A running server: where dnsperf sends, and which process to pin and measure.
pub struct Server {
    pub address: String,
    pub pid: u32,
    /// Stops the server when dropped.
    _guard: Box<dyn std::any::Any>,
}

impl Server {
    /// netctl's own server: 127.0.0.11 inside the client sandbox.
    pub fn netctl(netctl: &NetctlHost) -> anyhow::Result<Self> {
        Ok(Self {
            address: netctl_dns::SERVER_ADDRESS.to_string(),
            pid: netctl.host.daemon_pid().context("netctl daemon")?,
            _guard: Box::new(()),
        })
    }

    /// dnsmasq on the gateway with the names in a hosts file, a cache, and the upstream.
    pub fn dnsmasq(
        host: &Host,
        names: &[(String, String)],
        upstream: &str,
    ) -> anyhow::Result<Self> {
        let hosts = write_hosts(host, names)?;
        let options = dnsmasq_options(&hosts, upstream);
        let server = Dnsmasq::quiet(
            host,
            GATEWAY,
            &options.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        Ok(Self {
            address: GATEWAY.into(),
            pid: server.pid(),
            _guard: Box::new(server),
        })
    }

    /// dnsmasq inside the client's sandbox on 127.0.0.12: the same loopback path as
    /// netctl's 127.0.0.11, to set the servers apart from the network path.
    pub fn dnsmasq_in_sandbox(
        host: &Host,
        netns: &Path,
        names: &[(String, String)],
        upstream: &str,
    ) -> anyhow::Result<Self> {
        let hosts = write_hosts(host, names)?;
        let server = Dnsmasq::quiet_in(
            netns,
            host.dir(),
            LOOPBACK_PEER,
            &dnsmasq_options(&hosts, upstream)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        Ok(Self {
            address: LOOPBACK_PEER.into(),
            pid: server.pid(),
            _guard: Box::new(server),
        })
    }

    /// aardvark-dns as netavark runs it: a config file per network, listening on the
    /// gateway, forwarding to the servers of the resolv.conf it sees.
    pub fn aardvark(
        host: &Host,
        names: &[(String, String)],
        upstream: &str,
    ) -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(AARDVARK).exists(),
            "{AARDVARK} is missing: run scripts/install-deps --bench"
        );
        let aardvark = Aardvark::start(host, names, upstream)?;
        Ok(Self {
            address: GATEWAY.into(),
            pid: aardvark.pid,
            _guard: Box::new(aardvark),
        })
    }
}

const LOOPBACK_PEER: &str = "127.0.0.12";

fn write_hosts(host: &Host, names: &[(String, String)]) -> anyhow::Result<PathBuf> {
    let hosts = host.dir().join("dnsmasq-hosts");
    let text: String = names.iter().map(|(n, ip)| format!("{ip} {n}\n")).collect();
    std::fs::write(&hosts, text)?;
    Ok(hosts)
}

/// The names from a hosts file, a large cache, and the upstream.
fn dnsmasq_options(hosts: &Path, upstream: &str) -> Vec<String> {
    vec![
        format!("--addn-hosts={}", hosts.display()),
        format!("--server={upstream}"),
        "--cache-size=10000".into(),
    ]
}

/// aardvark-dns daemonizes; it is stopped by the PID it writes.
struct Aardvark {
    pid: u32,
    /// /etc/netns/NAME: what `ip netns exec` shows the server as /etc.
    etc: PathBuf,
}

impl Aardvark {
    fn start(host: &Host, names: &[(String, String)], upstream: &str) -> anyhow::Result<Self> {
        let config = host.dir().join("aardvark");
        std::fs::create_dir_all(&config)?;
        let mut text = format!("{GATEWAY}\n");
        for (i, (name, ip)) in names.iter().enumerate() {
            text.push_str(&format!("{:064x} {ip}  {name}\n", i + 1));
        }
        std::fs::write(config.join("bench"), text)?;
        // Its upstreams come from /etc/resolv.conf; `ip netns exec` mounts this one there.
        let etc = PathBuf::from("/etc/netns").join(host.netns());
        std::fs::create_dir_all(&etc)?;
        // From here on, dropping `started` cleans up whatever was made.
        let mut started = Self { pid: 0, etc };
        std::fs::write(
            started.etc.join("resolv.conf"),
            format!("nameserver {upstream}\n"),
        )?;
        let out = Command::new("ip")
            .args(["netns", "exec", host.netns(), AARDVARK, "--config"])
            .arg(&config)
            .args(["-p", "53", "run"])
            .output()?;
        if !out.status.success() {
            bail!("aardvark-dns: {}", String::from_utf8_lossy(&out.stderr));
        }
        started.pid = std::fs::read_to_string(config.join("aardvark.pid"))
            .context("aardvark.pid")?
            .trim()
            .parse()?;
        Ok(started)
    }
}

impl Drop for Aardvark {
    fn drop(&mut self) {
        if self.pid != 0 {
            let pid = nix::unistd::Pid::from_raw(self.pid as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            // Not our child: wait until it is gone before the namespace goes.
            while std::path::Path::new(&format!("/proc/{}", self.pid)).exists() {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.etc);
    }
}
