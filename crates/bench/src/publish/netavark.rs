//! Podman's netavark: port mappings are part of `netavark setup`, so a sample is the setup
//! of a container with one published port (its veth included) and is noted as such.

use std::time::Duration;

use netctl_netns_fixtures::Host;
use serde_json::json;

use super::{Publisher, FILL_BASE, PROBE_PORT};
use crate::attach::address;
use crate::attach::sandboxes::Sandboxes;
use crate::process::timed;

const NETAVARK: &str = "/usr/lib/podman/netavark";

pub struct Netavark {
    host: Host,
    sandboxes: Sandboxes,
    filled: usize,
    /// Sandboxes made so far; the last one is the probe's.
    made: usize,
}

impl Netavark {
    pub fn new() -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(NETAVARK).exists(),
            "{NETAVARK} is missing: run scripts/install-deps --bench"
        );
        let host = Host::new();
        std::fs::create_dir_all(host.dir().join("netavark"))?;
        Ok(Self {
            host,
            sandboxes: Sandboxes::new("netavark-publish"),
            filled: 0,
            made: 0,
        })
    }

    fn run(&self, verb: &str, i: usize, host_port: u16, range: usize) -> anyhow::Result<Duration> {
        let doc = json!({
            "container_id": format!("{:064x}", i + 1),
            "container_name": format!("c{i}"),
            "port_mappings": [{"host_ip": "", "container_port": host_port, "host_port": host_port, "range": range, "protocol": "tcp"}],
            "networks": {"bench": {"static_ips": [address("10.89", i)], "aliases": [], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench", "id": format!("{:064x}", 0xbe7c4), "driver": "bridge",
                "network_interface": "podman1",
                "subnets": [{"subnet": "10.89.0.0/16", "gateway": "10.89.0.1"}],
                "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            }},
        });
        let mut cmd = self.host.command(NETAVARK);
        cmd.arg("--config")
            .arg(self.host.dir().join("netavark"))
            .arg(verb)
            .arg(self.sandboxes.path(i));
        timed(cmd, &doc.to_string())
    }

    fn next_sandbox(&mut self) -> anyhow::Result<usize> {
        self.sandboxes.make(self.made)?;
        self.made += 1;
        Ok(self.made - 1)
    }
}

impl Publisher for Netavark {
    fn fill(&mut self, n: usize) -> anyhow::Result<()> {
        if n > self.filled {
            let i = self.next_sandbox()?;
            self.run("setup", i, FILL_BASE + self.filled as u16, n - self.filled)?;
            self.filled = n;
        }
        Ok(())
    }

    fn publish_one(&mut self) -> anyhow::Result<Duration> {
        let probe = self.next_sandbox()?;
        self.run("setup", probe, PROBE_PORT, 1)
    }

    fn withdraw_one(&mut self) -> anyhow::Result<()> {
        self.run("teardown", self.made - 1, PROBE_PORT, 1).map(drop)
    }

    fn rss_mib(&self) -> Option<f64> {
        None
    }

    fn note(&self) -> Option<String> {
        Some(
            "netavark setup of a container with one port (veth included: no separate publish)"
                .into(),
        )
    }
}
