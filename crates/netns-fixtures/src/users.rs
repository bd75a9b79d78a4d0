//! Unix users and groups made by a test, in a private copy of /etc that only the test's own
//! thread (and the processes it starts) see: the host's user database is never touched.

use std::path::Path;

use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};

use crate::run;

/// A mount namespace whose /etc is a private copy, for `useradd` and `groupadd`.
pub struct PrivateEtc {
    /// Where the copy lives, removed when the test ends.
    copy: std::path::PathBuf,
}

impl Drop for PrivateEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.copy);
    }
}

impl PrivateEtc {
    /// `groupadd -g GID NAME`
    pub fn groupadd(&self, name: &str, gid: u32) {
        run("groupadd", &["-g", &gid.to_string(), name]).expect_ok();
    }

    /// `useradd -M -u UID -U [-G GROUPS] NAME`: a user without a home, with a group of its
    /// own name and id.
    pub fn useradd(&self, name: &str, uid: u32, groups: &[&str]) {
        let uid = uid.to_string();
        let mut args = vec!["-M", "-u", &uid, "-U", "-s", "/usr/sbin/nologin"];
        let groups = groups.join(",");
        if !groups.is_empty() {
            args.extend(["-G", &groups]);
        }
        args.push(name);
        run("useradd", &args).expect_ok();
    }
}

/// Runs `body` on a thread of its own in a new mount namespace with a private /etc. Mounts
/// made there never reach the host's namespace (it is a slave of it); everything the
/// thread starts (a daemon, the CLI) shares its view.
pub fn with_private_etc<T: Send + 'static>(
    body: impl FnOnce(&PrivateEtc) -> T + Send + 'static,
) -> T {
    std::thread::spawn(move || {
        // CLONE_NEWNS implies CLONE_FS: only this thread moves.
        unshare(CloneFlags::CLONE_NEWNS).expect("unshare the mount namespace");
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .expect("make / a slave");
        let copy = std::env::temp_dir().join(format!(
            "netctl-test-etc-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let private = PrivateEtc { copy };
        let etc = private.copy.join("etc");
        std::fs::create_dir_all(&private.copy).expect("scratch directory");
        run("cp", &["-a", "/etc", etc.to_str().expect("utf-8 path")]).expect_ok();
        bind(&etc, Path::new("/etc"));
        body(&private)
    })
    .join()
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

fn bind(from: &Path, to: &Path) {
    mount(Some(from), to, None::<&str>, MsFlags::MS_BIND, None::<&str>)
        .unwrap_or_else(|e| panic!("bind {} on {}: {e}", from.display(), to.display()));
}
