//! netctl: `network publish` / `unpublish` through the management API.

use std::time::{Duration, Instant};

use netns_fixtures::Host;
use plugin_api::client::Client;
use plugin_api::ports::{PortMapping, Protocol};
use plugin_api::{
    ConnectRequest, IpamConfig, IpamRequest, NetworkCreateRequest, PublishRequest,
    SandboxCreateRequest,
};

use super::{Publisher, FILL_BASE, PROBE_PORT};

pub struct Netctl {
    host: Host,
    client: Client,
    runtime: tokio::runtime::Runtime,
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
    pub fn new() -> anyhow::Result<Self> {
        let host = Host::with_daemon();
        let client = host.client();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(async {
            client
                .network_create(&NetworkCreateRequest {
                    name: "bench".into(),
                    ipam: Some(IpamRequest {
                        config: vec![IpamConfig {
                            subnet: Some("10.88.0.0/16".into()),
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await?;
            for name in ["filler", "probe"] {
                client
                    .sandbox_create(&SandboxCreateRequest {
                        name: name.into(),
                        ..Default::default()
                    })
                    .await?;
                client
                    .network_connect(
                        "bench",
                        &ConnectRequest {
                            container: name.into(),
                            ..Default::default()
                        },
                    )
                    .await?;
            }
            anyhow::Ok(())
        })?;
        Ok(Self {
            host,
            client,
            runtime,
            filled: 0,
        })
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
            self.runtime.block_on(
                self.client
                    .network_publish("bench", &Self::request("filler", more)),
            )?;
        }
        self.filled = n;
        Ok(())
    }

    fn publish_one(&mut self) -> anyhow::Result<Duration> {
        let req = Self::request("probe", vec![mapping(PROBE_PORT, 80)]);
        let start = Instant::now();
        self.runtime
            .block_on(self.client.network_publish("bench", &req))?;
        Ok(start.elapsed())
    }

    fn withdraw_one(&mut self) -> anyhow::Result<()> {
        let req = Self::request("probe", vec![mapping(PROBE_PORT, 80)]);
        self.runtime
            .block_on(self.client.network_unpublish("bench", &req))?;
        Ok(())
    }

    fn rss_mib(&self) -> Option<f64> {
        crate::attach::rss_mib(self.host.daemon_pid()?)
    }

    fn note(&self) -> Option<String> {
        None
    }
}
