//! Turns `--subnet/--gateway/--ip-range/--aux-address` into IPAM configs, pairing each of the
//! others with the subnet that contains it, as the Docker CLI does.

use std::collections::BTreeMap;
use std::net::IpAddr;

use anyhow::{bail, Context};
use ipnetwork::IpNetwork;
use netctl_plugin_api::IpamConfig;

pub fn consolidate(
    subnets: &[String],
    gateways: &[String],
    ranges: &[String],
    aux: &[String],
) -> anyhow::Result<Vec<IpamConfig>> {
    let mut configs: Vec<IpamConfig> = subnets
        .iter()
        .map(|s| IpamConfig {
            subnet: Some(s.clone()),
            ..Default::default()
        })
        .collect();
    for gateway in gateways {
        let index = owner(
            subnets,
            gateway
                .parse::<IpAddr>()
                .ok()
                .map(|ip| (ip.is_ipv6(), IpNetwork::from(ip))),
            "gateway",
            gateway,
        )?;
        if configs[index].gateway.replace(gateway.clone()).is_some() {
            bail!("cannot have several gateways for subnet {}", subnets[index]);
        }
    }
    for range in ranges {
        let parsed = range.parse::<IpNetwork>().ok().map(|n| (n.is_ipv6(), n));
        let index = owner(subnets, parsed, "ip range", range)?;
        if configs[index].ip_range.replace(range.clone()).is_some() {
            bail!(
                "cannot have several ip ranges for subnet {}",
                subnets[index]
            );
        }
    }
    for entry in aux {
        let (name, address) = entry
            .split_once('=')
            .with_context(|| format!("invalid aux address {entry:?}: expected NAME=ADDRESS"))?;
        let parsed = address
            .parse::<IpAddr>()
            .ok()
            .map(|ip| (ip.is_ipv6(), IpNetwork::from(ip)));
        let index = owner(subnets, parsed, "aux address", address)?;
        configs[index]
            .auxiliary_addresses
            .insert(name.to_string(), address.to_string());
    }
    Ok(configs)
}

/// The subnet a value belongs to. When only one subnet of the value's family is given, the
/// value goes with it and the daemon says precisely what is wrong if it does not fit;
/// otherwise it goes with the subnet that contains it.
fn owner(
    subnets: &[String],
    value: Option<(bool, IpNetwork)>,
    what: &str,
    text: &str,
) -> anyhow::Result<usize> {
    if subnets.is_empty() {
        bail!("{what} {text} needs a --subnet");
    }
    let parsed: Vec<Option<IpNetwork>> = subnets.iter().map(|s| s.parse().ok()).collect();
    let Some((v6, value)) = value else {
        bail!("invalid {what} {text:?}");
    };
    let same_family: Vec<usize> = (0..subnets.len())
        .filter(|&i| parsed[i].is_none_or(|n| n.is_ipv6() == v6))
        .collect();
    if same_family.len() == 1 {
        return Ok(same_family[0]);
    }
    same_family
        .into_iter()
        .find(|&i| parsed[i].is_some_and(|n| n.contains(value.network())))
        .with_context(|| format!("no matching subnet for {what} {text}"))
}

/// `KEY=VALUE` flags as a map.
pub fn key_values(pairs: &[String], what: &str) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("invalid {what} {pair:?}: expected KEY=VALUE"),
        })
        .collect()
}

/// Driver options: `KEY=VALUE`, or a bare `KEY` (empty value) as Docker's `--opt encrypted`.
pub fn driver_options(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            None if !pair.is_empty() => Ok((pair.clone(), String::new())),
            _ => bail!("invalid option {pair:?}: expected KEY=VALUE or KEY"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_driver_option_has_an_empty_value() {
        let o = driver_options(&s(&["encrypted", "mtu=1400"])).unwrap();
        assert_eq!(o["encrypted"], "");
        assert_eq!(o["mtu"], "1400");
        assert!(driver_options(&s(&["=x"])).is_err());
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn pairs_values_with_their_subnet() {
        let c = consolidate(
            &s(&["172.30.0.0/24", "fd00:1::/64"]),
            &s(&["fd00:1::1", "172.30.0.1"]),
            &s(&["172.30.0.128/25"]),
            &s(&["reserved=172.30.0.5"]),
        )
        .unwrap();
        assert_eq!(c[0].gateway.as_deref(), Some("172.30.0.1"));
        assert_eq!(c[0].ip_range.as_deref(), Some("172.30.0.128/25"));
        assert_eq!(c[0].auxiliary_addresses["reserved"], "172.30.0.5");
        assert_eq!(c[1].gateway.as_deref(), Some("fd00:1::1"));
    }

    #[test]
    fn a_lone_subnet_takes_its_gateway_for_the_daemon_to_check() {
        let c = consolidate(&s(&["172.30.0.0/24"]), &s(&["10.9.9.1"]), &[], &[]).unwrap();
        assert_eq!(c[0].gateway.as_deref(), Some("10.9.9.1"));
    }

    #[test]
    fn unmatched_values_are_errors() {
        let e = consolidate(
            &s(&["172.30.0.0/24", "172.31.0.0/24"]),
            &s(&["10.0.0.1"]),
            &[],
            &[],
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "no matching subnet for gateway 10.0.0.1");
        assert!(consolidate(&[], &s(&["10.0.0.1"]), &[], &[]).is_err());
        assert!(consolidate(&s(&["172.30.0.0/24"]), &[], &[], &s(&["nonsense"])).is_err());
    }
}
