//! The network configuration on stdin: one plugin's entry of a conflist, as libcni hands it
//! over (with `name`, `cniVersion`, `runtimeConfig` and `prevResult` filled in).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{CniError, ErrorCode};
use crate::version::Version;

/// netctl's plugin entry. Unknown fields are passed over, as the spec asks.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct NetConf {
    #[serde(rename = "cniVersion", default)]
    pub cni_version: String,
    /// The CNI network's name (the conflist's).
    #[serde(default)]
    pub name: String,
    #[serde(rename = "type", default)]
    pub plugin_type: String,
    /// The netctl network; the CNI network's name when absent.
    #[serde(default)]
    pub network: Option<String>,
    /// The daemon's management socket.
    #[serde(default)]
    pub socket: Option<PathBuf>,
    /// Settings for a network the plugin makes on first ADD when it does not exist.
    #[serde(default)]
    pub driver: Option<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub subnet: Vec<String>,
    #[serde(default, deserialize_with = "one_or_many")]
    pub gateway: Vec<String>,
    #[serde(default)]
    pub ipv6: bool,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(rename = "runtimeConfig", default)]
    pub runtime_config: RuntimeConfig,
    /// The previous plugin's result (chained ADD, DEL and CHECK).
    #[serde(rename = "prevResult", default)]
    pub prev_result: Option<serde_json::Value>,
    /// GC: the attachments the runtime still has; every other one is collected.
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
}

/// What the runtime passes for the capabilities the conflist declares.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RuntimeConfig {
    #[serde(rename = "portMappings", default)]
    pub port_mappings: Vec<PortMapping>,
    /// Addresses asked for, with or without a prefix length.
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub mac: Option<String>,
    /// By CNI network name (podman's shape).
    #[serde(default)]
    pub aliases: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PortMapping {
    #[serde(rename = "hostPort")]
    pub host_port: u16,
    #[serde(rename = "containerPort")]
    pub container_port: u16,
    #[serde(default = "tcp")]
    pub protocol: String,
    #[serde(rename = "hostIP", default)]
    pub host_ip: Option<String>,
}

fn tcp() -> String {
    "tcp".into()
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => Vec::new(),
        Some(OneOrMany::One(s)) => vec![s],
        Some(OneOrMany::Many(v)) => v,
    })
}

impl NetConf {
    /// Decodes stdin and checks what every command but VERSION needs: a supported version
    /// and a network name.
    pub fn parse(stdin: &[u8]) -> Result<Self, CniError> {
        let conf: Self = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                ErrorCode::Decoding,
                format!("cannot decode the network configuration: {e}"),
            )
        })?;
        if conf.cni_version.is_empty() {
            return Err(CniError::new(
                ErrorCode::InvalidConfig,
                "the network configuration has no cniVersion",
            ));
        }
        Version::parse(&conf.cni_version)?;
        if conf.name.is_empty() {
            return Err(CniError::new(
                ErrorCode::InvalidConfig,
                "the network configuration has no name",
            ));
        }
        Ok(conf)
    }

    pub fn version(&self) -> Version {
        Version::parse(&self.cni_version).expect("checked by parse")
    }

    /// The netctl network this config attaches to.
    pub fn network_name(&self) -> &str {
        self.network.as_deref().unwrap_or(&self.name)
    }

    /// Whether the config describes a network to make when it does not exist.
    pub fn describes_network(&self) -> bool {
        self.driver.is_some() || !self.subnet.is_empty()
    }

    /// The aliases the runtime gave for this network.
    pub fn aliases(&self) -> Vec<String> {
        self.runtime_config
            .aliases
            .get(&self.name)
            .cloned()
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_add_config_decodes() {
        let conf = NetConf::parse(
            br#"{"cniVersion":"1.0.0","name":"web","type":"netctl","network":"webnet",
                "capabilities":{"portMappings":true},
                "runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"},
                                                 {"hostPort":8082,"containerPort":82,"protocol":"udp","hostIP":"127.0.0.1"}],
                                 "aliases":{"web":["db","0123456789ab"]},
                                 "ips":["10.79.0.50","fd79::3/64"]}}"#,
        )
        .unwrap();
        assert_eq!(conf.network_name(), "webnet");
        assert_eq!(conf.runtime_config.port_mappings.len(), 2);
        assert_eq!(
            conf.runtime_config.port_mappings[1].host_ip.as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(conf.aliases(), vec!["db", "0123456789ab"]);
        assert!(!conf.describes_network());
    }

    #[test]
    fn network_settings_take_one_subnet_or_many() {
        let one = NetConf::parse(
            br#"{"cniVersion":"0.4.0","name":"n","type":"netctl","subnet":"10.9.0.0/24"}"#,
        )
        .unwrap();
        assert_eq!(one.subnet, vec!["10.9.0.0/24"]);
        assert!(one.describes_network());
        let many = NetConf::parse(
            br#"{"cniVersion":"0.4.0","name":"n","type":"netctl","subnet":["10.9.0.0/24","fd09::/64"],"ipv6":true}"#,
        )
        .unwrap();
        assert_eq!(many.subnet.len(), 2);
    }

    #[test]
    fn bad_configs_get_the_specs_codes() {
        let code = |s: &str| NetConf::parse(s.as_bytes()).unwrap_err().code;
        assert_eq!(code("{not json"), ErrorCode::Decoding);
        assert_eq!(
            code(r#"{"cniVersion":"9.9.9","name":"n"}"#),
            ErrorCode::IncompatibleVersion
        );
        assert_eq!(code(r#"{"cniVersion":"1.0.0"}"#), ErrorCode::InvalidConfig);
        assert_eq!(code(r#"{"name":"n"}"#), ErrorCode::InvalidConfig);
        assert_eq!(
            code(
                r#"{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"portMappings":[{"hostPort":"x"}]}}"#
            ),
            ErrorCode::Decoding
        );
    }
}
