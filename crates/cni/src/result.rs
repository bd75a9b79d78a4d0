//! A plugin's result: the interfaces, addresses, routes and DNS of one attachment, written in
//! the version the config asks for, and read back from a `prevResult` of any version.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::error::{CniError, ErrorCode};
use crate::version::Version;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// Written from 1.1.0 on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// The namespace path for a container's interface; absent for a host's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    pub address: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<IpAddr>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpNetwork,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<IpAddr>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

/// One attachment, whatever version it is written in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Attachment {
    #[serde(default)]
    pub interfaces: Vec<Interface>,
    #[serde(default)]
    pub ips: Vec<IpConfig>,
    #[serde(default)]
    pub routes: Vec<Route>,
    #[serde(default)]
    pub dns: Dns,
}

impl Attachment {
    /// The result as `version` writes it: before 1.0.0 each address says its family; an
    /// interface's MTU is written from 1.1.0 on.
    pub fn render(&self, version: Version) -> serde_json::Value {
        let interfaces: Vec<Interface> = self
            .interfaces
            .iter()
            .cloned()
            .map(|mut i| {
                if version < Version::V1_1_0 {
                    i.mtu = None;
                }
                i
            })
            .collect();
        let ips: Vec<serde_json::Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = serde_json::to_value(ip).expect("an address serializes");
                if version.tags_address_family() {
                    let family = if ip.address.is_ipv4() { "4" } else { "6" };
                    v["version"] = family.into();
                }
                v
            })
            .collect();
        serde_json::json!({
            "cniVersion": version.as_str(),
            "interfaces": interfaces,
            "ips": ips,
            "routes": self.routes,
            "dns": self.dns,
        })
    }

    /// Reads a `prevResult` (any version: the `version` tags of old ones are passed over).
    pub fn from_prev_result(value: &serde_json::Value) -> Result<Self, CniError> {
        serde_json::from_value(value.clone()).map_err(|e| {
            CniError::new(
                ErrorCode::Decoding,
                format!("cannot decode prevResult: {e}"),
            )
        })
    }

    /// The interfaces inside the container's namespace.
    pub fn container_interfaces(&self) -> impl Iterator<Item = (usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
    }

    /// The addresses of the container interface named `ifname` (or, when the result names
    /// no interfaces, every address).
    pub fn addresses_of(&self, ifname: &str) -> Vec<IpNetwork> {
        let index = self.interfaces.iter().position(|i| i.name == ifname);
        self.ips
            .iter()
            .filter(|ip| index.is_none() || ip.interface.is_none() || ip.interface == index)
            .map(|ip| ip.address)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Attachment {
        Attachment {
            interfaces: vec![Interface {
                name: "eth0".into(),
                mac: "02:42:0a:09:00:02".into(),
                mtu: Some(1500),
                sandbox: Some("/run/netns/c1".into()),
            }],
            ips: vec![
                IpConfig {
                    address: "10.9.0.2/24".parse().unwrap(),
                    gateway: Some("10.9.0.1".parse().unwrap()),
                    interface: Some(0),
                },
                IpConfig {
                    address: "fd09::2/64".parse().unwrap(),
                    gateway: None,
                    interface: Some(0),
                },
            ],
            routes: vec![Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gw: Some("10.9.0.1".parse().unwrap()),
            }],
            dns: Dns {
                nameservers: vec!["10.9.0.1".into()],
                ..Dns::default()
            },
        }
    }

    #[test]
    fn old_results_tag_families_and_new_ones_do_not() {
        let old = sample().render(Version::V0_4_0);
        assert_eq!(old["cniVersion"], "0.4.0");
        assert_eq!(old["ips"][0]["version"], "4");
        assert_eq!(old["ips"][1]["version"], "6");
        assert!(old["interfaces"][0].get("mtu").is_none());
        let v1 = sample().render(Version::V1_0_0);
        assert!(v1["ips"][0].get("version").is_none());
        assert_eq!(v1["ips"][0]["address"], "10.9.0.2/24");
        assert_eq!(v1["routes"][0]["gw"], "10.9.0.1");
        assert!(v1["interfaces"][0].get("mtu").is_none());
        let v11 = sample().render(Version::V1_1_0);
        assert_eq!(v11["interfaces"][0]["mtu"], 1500);
    }

    #[test]
    fn a_rendered_result_reads_back_as_a_prev_result() {
        for version in [Version::V0_3_1, Version::V1_0_0, Version::V1_1_0] {
            let back = Attachment::from_prev_result(&sample().render(version)).unwrap();
            assert_eq!(back.ips, sample().ips);
            assert_eq!(back.container_interfaces().count(), 1);
            assert_eq!(back.addresses_of("eth0").len(), 2);
        }
        let bad = Attachment::from_prev_result(&serde_json::json!({"ips": [{"address": "x"}]}));
        assert_eq!(bad.unwrap_err().code, ErrorCode::Decoding);
    }
}
