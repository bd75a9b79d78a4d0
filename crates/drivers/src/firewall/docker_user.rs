//! Living beside dockerd's iptables. dockerd sets the FORWARD policy to drop and makes bridged
//! frames cross iptables (`bridge-nf-call-iptables`), so traffic on netctl's bridges would be
//! dropped there whatever netctl's own table says: a verdict to drop in any base chain wins.
//! dockerd leaves the chain DOCKER-USER to the administrator and jumps to it first; netctl
//! accepts its own bridges' traffic there, one pair of rules per bridge, and nothing else of
//! Docker's changes: its own networks keep their protections, and netctl's table still decides
//! for netctl's bridges. Without dockerd (no such chain) there is nothing to do.

use netctl_kernel::iptables::{chain_exists, run, TOOLS};

use crate::DriverError;

const CHAIN: &str = "DOCKER-USER";

/// `iptables -w -I DOCKER-USER -i BRIDGE -j ACCEPT; iptables -w -I DOCKER-USER -o BRIDGE -j ACCEPT`
/// (each only when missing), and the same with ip6tables, where dockerd's chain exists.
pub async fn admit_bridge(bridge: &str) -> Result<(), DriverError> {
    for tool in TOOLS {
        if !chain_exists(tool, CHAIN).await {
            continue;
        }
        for direction in ["-i", "-o"] {
            let rule = [CHAIN, direction, bridge, "-j", "ACCEPT"];
            if !run(tool, "-C", &rule).await? && !run(tool, "-I", &rule).await? {
                return Err(DriverError::Kernel(netctl_kernel::KernelError::Command {
                    program: tool,
                    message: format!("cannot accept {bridge} in {CHAIN}"),
                }));
            }
        }
    }
    Ok(())
}

/// `iptables -w -D DOCKER-USER -i BRIDGE -j ACCEPT` and `-o`, as long as there are any (and
/// the same with ip6tables).
pub async fn forget_bridge(bridge: &str) -> Result<(), DriverError> {
    for tool in TOOLS {
        if !chain_exists(tool, CHAIN).await {
            continue;
        }
        for direction in ["-i", "-o"] {
            while run(tool, "-D", &[CHAIN, direction, bridge, "-j", "ACCEPT"]).await? {}
        }
    }
    Ok(())
}
