//! An overlay network's options, by netctl's name or Docker's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::options::{parse_bool, parse_mtu};
use crate::{DriverError, NetworkSettings, NetworkSpec};

const OPT_VNI: [&str; 2] = ["vxlan-id", "com.docker.network.driver.overlay.vxlanid_list"];
const OPT_MTU: [&str; 2] = ["mtu", "com.docker.network.driver.mtu"];
const OPT_INTERNAL: [&str; 1] = ["internal"];
const OPT_ENCRYPTED: [&str; 2] = ["encrypted", "com.docker.network.overlay.encrypted"];

/// VXLAN's 24 bits.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// What the overlay driver keeps with a network ([`NetworkSpec::config`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OverlayConfig {
    /// The network's VXLAN id; 0 until the cluster gives it one (`-o vxlan-id` asks for one).
    pub vni: u32,
}

impl OverlayConfig {
    pub fn of(net: &NetworkSpec) -> Self {
        Self::from_value(&net.config)
    }

    pub fn from_value(config: &serde_json::Value) -> Self {
        serde_json::from_value(config.clone()).unwrap_or_default()
    }

    pub fn to_value(self) -> serde_json::Value {
        serde_json::to_value(self).expect("a plain struct")
    }
}

/// `default_mtu`: the underlay's MTU minus VXLAN's overhead.
pub(super) fn parse(
    options: &BTreeMap<String, String>,
    default_mtu: u32,
) -> Result<NetworkSettings, DriverError> {
    let mut mtu = default_mtu;
    let mut config = OverlayConfig::default();
    let mut internal = false;
    for (key, value) in options {
        let key = key.as_str();
        if OPT_VNI.contains(&key) {
            config.vni = parse_vni(key, value)?;
        } else if OPT_MTU.contains(&key) {
            mtu = parse_mtu(value)?;
        } else if OPT_INTERNAL.contains(&key) {
            internal = parse_bool(key, value)?;
        } else if OPT_ENCRYPTED.contains(&key) {
            // Docker passes the bare option with an empty value: on.
            if value.is_empty() || parse_bool(key, value)? {
                return Err(encryption_refused());
            }
        } else {
            return Err(DriverError::InvalidOption(format!(
                "unknown option {key:?} for the overlay driver (known: vxlan-id, mtu, internal, \
                 com.docker.network.driver.overlay.vxlanid_list, com.docker.network.driver.mtu)"
            )));
        }
    }
    Ok(NetworkSettings {
        mtu,
        internal,
        config: config.to_value(),
    })
}

/// Why `-o encrypted` is refused: what this kernel lacks, by its own answers; or, on a
/// kernel that has what it takes, that netctl does not program it yet.
fn encryption_refused() -> DriverError {
    let support = netctl_kernel::xfrm::encryption_support();
    if support.any() {
        return DriverError::Unsupported(
            "encrypted overlays are not available yet: this kernel has IPsec ESP or \
             WireGuard, but netctl does not program them"
                .into(),
        );
    }
    let answer = |r: &Result<(), String>| r.clone().err().unwrap_or_default();
    DriverError::Unsupported(format!(
        "encrypted overlays need IPsec ESP or WireGuard, and this kernel has neither \
         (ESP: {}; WireGuard: {}); nothing was created",
        answer(&support.esp),
        answer(&support.wireguard)
    ))
}

/// One VNI (Docker's option is a list, one per subnet; netctl's networks have one VNI).
fn parse_vni(key: &str, value: &str) -> Result<u32, DriverError> {
    let invalid = || {
        DriverError::InvalidOption(format!(
            "option {key}: {value:?} is not a VXLAN id (1-{MAX_VNI})"
        ))
    };
    let first = value.split(',').next().unwrap_or_default().trim();
    let vni: u32 = first.parse().map_err(|_| invalid())?;
    if vni == 0 || vni > MAX_VNI {
        return Err(invalid());
    }
    Ok(vni)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_vni_mtu_and_internal_are_read_by_either_name() {
        let s = parse(&options(&[("vxlan-id", "4242"), ("mtu", "1400")]), 1450).unwrap();
        assert_eq!(OverlayConfig::from_value(&s.config).vni, 4242);
        assert_eq!(s.mtu, 1400);
        let s = parse(
            &options(&[("com.docker.network.driver.overlay.vxlanid_list", "300")]),
            1450,
        )
        .unwrap();
        assert_eq!(OverlayConfig::from_value(&s.config).vni, 300);
        assert_eq!(s.mtu, 1450, "the underlay's MTU minus 50 by default");
        assert!(
            parse(&options(&[("internal", "true")]), 1450)
                .unwrap()
                .internal
        );
    }

    #[test]
    fn bad_options_are_refused_with_their_reason() {
        for (k, v) in [
            ("vxlan-id", "0"),
            ("vxlan-id", "16777216"),
            ("vxlan-id", "x"),
        ] {
            let e = parse(&options(&[(k, v)]), 1450).unwrap_err().to_string();
            assert!(e.contains("not a VXLAN id"), "{e}");
        }
        let e = parse(&options(&[("encrypted", "")]), 1450).unwrap_err();
        assert!(e.to_string().contains("IPsec"), "{e}");
        let e = parse(&options(&[("parent", "eth0")]), 1450).unwrap_err();
        assert!(e.to_string().contains("unknown option"), "{e}");
    }
}
