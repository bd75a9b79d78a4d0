//! daemon.json: Docker's keys where Docker has one, netctl's own otherwise. Unknown keys are
//! an error, not silently ignored.

use std::path::{Path, PathBuf};

use netctl_ipam::PoolTemplate;
use serde::Deserialize;

use crate::access::RolesConfig;
use crate::error::DaemonError;

#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DaemonConfig {
    /// Upstream DNS servers for sandboxes.
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub dns_search: Vec<String>,
    #[serde(default)]
    pub dns_opts: Vec<String>,
    /// Where subnets come from when a network is created without one.
    #[serde(default)]
    pub default_address_pools: Vec<PoolTemplate>,
    /// MTU of new networks (1500 when unset).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Turn on IP forwarding in the daemon's namespace (Docker's default: true).
    #[serde(default)]
    pub ip_forward: Option<bool>,
    /// Accepted for Docker compatibility; netctl always publishes in the kernel.
    #[serde(default)]
    pub userland_proxy: Option<bool>,
    /// The cluster store's (etcd's) client URLs, as one comma-separated string or a list;
    /// Docker's `etcd://host:port` is read as `http://host:port`.
    #[serde(default)]
    pub cluster_store: Option<ClusterStoreUrls>,
    /// Seconds a node's liveness lease lasts: a node silent this long is shown `down` and
    /// its endpoints leave the other nodes (default 10).
    #[serde(default)]
    pub cluster_lease_ttl: Option<u64>,
    #[serde(default)]
    pub data_root: Option<PathBuf>,
    #[serde(default)]
    pub exec_root: Option<PathBuf>,
    /// Seconds an attach to a DHCP network waits for its lease (default 10).
    #[serde(default)]
    pub dhcp_timeout: Option<u64>,
    /// Who may use the management API, and for what (root always may).
    #[serde(default)]
    pub roles: RolesConfig,
    /// The group the management API's socket belongs to, as dockerd's `group`: its members
    /// reach the API and get what `roles` gives them (default: root's group).
    #[serde(default)]
    pub group: Option<String>,
    /// Where Prometheus metrics are served (`127.0.0.1:9323`), as dockerd's
    /// `metrics-addr`; off when unset.
    #[serde(default)]
    pub metrics_addr: Option<std::net::SocketAddr>,
}

pub const DEFAULT_MTU: u32 = 1500;

/// How long an attach waits for a lease unless daemon.json says otherwise.
pub const DEFAULT_DHCP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a node's lease lasts unless daemon.json says otherwise.
pub const DEFAULT_LEASE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// daemon.json's `cluster-store`: `"http://a:2379,http://b:2379"` or a list of URLs.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum ClusterStoreUrls {
    Joined(String),
    List(Vec<String>),
}

impl ClusterStoreUrls {
    pub fn list(&self) -> Vec<String> {
        let urls: Vec<&str> = match self {
            Self::Joined(text) => text.split(',').collect(),
            Self::List(list) => list.iter().map(String::as_str).collect(),
        };
        normalize_store_urls(&urls)
    }
}

/// Trimmed, empty ones dropped, Docker's `etcd://` read as `http://`.
pub fn normalize_store_urls(urls: &[&str]) -> Vec<String> {
    urls.iter()
        .map(|u| u.trim())
        .filter(|u| !u.is_empty())
        .map(|u| match u.strip_prefix("etcd://") {
            Some(rest) => format!("http://{rest}"),
            None => u.to_string(),
        })
        .collect()
}

/// Each an `http://` or `https://` URL with a host and port.
pub fn check_store_urls(urls: &[String]) -> Result<(), String> {
    if urls.is_empty() {
        return Err("no cluster store URL given".into());
    }
    for url in urls {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .ok_or_else(|| format!("{url:?} is not an http:// or https:// URL"))?;
        let (host, port) = rest
            .trim_end_matches('/')
            .rsplit_once(':')
            .ok_or_else(|| format!("{url:?} has no port"))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(format!("{url:?} is not HOST:PORT"));
        }
    }
    Ok(())
}

impl DaemonConfig {
    /// Reads `path`; a missing file gives the defaults only when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<Self, DaemonError> {
        let err = |message: String| DaemonError::Config {
            path: path.to_path_buf(),
            message,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Self::default())
            }
            Err(e) => return Err(err(e.to_string())),
        };
        Self::parse(&text).map_err(err)
    }

    /// daemon.json's text, read and checked: the reason, when it cannot be used.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: Self = serde_json::from_str(text).map_err(|e| e.to_string())?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), String> {
        // Accepting these and doing nothing would leave a user believing they are in force.
        if let Some(urls) = &self.cluster_store {
            check_store_urls(&urls.list()).map_err(|e| format!("cluster-store: {e}"))?;
        }
        if self
            .cluster_lease_ttl
            .is_some_and(|ttl| !(1..=3600).contains(&ttl))
        {
            return Err("cluster-lease-ttl: must be between 1 and 3600 seconds".into());
        }
        self.roles.validate()?;
        if let Some(group) = &self.group {
            crate::access::group_id(group)?;
        }
        for pool in &self.default_address_pools {
            PoolTemplate::new(pool.base, pool.size).map_err(|e| e.to_string())?;
        }
        if let Some(mtu) = self.mtu {
            netctl_drivers::options::check_mtu(mtu)?;
        }
        self.dns_settings().validate().map_err(|e| e.to_string())?;
        Ok(())
    }

    /// `dns`, `dns-search`, `dns-opts`: what sandboxes without their own settings use.
    pub fn dns_settings(&self) -> netctl_dns::DnsSettings {
        netctl_dns::DnsSettings {
            servers: self.dns.clone(),
            search: self.dns_search.clone(),
            options: self.dns_opts.clone(),
        }
    }

    /// The settings other than `dns*`, which alone apply without a restart.
    pub fn without_dns(&self) -> Self {
        Self {
            dns: Vec::new(),
            dns_search: Vec::new(),
            dns_opts: Vec::new(),
            ..self.clone()
        }
    }

    /// Settings that are valid but have no effect, for a warning at start.
    pub fn inert_settings(&self) -> Vec<&'static str> {
        let mut inert = Vec::new();
        if self.userland_proxy == Some(true) {
            inert.push(
                "userland-proxy (ports are translated in the kernel; a proxy serves only what it cannot translate, IPv6 loopback)",
            );
        }
        inert
    }

    pub fn mtu(&self) -> u32 {
        self.mtu.unwrap_or(DEFAULT_MTU)
    }

    /// How long an attach to a DHCP network waits for its lease.
    pub fn dhcp_timeout(&self) -> std::time::Duration {
        self.dhcp_timeout
            .map(std::time::Duration::from_secs)
            .unwrap_or(DEFAULT_DHCP_TIMEOUT)
    }

    /// The local address space's templates: daemon.json's, or Docker's defaults; plus the
    /// default IPv6 pool unless daemon.json gives IPv6 templates of its own.
    pub fn local_pool_templates(&self) -> Vec<PoolTemplate> {
        let mut templates = if self.default_address_pools.is_empty() {
            PoolTemplate::from_table(netctl_ipam::DEFAULT_LOCAL_POOLS)
        } else {
            self.default_address_pools.clone()
        };
        if !templates.iter().any(|t| t.base.is_ipv6()) {
            templates.extend(PoolTemplate::from_table(&[netctl_ipam::DEFAULT_IPV6_POOL]));
        }
        templates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_docker_keys_and_rejects_unknown_ones() {
        let c: DaemonConfig = serde_json::from_str(
            r#"{"dns": ["192.0.2.53"], "mtu": 1400,
                "default-address-pools": [{"base": "10.10.0.0/16", "size": 24}]}"#,
        )
        .unwrap();
        assert_eq!(c.mtu(), 1400);
        assert_eq!(c.local_pool_templates()[0].base.to_string(), "10.10.0.0/16");
        assert!(c.local_pool_templates().iter().any(|t| t.base.is_ipv6()));
        let e = serde_json::from_str::<DaemonConfig>(r#"{"bogus": 1}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `bogus`"));
    }

    #[test]
    fn unsupported_settings_are_refused_not_ignored() {
        let c: DaemonConfig =
            serde_json::from_str(r#"{"cluster-store": "etcd://192.0.2.1:2379"}"#).unwrap();
        c.validate().unwrap();
        assert_eq!(
            c.cluster_store.unwrap().list(),
            vec!["http://192.0.2.1:2379".to_string()]
        );
        let c: DaemonConfig = serde_json::from_str(
            r#"{"cluster-store": ["http://192.0.2.1:2379", "http://192.0.2.2:2379"]}"#,
        )
        .unwrap();
        assert_eq!(c.cluster_store.unwrap().list().len(), 2);
        let c: DaemonConfig = serde_json::from_str(r#"{"cluster-store": "192.0.2.1"}"#).unwrap();
        assert!(c.validate().unwrap_err().contains("cluster-store"));
        let c: DaemonConfig =
            serde_json::from_str(r#"{"roles": {"users": {"1000": "view"}}}"#).unwrap();
        c.validate().unwrap();
        let c: DaemonConfig = serde_json::from_str(r#"{"group": "no-such-group-here"}"#).unwrap();
        assert!(c.validate().unwrap_err().contains("no such group"));
        let c: DaemonConfig = serde_json::from_str(r#"{"dns": ["192.0.2.53"]}"#).unwrap();
        assert!(c.validate().is_ok());
        assert!(c.inert_settings().is_empty());
        let c: DaemonConfig = serde_json::from_str(r#"{"dns": ["192.0.2"]}"#).unwrap();
        assert_eq!(
            c.validate().unwrap_err(),
            "invalid DNS server \"192.0.2\": not an IP address"
        );
    }

    #[test]
    fn defaults_are_dockers() {
        let c = DaemonConfig::default();
        assert_eq!(c.mtu(), 1500);
        assert_eq!(
            c.local_pool_templates()[0].base.to_string(),
            "172.17.0.0/16"
        );
    }
}
