//! Debian's podman 4.3 with its CNI backend, in a test host's namespace (inside a
//! [`RuntimeNamespace`]), with netctl as a CNI plugin. Removed on drop: its containers, then
//! the namespace.

use std::path::Path;

use crate::runtime_ns::RuntimeNamespace;
use crate::{Host, Output};

pub struct Podman {
    ns: RuntimeNamespace,
}

impl Podman {
    /// A podman for `host`, whose networks are conflists written with
    /// [`Podman::add_conflist`], and `localhost/busybox:local` imported.
    pub fn start(host: &Host) -> Self {
        let ns = RuntimeNamespace::start(host, "podman");
        let dir = ns.dir().to_path_buf();
        for sub in ["root", "runroot", "tmp"] {
            std::fs::create_dir_all(dir.join(sub)).expect("podman directory");
        }
        std::fs::write(dir.join("containers.conf"), containers_conf(&dir)).expect("conf");
        std::fs::write(dir.join("storage.conf"), storage_conf(&dir)).expect("storage.conf");
        let podman = Self { ns };
        let tar = crate::busybox::rootfs_tarball(&dir);
        podman
            .podman(&[
                "import",
                "--change",
                r#"CMD ["/bin/sh"]"#,
                &tar.to_string_lossy(),
                "localhost/busybox:local",
            ])
            .expect_ok();
        podman
    }

    pub fn add_conflist(&self, name: &str, conflist: &serde_json::Value) {
        self.ns.add_conflist(name, conflist);
    }

    /// `podman ARGS…` with this podman's roots, backend and runtime.
    pub fn podman(&self, args: &[&str]) -> Output {
        let d = self.ns.dir();
        let out = self
            .ns
            .command("podman")
            .env("CONTAINERS_CONF", d.join("containers.conf"))
            .env("CONTAINERS_STORAGE_CONF", d.join("storage.conf"))
            .arg("--root")
            .arg(d.join("root"))
            .arg("--runroot")
            .arg(d.join("runroot"))
            .arg("--tmpdir")
            .arg(d.join("tmp"))
            .args(["--storage-driver", "vfs", "--cgroup-manager", "cgroupfs"])
            .args(["--events-backend", "file", "--network-backend", "cni"])
            .arg("--network-config-dir")
            .arg(d.join("net.d"))
            .args(["--runtime", "runc"])
            .args(args)
            .output()
            .expect("run podman");
        Output::from(out)
    }

    /// `podman run -d --cgroup-parent … ARGS… localhost/busybox:local COMMAND…`
    pub fn run(&self, args: &[&str], command: &[&str]) -> Output {
        let mut all = vec!["run", "-d", "--cgroup-parent", self.ns.cgroup_parent()];
        all.extend_from_slice(args);
        all.push("localhost/busybox:local");
        all.extend_from_slice(command);
        self.podman(&all)
    }

    /// The container's main process, as the host sees it.
    pub fn pid_of(&self, container: &str) -> u32 {
        let out = self
            .podman(&["inspect", "--format", "{{.State.Pid}}", container])
            .expect_ok();
        out.trim().parse().expect("a pid")
    }

    /// `podman exec CONTAINER ARGS…`
    pub fn exec(&self, container: &str, args: &[&str]) -> Output {
        let mut all = vec!["exec", container];
        all.extend_from_slice(args);
        self.podman(&all)
    }

    pub fn dir(&self) -> &Path {
        self.ns.dir()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.podman(&["rm", "-af", "-t", "0"]);
    }
}

/// containers.conf: the CNI backend with netctl's plugin directory first; no systemd, no
/// journald; runc (crun refuses this machine's hybrid cgroups); ulimits within what the
/// machine grants.
fn containers_conf(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[containers]\n\
         default_ulimits = [\"nofile=20000:20000\", \"nproc=32768:32768\"]\n\
         log_driver = \"k8s-file\"\n\
         [network]\n\
         network_backend = \"cni\"\n\
         cni_plugin_dirs = [\"{d}/cni-bin\", \"/usr/lib/cni\"]\n\
         network_config_dir = \"{d}/net.d\"\n\
         [engine]\n\
         cgroup_manager = \"cgroupfs\"\n\
         events_logger = \"file\"\n\
         tmp_dir = \"{d}/tmp\"\n\
         image_copy_tmp_dir = \"{d}/tmp\"\n\
         runtime = \"runc\"\n"
    )
}

fn storage_conf(dir: &Path) -> String {
    let d = dir.display();
    format!("[storage]\ndriver = \"vfs\"\ngraphroot = \"{d}/root\"\nrunroot = \"{d}/runroot\"\n")
}
