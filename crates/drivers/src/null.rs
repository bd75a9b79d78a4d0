//! The `null` driver (Docker's name; `none` too): a sandbox on the `none` network has a
//! namespace of its own with loopback only, and joins no other network.

use crate::passive::PassiveDriver;
use crate::{Capabilities, NetworkRole, SandboxNamespace, Scope};

pub fn driver() -> PassiveDriver {
    PassiveDriver {
        name: "null",
        aliases: &["none"],
        capabilities: Capabilities {
            scope: Scope::Local,
            addresses: false,
            gateway: false,
            publishes_ports: false,
            serves_dns: false,
            needs_cluster: false,
            namespace: SandboxNamespace::Own,
            exclusive: true,
            singleton: Some("none"),
            exits_via_gateway_bridge: false,
            role: NetworkRole::User,
        },
    }
}
