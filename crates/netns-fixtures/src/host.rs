//! One test host: a namespace, a scratch directory, and optionally a netctl daemon.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use netctl_plugin_api::client::Client;
use nix::mount::{umount2, MntFlags};
use nix::sched::{setns, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{netctl_bin, run};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// What a command printed and how it ended.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<std::process::Output> for Output {
    fn from(o: std::process::Output) -> Self {
        Self {
            status: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Output {
    pub fn ok(&self) -> bool {
        self.status == 0
    }

    /// Panics with both streams unless the command succeeded; returns stdout.
    #[track_caller]
    pub fn expect_ok(&self) -> String {
        assert!(
            self.ok(),
            "command failed ({}):\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout,
            self.stderr
        );
        self.stdout.clone()
    }

    /// Panics unless the command failed; returns stderr.
    #[track_caller]
    pub fn expect_err(&self) -> String {
        assert!(
            !self.ok(),
            "command unexpectedly succeeded:\nstdout: {}",
            self.stdout
        );
        self.stderr.clone()
    }
}

/// How a test host's daemon is started: each way gives it another mount namespace.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Launch {
    /// The network namespace entered with setns from the test's own process, as a service
    /// manager starts a daemon in the namespace it runs in: the test's mount namespace.
    #[default]
    Setns,
    /// `nsenter --net=/run/netns/NAME netctl daemon …`: the caller's mount namespace too.
    Nsenter,
    /// `ip netns exec NAME netctl daemon …`: a mount namespace of the daemon's own (with a
    /// sysfs of that network namespace), whose mounts die with it.
    IpNetnsExec,
}

pub struct Host {
    launch: Launch,
    /// Flags the daemon is started with, besides the paths.
    daemon_args: Vec<String>,
    netns: String,
    tag: String,
    dir: PathBuf,
    daemon: Option<Child>,
    config: Option<PathBuf>,
    /// The `netctl` the daemon runs as; [`netctl_bin`] unless set.
    binary: PathBuf,
}

impl Host {
    /// `ip netns add nct-TAG; ip -n nct-TAG link set lo up`, and a scratch directory.
    pub fn new() -> Self {
        let tag = format!(
            "{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let netns = format!("nct-{tag}");
        run("ip", &["netns", "add", &netns]).expect_ok();
        let dir = std::env::temp_dir().join(format!("netctl-test-{tag}"));
        let host = Self {
            launch: Launch::default(),
            daemon_args: Vec::new(),
            netns,
            tag,
            dir,
            daemon: None,
            config: None,
            binary: netctl_bin(),
        };
        std::fs::create_dir_all(&host.dir).expect("scratch directory");
        // The daemon never reads the machine's own resolv.conf: no test query leaves the
        // test's namespaces. Without upstreams, names that are not local get SERVFAIL.
        host.set_resolv_conf("");
        host.ip(&["link", "set", "lo", "up"]).expect_ok();
        host
    }

    /// A host with a daemon already serving.
    pub fn with_daemon() -> Self {
        let mut host = Self::new();
        host.start_daemon();
        host
    }

    /// A host whose daemon (and CLI) is the `netctl` at `binary` — another build, to compare.
    pub fn with_daemon_binary(binary: &Path) -> Self {
        let mut host = Self::new();
        host.use_binary(binary);
        host.start_daemon();
        host
    }

    /// Flags for `netctl daemon` from the next start on (`--metrics-addr ADDR`…).
    pub fn set_daemon_args(&mut self, args: &[&str]) {
        self.daemon_args = args.iter().map(|a| a.to_string()).collect();
    }

    /// How the daemon is started from the next start on.
    pub fn set_launch(&mut self, launch: Launch) {
        self.launch = launch;
    }

    /// The daemon (and CLI) is the `netctl` at `binary` from the next start on.
    pub fn use_binary(&mut self, binary: &Path) {
        self.binary = binary.to_path_buf();
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// `/run/netns/NAME`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.netns))
    }

    /// A short unique tag (used in interface names).
    pub fn tag(&self) -> &str {
        &self.tag
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("netctl.sock")
    }

    pub fn exec_root(&self) -> PathBuf {
        self.dir.join("run")
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn client(&self) -> Client {
        Client::new(self.socket())
    }

    /// Writes a daemon.json that the next daemon start uses.
    pub fn set_config(&mut self, json: &str) {
        let path = self.dir.join("daemon.json");
        std::fs::write(&path, json).expect("write daemon.json");
        self.config = Some(path);
    }

    /// Where this host's daemon serves the Docker plugin (a test's dockerd sees this
    /// directory as /run/docker/plugins).
    pub fn docker_plugins(&self) -> PathBuf {
        self.dir.join("docker-plugins")
    }

    /// The daemon's "host resolv.conf" (re-read by a running daemon when it changes).
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    pub fn set_resolv_conf(&self, text: &str) {
        std::fs::write(self.resolv_conf(), text).expect("write resolv.conf");
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(|c| c.id())
    }

    /// Starts `netctl daemon` inside the namespace (entered with setns only, so the daemon's
    /// namespace mounts stay visible to the test) and waits until it answers.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with_env(&[]);
    }

    /// [`Host::start_daemon`] with extra environment variables (crash injection's).
    pub fn start_daemon_with_env(&mut self, env: &[(&str, &str)]) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = File::create(self.dir.join("daemon.log")).expect("log file");
        let mut cmd = match self.launch {
            Launch::Setns => self.command(&self.binary),
            Launch::Nsenter => {
                let mut cmd = Command::new("nsenter");
                cmd.arg(format!("--net={}", self.netns_path().display()))
                    .arg(&self.binary);
                cmd
            }
            Launch::IpNetnsExec => {
                let mut cmd = Command::new("ip");
                cmd.args(["netns", "exec", &self.netns]).arg(&self.binary);
                cmd
            }
        };
        cmd.arg("--socket").arg(self.socket()).arg("daemon");
        cmd.arg("--data-root").arg(self.data_root());
        cmd.arg("--exec-root").arg(self.exec_root());
        cmd.arg("--resolv-conf").arg(self.resolv_conf());
        cmd.arg("--docker-plugin-socket")
            .arg(self.docker_plugins().join("netctl.sock"));
        if let Some(config) = &self.config {
            cmd.arg("--config").arg(config);
        }
        cmd.args(&self.daemon_args);
        // A bench run that wants the daemon's step times asks for them (`NETCTL_DAEMON_LOG=
        // netctl_daemon::controller::txn=debug,info`) and keeps the log (below).
        let filter = std::env::var("NETCTL_DAEMON_LOG").unwrap_or_else(|_| "info".into());
        cmd.env("RUST_LOG", filter)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn netctl daemon");
        self.daemon = Some(child);
        self.wait_ready();
    }

    /// A command that runs inside this host's namespace. Unlike `ip netns exec` it enters the
    /// network namespace only (no mount namespace, no /sys remount): cheaper, and namespace
    /// mounts the process makes stay visible to the test.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        command_in(&self.netns_path(), program)
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        loop {
            if runtime.block_on(self.client().info()).is_ok() {
                return;
            }
            if let Some(status) = self
                .daemon
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.daemon = None;
                panic!("daemon exited with {status}:\n{}", self.daemon_log());
            }
            assert!(
                Instant::now() < deadline,
                "daemon not ready:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("daemon.log")).unwrap_or_default()
    }

    /// Whether the daemon has died on its own (its exit reaped, so that it can be started
    /// again).
    pub fn daemon_died(&mut self) -> bool {
        let exited = self
            .daemon
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_some());
        if exited {
            self.daemon = None;
        }
        exited
    }

    /// Arms crash injection in a daemon started with `NETCTL_CRASH_ARM_ON_SIGNAL` (SIGUSR2)
    /// and waits until it says so.
    pub fn arm_crash(&self) {
        let child = self.daemon.as_ref().expect("a running daemon");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGUSR2).expect("SIGUSR2");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.daemon_log().contains("crash injection armed") {
            assert!(
                Instant::now() < deadline,
                "not armed:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILL, as a crash would.
    pub fn kill_daemon(&mut self) {
        self.signal_daemon(Signal::SIGKILL);
    }

    /// SIGTERM, a clean stop.
    pub fn stop_daemon(&mut self) {
        self.signal_daemon(Signal::SIGTERM);
    }

    /// SIGINT (Ctrl-C), a clean stop too.
    pub fn interrupt_daemon(&mut self) {
        self.signal_daemon(Signal::SIGINT);
    }

    fn signal_daemon(&mut self, signal: Signal) {
        if let Some(mut child) = self.daemon.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), signal);
            let _ = child.wait();
        }
    }

    /// `netctl --socket SOCKET ARGS…`
    pub fn netctl(&self, args: &[&str]) -> Output {
        let out = Command::new(&self.binary)
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run netctl");
        Output::from(out)
    }

    /// `netctl sandbox exec SANDBOX -- ARGS…`
    pub fn sandbox_exec(&self, sandbox: &str, args: &[&str]) -> Output {
        let mut all = vec!["sandbox", "exec", sandbox, "--"];
        all.extend_from_slice(args);
        self.netctl(&all)
    }

    /// True when one ping from the sandbox to `address` is answered.
    pub fn ping(&self, sandbox: &str, address: &str) -> bool {
        self.sandbox_exec(sandbox, &["ping", "-c1", "-W1", address])
            .ok()
    }

    /// `ip -n NETNS ARGS…`
    pub fn ip(&self, args: &[&str]) -> Output {
        ip_in(&self.netns, args)
    }

    /// `ip netns exec NETNS ARGS…`
    pub fn exec(&self, args: &[&str]) -> Output {
        exec_in(&self.netns, args)
    }

    /// `nft list table inet netctl` in this host, or an empty string.
    pub fn nft_table(&self) -> String {
        self.exec(&["nft", "list", "table", "inet", "netctl"])
            .stdout
    }

    /// Unmounts whatever a killed daemon left mounted under this host's directory: sandbox
    /// namespaces, overlay segment namespaces. Each one pins a network namespace (with its
    /// links) that would outlive the test otherwise. Deepest first.
    fn unmount_leftovers(&self) {
        let Ok(mounts) = std::fs::read_to_string("/proc/self/mounts") else {
            return;
        };
        let mut points: Vec<PathBuf> = mounts
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .map(PathBuf::from)
            .filter(|point| point.starts_with(&self.dir) && point != &self.dir)
            .collect();
        points.sort_by_key(|point| std::cmp::Reverse(point.components().count()));
        for point in points {
            let _ = umount2(&point, MntFlags::MNT_DETACH);
        }
    }
}

impl Default for Host {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill_daemon();
        // A failed test's only witness of what the daemon did is its log, which goes with
        // the host's directory: shown here, for CI runs that cannot be repeated.
        if std::thread::panicking() {
            eprintln!(
                "--- daemon log of host {} ---\n{}",
                self.netns,
                log_tail(&self.daemon_log())
            );
        }
        if let Some(keep) = std::env::var_os("NETCTL_KEEP_DAEMON_LOGS") {
            let kept = std::path::Path::new(&keep).join(format!("{}.log", self.netns));
            let _ = std::fs::create_dir_all(&keep);
            let _ = std::fs::copy(self.dir.join("daemon.log"), kept);
        }
        self.unmount_leftovers();
        let _ = run("ip", &["netns", "del", &self.netns]);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The last lines of a daemon log: enough to see what went wrong, not a whole run.
fn log_tail(log: &str) -> String {
    const LINES: usize = 80;
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(LINES)..].join("\n")
}

impl Host {
    /// Everything netctl may have put into the kernel of this host and of its sandboxes, as
    /// text that is equal before and after an operation that should change nothing: links
    /// (with master, MTU, state), bridge ports (with hairpin), addresses, routes, the nft
    /// table, and per sandbox its links, addresses and routes.
    pub fn kernel_snapshot(&self) -> String {
        let mut out = String::new();
        for args in [
            &["-o", "link"][..],
            &["-o", "addr"],
            &["route", "show", "table", "all"],
            &["-6", "route", "show", "table", "all"],
        ] {
            out.push_str(&without_indexes(&self.ip(args).stdout));
        }
        out.push_str(&without_indexes(
            &self.exec(&["bridge", "-d", "link"]).stdout,
        ));
        out.push_str(&sorted_set_elements(&self.nft_table()));
        let mut sandboxes: Vec<PathBuf> = std::fs::read_dir(self.exec_root().join("netns"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        sandboxes.sort();
        for path in sandboxes {
            let net = format!("--net={}", path.display());
            out.push_str(&format!("== {}\n", path.display()));
            for args in [
                &["-o", "link"][..],
                &["-o", "addr"],
                &["route"],
                &["-6", "route"],
            ] {
                let mut all = vec![net.as_str(), "ip"];
                all.extend_from_slice(args);
                out.push_str(&without_indexes(&run("nsenter", &all).stdout));
            }
        }
        out
    }
}

/// Drops interface indexes (`12: eth0`, `eth0@if12`), which a re-created link changes
/// although nothing that matters did, and IPv6 link-local addresses and routes, which the
/// kernel makes by itself and which change state (duplicate address detection) on their own.
pub fn without_indexes(text: &str) -> String {
    text.lines()
        .filter(|line| !line.contains("fe80::"))
        .map(|line| {
            let line = match line.split_once(": ") {
                Some((index, rest)) if index.chars().all(|c| c.is_ascii_digit()) => rest,
                _ => line,
            };
            // `bridge link` prints `port@NAME:` where NAME is the peer's index looked up in the
            // wrong namespace: meaningless.
            let first = line.split_whitespace().next().unwrap_or_default();
            let line = match first.split_once('@') {
                Some((port, _)) if first.ends_with(':') => {
                    line.replacen(first, &format!("{port}:"), 1)
                }
                _ => line.to_string(),
            };
            let mut out = String::new();
            let mut rest = line.as_str();
            while let Some(at) = rest.find("@if") {
                out.push_str(&rest[..at]);
                rest = rest[at + 3..].trim_start_matches(|c: char| c.is_ascii_digit());
            }
            out.push_str(rest);
            out + "\n"
        })
        .collect()
}

/// nft lists the elements of a hash set in an order that depends on the set instance; sort
/// them so that equal tables print equally.
pub fn sorted_set_elements(table: &str) -> String {
    let mut out = String::new();
    let mut lines = table.lines();
    while let Some(line) = lines.next() {
        let Some(start) = line.find("elements = {") else {
            out.push_str(line);
            out.push('\n');
            continue;
        };
        let mut body = line[start + "elements = {".len()..].to_string();
        while !body.contains('}') {
            match lines.next() {
                Some(next) => body.push_str(next),
                None => break,
            }
        }
        let body = body.split('}').next().unwrap_or_default();
        let mut items: Vec<&str> = body
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        items.sort();
        out.push_str(&format!(
            "{}elements = {{ {} }}\n",
            &line[..start],
            items.join(", ")
        ));
    }
    out
}

/// `ip -n NETNS ARGS…` for a namespace named in /run/netns.
pub fn ip_in(netns: &str, args: &[&str]) -> Output {
    let mut all = vec!["-n", netns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// `ip netns exec NETNS ARGS…`
pub fn exec_in(netns: &str, args: &[&str]) -> Output {
    let mut all = vec!["netns", "exec", netns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// A command that runs in the network namespace at `netns` (entered with setns only).
pub fn command_in(netns: &Path, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let ns = File::open(netns).expect("namespace file");
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe; `ns` is moved into the closure, so its fd stays
    // open until the child has exec'd.
    unsafe {
        cmd.pre_exec(move || {
            setns(
                BorrowedFd::borrow_raw(ns.as_raw_fd()),
                CloneFlags::CLONE_NEWNET,
            )
            .map_err(std::io::Error::from)
        });
    }
    cmd
}
