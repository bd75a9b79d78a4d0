//! The kernel's own share of an attach under load: veth pairs made in the daemon's namespace,
//! each with its other end in a namespace of its own and its host end on a bridge and up —
//! what an attach asks of the kernel in the namespace a load fills with links. Timed on the
//! idle namespace and again on the loaded one, so that the kernel's slowdown shows beside the
//! daemon's: on a bridge of their own (what a namespace of many links costs), and on the
//! daemon's busiest bridge (what a bridge of many ports costs: the new port's multicast —
//! IPv6 link-local, MLD — reaches every port, and every sandbox behind it).

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use netctl_netns_fixtures::Host;

/// Pairs made per measure; `ip -batch` makes them all in one process, so the process's start
/// is paid once.
pub const PAIRS: usize = 100;

/// The time to make [`PAIRS`] veth pairs in `host`'s namespace (`tag` tells the runs apart),
/// their host ends on a bridge made for them or, with `on`, on that bridge of the daemon's.
pub fn measure(host: &Host, tag: char, on: Option<&str>) -> anyhow::Result<Duration> {
    let made = Made::new(host, tag, on);
    let mut setup = match on {
        None => format!("link add {} type bridge\nlink set {0} up\n", made.bridge()),
        Some(_) => String::new(),
    };
    for i in 0..PAIRS {
        setup += &format!("netns add {}\n", made.namespace(i));
    }
    batch(host, &setup)?;
    let mut pairs = String::new();
    for i in 0..PAIRS {
        let end = made.host_end(i);
        pairs += &format!(
            "link add {end} type veth peer name eth0 netns {}\nlink set {end} master {}\nlink set {end} up\n",
            made.namespace(i),
            made.bridge()
        );
    }
    let started = Instant::now();
    batch(host, &pairs)?;
    Ok(started.elapsed())
}

fn batch(host: &Host, commands: &str) -> anyhow::Result<()> {
    let mut ip = host
        .command("ip")
        .args(["-batch", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    ip.stdin
        .take()
        .expect("stdin is piped")
        .write_all(commands.as_bytes())?;
    let out = ip.wait_with_output()?;
    anyhow::ensure!(
        out.status.success(),
        "ip -batch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(())
}

/// A Linux bridge takes at most this many ports ("Exchange full" after).
const BRIDGE_PORTS: usize = 1023;

/// The daemon's bridge with the most ports in `host`'s namespace that still has room for
/// [`PAIRS`] more.
pub fn busiest_bridge(host: &Host) -> anyhow::Result<String> {
    let out = host.command("ip").args(["-o", "link", "show"]).output()?;
    let mut ports: std::collections::HashMap<String, usize> = Default::default();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut words = line.split_whitespace();
        if let Some(master) = words.by_ref().skip_while(|w| *w != "master").nth(1) {
            *ports.entry(master.to_string()).or_default() += 1;
        }
    }
    ports
        .into_iter()
        .filter(|(_, n)| n + PAIRS <= BRIDGE_PORTS)
        .max_by_key(|(_, n)| *n)
        .map(|(bridge, _)| bridge)
        .ok_or_else(|| anyhow::anyhow!("no bridge with room for {PAIRS} more ports"))
}

/// What a measure made; removed when it goes, also when the measure failed half way.
struct Made<'a> {
    host: &'a Host,
    tag: char,
    /// The daemon's bridge the pairs go on (left as it is), if not one of their own.
    daemon_bridge: Option<&'a str>,
}

impl<'a> Made<'a> {
    fn new(host: &'a Host, tag: char, daemon_bridge: Option<&'a str>) -> Self {
        Self {
            host,
            tag,
            daemon_bridge,
        }
    }

    fn bridge(&self) -> String {
        match self.daemon_bridge {
            Some(bridge) => bridge.to_string(),
            None => format!("kfbr{}", self.tag),
        }
    }

    fn host_end(&self, i: usize) -> String {
        format!("kf{}{i}", self.tag)
    }

    /// Names under /run/netns are the machine's: the bench's pid keeps them apart.
    fn namespace(&self, i: usize) -> String {
        format!("netctl-kf-{}-{}{i}", std::process::id(), self.tag)
    }
}

impl Drop for Made<'_> {
    fn drop(&mut self) {
        // A namespace's end goes with it, and the host's end with its peer.
        for i in 0..PAIRS {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.namespace(i)])
                .stderr(Stdio::null())
                .status();
        }
        if self.daemon_bridge.is_none() {
            let _ = self
                .host
                .command("ip")
                .args(["link", "del", &self.bridge()])
                .stderr(Stdio::null())
                .status();
        }
        // The kernel takes namespaces down in the background: waited for, so that it does
        // not slow the phase measured next.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while self.host_ends_left() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Made<'_> {
    fn host_ends_left(&self) -> bool {
        let prefix = format!(": kf{}", self.tag);
        self.host
            .command("ip")
            .args(["-o", "link", "show"])
            .output()
            .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains(&prefix))
    }
}
