//! The `host` driver: a sandbox on the `host` network shares the host's (the daemon's)
//! namespace, and joins no other network. Nothing is built per network or per endpoint.

use crate::passive::PassiveDriver;
use crate::{Capabilities, NetworkRole, SandboxNamespace, Scope};

pub fn driver() -> PassiveDriver {
    PassiveDriver {
        name: "host",
        aliases: &[],
        capabilities: Capabilities {
            scope: Scope::Local,
            addresses: false,
            gateway: false,
            publishes_ports: false,
            serves_dns: false,
            needs_cluster: false,
            namespace: SandboxNamespace::Host,
            exclusive: true,
            singleton: Some("host"),
            exits_via_gateway_bridge: false,
            role: NetworkRole::User,
        },
    }
}
