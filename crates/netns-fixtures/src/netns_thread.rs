//! Running Rust code inside a test host's namespace (a listener, a client).

use std::fs::File;
use std::os::fd::AsFd;

use nix::sched::{setns, CloneFlags};

/// Runs `f` on a new thread that has entered the namespace `/run/netns/NAME`, and returns
/// its result. Sockets made there stay in that namespace.
pub fn in_netns<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    in_netns_at(&format!("/run/netns/{name}"), f)
}

/// As [`in_netns`], for a namespace file anywhere (a sandbox's `SandboxKey`).
pub fn in_netns_at<T: Send + 'static>(path: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = File::open(path).expect("namespace file");
    std::thread::spawn(move || {
        setns(file.as_fd(), CloneFlags::CLONE_NEWNET).expect("setns");
        f()
    })
    .join()
    .expect("namespace thread")
}
