//! README.md's five-minute tour, run from README.md itself so that it cannot rot: the block
//! between `<!-- tour -->` and `<!-- /tour -->`, with a namespace and a directory of this
//! test's own, and the `netctl` under test on PATH (the tour's one build-and-install line
//! is the only line not run: the binary is built already).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The tour's commands, as README.md has them.
fn tour() -> String {
    let readme = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let text = std::fs::read_to_string(&readme).expect("README.md");
    let start = text
        .find("<!-- tour -->")
        .expect("README.md has a <!-- tour --> block");
    let end = text.find("<!-- /tour -->").expect("and its end");
    let block = &text[start..end];
    let body = block
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(body, _)| body)
        .expect("one ```sh block in the tour");
    body.to_string()
}

/// Whatever the tour left if it stopped early: its daemon, its namespace, its directory.
struct Cleanup {
    ns: String,
    dir: PathBuf,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir.join("daemon.pid")) {
            if let Ok(pid) = pid.trim().parse::<i32>() {
                let pid = nix::unistd::Pid::from_raw(pid);
                if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).is_ok() {
                    std::thread::sleep(std::time::Duration::from_millis(200));
                }
            }
        }
        // A daemon killed half-way leaves its sandboxes' namespace mounts: deepest first.
        let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|line| line.split_whitespace().nth(1))
            .filter(|point| Path::new(point).starts_with(&self.dir))
            .collect();
        points.sort_by_key(|point| std::cmp::Reverse(point.len()));
        for point in points {
            let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
        }
        // The tour deletes its namespace itself when it gets that far.
        if Path::new("/run/netns").join(&self.ns).exists() {
            let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
        }
        // A lazily unmounted namespace file can stay busy for a moment.
        for _ in 0..10 {
            if std::fs::remove_dir_all(&self.dir).is_ok() || !self.dir.exists() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

#[test]
fn the_readme_tour_runs_as_written() {
    let tour = tour();
    let mut lines = tour.lines();
    let first = lines.next().unwrap_or_default();
    assert!(
        first.starts_with("ns=try dir=/tmp/try"),
        "the tour starts by naming its namespace and directory: {first:?}"
    );
    let ns = format!("nct-tour-{}", std::process::id());
    let dir = std::env::temp_dir().join(&ns);
    let _cleanup = Cleanup {
        ns: ns.clone(),
        dir: dir.clone(),
    };
    let mut script = format!("ns={ns} dir={}\n", dir.display());
    for line in lines {
        if line.starts_with("scripts/install-deps") {
            script.push_str("# (built already)\n");
            continue;
        }
        assert!(
            !line.contains("/tmp/try"),
            "a line names the directory: {line}"
        );
        script.push_str(line);
        script.push('\n');
    }
    let bin = netctl_netns_fixtures::netctl_bin();
    let path = format!(
        "{}:{}",
        bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    // Output to files, not pipes: a daemon the tour left running (it failed half-way)
    // would hold a pipe open, and reading it would wait for that daemon.
    let logs = std::env::temp_dir().join(format!("{ns}.out"));
    let (out_path, err_path) = (logs.with_extension("stdout"), logs.with_extension("stderr"));
    let status = Command::new("bash")
        .args(["-euo", "pipefail", "-x", "-c", &script])
        .env("PATH", path)
        .env_remove("NETCTL_SOCKET")
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .status()
        .expect("bash");
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    assert!(
        status.success(),
        "the tour failed:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    // What the tour promises in its comments.
    assert!(
        stdout.contains("1 packets transmitted, 1 received"),
        "{stdout}"
    );
    assert!(stdout.contains("80/tcp -> 0.0.0.0:8080"), "{stdout}");
    assert!(
        stdout.contains("172.30.0."),
        "dig +short api answered: {stdout}"
    );
    assert!(!dir.exists(), "the tour cleans up after itself");
}
