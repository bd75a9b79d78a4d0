//! The CNI reference plugins (Debian's package): bridge + host-local, exec'd as libcni does.

use std::time::Duration;

use netns_fixtures::Host;
use serde_json::json;

use super::sandboxes::Sandboxes;
use super::{timed, Peer};

const CNI_PATH: &str = "/usr/lib/cni";
const GATEWAY: &str = "10.90.0.1";

pub struct CniPeer {
    host: Host,
    sandboxes: Sandboxes,
    config: String,
}

impl CniPeer {
    pub fn new() -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(CNI_PATH).join("bridge").exists(),
            "{CNI_PATH}/bridge is missing: run scripts/install-deps --bench"
        );
        let host = Host::new();
        let config = json!({
            "cniVersion": "0.4.0",
            "name": "bench",
            "type": "bridge",
            "bridge": "cni0",
            "isGateway": true,
            "ipMasq": true,
            "ipam": {
                "type": "host-local",
                "subnet": "10.90.0.0/16",
                "gateway": GATEWAY,
                "dataDir": host.dir().join("cni-ipam"),
            },
        })
        .to_string();
        Ok(Self {
            host,
            sandboxes: Sandboxes::new("cni"),
            config,
        })
    }

    fn run(&self, command: &str, i: usize) -> anyhow::Result<Duration> {
        let mut cmd = self.host.command(format!("{CNI_PATH}/bridge"));
        cmd.env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", format!("{:064x}", i + 1))
            .env("CNI_NETNS", self.sandboxes.path(i))
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_PATH);
        timed(cmd, &self.config)
    }
}

impl Peer for CniPeer {
    fn make_sandbox(&mut self, i: usize) -> anyhow::Result<()> {
        self.sandboxes.make(i)
    }

    fn attach(&mut self, i: usize) -> anyhow::Result<Duration> {
        self.run("ADD", i)
    }

    fn detach(&mut self, i: usize) -> anyhow::Result<Duration> {
        self.run("DEL", i)
    }

    fn netns_path(&self, i: usize) -> String {
        self.sandboxes.path(i)
    }

    fn gateway(&self) -> &'static str {
        GATEWAY
    }

    fn host(&self) -> &Host {
        &self.host
    }

    fn rss_mib(&self) -> Option<f64> {
        None
    }
}
