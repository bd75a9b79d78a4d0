//! Shell completions and man pages, both generated from the CLI's own definition (clap's
//! `clap_complete` and `clap_mangen`), so they never fall behind it.

use std::path::Path;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::Cli;

/// `netctl completion bash|zsh|fish|elvish|powershell` on stdout.
pub fn completion(shell: clap_complete::Shell) {
    clap_complete::generate(shell, &mut Cli::command(), "netctl", &mut std::io::stdout());
}

/// `netctl.1` and one page per subcommand (`netctl-network-create.1`) in `dir`.
pub fn man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), dir)
        .with_context(|| format!("writing man pages into {}", dir.display()))?;
    println!("man pages written to {}", dir.display());
    Ok(())
}
