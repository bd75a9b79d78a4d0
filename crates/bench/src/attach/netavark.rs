//! Podman's netavark (Debian's package): `netavark setup|teardown NETNS` with the network
//! description on stdin. It does no IPAM; the bench hands it the addresses, as Podman does.

use std::path::PathBuf;
use std::time::Duration;

use netns_fixtures::Host;
use serde_json::json;

use super::sandboxes::Sandboxes;
use super::{address, timed, Peer};

const NETAVARK: &str = "/usr/lib/podman/netavark";
const GATEWAY: &str = "10.89.0.1";

pub struct NetavarkPeer {
    host: Host,
    sandboxes: Sandboxes,
    config: PathBuf,
}

impl NetavarkPeer {
    pub fn new() -> anyhow::Result<Self> {
        anyhow::ensure!(
            std::path::Path::new(NETAVARK).exists(),
            "{NETAVARK} is missing: run scripts/install-deps --bench"
        );
        let host = Host::new();
        let config = host.dir().join("netavark");
        std::fs::create_dir_all(&config)?;
        Ok(Self {
            host,
            sandboxes: Sandboxes::new("netavark"),
            config,
        })
    }

    fn document(i: usize) -> String {
        json!({
            "container_id": format!("{:064x}", i + 1),
            "container_name": format!("c{i}"),
            "port_mappings": null,
            "networks": {"bench": {"static_ips": [address("10.89", i)], "aliases": [], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench",
                "id": format!("{:064x}", 0xbe7c4),
                "driver": "bridge",
                "network_interface": "podman1",
                "subnets": [{"subnet": "10.89.0.0/16", "gateway": GATEWAY}],
                "ipv6_enabled": false,
                "internal": false,
                "dns_enabled": false,
            }},
        })
        .to_string()
    }

    fn run(&self, verb: &str, i: usize) -> anyhow::Result<Duration> {
        let mut cmd = self.host.command(NETAVARK);
        cmd.arg("--config")
            .arg(&self.config)
            .arg(verb)
            .arg(self.sandboxes.path(i));
        timed(cmd, &Self::document(i))
    }
}

impl Peer for NetavarkPeer {
    fn make_sandbox(&mut self, i: usize) -> anyhow::Result<()> {
        self.sandboxes.make(i)
    }

    fn attach(&mut self, i: usize) -> anyhow::Result<Duration> {
        self.run("setup", i)
    }

    fn detach(&mut self, i: usize) -> anyhow::Result<Duration> {
        self.run("teardown", i)
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
