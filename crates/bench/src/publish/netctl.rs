//! netctl: `network publish` / `unpublish` through the management API.

use std::time::{Duration, Instant};

use netctl_plugin_api::ports::{PortMapping, Protocol};
use netctl_plugin_api::PublishRequest;

use super::{Publisher, FILL_BASE, PROBE_PORT};
use crate::netctl_host::{Build, NetctlHost, NETWORK};

pub struct Netctl {
    netctl: NetctlHost,
    filled: usize,
}

fn mapping(host_port: u16, container_port: u16) -> PortMapping {
    PortMapping {
        proto: Protocol::Tcp,
        host_ip: None,
        host_port,
        host_port_end: host_port,
        container_port,
    }
}

impl Netctl {
    pub fn new(build: &Build) -> anyhow::Result<Self> {
        let netctl = NetctlHost::new(build)?;
        netctl.sandbox("filler", true)?;
        netctl.sandbox("probe", true)?;
        Ok(Self { netctl, filled: 0 })
    }

    fn request(container: &str, ports: Vec<PortMapping>) -> PublishRequest {
        PublishRequest {
            container: container.into(),
            port_bindings: ports,
        }
    }
}

impl Publisher for Netctl {
    fn fill(&mut self, n: usize) -> anyhow::Result<()> {
        let more: Vec<_> = (self.filled..n)
            .map(|i| mapping(FILL_BASE + i as u16, 80))
            .collect();
        if !more.is_empty() {
            self.netctl.runtime.block_on(
                self.netctl
                    .client
                    .network_publish(NETWORK, &Self::request("filler", more)),
            )?;
        }
        self.filled = n;
        Ok(())
    }

    fn publish_one(&mut self) -> anyhow::Result<Duration> {
        let req = Self::request("probe", vec![mapping(PROBE_PORT, 80)]);
        let start = Instant::now();
        self.netctl
            .runtime
            .block_on(self.netctl.client.network_publish(NETWORK, &req))?;
        Ok(start.elapsed())
    }

    fn withdraw_one(&mut self) -> anyhow::Result<()> {
        let req = Self::request("probe", vec![mapping(PROBE_PORT, 80)]);
        self.netctl
            .runtime
            .block_on(self.netctl.client.network_unpublish(NETWORK, &req))?;
        Ok(())
    }

    fn rss_mib(&self) -> Option<f64> {
        self.netctl.rss_mib()
    }

    fn note(&self) -> Option<String> {
        None
    }
}
