//! The kernel's own share of an attach under load: veth pairs made in the daemon's namespace,
//! each with its other end in a namespace of its own and its host end on a bridge and up —
//! what an attach asks of the kernel in the namespace a load fills with links. Timed on the
//! idle namespace and again on the loaded one, so that the kernel's slowdown shows beside the
//! daemon's.

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use netctl_netns_fixtures::Host;

/// Pairs made per measure; `ip -batch` makes them all in one process, so the process's start
/// is paid once.
pub const PAIRS: usize = 100;

/// The time to make [`PAIRS`] veth pairs in `host`'s namespace (`tag` tells the runs apart).
pub fn measure(host: &Host, tag: char) -> anyhow::Result<Duration> {
    let made = Made::new(host, tag);
    let mut setup = format!("link add {} type bridge\nlink set {0} up\n", made.bridge());
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

/// What a measure made; removed when it goes, also when the measure failed half way.
struct Made<'a> {
    host: &'a Host,
    tag: char,
}

impl<'a> Made<'a> {
    fn new(host: &'a Host, tag: char) -> Self {
        Self { host, tag }
    }

    fn bridge(&self) -> String {
        format!("kfbr{}", self.tag)
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
        let _ = self
            .host
            .command("ip")
            .args(["link", "del", &self.bridge()])
            .stderr(Stdio::null())
            .status();
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
