//! Debian's containerd 1.6 in a test host's namespace (inside a [`RuntimeNamespace`]), driven
//! with `ctr`. ctr's `--cni` reads the first conflist of /etc/cni/net.d and runs plugins from
//! /opt/cni/bin, both the namespace's own. Containers run from a busybox root filesystem
//! (`ctr run --rootfs`): no image to pull. Removed on drop: tasks, containerd (by PID), the
//! namespace.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::runtime_ns::RuntimeNamespace;
use crate::{Host, Output};

pub struct Containerd {
    ns: RuntimeNamespace,
    daemon: Option<Child>,
    rootfs: PathBuf,
}

impl Containerd {
    pub fn start(host: &Host) -> Self {
        let ns = RuntimeNamespace::start(host, "containerd");
        let dir = ns.dir().to_path_buf();
        let config = dir.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\naddress = \"{d}/containerd.sock\"\n",
                d = dir.display()
            ),
        )
        .expect("containerd config");
        crate::busybox::rootfs_tarball(&dir);
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log");
        let daemon = ns
            .command("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start containerd (apt-get install containerd)");
        let containerd = Self {
            rootfs: dir.join("rootfs"),
            ns,
            daemon: Some(daemon),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !containerd.ctr(&["version"]).ok() {
            assert!(
                Instant::now() < deadline,
                "containerd not ready:\n{}",
                std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        containerd
    }

    /// The conflist ctr uses (the only one in its /etc/cni/net.d).
    pub fn set_conflist(&self, conflist: &serde_json::Value) {
        self.ns.add_conflist("10-netctl", conflist);
    }

    /// `ctr --address SOCKET ARGS…`
    pub fn ctr(&self, args: &[&str]) -> Output {
        Output::from(self.ctr_command(args).output().expect("run ctr"))
    }

    fn ctr_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.ns.command("ctr");
        cmd.arg("--address")
            .arg(self.ns.dir().join("containerd.sock"))
            .args(args);
        cmd
    }

    /// `ctr run --rm --cni --rootfs ROOTFS ID COMMAND…` in the foreground, as a child: its DEL
    /// comes when it ends.
    pub fn run_foreground(&self, id: &str, command: &[&str]) -> Child {
        let cgroup = format!("{}/{id}", self.ns.cgroup_parent());
        let mut args = vec!["run", "--rm", "--cni", "--null-io", "--cgroup", &cgroup];
        let rootfs = self.rootfs.display().to_string();
        args.extend(["--rootfs", &rootfs, id]);
        args.extend_from_slice(command);
        self.ctr_command(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("ctr run")
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let listed = self.ctr(&["tasks", "ls", "-q"]);
        for id in listed.stdout.split_whitespace() {
            self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]);
        }
        if let Some(mut daemon) = self.daemon.take() {
            let _ = kill(Pid::from_raw(daemon.id() as i32), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(10);
            while daemon.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = kill(Pid::from_raw(daemon.id() as i32), Signal::SIGKILL);
                    let _ = daemon.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
