//! Debian's dockerd (20.10) in a test host's namespace: in
//! a private mount namespace of its own with a sysfs for that namespace (plain `ip netns exec`
//! would hide /sys/fs/cgroup, and runc needs it), the vfs storage driver, cgroupfs, and its
//! own data-root, exec-root and socket under the host's scratch directory. Images cannot be
//! pulled here: [`Dockerd::import_busybox`] makes `busybox:local` from Debian's busybox-static.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::{Host, Output};

/// The 20.10 CLI; a newer `docker` elsewhere on PATH negotiates down but refuses some flags.
pub const DOCKER_CLI: &str = "/usr/bin/docker";
/// dockerd 20.10 always writes this, whatever its flags.
const KEY_FILE: &str = "/etc/docker/key.json";

pub struct Dockerd {
    dir: PathBuf,
    /// Where dockerd puts its containers' cgroups (removed when it stops).
    cgroup_parent: String,
    child: Option<Child>,
    /// Whether this dockerd wrote /etc/docker/key.json (then it goes when it stops).
    made_key_file: bool,
}

impl Dockerd {
    /// Starts dockerd in `host`'s namespace and waits until it answers.
    pub fn start(host: &Host) -> Self {
        let dir = host.dir().join("docker");
        std::fs::create_dir_all(&dir).expect("docker directory");
        let script = dir.join("start.sh");
        std::fs::create_dir_all(host.docker_plugins()).expect("plugin directory");
        let cgroup_parent = format!("/netctl-test-{}", host.tag());
        std::fs::write(&script, start_script(&dir, host, &cgroup_parent)).expect("start script");
        let log = std::fs::File::create(dir.join("dockerd.log")).expect("dockerd log");
        let made_key_file = !Path::new(KEY_FILE).exists();
        let child = host
            .command("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh"])
            .arg(&script)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start dockerd (apt-get install docker.io)");
        let mut dockerd = Self {
            dir,
            cgroup_parent,
            child: Some(child),
            made_key_file,
        };
        dockerd.wait_ready();
        dockerd
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.join("docker.sock")
    }

    /// `docker -H unix://SOCKET ARGS…` (the 20.10 CLI).
    pub fn docker(&self, args: &[&str]) -> Output {
        let out = std::process::Command::new(DOCKER_CLI)
            .arg("-H")
            .arg(format!("unix://{}", self.socket().display()))
            .args(args)
            .output()
            .expect("run docker");
        Output::from(out)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default()
    }

    /// `busybox:local`: Debian's busybox-static with its applets, /etc/passwd and /etc/group,
    /// `CMD ["/bin/sh"]`.
    pub fn import_busybox(&self) {
        let tar = crate::busybox::rootfs_tarball(&self.dir);
        self.docker(&[
            "import",
            "--change",
            r#"CMD ["/bin/sh"]"#,
            &tar.to_string_lossy(),
            "busybox:local",
        ])
        .expect_ok();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.docker(&["version"]).ok() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!("dockerd exited with {status}:\n{}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "dockerd not ready:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Removes every container, then stops dockerd (SIGTERM, SIGKILL after 20 s).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let listed = self.docker(&["ps", "-aq"]);
        let ids: Vec<&str> = listed.stdout.split_whitespace().collect();
        if !ids.is_empty() {
            let mut args = vec!["rm", "-f"];
            args.extend(ids);
            self.docker(&args);
        }
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(20);
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = kill(pid, Signal::SIGKILL);
                let _ = child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        if self.made_key_file {
            let _ = std::fs::remove_file(KEY_FILE);
        }
        crate::runtime_ns::remove_cgroups(&self.cgroup_parent);
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs in the private mount namespace: the cgroup tree set aside, a sysfs of this network
/// namespace on /sys, the tree moved back; the host's test resolv.conf as /etc/resolv.conf
/// (so no container is pointed at a server outside the test), a /run of its own (nothing is
/// made in the machine's) with the host's plugin directory as /run/docker/plugins (so this
/// dockerd finds this host's netctl); then dockerd.
fn start_script(dir: &Path, host: &Host, cgroup_parent: &str) -> String {
    let d = dir.display();
    let plugins = host.docker_plugins();
    format!(
        "set -e\n\
         mkdir -p {d}/cgroup {d}/data {d}/run\n\
         mount --rbind /sys/fs/cgroup {d}/cgroup\n\
         umount -l /sys\n\
         mount -t sysfs sysfs /sys\n\
         mount --move {d}/cgroup /sys/fs/cgroup\n\
         mount --bind {resolv} /etc/resolv.conf\n\
         mount -t tmpfs -o mode=755 tmpfs /run\n\
         mkdir -p /run/docker/plugins\n\
         mount --bind {plugins} /run/docker/plugins\n\
         echo '{{}}' > {d}/daemon.json\n\
         exec dockerd --data-root {d}/data --exec-root {d}/run --pidfile {d}/run/dockerd.pid \
         -H unix://{d}/docker.sock --config-file {d}/daemon.json --storage-driver vfs \
         --exec-opt native.cgroupdriver=cgroupfs --cgroup-parent {cgroup_parent} \
         --iptables=true --ip-forward=true --userland-proxy=true\n",
        resolv = host.resolv_conf().display(),
        plugins = plugins.display(),
    )
}
