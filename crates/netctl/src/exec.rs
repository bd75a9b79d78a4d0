//! `netctl sandbox exec`: enter the sandbox's network namespace, give the command the
//! sandbox's hostname in a UTS namespace of its own and the sandbox's resolv.conf and hosts
//! file as /etc/resolv.conf and /etc/hosts in a mount namespace of its own (as `ip netns
//! exec` does with /etc/netns/NAME/), then replace this process.

use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use nix::mount::{mount, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

/// Opens the namespace file; when the daemon runs in a mount namespace of its own (as under
/// `ip netns exec`), its bind mounts are reached through its `/proc/PID/root`.
fn open_netns(path: &Path, daemon_pid: u32) -> anyhow::Result<File> {
    if let Some(file) = File::open(path).ok().filter(is_netns) {
        return Ok(file);
    }
    let relative = path.strip_prefix("/").unwrap_or(path);
    let via_daemon = PathBuf::from(format!("/proc/{daemon_pid}/root")).join(relative);
    File::open(&via_daemon)
        .ok()
        .filter(is_netns)
        .with_context(|| {
            format!(
                "cannot open the sandbox's network namespace {}",
                path.display()
            )
        })
}

/// The sandbox's files shown in place of the host's, to this process only.
pub struct SandboxFiles<'a> {
    pub resolv_conf: &'a Path,
    /// Absent for a sandbox made by a daemon that wrote none.
    pub hosts: Option<&'a Path>,
}

/// Shows the sandbox's files over /etc's. A mount's source must be in the caller's mount
/// namespace, so each file is named by path after the unshare (a plain file, unlike the
/// namespace mounts, is visible even when the daemon runs in a mount namespace of its own).
fn mount_files(files: &SandboxFiles) -> anyhow::Result<()> {
    unshare(CloneFlags::CLONE_NEWNS).context("creating a mount namespace")?;
    // Keep our mounts from propagating back to the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_SLAVE,
        None::<&str>,
    )
    .context("making mounts private")?;
    let hosts = files.hosts.filter(|h| h.exists());
    for (source, target) in [
        (Some(files.resolv_conf), "/etc/resolv.conf"),
        (hosts, "/etc/hosts"),
    ] {
        let Some(source) = source else {
            continue;
        };
        mount(
            Some(source),
            target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .with_context(|| format!("mounting the sandbox's {} on {target}", source.display()))?;
    }
    Ok(())
}

/// Whether `path` opens as a network namespace.
pub fn is_netns_path(path: &Path) -> bool {
    File::open(path).is_ok_and(|f| is_netns(&f))
}

fn is_netns(file: &File) -> bool {
    fstatfs(file.as_fd()).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// Never returns on success: the process becomes `command`.
pub fn exec_in(
    netns: &Path,
    daemon_pid: u32,
    hostname: &str,
    files: &SandboxFiles,
    command: &[String],
) -> anyhow::Result<()> {
    let file = open_netns(netns, daemon_pid)?;
    mount_files(files)?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET)
        .context("entering the sandbox's network namespace")?;
    unshare(CloneFlags::CLONE_NEWUTS).context("creating a UTS namespace")?;
    nix::unistd::sethostname(hostname).context("setting the hostname")?;
    let Some((program, args)) = command.split_first() else {
        bail!("no command given");
    };
    let error = std::process::Command::new(program).args(args).exec();
    // A shell's statuses: 127 when the command is not found, 126 when it cannot run.
    let code = match error.kind() {
        std::io::ErrorKind::NotFound => 127,
        _ => 126,
    };
    Err(crate::exit::Exit {
        code,
        message: Some(format!("cannot run {program}: {error}")),
    }
    .into())
}
