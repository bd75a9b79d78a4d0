//! Podman's netavark (Debian's package): `netavark setup|teardown NETNS` with the network
//! description on stdin. It does no IPAM; the bench hands it the addresses, as Podman does.

use std::process::Command;

use netctl_netns_fixtures::Host;
use serde_json::json;

use super::address;
use super::exec_peer::{ExecPeer, Plugin};

const NETAVARK: &str = "/usr/lib/podman/netavark";

pub struct Netavark;

pub fn peer() -> anyhow::Result<ExecPeer<Netavark>> {
    anyhow::ensure!(
        std::path::Path::new(NETAVARK).exists(),
        "{NETAVARK} is missing: run scripts/install-deps --bench"
    );
    Ok(ExecPeer::new("netavark", Host::new(), Netavark))
}

impl Plugin for Netavark {
    const GATEWAY: &'static str = "10.89.0.1";

    fn command(&self, host: &Host, attach: bool, i: usize, netns: &str) -> (Command, String) {
        let config = host.dir().join("netavark");
        let mut cmd = host.command(NETAVARK);
        cmd.arg("--config")
            .arg(config)
            .arg(if attach { "setup" } else { "teardown" })
            .arg(netns);
        let document = json!({
            "container_id": format!("{:064x}", i + 1),
            "container_name": format!("c{i}"),
            "port_mappings": null,
            "networks": {"bench": {"static_ips": [address("10.89", i)], "aliases": [], "interface_name": "eth0"}},
            "network_info": {"bench": {
                "name": "bench",
                "id": format!("{:064x}", 0xbe7c4),
                "driver": "bridge",
                "network_interface": "podman1",
                "subnets": [{"subnet": "10.89.0.0/16", "gateway": Self::GATEWAY}],
                "ipv6_enabled": false,
                "internal": false,
                "dns_enabled": false,
            }},
        });
        (cmd, document.to_string())
    }
}
