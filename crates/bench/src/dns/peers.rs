//! The DNS servers under test, each serving the same names, in the netctl host's namespace.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{bail, Context};
use netns_fixtures::{Dnsmasq, Host};

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
            address: dns::SERVER_ADDRESS.to_string(),
            pid: netctl.host.daemon_pid().context("netctl daemon")?,
            _guard: Box::new(()),
        })
    }

    /// dnsmasq on the gateway with the names in a hosts file, a cache, and the upstream.
    pub fn dnsmasq(host: &Host, names: &[(String, String)], upstream: &str) -> anyhow::Result<Self> {
        let hosts = host.dir().join("dnsmasq-hosts");
        let text: String = names.iter().map(|(n, ip)| format!("{ip} {n}\n")).collect();
        std::fs::write(&hosts, text)?;
        let server = Dnsmasq::quiet(
            host,
            GATEWAY,
            &[
                &format!("--addn-hosts={}", hosts.display()),
                &format!("--server={upstream}"),
                "--cache-size=10000",
            ],
        );
        Ok(Self {
            address: GATEWAY.into(),
            pid: server.pid(),
            _guard: Box::new(server),
        })
    }

    /// aardvark-dns as netavark runs it: a config file per network, listening on the
    /// gateway, forwarding to the servers of the resolv.conf it sees.
    pub fn aardvark(host: &Host, names: &[(String, String)], upstream: &str) -> anyhow::Result<Self> {
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
        std::fs::write(started.etc.join("resolv.conf"), format!("nameserver {upstream}\n"))?;
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
