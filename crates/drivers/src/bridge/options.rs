//! A bridge network's options, by netctl's name or Docker's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::options::{parse_bool, parse_mtu};
use crate::{DriverError, NetworkDefaults, NetworkSettings, NetworkSpec};

const OPT_MTU: [&str; 2] = ["mtu", "com.docker.network.driver.mtu"];
const OPT_ICC: [&str; 2] = ["icc", "com.docker.network.bridge.enable_icc"];
const OPT_INTERNAL: [&str; 1] = ["internal"];
/// Docker's macvlan spelling: the host interface the network is bridged onto.
const OPT_PARENT: [&str; 1] = ["parent"];
/// The bridge device's name, when not netctl's `ncb…`.
const OPT_BRIDGE_NAME: [&str; 2] = ["bridge-name", "com.docker.network.bridge.name"];
const OPT_MASQUERADE: [&str; 2] = [
    "masquerade",
    "com.docker.network.bridge.enable_ip_masquerade",
];

/// What the bridge driver keeps with a network ([`NetworkSpec::config`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BridgeConfig {
    /// Inter-container communication between the network's endpoints.
    pub icc: bool,
    /// A host interface the bridge takes as a port, with its addresses and routes: the
    /// endpoints are on that interface's LAN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
    /// The bridge device's name, when the user chose one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Traffic leaving the network is masqueraded (on unless turned off).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub masquerade: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self {
            icc: true,
            parent: None,
            name: None,
            masquerade: true,
        }
    }
}

impl BridgeConfig {
    pub fn of(net: &NetworkSpec) -> Self {
        Self::from_value(&net.config)
    }

    pub fn from_value(config: &serde_json::Value) -> Self {
        serde_json::from_value(config.clone()).unwrap_or_default()
    }
}

pub(super) fn parse(
    options: &BTreeMap<String, String>,
    defaults: &NetworkDefaults,
) -> Result<NetworkSettings, DriverError> {
    parse_with_icc(options, defaults, true)
}

/// As [`parse`], with `icc` as the default for inter-container communication.
pub(super) fn parse_with_icc(
    options: &BTreeMap<String, String>,
    defaults: &NetworkDefaults,
    icc: bool,
) -> Result<NetworkSettings, DriverError> {
    let mut mtu = defaults.mtu;
    let mut config = BridgeConfig {
        icc,
        ..BridgeConfig::default()
    };
    let mut internal = false;
    for (key, value) in options {
        let key = key.as_str();
        if OPT_MTU.contains(&key) {
            mtu = parse_mtu(value)?;
        } else if OPT_ICC.contains(&key) {
            config.icc = parse_bool(key, value)?;
        } else if OPT_INTERNAL.contains(&key) {
            internal = parse_bool(key, value)?;
        } else if OPT_PARENT.contains(&key) {
            config.parent = Some(parse_ifname(value, "parent interface", "eth1")?);
        } else if OPT_BRIDGE_NAME.contains(&key) {
            config.name = Some(parse_ifname(value, "bridge name", "br-web")?);
        } else if OPT_MASQUERADE.contains(&key) {
            config.masquerade = parse_bool(key, value)?;
        } else {
            return Err(DriverError::InvalidOption(format!(
                "unknown option {key:?} for the bridge driver (known: mtu, icc, internal, \
                 parent, bridge-name, masquerade, com.docker.network.driver.mtu, \
                 com.docker.network.bridge.enable_icc, com.docker.network.bridge.name, \
                 com.docker.network.bridge.enable_ip_masquerade)"
            )));
        }
    }
    Ok(NetworkSettings {
        mtu,
        internal,
        config: serde_json::to_value(config).expect("a plain struct"),
    })
}

/// An interface name as the kernel takes it: 1 to 15 bytes, no `/`, `:` or whitespace.
fn parse_ifname(value: &str, what: &str, example: &str) -> Result<String, DriverError> {
    let valid = !value.is_empty()
        && value.len() <= 15
        && value != "."
        && value != ".."
        && !value.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
    if !valid {
        return Err(DriverError::InvalidOption(format!(
            "invalid {what} {value:?}: expected an interface name (at most 15 characters) such as {example}"
        )));
    }
    Ok(value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn icc(settings: &NetworkSettings) -> bool {
        serde_json::from_value::<BridgeConfig>(settings.config.clone())
            .unwrap()
            .icc
    }

    #[test]
    fn options_take_netctl_and_docker_names() {
        let defaults = NetworkDefaults { mtu: 1500 };
        let o = parse(&opts(&[("mtu", "1400"), ("icc", "false")]), &defaults).unwrap();
        assert_eq!((o.mtu, icc(&o), o.internal), (1400, false, false));
        let o = parse(
            &opts(&[
                ("com.docker.network.driver.mtu", "9000"),
                ("com.docker.network.bridge.enable_icc", "true"),
                ("internal", "yes"),
            ]),
            &defaults,
        )
        .unwrap();
        assert_eq!((o.mtu, icc(&o), o.internal), (9000, true, true));
        assert_eq!(
            parse(&opts(&[]), &NetworkDefaults { mtu: 1300 })
                .unwrap()
                .mtu,
            1300
        );
        assert!(parse(&opts(&[("mtu", "20")]), &defaults).is_err());
        assert!(parse(&opts(&[("icc", "maybe")]), &defaults).is_err());
        let e = parse(&opts(&[("colour", "blue")]), &defaults).unwrap_err();
        assert!(e.to_string().contains("unknown option \"colour\""));
    }

    #[test]
    fn docker_names_the_bridge_and_turns_masquerading_off() {
        let defaults = NetworkDefaults { mtu: 1500 };
        let o = parse(
            &opts(&[
                ("com.docker.network.bridge.name", "br-web"),
                ("com.docker.network.bridge.enable_ip_masquerade", "false"),
            ]),
            &defaults,
        )
        .unwrap();
        let config: BridgeConfig = serde_json::from_value(o.config).unwrap();
        assert_eq!(config.name.as_deref(), Some("br-web"));
        assert!(!config.masquerade);
        let plain: BridgeConfig =
            serde_json::from_value(parse(&opts(&[]), &defaults).unwrap().config).unwrap();
        assert!(plain.masquerade && plain.name.is_none());
        assert!(parse(&opts(&[("bridge-name", "much-too-long-name")]), &defaults).is_err());
    }

    #[test]
    fn parent_is_an_interface_name() {
        let defaults = NetworkDefaults { mtu: 1500 };
        let o = parse(&opts(&[("parent", "eth1")]), &defaults).unwrap();
        let config: BridgeConfig = serde_json::from_value(o.config).unwrap();
        assert_eq!(config.parent.as_deref(), Some("eth1"));
        for bad in ["", "a/b", "eth1:0", "sixteen-chars-xx", "a b"] {
            assert!(
                parse(&opts(&[("parent", bad)]), &defaults).is_err(),
                "{bad:?}"
            );
        }
    }
}
