//! netctl through its management API, as a runtime would drive it.

use std::time::{Duration, Instant};

use netctl_netns_fixtures::Host;
use netctl_plugin_api::{ConnectRequest, DisconnectRequest};

use super::Peer;
use crate::netctl_host::{Build, NetctlHost, GATEWAY, NETWORK};

pub struct NetctlPeer {
    netctl: NetctlHost,
    /// Namespace path of each sandbox made, by index.
    netns: Vec<String>,
}

impl NetctlPeer {
    pub fn new(build: &Build) -> anyhow::Result<Self> {
        Ok(Self {
            netctl: NetctlHost::new(build)?,
            netns: Vec::new(),
        })
    }

    fn name(i: usize) -> String {
        format!("s{i}")
    }
}

impl Peer for NetctlPeer {
    fn make_sandbox(&mut self, i: usize) -> anyhow::Result<()> {
        let sandbox = self.netctl.sandbox(&Self::name(i), false)?;
        self.netns.push(sandbox.network_settings.sandbox_key);
        Ok(())
    }

    fn attach(&mut self, i: usize) -> anyhow::Result<Duration> {
        let request = ConnectRequest {
            container: Self::name(i),
            ..Default::default()
        };
        let start = Instant::now();
        self.netctl
            .runtime
            .block_on(self.netctl.client.network_connect(NETWORK, &request))?;
        Ok(start.elapsed())
    }

    fn detach(&mut self, i: usize) -> anyhow::Result<Duration> {
        let request = DisconnectRequest {
            container: Self::name(i),
        };
        let start = Instant::now();
        self.netctl
            .runtime
            .block_on(self.netctl.client.network_disconnect(NETWORK, &request))?;
        Ok(start.elapsed())
    }

    fn netns_path(&self, i: usize) -> String {
        self.netns[i].clone()
    }

    fn gateway(&self) -> &'static str {
        GATEWAY
    }

    fn host(&self) -> &Host {
        &self.netctl.host
    }

    fn rss_mib(&self) -> Option<f64> {
        self.netctl.rss_mib()
    }
}
