//! Runs nft transactions: through libnftables in-process when it loads, else through the
//! `nft` binary. Either way nft's own error message comes back (the nftables crate drops it).

use std::process::Stdio;

use nftables::schema::{NfObject, Nftables};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::libnftables;
use crate::DriverError;

/// Applies `objects` as one atomic transaction: all of it, or (on error) none of it.
pub async fn apply(objects: Vec<NfObject<'static>>) -> Result<(), DriverError> {
    let document = Nftables {
        objects: objects.into(),
    };
    let json = serde_json::to_string(&document).map_err(|e| DriverError::Nft(e.to_string()))?;
    nft(json, true).await.map(drop)
}

/// `nft [-j] list table inet TABLE`, or `None` when there is no such table.
pub async fn list_table(table: &str, json: bool) -> Result<Option<String>, DriverError> {
    match nft(format!("list table inet {table}"), json).await {
        Ok(text) => Ok(Some(text)),
        Err(DriverError::Nft(msg)) if msg.contains("No such file") => Ok(None),
        Err(e) => Err(e),
    }
}

async fn nft(commands: String, json: bool) -> Result<String, DriverError> {
    let (commands, in_process) = tokio::task::spawn_blocking(move || {
        let result = libnftables::run(&commands, json);
        (commands, result)
    })
    .await
    .map_err(|e| DriverError::Nft(format!("nft worker: {e}")))?;
    match in_process {
        Some(result) => result.map_err(DriverError::Nft),
        None => nft_binary(&commands, json).await,
    }
}

/// `nft [-j] -f -` with `commands` on stdin.
async fn nft_binary(commands: &str, json: bool) -> Result<String, DriverError> {
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
            DriverError::Nft(format!(
                "cannot run nft (is the nftables package installed?): {e}"
            ))
        })?;
    let mut pipe = child.stdin.take().expect("piped stdin");
    pipe.write_all(commands.as_bytes())
        .await
        .map_err(|e| DriverError::Nft(format!("writing to nft: {e}")))?;
    drop(pipe);
    let output = child
        .wait_with_output()
        .await
        .map_err(|e| DriverError::Nft(format!("waiting for nft: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(DriverError::Nft(stderr.trim().to_string()));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}
