//! A crash at any moment loses nothing and leaks nothing: the daemon reconciles on start.

use std::collections::HashSet;

use netctl_netns_fixtures::{sorted_set_elements, without_indexes, Host, Launch};
use tests::{address, assert_same, full_state, network};

fn populate(host: &Host) {
    for args in [
        &[
            "network",
            "create",
            "web",
            "--subnet",
            "172.30.0.0/24",
            "--ip-range",
            "172.30.0.128/25",
            "-o",
            "mtu=1400",
        ][..],
        &["network", "create", "auto"],
        &[
            "network",
            "create",
            "lab",
            "--internal",
            "--ipv6",
            "--subnet",
            "172.31.0.0/24",
            "--subnet",
            "fd00:1::/64",
        ],
        &["network", "create", "quiet", "-o", "icc=false"],
        &["sandbox", "create", "a", "--network", "web"],
        &[
            "sandbox",
            "create",
            "b",
            "--network",
            "web",
            "--ip",
            "172.30.0.20",
        ],
        &["network", "connect", "auto", "b"],
        &["network", "connect", "lab", "b"],
        &["sandbox", "create", "q", "--network", "quiet"],
        &["sandbox", "create", "h", "--network", "host"],
        &["sandbox", "create", "n", "--network", "none"],
        &["sandbox", "create", "bare"],
    ] {
        host.netctl(args).expect_ok();
    }
}

#[test]
fn kill_and_restart_changes_nothing() {
    let mut host = Host::with_daemon();
    populate(&host);
    let before = full_state(&host);
    host.kill_daemon();
    host.start_daemon();
    let after = full_state(&host);
    assert_same(&before, &after, "kill -9 and restart");
    assert!(
        !host.daemon_log().contains("removing unwanted"),
        "nothing was leaked:\n{}",
        host.daemon_log()
    );

    assert!(host.ping("a", "172.30.0.20"));
    // Allocations were rebuilt: the next sandbox gets a fresh address, not a taken one.
    host.netctl(&["sandbox", "create", "c", "--network", "web"])
        .expect_ok();
    let taken: HashSet<_> = ["a", "c"]
        .iter()
        .map(|s| address(&host, s, "web"))
        .collect();
    assert_eq!(taken.len(), 2);
    assert!(host.ping("c", &address(&host, "a", "web")));
    // A clean stop keeps everything too.
    host.stop_daemon();
    host.start_daemon();
    assert!(host.ping("c", "172.30.0.20"));
}

#[test]
fn restart_restores_what_went_missing_and_removes_leftovers() {
    let mut host = Host::with_daemon();
    web_with_a_and_b(&host);
    let bridge = network(&host, "web")["Bridge"]
        .as_str()
        .unwrap()
        .to_string();
    let before = full_state(&host);
    host.kill_daemon();

    // Behind the daemon's back: its bridge and table vanish, a sandbox namespace is lost,
    // and objects with netctl's names that nobody wants appear.
    host.ip(&["link", "del", &bridge]).expect_ok();
    host.exec(&["nft", "delete", "table", "inet", "netctl"])
        .expect_ok();
    host.ip(&["link", "add", "ncb000000000000", "type", "bridge"])
        .expect_ok();
    host.ip(&[
        "link",
        "add",
        "ncv000000000000",
        "type",
        "veth",
        "peer",
        "name",
        "leak-peer",
    ])
    .expect_ok();
    let stray = host.exec_root().join("netns").join("000000000000");
    std::fs::write(&stray, b"").unwrap();

    host.start_daemon();
    let after = full_state(&host);
    assert_same(&before, &after, "restart after tampering");
    assert!(!stray.exists());
    assert!(host.ping("a", &address(&host, "b", "web")));
    assert!(host.ping("a", "172.30.0.1"));
}

#[test]
fn a_sandbox_namespace_lost_while_down_is_recreated_with_its_interfaces() {
    let mut host = Host::with_daemon();
    web_with_a_and_b(&host);
    lose_namespace_of_a_while_down(&mut host);
    host.start_daemon();
    a_and_b_reach_each_other(&host);
}

#[test]
fn a_stranger_that_took_a_lost_namespace_inode_is_not_taken_for_the_sandbox() {
    let mut host = Host::with_daemon();
    web_with_a_and_b(&host);
    let lost = lose_namespace_of_a_while_down(&mut host);
    // The kernel gives a freed namespace's inode to the next namespace made: a stranger's
    // (another container's) may carry it by the time the daemon starts.
    let stranger = NamespaceHolder::with_inode(lost);
    host.start_daemon();
    a_and_b_reach_each_other(&host);
    assert_eq!(
        stranger.links(),
        1,
        "the stranger's namespace got interfaces: it was taken for the sandbox's"
    );
}

/// Stops the daemon and loses sandbox `a`'s namespace, as after a reboot (with it goes the
/// veth); returns the inode the namespace had.
fn lose_namespace_of_a_while_down(host: &mut Host) -> u64 {
    let key = tests::sandbox(host, "a")["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    let inode = inode_of(&key);
    host.kill_daemon();
    nix_umount(&key);
    inode
}

fn a_and_b_reach_each_other(host: &Host) {
    assert!(host.ping("a", &address(host, "b", "web")));
    assert!(host.ping("b", &address(host, "a", "web")));
}

fn inode_of(path: &str) -> u64 {
    std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(path).unwrap())
}

/// A process in a network namespace of its own (`unshare --net sleep`), killed by PID on
/// drop.
struct NamespaceHolder(std::process::Child);

impl NamespaceHolder {
    /// A holder whose namespace has inode `wanted`: holders are made until one gets it (the
    /// namespace that had it may take a moment to be freed), for at most 20 seconds.
    fn with_inode(wanted: u64) -> Self {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            let holder = Self::start();
            if holder.inode() == wanted {
                return holder;
            }
            drop(holder);
            assert!(
                std::time::Instant::now() < deadline,
                "no new namespace got the freed inode {wanted}"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    fn start() -> Self {
        let child = std::process::Command::new("unshare")
            .args(["--net", "sleep", "600"])
            .spawn()
            .expect("unshare");
        let holder = Self(child);
        let own = inode_of("/proc/self/ns/net");
        // Until unshare has run, the child is in this process's namespace.
        while holder.inode() == own {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        holder
    }

    fn ns_path(&self) -> String {
        format!("/proc/{}/ns/net", self.0.id())
    }

    fn inode(&self) -> u64 {
        inode_of(&self.ns_path())
    }

    /// How many links its namespace has (a fresh one: loopback alone).
    fn links(&self) -> usize {
        let pid = self.0.id().to_string();
        netctl_netns_fixtures::run("nsenter", &["-t", &pid, "-n", "ip", "-o", "link"])
            .stdout
            .lines()
            .count()
    }
}

impl Drop for NamespaceHolder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Network `web` (172.30.0.0/24) with sandboxes `a` and `b` on it.
fn web_with_a_and_b(host: &Host) {
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    for name in ["a", "b"] {
        host.netctl(&["sandbox", "create", name, "--network", "web"])
            .expect_ok();
    }
}

fn nix_umount(path: &str) {
    netctl_netns_fixtures::run("umount", &["-l", path]).expect_ok();
    std::fs::remove_file(path).unwrap();
    // Give the kernel a moment to destroy the namespace and its veth.
    std::thread::sleep(std::time::Duration::from_millis(200));
}

#[test]
fn a_clean_stop_removes_the_sockets_and_leaves_the_networks_working() {
    for interrupt in [false, true] {
        let mut host = Host::with_daemon();
        populate(&host);
        host.netctl(&["network", "connect", "web", "q", "-p", "8080:80"])
            .expect_ok();
        let plugin = host.docker_plugins().join("netctl.sock");
        assert!(plugin.exists() && host.socket().exists());
        let netns = tests::netns_of(&host, "a");
        let before = full_state(&host);
        let kernel_before = host.kernel_snapshot();
        let gateway = tests::sandbox(&host, "a")["NetworkSettings"]["Networks"]["web"]["Gateway"]
            .as_str()
            .unwrap()
            .to_string();
        if interrupt {
            host.interrupt_daemon();
        } else {
            host.stop_daemon();
        }
        assert!(!host.socket().exists(), "the API socket is gone");
        assert!(
            !plugin.exists(),
            "dockerd is not left trying a dead plugin socket"
        );
        assert!(
            host.daemon_log().contains("stopping"),
            "{}",
            host.daemon_log()
        );
        // Everything the kernel had is still there and carries traffic.
        assert_same(
            &kernel_before,
            &host.kernel_snapshot(),
            "after a clean stop",
        );
        let net = format!("--net={netns}");
        assert!(
            netctl_netns_fixtures::run("nsenter", &[&net, "ping", "-c1", "-W1", &gateway]).ok(),
            "a reaches its gateway with the daemon stopped"
        );
        host.start_daemon();
        assert_same(&before, &full_state(&host), "after the restart");
    }
}

/// A process started inside a sandbox (`netctl sandbox exec NAME -- sleep 600`), which holds
/// its namespace; killed when dropped.
struct Inside(std::process::Child);

impl Inside {
    fn start(host: &Host, sandbox: &str) -> Self {
        let child = std::process::Command::new(netctl_netns_fixtures::netctl_bin())
            .arg("--socket")
            .arg(host.socket())
            .args(["sandbox", "exec", sandbox, "--", "sleep", "600"])
            .spawn()
            .expect("sandbox exec");
        let inside = Self(child);
        tests::eventually(
            "the process is in the sandbox",
            std::time::Duration::from_secs(5),
            || inside.netns() == sandbox_netns(host, sandbox),
        );
        inside
    }

    /// The network namespace the process is in (`net:[INODE]`).
    fn netns(&self) -> String {
        std::fs::read_link(format!("/proc/{}/ns/net", self.0.id()))
            .map(|p| p.display().to_string())
            .unwrap_or_default()
    }
}

impl Drop for Inside {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The network namespace `netctl sandbox exec` enters (`net:[INODE]`).
fn sandbox_netns(host: &Host, sandbox: &str) -> String {
    host.sandbox_exec(sandbox, &["readlink", "/proc/self/ns/net"])
        .stdout
        .trim()
        .to_string()
}

/// What each sandbox holds, seen from inside through `netctl sandbox exec` (the only way
/// that works however the daemon was started): links with their MACs, addresses, routes,
/// resolv.conf and hosts; and the host's firewall table and the sandboxes' ports.
fn sandboxes_seen(host: &Host, sandboxes: &[&str]) -> String {
    let mut out = String::new();
    for sandbox in sandboxes {
        for args in [
            &["ip", "-o", "link"][..],
            &["ip", "-o", "addr"],
            &["ip", "route"],
            &["ip", "-6", "route"],
            &["cat", "/etc/resolv.conf", "/etc/hosts"],
        ] {
            let seen = host.sandbox_exec(sandbox, args).expect_ok();
            out.push_str(&format!("{sandbox}: {}", without_indexes(&seen)));
        }
        out.push_str(&host.netctl(&["port", sandbox]).expect_ok());
    }
    out + &sorted_set_elements(&host.nft_table())
}

/// README's own way of starting the daemon and the other two: over kill -9 and clean stops,
/// every sandbox keeps its links, addresses, MACs, routes, ports and names. A sandbox with a
/// process inside is found again (not split in two); those with none whose mount went with
/// the daemon's mount namespace (`ip netns exec`) are made anew, at once, although the
/// kernel is still tearing the old namespace down.
#[test]
fn restart_keeps_every_sandbox_however_the_daemon_was_started() {
    for launch in [Launch::Nsenter, Launch::IpNetnsExec, Launch::Setns] {
        let mut host = Host::new();
        host.set_launch(launch);
        host.start_daemon();
        web_with_a_and_b(&host);
        host.netctl(&[
            "sandbox",
            "create",
            "c",
            "--network",
            "web",
            "--alias",
            "api",
            "-p",
            "8080:80",
        ])
        .expect_ok();
        let inside = Inside::start(&host, "a");
        let before = sandboxes_seen(&host, &["a", "b", "c"]);
        let (a, b) = (address(&host, "a", "web"), address(&host, "b", "web"));
        for round in 0..4 {
            let context = format!("{launch:?}, restart {round}");
            if round % 2 == 0 {
                host.kill_daemon();
            } else {
                host.stop_daemon();
            }
            host.start_daemon();
            assert_same(&before, &sandboxes_seen(&host, &["a", "b", "c"]), &context);
            assert_eq!(
                inside.netns(),
                sandbox_netns(&host, "a"),
                "{context}: a split"
            );
            assert!(host.ping("a", &b), "{context}: a reaches b");
            assert!(host.ping("b", &a), "{context}: b reaches a");
            let api = tests::dig(&host, "b", &["api"]);
            assert_eq!(api.answers, [address(&host, "c", "web")], "{context}");
            assert!(
                !host.daemon_log().contains("cannot restore"),
                "{context}:\n{}",
                host.daemon_log()
            );
        }
    }
}

/// A running daemon's sandbox that lost its mount and an interface behind the daemon's
/// back: `gc --dry-run` says so and changes nothing, `gc` makes it whole again.
#[test]
fn gc_reports_and_repairs_a_sandbox_that_lost_its_mount_or_interface() {
    let host = Host::with_daemon();
    web_with_a_and_b(&host);
    let before = sandboxes_seen(&host, &["a", "b"]);
    let key = tests::netns_of(&host, "a");
    let inode = std::fs::metadata(&key).map(|m| std::os::unix::fs::MetadataExt::ino(&m));
    netctl_netns_fixtures::run("umount", &["-l", &key]).expect_ok();
    let b_key = tests::netns_of(&host, "b");
    let nsenter = format!("--net={b_key}");
    netctl_netns_fixtures::run("nsenter", &[&nsenter, "ip", "link", "del", "eth0"]).expect_ok();

    let dry = host.netctl(&["gc", "--dry-run"]).expect_ok();
    assert!(
        dry.contains("sandbox a: would repair: its namespace is not bound"),
        "{dry}"
    );
    assert!(
        dry.contains("sandbox b: would repair: interface eth0 is missing"),
        "{dry}"
    );
    assert!(
        !host.ping("b", &address(&host, "a", "web")),
        "nothing was repaired"
    );

    let done = host.netctl(&["gc"]).expect_ok();
    assert!(done.contains("sandbox a: repaired"), "{done}");
    assert!(done.contains("sandbox b: repaired"), "{done}");
    assert_eq!(
        std::fs::metadata(&key)
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .ok(),
        inode.ok(),
        "a's own namespace is bound again, not a new one"
    );
    assert_same(&before, &sandboxes_seen(&host, &["a", "b"]), "after gc");
    assert!(host.ping("b", &address(&host, "a", "web")));
    let again = host.netctl(&["gc", "--dry-run"]).expect_ok();
    assert!(!again.contains("sandbox"), "{again}");
}
