//! `iptables` and `ip6tables`, for chains another firewall owner (dockerd) keeps.

use tokio::process::Command;

use crate::KernelError;

/// The two families' tools.
pub const TOOLS: [&str; 2] = ["iptables", "ip6tables"];

/// `TOOL -w -S CHAIN` succeeds: the chain exists (a missing tool counts as no chain).
pub async fn chain_exists(tool: &'static str, chain: &str) -> bool {
    run(tool, "-S", &[chain]).await.unwrap_or(false)
}

/// Runs `TOOL -w ACTION ARGS`; true when it succeeded (`-C` answers false for a missing
/// rule, `-D` for nothing left to delete). A missing tool is `Ok(false)`.
pub async fn run(tool: &'static str, action: &str, args: &[&str]) -> Result<bool, KernelError> {
    let output = Command::new(tool)
        .args(["-w", action])
        .args(args)
        .output()
        .await;
    match output {
        Ok(out) => Ok(out.status.success()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(KernelError::Command {
            program: tool,
            message: e.to_string(),
        }),
    }
}
