//! A private mount namespace inside a test host's network namespace, for container runtimes
//! (podman, containerd) that write to many host paths no flag moves and keep each
//! container's namespace as a bind mount later calls must see. A holder process keeps the
//! namespace alive; tmpfs cover the host directories they write; conflists go to a
//! directory of the test's, seen as /etc/cni/net.d; netctl (the binary under test) is the
//! CNI plugin `netctl` in /opt/cni/bin and in `DIR/cni-bin`. Removed on drop: the holder
//! (by PID) and the cgroups made under the test's cgroup parent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::Host;

/// Host directories podman, runc, conmon, libcni and containerd write to, each covered by a
/// tmpfs of the holder's own (mounting over them, never creating them on the host): /run
/// (namespaces, runc's and containerd's state), /var/lib (libcni's cache, containers'
/// storage), /var/cache (image locks), /dev/shm (libpod's locks), /opt (ctr's CNI binaries).
const PRIVATE_DIRS: [&str; 5] = ["/run", "/var/lib", "/var/cache", "/dev/shm", "/opt"];

pub struct RuntimeNamespace {
    dir: PathBuf,
    holder: Option<Child>,
    cgroup_parent: String,
}

impl RuntimeNamespace {
    /// Starts the holder in `host`'s network namespace; `dir` is the runtime's scratch
    /// directory (under the host's).
    pub fn start(host: &Host, name: &str) -> Self {
        let dir = host.dir().join(name);
        for sub in ["", "cni-bin", "net.d"] {
            std::fs::create_dir_all(dir.join(sub)).expect("runtime directory");
        }
        let _ = std::os::unix::fs::symlink(crate::netctl_bin(), dir.join("cni-bin/netctl"));
        std::fs::write(dir.join("holder.sh"), holder_script(&dir, host)).expect("script");
        let log = std::fs::File::create(dir.join("holder.log")).expect("log");
        let holder = host
            .command("unshare")
            .args(["--mount", "--propagation", "private", "--", "sh"])
            .arg(dir.join("holder.sh"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start the runtime's namespace holder");
        let ns = Self {
            dir,
            holder: Some(holder),
            cgroup_parent: format!("/netctl-test-{}-{name}", host.tag()),
        };
        ns.wait_ready();
        ns
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.dir.join("ready").exists() {
            assert!(
                Instant::now() < deadline,
                "the runtime's namespace is not ready:\n{}",
                std::fs::read_to_string(self.dir.join("holder.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the runtime's containers' cgroups go (removed on drop).
    pub fn cgroup_parent(&self) -> &str {
        &self.cgroup_parent
    }

    /// Writes `NAME.conflist` to the runtime's config directory (/etc/cni/net.d inside).
    pub fn add_conflist(&self, name: &str, conflist: &serde_json::Value) {
        std::fs::write(
            self.dir.join("net.d").join(format!("{name}.conflist")),
            serde_json::to_string_pretty(conflist).expect("JSON"),
        )
        .expect("conflist");
    }

    /// A command entering the namespace (network and mount).
    pub fn command(&self, program: &str) -> Command {
        let pid = self.holder.as_ref().expect("holder running").id();
        let mut cmd = Command::new("nsenter");
        cmd.arg("-t")
            .arg(pid.to_string())
            .args(["-n", "-m", "--"])
            .arg(program);
        cmd
    }
}

impl Drop for RuntimeNamespace {
    fn drop(&mut self) {
        if let Some(mut holder) = self.holder.take() {
            let _ = kill(Pid::from_raw(holder.id() as i32), Signal::SIGKILL);
            let _ = holder.wait();
        }
        remove_cgroups(&self.cgroup_parent);
    }
}

/// Removes the cgroups made under `parent` in every hierarchy, deepest first (rmdir only:
/// a cgroup that still has processes stays, and says so in the test's output).
pub(crate) fn remove_cgroups(parent: &str) {
    let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for hierarchy in hierarchies.flatten() {
        let root = hierarchy.path().join(parent.trim_start_matches('/'));
        let mut dirs = Vec::new();
        collect_dirs(&root, &mut dirs);
        dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
        for dir in dirs {
            // A container's last processes may take a moment to leave it.
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while let Err(e) = std::fs::remove_dir(&dir) {
                if e.kind() == std::io::ErrorKind::NotFound {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    eprintln!("cannot remove cgroup {}: {e}", dir.display());
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

fn collect_dirs(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    out.push(dir.to_path_buf());
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            collect_dirs(&entry.path(), out);
        }
    }
}

/// Runs in the holder's private mount namespace: the cgroup tree set aside, a sysfs of this
/// network namespace on /sys, the tree moved back; tmpfs over the host directories podman
/// writes; our containers.conf over the system one (conmon's cleanup process reads only
/// that) and our conflists over /etc/cni/net.d (ctr reads only that); the host's test
/// resolv.conf; then it sleeps, keeping the namespace.
fn holder_script(dir: &Path, host: &Host) -> String {
    let d = dir.display();
    let mut script = format!(
        "set -e\n\
         mkdir -p {d}/cgroup\n\
         mount --rbind /sys/fs/cgroup {d}/cgroup\n\
         umount -l /sys\n\
         mount -t sysfs sysfs /sys\n\
         mount --move {d}/cgroup /sys/fs/cgroup\n\
         mount --bind {resolv} /etc/resolv.conf\n\
         touch {d}/containers.conf\n\
         mount --bind {d}/containers.conf /usr/share/containers/containers.conf\n\
         mount --bind {d}/net.d /etc/cni/net.d\n",
        resolv = host.resolv_conf().display(),
    );
    for path in PRIVATE_DIRS {
        script.push_str(&format!("mount -t tmpfs -o mode=755 tmpfs {path}\n"));
    }
    script.push_str(&format!(
        "mkdir -p /run/netns /opt/cni/bin\nln -s {d}/cni-bin/netctl /opt/cni/bin/netctl\n\
         touch {d}/ready\nexec sleep infinity\n"
    ));
    script
}
