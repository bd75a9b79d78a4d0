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

/// `iptables -w -I DOCKER-USER -i BRIDGE -j ACCEPT; iptables -w -I DOCKER-USER -o BRIDGE -j ACCEPT`
/// (each only when missing), when dockerd's chain exists.
pub async fn admit_bridge(bridge: &str) -> Result<(), DriverError> {
    if !chain_exists().await {
        return Ok(());
    }
    for direction in ["-i", "-o"] {
        if !iptables(&["-C", CHAIN, direction, bridge, "-j", "ACCEPT"]).await? {
            let inserted = iptables(&["-I", CHAIN, direction, bridge, "-j", "ACCEPT"]).await?;
            if !inserted {
                return Err(DriverError::Nft(format!(
                    "iptables: cannot accept {bridge} in {CHAIN}"
                )));
            }
        }
    }
    Ok(())
}

/// `iptables -w -D DOCKER-USER -i BRIDGE -j ACCEPT` and `-o`, as long as there are any.
pub async fn forget_bridge(bridge: &str) -> Result<(), DriverError> {
    if !chain_exists().await {
        return Ok(());
    }
    for direction in ["-i", "-o"] {
        while iptables(&["-D", CHAIN, direction, bridge, "-j", "ACCEPT"]).await? {}
    }
    Ok(())
}

async fn chain_exists() -> bool {
    iptables(&["-S", CHAIN]).await.unwrap_or(false)
}

/// Runs `iptables -w ARGS`; true when it succeeded. No iptables binary counts as no chain.
async fn iptables(args: &[&str]) -> Result<bool, DriverError> {
    match Command::new("iptables").arg("-w").args(args).output().await {
        Ok(out) => Ok(out.status.success()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(DriverError::Nft(format!("cannot run iptables: {e}"))),
    }
}
