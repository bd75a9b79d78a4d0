//! A service's published ports: `netctl service create --publish`, in Docker's two
//! spellings (`docker service create --publish`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ports::Protocol;

/// Where a published port answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PublishMode {
    /// On every node, balanced over every replica (the routing mesh).
    Ingress,
    /// Only on the nodes that run a replica, straight to it.
    Host,
}

/// One published port, as inspect shows it (Docker's `Endpoint.Ports`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ServicePort {
    pub protocol: Protocol,
    /// The port on the nodes; 0 asks the cluster to choose one from [`AUTO_PORTS`].
    pub published_port: u16,
    /// The port on the replicas.
    pub target_port: u16,
    pub publish_mode: PublishMode,
}

/// Where a port published without a number is taken from, as Docker's swarm does.
pub const AUTO_PORTS: std::ops::RangeInclusive<u16> = 30000..=32767;

impl ServicePort {
    /// `8080:80`, `5353:53/udp`, `80` (published port chosen), or the long form
    /// `mode=host,published=9090,target=90[,protocol=udp]`.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let parsed = if spec.contains('=') {
            parse_long(spec)
        } else {
            parse_short(spec)
        };
        parsed.map_err(|e| format!("invalid --publish {spec:?}: {e}"))
    }
}

fn parse_short(spec: &str) -> Result<ServicePort, String> {
    let (ports, protocol) = match spec.split_once('/') {
        Some((ports, proto)) => (ports, proto.parse()?),
        None => (spec, Protocol::Tcp),
    };
    let (published, target) = match ports.split_once(':') {
        Some((published, target)) => (port(published, true)?, port(target, false)?),
        None => (0, port(ports, false)?),
    };
    Ok(ServicePort {
        protocol,
        published_port: published,
        target_port: target,
        publish_mode: PublishMode::Ingress,
    })
}

fn parse_long(spec: &str) -> Result<ServicePort, String> {
    let mut parsed = ServicePort {
        protocol: Protocol::Tcp,
        published_port: 0,
        target_port: 0,
        publish_mode: PublishMode::Ingress,
    };
    for field in spec.split(',') {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("{field:?} is not KEY=VALUE"))?;
        match key.trim() {
            "mode" => {
                parsed.publish_mode = match value {
                    "ingress" => PublishMode::Ingress,
                    "host" => PublishMode::Host,
                    other => return Err(format!("mode {other:?} (ingress or host)")),
                }
            }
            "published" => parsed.published_port = port(value, true)?,
            "target" => parsed.target_port = port(value, false)?,
            "protocol" => parsed.protocol = value.parse()?,
            other => {
                return Err(format!(
                    "unknown field {other:?} (mode, published, target, protocol)"
                ))
            }
        }
    }
    if parsed.target_port == 0 {
        return Err("target=PORT is missing".into());
    }
    if parsed.publish_mode == PublishMode::Host && parsed.published_port == 0 {
        return Err("mode=host needs published=PORT".into());
    }
    Ok(parsed)
}

fn port(text: &str, published: bool) -> Result<u16, String> {
    match text.trim().parse::<u16>() {
        Ok(0) | Err(_) => Err(format!(
            "{} port {text:?} is not a port number (1-65535)",
            if published { "published" } else { "target" }
        )),
        Ok(port) => Ok(port),
    }
}

impl fmt::Display for ServicePort {
    /// `8080:80/tcp (ingress)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.publish_mode {
            PublishMode::Ingress => "ingress",
            PublishMode::Host => "host",
        };
        write!(
            f,
            "{}:{}/{} ({mode})",
            self.published_port,
            self.target_port,
            self.protocol.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(spec: &str) -> ServicePort {
        ServicePort::parse(spec).unwrap()
    }

    #[test]
    fn short_and_long_spellings() {
        let web = parsed("8080:80");
        assert_eq!(
            (web.published_port, web.target_port, web.protocol),
            (8080, 80, Protocol::Tcp)
        );
        assert_eq!(web.publish_mode, PublishMode::Ingress);
        assert_eq!(parsed("5353:53/udp").protocol, Protocol::Udp);
        assert_eq!(parsed("80").published_port, 0);
        let host = parsed("mode=host,published=9090,target=90");
        assert_eq!(host.publish_mode, PublishMode::Host);
        assert_eq!((host.published_port, host.target_port), (9090, 90));
        assert_eq!(
            parsed("published=53,target=53,protocol=udp").protocol,
            Protocol::Udp
        );
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        for (spec, says) in [
            ("8080:0", "target port"),
            ("70000:80", "published port"),
            ("8080:80/icmp", "protocol"),
            ("mode=host,target=90", "needs published"),
            ("mode=bridge,published=1,target=2", "ingress or host"),
            ("published=1", "target=PORT"),
            ("color=red,target=1", "unknown field"),
        ] {
            let e = ServicePort::parse(spec).unwrap_err();
            assert!(e.contains(says) && e.contains(spec), "{spec}: {e}");
        }
    }
}
