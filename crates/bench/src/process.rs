//! Measuring processes: how much memory one holds, how long a command takes.

use std::time::Duration;

use anyhow::{bail, Context};

/// RSS of a process, from /proc.
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Runs `cmd` with `input` on stdin; returns how long it took, or its stderr as the error.
pub fn timed(cmd: std::process::Command, input: &str) -> anyhow::Result<Duration> {
    timed_output(cmd, input).map(|(elapsed, _)| elapsed)
}

/// As [`timed`], also returning what the command printed.
pub fn timed_output(
    mut cmd: std::process::Command,
    input: &str,
) -> anyhow::Result<(Duration, String)> {
    use std::io::Write;
    use std::process::Stdio;
    let start = std::time::Instant::now();
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot run {:?}", cmd.get_program()))?;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input.as_bytes())?;
    let out = child.wait_with_output()?;
    let elapsed = start.elapsed();
    if !out.status.success() {
        bail!(
            "{:?} failed: {}{}",
            cmd.get_program(),
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
    }
    Ok((elapsed, String::from_utf8_lossy(&out.stdout).into_owned()))
}
