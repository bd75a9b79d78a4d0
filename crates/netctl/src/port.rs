//! `netctl port SANDBOX [PORT[/PROTO]]`, as `docker port`: a port published on every
//! address shows once per family (`0.0.0.0:8080` and `[::]:8080`).

use std::net::IpAddr;

use netctl_plugin_api::client::Client;
use netctl_plugin_api::ports::{PortMapping, Protocol};

use crate::print;
use crate::print::template::Format;

/// `80/tcp -> 0.0.0.0:8080`, and `80/tcp -> [::]:8080` beside it for every address.
pub fn lines(m: &PortMapping) -> Vec<String> {
    host_sides(m)
        .into_iter()
        .map(|host| format!("{}/{} -> {host}", m.container_port, m.proto.name()))
        .collect()
}

/// `0.0.0.0:8080` and `[::]:8080` for every address, else the one address.
fn host_sides(m: &PortMapping) -> Vec<String> {
    match m.host_ip {
        None => vec![
            format!("0.0.0.0:{}", m.host_port),
            format!("[::]:{}", m.host_port),
        ],
        Some(IpAddr::V6(ip)) => vec![format!("[{ip}]:{}", m.host_port)],
        Some(ip) => vec![format!("{ip}:{}", m.host_port)],
    }
}

/// `80`, `80/udp`.
fn parse_port(spec: &str) -> anyhow::Result<(u16, Protocol)> {
    let (port, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let port = port
        .parse()
        .map_err(|_| anyhow::anyhow!("invalid port {spec:?}: PORT[/tcp|udp|sctp]"))?;
    let proto = match proto {
        "tcp" => Protocol::Tcp,
        "udp" => Protocol::Udp,
        "sctp" => Protocol::Sctp,
        _ => anyhow::bail!("invalid protocol in {spec:?}: tcp, udp or sctp"),
    };
    Ok((port, proto))
}

pub async fn port(
    client: Client,
    sandbox: &str,
    wanted: Option<&str>,
    format: &Format,
) -> anyhow::Result<()> {
    let inspect = client.sandbox_inspect(sandbox).await?;
    let mut mappings: Vec<PortMapping> = inspect
        .network_settings
        .networks
        .values()
        .flat_map(|e| e.ports.iter().cloned())
        .collect();
    mappings.sort_by_key(|m| (m.container_port, m.proto, m.host_port));
    let Some(wanted) = wanted else {
        return print::one(&mappings, format, |all| {
            all.iter().flat_map(lines).collect::<Vec<_>>().join("\n")
        });
    };
    let (port, proto) = parse_port(wanted)?;
    mappings.retain(|m| m.container_port == port && m.proto == proto);
    if mappings.is_empty() {
        anyhow::bail!(
            "no public port {port}/{} published for {}",
            proto.name(),
            inspect.name
        );
    }
    print::one(&mappings, format, |all| {
        all.iter()
            .flat_map(host_sides)
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_shows_once_per_family() {
        let m = PortMapping {
            proto: Protocol::Tcp,
            host_ip: None,
            host_port: 8080,
            host_port_end: 8080,
            container_port: 80,
        };
        assert_eq!(lines(&m), ["80/tcp -> 0.0.0.0:8080", "80/tcp -> [::]:8080"]);
        let v6 = PortMapping {
            host_ip: Some("::1".parse().unwrap()),
            ..m
        };
        assert_eq!(lines(&v6), ["80/tcp -> [::1]:8080"]);
        assert_eq!(parse_port("53/udp").unwrap(), (53, Protocol::Udp));
        assert!(parse_port("x").is_err());
    }
}
