//! Published ports: the wire type and the parser for Docker's `-p` / `--expose` syntax.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Ok(Self::Tcp),
            "udp" => Ok(Self::Udp),
            "sctp" => Ok(Self::Sctp),
            _ => Err(format!("invalid protocol {s:?} (tcp, udp or sctp)")),
        }
    }
}

/// A port a sandbox offers, `7000/tcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ExposedPort {
    pub proto: Protocol,
    pub port: u16,
}

/// One container port published on the host: `[HostIP:][HostPort[-HostPortEnd]:]ContainerPort`.
/// `HostPort` 0 asks the daemon to choose; a host range with one container port asks it to
/// choose within the range.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PortMapping {
    pub proto: Protocol,
    /// `None`: every address of the host, both families.
    #[serde(default, rename = "HostIP", skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    /// Last port of a host range to choose from (equal to `host_port` for one port).
    pub host_port_end: u16,
    pub container_port: u16,
}

impl fmt::Display for PortMapping {
    /// `docker port` style: `80/tcp -> 0.0.0.0:8080`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match self.host_ip {
            None => "0.0.0.0".to_string(),
            Some(IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
        };
        write!(
            f,
            "{}/{} -> {host}:{}",
            self.container_port,
            self.proto.name(),
            self.host_port
        )
    }
}

/// `PORT[-END][/PROTO]`: the ports of an `--expose`, or the container side of a `-p`.
pub fn parse_expose(spec: &str) -> Result<Vec<(u16, Protocol)>, String> {
    let (ports, proto) = split_proto(spec)?;
    let (first, last) = parse_range(ports, spec)?;
    Ok((first..=last).map(|p| (p, proto)).collect())
}

/// Parses one `-p` spec into one mapping per container port.
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, String> {
    let bad = |why: &str| format!("invalid publish spec {spec:?}: {why}");
    let (rest, proto) = split_proto(spec).map_err(|e| bad(&e))?;
    let (host_ip, host_ports, container_ports) = split_parts(rest).map_err(|e| bad(&e))?;
    let host_ip = match host_ip {
        None | Some("") => None,
        Some(text) => {
            let ip: IpAddr = text.parse().map_err(|_| bad("invalid host IP"))?;
            // 0.0.0.0 and :: mean every address, as in Docker.
            (!ip.is_unspecified()).then_some(ip)
        }
    };
    let (c_first, c_last) = parse_range(container_ports, spec)?;
    if c_first == 0 {
        return Err(bad("container port 0"));
    }
    let count = (c_last - c_first) as usize + 1;
    let host = match host_ports {
        None | Some("") => None,
        Some(text) => Some(parse_range(text, spec)?),
    };
    let mapping = |container_port, host_port, host_port_end| PortMapping {
        proto,
        host_ip,
        host_port,
        host_port_end,
        container_port,
    };
    Ok(match host {
        None => (c_first..=c_last).map(|c| mapping(c, 0, 0)).collect(),
        Some((h_first, h_last)) if count == 1 => vec![mapping(c_first, h_first, h_last)],
        Some((h_first, h_last)) if (h_last - h_first) as usize + 1 == count => (0..count as u16)
            .map(|i| mapping(c_first + i, h_first + i, h_first + i))
            .collect(),
        Some(_) => return Err(bad("host and container port ranges differ in length")),
    })
}

fn split_proto(spec: &str) -> Result<(&str, Protocol), String> {
    match spec.rsplit_once('/') {
        Some((rest, proto)) => Ok((rest, proto.parse()?)),
        None => Ok((spec, Protocol::Tcp)),
    }
}

/// `[IP:][HOST:]CONTAINER`, where IP may be `[v6]`.
fn split_parts(rest: &str) -> Result<(Option<&str>, Option<&str>, &str), String> {
    if let Some(after) = rest.strip_prefix('[') {
        let (ip, tail) = after.split_once(']').ok_or("unclosed '['")?;
        let tail = tail
            .strip_prefix(':')
            .ok_or("expected ':' after the IPv6 address")?;
        let (host, container) = tail
            .split_once(':')
            .ok_or("expected HOSTPORT:CONTAINERPORT")?;
        return Ok((Some(ip), Some(host), container));
    }
    let parts: Vec<&str> = rest.split(':').collect();
    match parts.as_slice() {
        [container] => Ok((None, None, container)),
        [host, container] => Ok((None, Some(host), container)),
        [ip, host, container] => Ok((Some(ip), Some(host), container)),
        _ => Err("too many ':' (write IPv6 addresses as [addr])".into()),
    }
}

fn parse_range(text: &str, spec: &str) -> Result<(u16, u16), String> {
    let port = |p: &str| {
        p.parse::<u16>()
            .map_err(|_| format!("invalid port {p:?} in {spec:?}"))
    };
    let (first, last) = match text.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(text)?, port(text)?),
    };
    if last < first {
        return Err(format!("invalid port range {text:?} in {spec:?}"));
    }
    Ok((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> PortMapping {
        let mut all = parse_publish(spec).unwrap();
        assert_eq!(all.len(), 1, "{spec}");
        all.remove(0)
    }

    #[test]
    fn dockers_forms() {
        let m = one("8080:80");
        assert_eq!(
            (m.host_ip, m.host_port, m.container_port, m.proto),
            (None, 8080, 80, Protocol::Tcp)
        );
        let m = one("127.0.0.1:5353:53/udp");
        assert_eq!(m.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(
            (m.host_port, m.container_port, m.proto),
            (5353, 53, Protocol::Udp)
        );
        let m = one("[::]:8443:443");
        assert_eq!(
            (m.host_ip, m.host_port, m.container_port),
            (None, 8443, 443)
        );
        let m = one("[fd00::1]:8443:443");
        assert_eq!(m.host_ip, Some("fd00::1".parse().unwrap()));
        assert_eq!(one("2905:2905/sctp").proto, Protocol::Sctp);
        assert_eq!(one("80").host_port, 0, "host port chosen by the daemon");
        assert_eq!(one("127.0.0.1::80").host_port, 0);
        let m = one("8000-8010:80");
        assert_eq!((m.host_port, m.host_port_end), (8000, 8010));
        assert_eq!(one("0.0.0.0:8080:80").host_ip, None);
    }

    #[test]
    fn ranges_expand_pairwise() {
        let all = parse_publish("9000-9010:9000-9010").unwrap();
        assert_eq!(all.len(), 11);
        assert_eq!((all[10].host_port, all[10].container_port), (9010, 9010));
        assert_eq!(parse_publish("80-82").unwrap().len(), 3);
    }

    #[test]
    fn bad_specs_say_why() {
        for (spec, why) in [
            ("8080:80/icmp", "invalid protocol"),
            ("abc", "invalid port"),
            ("70000:80", "invalid port"),
            ("9000-9002:80-81", "differ in length"),
            ("1.2.3:80:80", "invalid host IP"),
            ("::1:80:80", "too many ':'"),
            ("[::1:80:80", "unclosed"),
            ("8080:0", "container port 0"),
            ("90-80:90-80", "invalid port range"),
        ] {
            let err = parse_publish(spec).unwrap_err();
            assert!(err.contains(why), "{spec}: {err}");
        }
    }

    #[test]
    fn expose_takes_ports_and_ranges() {
        assert_eq!(parse_expose("7000").unwrap(), vec![(7000, Protocol::Tcp)]);
        assert_eq!(parse_expose("53/udp").unwrap(), vec![(53, Protocol::Udp)]);
        assert_eq!(parse_expose("7000-7002").unwrap().len(), 3);
    }

    #[test]
    fn displays_like_docker_port() {
        assert_eq!(
            one("127.0.0.1:5353:53/udp").to_string(),
            "53/udp -> 127.0.0.1:5353"
        );
        assert_eq!(
            one("[fd00::1]:8443:443").to_string(),
            "443/tcp -> [fd00::1]:8443"
        );
    }
}
