//! netctl through its management API, as a runtime would drive it.

use std::time::{Duration, Instant};

use netns_fixtures::Host;
use plugin_api::client::Client;
use plugin_api::{
    ConnectRequest, DisconnectRequest, IpamConfig, IpamRequest, NetworkCreateRequest,
    SandboxCreateRequest,
};

use super::Peer;

const NETWORK: &str = "bench";
const GATEWAY: &str = "10.88.0.1";

pub struct NetctlPeer {
    host: Host,
    /// Namespace path of each sandbox made, by index.
    netns: Vec<String>,
    client: Client,
    runtime: tokio::runtime::Runtime,
}

impl NetctlPeer {
    pub fn new() -> anyhow::Result<Self> {
        let host = Host::with_daemon();
        let client = host.client();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let request = NetworkCreateRequest {
            name: NETWORK.into(),
            ipam: Some(IpamRequest {
                config: vec![IpamConfig {
                    subnet: Some("10.88.0.0/16".into()),
                    gateway: Some(GATEWAY.into()),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            ..Default::default()
        };
        runtime.block_on(client.network_create(&request))?;
        Ok(Self {
            host,
            netns: Vec::new(),
            client,
            runtime,
        })
    }

    fn name(i: usize) -> String {
        format!("s{i}")
    }
}

impl Peer for NetctlPeer {
    fn make_sandbox(&mut self, i: usize) -> anyhow::Result<()> {
        let request = SandboxCreateRequest {
            name: Self::name(i),
            ..Default::default()
        };
        let sandbox = self
            .runtime
            .block_on(self.client.sandbox_create(&request))?;
        self.netns.push(sandbox.network_settings.sandbox_key);
        Ok(())
    }

    fn attach(&mut self, i: usize) -> anyhow::Result<Duration> {
        let request = ConnectRequest {
            container: Self::name(i),
            ..Default::default()
        };
        let start = Instant::now();
        self.runtime
            .block_on(self.client.network_connect(NETWORK, &request))?;
        Ok(start.elapsed())
    }

    fn detach(&mut self, i: usize) -> anyhow::Result<Duration> {
        let request = DisconnectRequest {
            container: Self::name(i),
        };
        let start = Instant::now();
        self.runtime
            .block_on(self.client.network_disconnect(NETWORK, &request))?;
        Ok(start.elapsed())
    }

    fn netns_path(&self, i: usize) -> String {
        self.netns[i].clone()
    }

    fn gateway(&self) -> &'static str {
        GATEWAY
    }

    fn host(&self) -> &Host {
        &self.host
    }

    fn rss_mib(&self) -> Option<f64> {
        super::rss_mib(self.host.daemon_pid()?)
    }
}
