//! `netctl`: the daemon (`netctl daemon`) and the CLI that drives it; run by a runtime
//! with `CNI_COMMAND` set, the CNI plugin.

mod cli;
mod cluster;
mod cni;
mod commands;
mod exec;
mod ipam_flags;
mod output;
mod service;

use clap::Parser;

fn main() {
    if std::env::var_os("CNI_COMMAND").is_some() {
        cni::run_plugin();
    }
    let cli = cli::Cli::parse();
    if let Err(e) = commands::run(cli) {
        eprintln!("netctl: {e:#}");
        std::process::exit(1);
    }
}
