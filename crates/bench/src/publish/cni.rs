//! The CNI portmap plugin (Debian's package), exec'd after the bridge plugin as libcni does
//! in a chain: the fill is one ADD carrying N mappings, a sample one ADD with one mapping.

use std::process::Command;
use std::time::Duration;

use netctl_netns_fixtures::Host;
use serde_json::{json, Value};

use super::{Publisher, FILL_BASE, PROBE_PORT};
use crate::attach::sandboxes::Sandboxes;
use crate::process::timed_output;

const CNI_PATH: &str = "/usr/lib/cni";

pub struct Cni {
    host: Host,
    sandboxes: Sandboxes,
    /// The bridge plugin's result for each sandbox (0: filler, 1: probe).
    results: Vec<Value>,
    filled: usize,
    fills: usize,
}

impl Cni {
    pub fn new() -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(CNI_PATH).join("portmap").exists(),
            "{CNI_PATH}/portmap is missing: run scripts/install-deps --bench"
        );
        let host = Host::new();
        let mut sandboxes = Sandboxes::new("cni-publish");
        let mut results = Vec::new();
        let bridge = json!({
            "cniVersion": "0.4.0", "name": "bench", "type": "bridge", "bridge": "cni0",
            "isGateway": true, "ipMasq": true,
            "ipam": {"type": "host-local", "subnet": "10.90.0.0/16", "dataDir": host.dir().join("ipam")},
        });
        for i in 0..2 {
            sandboxes.make(i)?;
            let cmd = plugin(
                &host,
                "bridge",
                "ADD",
                &format!("{:064x}", i + 1),
                &sandboxes.path(i),
            );
            let (_, out) = timed_output(cmd, &bridge.to_string())?;
            results.push(serde_json::from_str(&out)?);
        }
        Ok(Self {
            host,
            sandboxes,
            results,
            filled: 0,
            fills: 0,
        })
    }

    fn portmap(
        &self,
        command: &str,
        container: &str,
        sandbox: usize,
        ports: &[(u16, u16)],
    ) -> anyhow::Result<Duration> {
        let mappings: Vec<Value> = ports
            .iter()
            .map(|(host, container)| json!({"hostPort": host, "containerPort": container, "protocol": "tcp"}))
            .collect();
        let config = json!({
            "cniVersion": "0.4.0", "name": "bench", "type": "portmap",
            "capabilities": {"portMappings": true},
            "runtimeConfig": {"portMappings": mappings},
            "prevResult": self.results[sandbox],
        });
        let cmd = plugin(
            &self.host,
            "portmap",
            command,
            container,
            &self.sandboxes.path(sandbox),
        );
        Ok(timed_output(cmd, &config.to_string())?.0)
    }
}

fn plugin(host: &Host, name: &str, command: &str, container: &str, netns: &str) -> Command {
    let mut cmd = host.command(format!("{CNI_PATH}/{name}"));
    cmd.env("CNI_COMMAND", command)
        .env("CNI_CONTAINERID", container)
        .env("CNI_NETNS", netns)
        .env("CNI_IFNAME", "eth0")
        .env("CNI_PATH", CNI_PATH);
    cmd
}

impl Publisher for Cni {
    fn fill(&mut self, n: usize) -> anyhow::Result<()> {
        if n > self.filled {
            // A container id per fill step: portmap keeps one chain per container.
            self.fills += 1;
            let ports: Vec<_> = (self.filled..n)
                .map(|i| (FILL_BASE + i as u16, 80))
                .collect();
            self.portmap("ADD", &format!("f{:063x}", self.fills), 0, &ports)?;
            self.filled = n;
        }
        Ok(())
    }

    fn publish_one(&mut self) -> anyhow::Result<Duration> {
        self.portmap("ADD", &format!("{:064x}", 2), 1, &[(PROBE_PORT, 80)])
    }

    fn withdraw_one(&mut self) -> anyhow::Result<()> {
        self.portmap("DEL", &format!("{:064x}", 2), 1, &[(PROBE_PORT, 80)])
            .map(drop)
    }

    fn rss_mib(&self) -> Option<f64> {
        None
    }

    fn note(&self) -> Option<String> {
        Some("portmap ADD (iptables) for a container already on the bridge".into())
    }
}
