//! `netctl`: the daemon (`netctl daemon`) and the CLI that drives it.

mod cli;
mod cluster;
mod commands;
mod exec;
mod ipam_flags;
mod output;
mod service;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    if let Err(e) = commands::run(cli) {
        eprintln!("netctl: {e:#}");
        std::process::exit(1);
    }
}
