//! nftables: transactions run in-process through libnftables (the `nft` binary where the
//! library is missing), and a monitor of the ruleset. The caller writes the commands, in
//! nft's JSON or text syntax; this module only runs them and returns nft's own messages.

mod libnftables;
mod monitor;
mod runner;

pub use monitor::{watch, Change};
pub use runner::{apply_json, apply_text_here, list_table, run_text};
