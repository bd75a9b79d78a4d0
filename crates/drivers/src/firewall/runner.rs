//! Runs `nft -j -f -` and keeps nft's own error message (the nftables crate drops stderr).

use std::process::Stdio;

use nftables::schema::{NfObject, Nftables};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::DriverError;

/// Applies `objects` as one atomic transaction: all of it, or (on error) none of it.
pub async fn apply(objects: Vec<NfObject<'static>>) -> Result<(), DriverError> {
    let document = Nftables {
        objects: objects.into(),
    };
    let json = serde_json::to_vec(&document).map_err(|e| DriverError::Nft(e.to_string()))?;
    run(&["-j", "-f", "-"], Some(&json)).await.map(|_| ())
}

/// `nft ARGS…` with `stdin`; returns stdout, or nft's stderr as the error.
pub async fn run(args: &[&str], stdin: Option<&[u8]>) -> Result<String, DriverError> {
    let mut child = Command::new("nft")
        .args(args)
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
    if let Some(input) = stdin {
        pipe.write_all(input)
            .await
            .map_err(|e| DriverError::Nft(format!("writing to nft: {e}")))?;
    }
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
