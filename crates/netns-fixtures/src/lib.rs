//! Test hosts: a "host" is a network namespace of its own with, when asked, its own netctl
//! daemon, data-root, exec-root and socket, so tests run in parallel without seeing each
//! other. Hosts are joined by veth "underlay" links on documentation address ranges.
//! Everything is removed on drop, also when a test panics; processes are stopped by PID.

mod busybox;
pub mod cni;
pub mod containerd;
mod dnsmasq;
mod dockerd;
pub mod echo;
mod etcd;
mod host;
mod kea;
mod lan;
mod netns_thread;
pub mod podman;
pub mod runtime_ns;
mod underlay;
mod users;

pub use dnsmasq::Dnsmasq;
pub use dockerd::{Dockerd, DOCKER_CLI};
pub use etcd::EtcdCluster;
pub use host::{command_in, sorted_set_elements, without_indexes, Host, Launch, Output};
pub use kea::{Kea, KeaFamily};
pub use lan::{Lan, LAN_INTERFACE};
pub use netns_thread::{in_netns, in_netns_at};
pub use underlay::Underlay;
pub use users::{with_private_etc, PrivateEtc};

use std::path::PathBuf;

/// The `netctl` binary under test: `$NETCTL_BIN`, else the one next to the test executable
/// (`target/<profile>/netctl`).
pub fn netctl_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("NETCTL_BIN") {
        return path.into();
    }
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .ancestors()
        .find(|p| p.join("netctl").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no netctl binary near {}; run `cargo build --bins` first",
                exe.display()
            )
        });
    profile_dir.join("netctl")
}

/// Runs a command and returns its output; panics only if it cannot be started.
pub fn run(program: &str, args: &[&str]) -> Output {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    Output::from(out)
}
