//! The CNI reference plugins (Debian's package): bridge + host-local, exec'd as libcni does.

use std::process::Command;

use netctl_netns_fixtures::Host;
use serde_json::json;

use super::exec_peer::{ExecPeer, Plugin};

const CNI_PATH: &str = "/usr/lib/cni";

pub struct Cni {
    config: String,
}

pub fn peer() -> anyhow::Result<ExecPeer<Cni>> {
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
            "gateway": Cni::GATEWAY,
            "dataDir": host.dir().join("cni-ipam"),
        },
    })
    .to_string();
    Ok(ExecPeer::new("cni", host, Cni { config }))
}

impl Plugin for Cni {
    const GATEWAY: &'static str = "10.90.0.1";

    fn command(&self, host: &Host, attach: bool, i: usize, netns: &str) -> (Command, String) {
        let mut cmd = host.command(format!("{CNI_PATH}/bridge"));
        cmd.env("CNI_COMMAND", if attach { "ADD" } else { "DEL" })
            .env("CNI_CONTAINERID", format!("{:064x}", i + 1))
            .env("CNI_NETNS", netns)
            .env("CNI_IFNAME", "eth0")
            .env("CNI_PATH", CNI_PATH);
        (cmd, self.config.clone())
    }
}
