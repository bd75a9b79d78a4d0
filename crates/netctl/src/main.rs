//! `netctl`: the daemon (`netctl daemon`) and the CLI that drives it; run by a runtime
//! with `CNI_COMMAND` set, the CNI plugin.

mod cli;
mod cluster;
mod cni;
mod commands;
mod docs;
mod each;
mod exec;
mod exit;
mod ipam_flags;
mod port;
mod print;
mod prune;
mod service;
mod version;

use clap::Parser;

fn main() {
    if std::env::var_os("CNI_COMMAND").is_some() {
        cni::run_plugin();
    }
    let cli = cli::Cli::parse();
    if !matches!(cli.command, cli::Command::Daemon(_)) {
        quiet_on_closed_pipe();
    }
    if let Err(e) = commands::run(cli) {
        match e.downcast_ref::<exit::Exit>() {
            Some(exit) => {
                if let Some(message) = &exit.message {
                    eprintln!("netctl: {message}");
                }
                std::process::exit(exit.code);
            }
            None => {
                eprintln!("netctl: {}", one_line(&e));
                std::process::exit(1);
            }
        }
    }
}

/// A reader that goes away (`netctl network ls | head -1`) ends the CLI quietly, as it ends
/// any Unix tool: Rust ignores SIGPIPE, and `println!` would panic on the broken pipe.
fn quiet_on_closed_pipe() {
    use nix::sys::signal::{signal, SigHandler, Signal};
    // SAFETY: restores a signal's default disposition, before any thread exists.
    let _ = unsafe { signal(Signal::SIGPIPE, SigHandler::SigDfl) };
}

/// The error and its causes on one line, each said once. Library errors often put their
/// cause in their own message as well as in `source()` (thiserror's `{source}`), which
/// `{:#}` would print twice.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::one_line;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the daemon: {source} (is it running?)")]
    struct Reach {
        source: std::io::Error,
    }

    #[test]
    fn each_cause_is_said_once() {
        let io = std::io::Error::from_raw_os_error(2);
        let e = anyhow::Error::new(Reach { source: io });
        assert_eq!(
            one_line(&e),
            "cannot reach the daemon: No such file or directory (os error 2) (is it running?)"
        );
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(one_line(&e), "outer: inner");
    }
}
