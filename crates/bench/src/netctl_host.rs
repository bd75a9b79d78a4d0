//! A test host running netctl with one bridge network, `bench`, on 10.88.0.0/16.

use netns_fixtures::Host;
use plugin_api::client::Client;
use plugin_api::{
    ConnectRequest, IpamConfig, IpamRequest, NetworkCreateRequest, SandboxCreateRequest,
    SandboxInspect,
};

pub const NETWORK: &str = "bench";
pub const GATEWAY: &str = "10.88.0.1";

pub struct NetctlHost {
    pub host: Host,
    pub client: Client,
    pub runtime: tokio::runtime::Runtime,
}

impl NetctlHost {
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
            client,
            runtime,
        })
    }

    /// Makes sandbox `name`, connected to `bench` when `connect` is set.
    pub fn sandbox(&self, name: &str, connect: bool) -> anyhow::Result<SandboxInspect> {
        self.runtime.block_on(async {
            let request = SandboxCreateRequest {
                name: name.into(),
                ..Default::default()
            };
            let created = self.client.sandbox_create(&request).await?;
            if !connect {
                return Ok(created);
            }
            let connect = ConnectRequest {
                container: name.into(),
                ..Default::default()
            };
            self.client.network_connect(NETWORK, &connect).await?;
            Ok(self.client.sandbox_inspect(name).await?)
        })
    }

    pub fn rss_mib(&self) -> Option<f64> {
        crate::attach::rss_mib(self.host.daemon_pid()?)
    }
}
