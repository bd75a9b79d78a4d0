//! Runs nft transactions: through libnftables in-process when it loads, else through the
//! `nft` binary. Either way nft's own error message comes back.

use std::io::Write;
use std::process::Stdio;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::libnftables;
use crate::KernelError;

/// `nft -j -f -` with `document` (nft's JSON: `{"nftables": [...]}`), as one atomic
/// transaction: all of it, or (on error) none of it.
pub async fn apply_json(document: String) -> Result<(), KernelError> {
    netctl_crashpoint::step(&"an nft transaction");
    nft(document, true).await.map(drop)
}

/// `nft [-j] list table inet TABLE`, or `None` when there is no such table.
pub async fn list_table(table: &str, json: bool) -> Result<Option<String>, KernelError> {
    match nft(format!("list table inet {table}"), json).await {
        Ok(text) => Ok(Some(text)),
        Err(KernelError::Nft(msg)) if msg.contains("No such file") => Ok(None),
        Err(e) => Err(e),
    }
}

/// `nft -f -` with `commands` in nft's text syntax; nft's output comes back.
pub async fn run_text(commands: String) -> Result<String, KernelError> {
    netctl_crashpoint::step(&"an nft transaction");
    nft(commands, false).await
}

async fn nft(commands: String, json: bool) -> Result<String, KernelError> {
    let (commands, in_process) = tokio::task::spawn_blocking(move || {
        let result = libnftables::run(&commands, json);
        (commands, result)
    })
    .await
    .map_err(|e| KernelError::Nft(format!("nft worker: {e}")))?;
    match in_process {
        Some(result) => result.map_err(KernelError::Nft),
        None => nft_binary(&commands, json).await,
    }
}

/// `nft [-j] -f -` with `commands` on stdin.
async fn nft_binary(commands: &str, json: bool) -> Result<String, KernelError> {
    let mut cmd = Command::new("nft");
    if json {
        cmd.arg("-j");
    }
    let mut child = cmd
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            KernelError::Nft(format!(
                "cannot run nft (is the nftables package installed?): {e}"
            ))
        })?;
    let mut pipe = child.stdin.take().expect("piped stdin");
    pipe.write_all(commands.as_bytes())
        .await
        .map_err(|e| KernelError::Nft(format!("writing to nft: {e}")))?;
    drop(pipe);
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| KernelError::Nft(format!("waiting for nft: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(KernelError::Nft(stderr.trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// `nft -f -` with `commands` (nft's text syntax), run by the `nft` binary in the calling
/// thread's network namespace (a thread that has entered a sandbox's). Not libnftables: its
/// netlink code waits with select(), which aborts the process for a descriptor above 1023,
/// and a daemon serving a few hundred sandboxes holds more descriptors than that.
pub fn apply_text_here(commands: &str) -> Result<(), KernelError> {
    let mut child = std::process::Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| KernelError::Nft(format!("cannot run nft: {e}")))?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(commands.as_bytes())
        .map_err(|e| KernelError::Nft(format!("writing to nft: {e}")))?;
    let out = child
        .wait_with_output()
        .map_err(|e| KernelError::Nft(format!("waiting for nft: {e}")))?;
    if !out.status.success() {
        return Err(KernelError::Nft(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ));
    }
    Ok(())
}
