//! A test host running netctl with one bridge network, `bench`, on 10.88.0.0/16.

use netctl_netns_fixtures::Host;
use netctl_plugin_api::client::Client;
use netctl_plugin_api::{
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

/// Which netctl a peer runs: this build, or another one (`--baseline`).
#[derive(Debug, Clone)]
pub struct Build {
    /// `netctl`, or `netctl@base`.
    pub name: String,
    /// `None`: the `netctl` next to this benchmark.
    pub binary: Option<std::path::PathBuf>,
    /// daemon.json for its daemons.
    pub config: Option<String>,
}

impl Build {
    pub fn this() -> Self {
        Self {
            name: "netctl".into(),
            binary: None,
            config: None,
        }
    }

    pub fn baseline(binary: &std::path::Path) -> Self {
        Self {
            name: BASELINE.into(),
            binary: Some(binary.to_path_buf()),
            config: None,
        }
    }

    pub fn with_config(self, json: &str) -> Self {
        Self {
            config: Some(json.into()),
            ..self
        }
    }
}

/// The peer name of `--baseline`'s build.
pub const BASELINE: &str = "netctl@base";

impl NetctlHost {
    pub fn new(build: &Build) -> anyhow::Result<Self> {
        let mut host = Host::new();
        if let Some(binary) = &build.binary {
            host.use_binary(binary);
        }
        if let Some(config) = &build.config {
            host.set_config(config);
        }
        host.start_daemon();
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
        crate::process::rss_mib(self.host.daemon_pid()?)
    }
}
