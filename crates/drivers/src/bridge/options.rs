//! A bridge network's options, by netctl's name or Docker's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::options::{parse_bool, parse_mtu};
use crate::{DriverError, NetworkDefaults, NetworkSettings, NetworkSpec};

const OPT_MTU: [&str; 2] = ["mtu", "com.docker.network.driver.mtu"];
const OPT_ICC: [&str; 2] = ["icc", "com.docker.network.bridge.enable_icc"];
const OPT_INTERNAL: [&str; 1] = ["internal"];

/// What the bridge driver keeps with a network ([`NetworkSpec::config`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BridgeConfig {
    /// Inter-container communication between the network's endpoints.
    pub icc: bool,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        Self { icc: true }
    }
}

impl BridgeConfig {
    pub fn of(net: &NetworkSpec) -> Self {
        serde_json::from_value(net.config.clone()).unwrap_or_default()
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
    let mut config = BridgeConfig { icc };
    let mut internal = false;
    for (key, value) in options {
        let key = key.as_str();
        if OPT_MTU.contains(&key) {
            mtu = parse_mtu(value)?;
        } else if OPT_ICC.contains(&key) {
            config.icc = parse_bool(key, value)?;
        } else if OPT_INTERNAL.contains(&key) {
            internal = parse_bool(key, value)?;
        } else {
            return Err(DriverError::InvalidOption(format!(
                "unknown option {key:?} for the bridge driver (known: mtu, icc, internal, \
                 com.docker.network.driver.mtu, com.docker.network.bridge.enable_icc)"
            )));
        }
    }
    Ok(NetworkSettings {
        mtu,
        internal,
        config: serde_json::to_value(config).expect("a plain struct"),
    })
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
}
