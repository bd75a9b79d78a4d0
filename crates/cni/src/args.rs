//! `CNI_ARGS`: `K=V` pairs separated by `;`, as runtimes pass them (podman: `IgnoreUnknown=1;
//! K8S_POD_NAME=web;IP=10.0.0.5;MAC=…`; Kubernetes: the `K8S_POD_*` keys).

use std::net::IpAddr;

use crate::error::{CniError, ErrorCode};

/// The keys netctl uses; the rest are passed over when `IgnoreUnknown` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    /// `IP=`: the addresses asked for (one per family; podman sends one).
    pub ips: Vec<IpAddr>,
    /// `MAC=`
    pub mac: Option<String>,
    /// `K8S_POD_NAME=`: podman's container (or pod) name, Kubernetes' pod: the DNS name.
    pub pod_name: Option<String>,
    pub pod_namespace: Option<String>,
}

const KNOWN_IGNORED: [&str; 3] = ["K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID", "IgnoreUnknown"];

impl CniArgs {
    pub fn parse(text: &str) -> Result<Self, CniError> {
        let invalid = |why: String| CniError::new(ErrorCode::InvalidEnvironment, why);
        let pairs: Vec<(&str, &str)> = text
            .split(';')
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once('=')
                    .ok_or_else(|| invalid(format!("CNI_ARGS: {p:?} is not KEY=VALUE")))
            })
            .collect::<Result<_, _>>()?;
        let ignore_unknown = pairs.iter().any(|(k, v)| {
            *k == "IgnoreUnknown" && matches!(v.to_ascii_lowercase().as_str(), "1" | "true")
        });
        let mut args = Self::default();
        for (key, value) in pairs {
            match key {
                "IP" => {
                    for ip in value.split(',').filter(|v| !v.is_empty()) {
                        let ip =
                            ip.split('/').next().unwrap_or(ip).parse().map_err(|_| {
                                invalid(format!("CNI_ARGS: IP={ip:?} is no address"))
                            })?;
                        args.ips.push(ip);
                    }
                }
                "MAC" => args.mac = Some(value.to_string()),
                "K8S_POD_NAME" => args.pod_name = Some(value.to_string()).filter(|v| !v.is_empty()),
                "K8S_POD_NAMESPACE" => args.pod_namespace = Some(value.to_string()),
                k if KNOWN_IGNORED.contains(&k) || ignore_unknown => {}
                k => {
                    return Err(invalid(format!(
                        "CNI_ARGS: unknown key {k:?} (set IgnoreUnknown=1 to pass it over)"
                    )))
                }
            }
        }
        Ok(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn podmans_args_parse() {
        let args = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAME=web;IP=10.79.0.50;MAC=02:42:0a:4f:00:32;Other=x",
        )
        .unwrap();
        assert_eq!(args.ips, vec!["10.79.0.50".parse::<IpAddr>().unwrap()]);
        assert_eq!(args.mac.as_deref(), Some("02:42:0a:4f:00:32"));
        assert_eq!(args.pod_name.as_deref(), Some("web"));
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
    }

    #[test]
    fn unknown_keys_need_ignore_unknown_and_bad_values_are_refused() {
        assert_eq!(
            CniArgs::parse("Other=x").unwrap_err().code,
            ErrorCode::InvalidEnvironment
        );
        assert!(CniArgs::parse("IP=10.0.0.300").is_err());
        assert!(CniArgs::parse("novalue").is_err());
        assert_eq!(CniArgs::parse("IP=10.0.0.5/24").unwrap().ips.len(), 1);
    }
}
