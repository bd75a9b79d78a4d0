//! Namespaces for the peers' sandboxes (`ip netns add`), removed on drop.

use netctl_netns_fixtures::run;

pub struct Sandboxes {
    prefix: String,
    made: usize,
}

impl Sandboxes {
    pub fn new(peer: &str) -> Self {
        Self {
            prefix: format!("ncbench-{}-{peer}", std::process::id()),
            made: 0,
        }
    }

    pub fn name(&self, i: usize) -> String {
        format!("{}-{i}", self.prefix)
    }

    pub fn path(&self, i: usize) -> String {
        format!("/run/netns/{}", self.name(i))
    }

    /// `ip netns add NAME` for sandbox `i`.
    pub fn make(&mut self, i: usize) -> anyhow::Result<()> {
        let out = run("ip", &["netns", "add", &self.name(i)]);
        anyhow::ensure!(out.ok(), "ip netns add: {}", out.stderr);
        self.made = self.made.max(i + 1);
        Ok(())
    }
}

impl Drop for Sandboxes {
    fn drop(&mut self) {
        for i in 0..self.made {
            let _ = run("ip", &["netns", "del", &self.name(i)]);
        }
    }
}
