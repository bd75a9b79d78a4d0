//! A peer that is a program exec'd per attach and detach (netavark, the CNI plugins), with
//! sandboxes made by `ip netns add` in a fresh test host.

use std::process::Command;
use std::time::Duration;

use netctl_netns_fixtures::Host;

use super::sandboxes::Sandboxes;
use super::Peer;
use crate::process::timed;

/// What differs between exec'd peers: how to attach and detach sandbox `i`.
pub trait Plugin {
    /// The network's gateway address.
    const GATEWAY: &'static str;
    /// The command (run in `host`'s namespace) and its standard input.
    fn command(&self, host: &Host, attach: bool, i: usize, netns: &str) -> (Command, String);
}

pub struct ExecPeer<P> {
    host: Host,
    sandboxes: Sandboxes,
    plugin: P,
}

impl<P: Plugin> ExecPeer<P> {
    pub fn new(name: &str, host: Host, plugin: P) -> Self {
        Self {
            host,
            sandboxes: Sandboxes::new(name),
            plugin,
        }
    }

    fn run(&self, attach: bool, i: usize) -> anyhow::Result<Duration> {
        let (cmd, input) = self
            .plugin
            .command(&self.host, attach, i, &self.sandboxes.path(i));
        timed(cmd, &input)
    }
}

impl<P: Plugin> Peer for ExecPeer<P> {
    fn make_sandbox(&mut self, i: usize) -> anyhow::Result<()> {
        self.sandboxes.make(i)
    }

    fn attach(&mut self, i: usize) -> anyhow::Result<Duration> {
        self.run(true, i)
    }

    fn detach(&mut self, i: usize) -> anyhow::Result<Duration> {
        self.run(false, i)
    }

    fn netns_path(&self, i: usize) -> String {
        self.sandboxes.path(i)
    }

    fn gateway(&self) -> &'static str {
        P::GATEWAY
    }

    fn host(&self) -> &Host {
        &self.host
    }

    fn rss_mib(&self) -> Option<f64> {
        None
    }
}
