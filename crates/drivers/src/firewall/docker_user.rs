//! Living beside dockerd's iptables. dockerd sets the FORWARD policy to drop and makes bridged
//! frames cross iptables (`bridge-nf-call-iptables`), so traffic on netctl's bridges would be
//! dropped there whatever netctl's own table says: a verdict to drop in any base chain wins.
//! dockerd leaves the chain DOCKER-USER to the administrator and jumps to it first; netctl
//! accepts its own bridges' traffic there, one pair of rules per bridge, and nothing else of
//! Docker's changes: its own networks keep their protections, and netctl's table still decides
//! for netctl's bridges. Without dockerd (no such chain) there is nothing to do.

use tokio::process::Command;

use crate::DriverError;

const CHAIN: &str = "DOCKER-USER";

/// IPv4, and IPv6 where dockerd manages ip6tables too (`--ip6tables`).
const TOOLS: [&str; 2] = ["iptables", "ip6tables"];

/// `iptables -w -I DOCKER-USER -i BRIDGE -j ACCEPT; iptables -w -I DOCKER-USER -o BRIDGE -j ACCEPT`
/// (each only when missing), and the same with ip6tables, where dockerd's chain exists.
pub async fn admit_bridge(bridge: &str) -> Result<(), DriverError> {
    for tool in TOOLS {
        if !chain_exists(tool).await {
            continue;
        }
        for direction in ["-i", "-o"] {
            let rule = [CHAIN, direction, bridge, "-j", "ACCEPT"];
            if !run(tool, "-C", &rule).await? && !run(tool, "-I", &rule).await? {
                return Err(DriverError::Nft(format!(
                    "{tool}: cannot accept {bridge} in {CHAIN}"
                )));
            }
        }
    }
    Ok(())
}

/// `iptables -w -D DOCKER-USER -i BRIDGE -j ACCEPT` and `-o`, as long as there are any (and
/// the same with ip6tables).
pub async fn forget_bridge(bridge: &str) -> Result<(), DriverError> {
    for tool in TOOLS {
        if !chain_exists(tool).await {
            continue;
        }
        for direction in ["-i", "-o"] {
            while run(tool, "-D", &[CHAIN, direction, bridge, "-j", "ACCEPT"]).await? {}
        }
    }
    Ok(())
}

async fn chain_exists(tool: &str) -> bool {
    run(tool, "-S", &[CHAIN]).await.unwrap_or(false)
}

/// Runs `TOOL -w ACTION ARGS`; true when it succeeded. A missing tool counts as no chain.
async fn run(tool: &str, action: &str, args: &[&str]) -> Result<bool, DriverError> {
    let output = Command::new(tool)
        .args(["-w", action])
        .args(args)
        .output()
        .await;
    match output {
        Ok(out) => Ok(out.status.success()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DriverError::Nft(format!("cannot run {tool}: {e}"))),
    }
}
