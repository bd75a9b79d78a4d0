//! The management API's own contract: socket permissions, versioned paths, info.

use std::os::unix::fs::PermissionsExt;

use netctl_netns_fixtures::Host;

#[test]
fn socket_is_owner_and_group_only() {
    let host = Host::with_daemon();
    let mode = std::fs::metadata(host.socket())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o660);
}

#[test]
fn without_roles_only_root_may_call_the_api() {
    let host = Host::with_daemon();
    // Open the socket's file mode, so that the daemon's own check is what refuses.
    std::fs::set_permissions(host.socket(), std::fs::Permissions::from_mode(0o666)).unwrap();
    std::fs::set_permissions(host.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = netctl_netns_fixtures::run(
        "setpriv",
        &[
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            netctl_netns_fixtures::netctl_bin().to_str().unwrap(),
            "--socket",
            host.socket().to_str().unwrap(),
            "network",
            "ls",
        ],
    );
    let err = out.expect_err();
    assert!(
        err.contains("permission denied: role none cannot list networks"),
        "{err}"
    );
    host.netctl(&["network", "ls"]).expect_ok();
}

#[test]
fn info_names_the_daemon() {
    let host = Host::with_daemon();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let info = runtime.block_on(host.client().info()).unwrap();
    assert_eq!(Some(info.pid), host.daemon_pid());
    assert_eq!(info.exec_root, host.exec_root().display().to_string());
    assert!(info.drivers.iter().any(|d| d == "bridge"), "{info:?}");
    assert_eq!(info.cluster_id, None);
    // What it holds, counted: `system info` as `docker info` prints it.
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    host.netctl(&[
        "sandbox",
        "create",
        "a",
        "--network",
        "web",
        "-p",
        "8080:80",
        "-p",
        "8443:443",
    ])
    .expect_ok();
    host.netctl(&["sandbox", "create", "b"]).expect_ok();
    let text = host.netctl(&["system", "info"]).expect_ok();
    for line in [
        "Sandboxes: 2",
        "Endpoints: 1",
        "Published ports: 2",
        "DHCP clients: 0",
        "Cluster: none",
    ] {
        assert!(text.contains(line), "{line}: {text}");
    }
    let json: serde_json::Value = serde_json::from_str(
        &host
            .netctl(&["system", "info", "--format", "json"])
            .expect_ok(),
    )
    .unwrap();
    assert_eq!(json["Sandboxes"], 2);
    assert_eq!(json["Endpoints"], 1);
    assert!(json["Networks"].as_u64().unwrap() >= 1, "{json}");
}

#[test]
fn the_health_answer_comes_without_a_version() {
    let host = Host::with_daemon();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = host.client();
    let (status, body) = runtime
        .block_on(client.raw("GET", "/_ping", Vec::new()))
        .unwrap();
    assert_eq!((status, body.as_slice()), (200, b"OK".as_slice()));
    let (status, _) = runtime
        .block_on(client.raw("HEAD", "/_ping", Vec::new()))
        .unwrap();
    assert_eq!(status, 200);
}

/// `netctl daemon` with `args` in `host`'s namespace, run to its end; one still running
/// after 10 s (it was not refused) is killed.
fn second_daemon(host: &Host, args: &[&str]) -> netctl_netns_fixtures::Output {
    let mut child = host
        .command(netctl_netns_fixtures::netctl_bin())
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run netctl daemon");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().expect("wait").is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().expect("daemon output").into()
}

#[test]
fn a_second_daemon_in_the_same_namespace_is_refused_before_it_touches_anything() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "web", "--subnet", "172.30.0.0/24"])
        .expect_ok();
    host.netctl(&["sandbox", "create", "a", "--network", "web"])
        .expect_ok();
    let before = tests::full_state(&host);
    let other = host.dir().join("other");
    let out = second_daemon(
        &host,
        &[
            "--socket",
            other.join("netctl.sock").to_str().unwrap(),
            "daemon",
            "--data-root",
            other.join("data").to_str().unwrap(),
            "--exec-root",
            other.join("run").to_str().unwrap(),
            "--docker-plugin-socket",
            "none",
        ],
    );
    assert_eq!(out.status, 1);
    let pid = host.daemon_pid().unwrap();
    assert_eq!(
        out.stderr.lines().next().unwrap_or_default(),
        format!("netctl: another netctl daemon (pid {pid}) manages this network namespace: run one daemon per namespace (stop it first, or start this one in a namespace of its own)"),
        "{}", out.stderr
    );
    assert!(
        !other.exists(),
        "it made nothing: {:?}",
        std::fs::read_dir(&other).ok()
    );
    std::thread::sleep(std::time::Duration::from_millis(300));
    tests::assert_same(&before, &tests::full_state(&host), "after a second daemon");
    assert!(
        !host.daemon_log().contains("rebuil"),
        "the first daemon's table was left alone:\n{}",
        host.daemon_log()
    );
}

#[test]
fn a_daemon_on_another_daemons_socket_is_refused_and_leaves_it() {
    let host = Host::with_daemon();
    // Another namespace, so the namespace's lock does not stop it first.
    let elsewhere = Host::new();
    let out = second_daemon(
        &elsewhere,
        &[
            "--socket",
            host.socket().to_str().unwrap(),
            "daemon",
            "--data-root",
            elsewhere.data_root().to_str().unwrap(),
            "--exec-root",
            elsewhere.exec_root().to_str().unwrap(),
            "--docker-plugin-socket",
            "none",
        ],
    );
    let err = out.expect_err();
    assert_eq!(
        err.trim(),
        format!(
            "netctl: socket {}: another daemon is already listening there",
            host.socket().display()
        )
    );
    assert!(!elsewhere.data_root().exists());
    host.netctl(&["network", "ls"]).expect_ok();
}

#[test]
fn a_failed_start_leaves_no_socket() {
    let host = Host::new();
    // A data-root that is a file: the store cannot open, after the socket was bound.
    let data_root = host.dir().join("not-a-directory");
    std::fs::write(&data_root, b"").unwrap();
    let out = second_daemon(
        &host,
        &[
            "--socket",
            host.socket().to_str().unwrap(),
            "daemon",
            "--data-root",
            data_root.to_str().unwrap(),
            "--exec-root",
            host.exec_root().to_str().unwrap(),
            "--docker-plugin-socket",
            "none",
        ],
    );
    let err = out.expect_err();
    assert!(err.contains("not-a-directory"), "{err}");
    assert!(!host.socket().exists(), "{err}");
}

#[test]
fn cli_without_a_daemon_says_so() {
    let host = Host::new();
    let err = host.netctl(&["network", "ls"]).expect_err();
    assert!(err.contains("cannot reach the netctl daemon"), "{err}");
}

/// Started by systemd's `netctl.socket`: the daemon serves the API on the socket it is
/// passed (descriptor 3, `LISTEN_PID`, `LISTEN_FDS`), and leaves its file to systemd when
/// it stops.
#[test]
fn a_socket_activated_daemon_serves_the_socket_it_is_passed() {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let host = Host::new();
    let socket = host.dir().join("activated.sock");
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let fd = listener.as_raw_fd();
    let mut cmd = host.command("sh");
    cmd.arg("-c")
        .arg("LISTEN_PID=$$ LISTEN_FDS=1 exec \"$0\" \"$@\"")
        .arg(netctl_netns_fixtures::netctl_bin())
        .args(["--socket", "/nonexistent/unused.sock", "daemon"])
        .arg("--data-root")
        .arg(host.data_root())
        .arg("--exec-root")
        .arg(host.exec_root())
        .args(["--docker-plugin-socket", "none"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // SAFETY: dup2 and fcntl are async-signal-safe; the listener outlives the spawn.
    unsafe {
        cmd.pre_exec(move || {
            // dup2 onto itself keeps close-on-exec: clear it then.
            let moved = if fd == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(fd, 3)
            };
            if moved < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut daemon = cmd.spawn().unwrap();
    let answered = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(50));
        // Bounded: the test's own listener queues a connection nobody may accept.
        netctl_netns_fixtures::run(
            "timeout",
            &[
                "2",
                netctl_netns_fixtures::netctl_bin().to_str().unwrap(),
                "--socket",
                socket.to_str().unwrap(),
                "network",
                "ls",
            ],
        )
        .ok()
    });
    let pid = nix::unistd::Pid::from_raw(daemon.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let _ = daemon.wait();
    assert!(answered, "the daemon answered on systemd's socket");
    assert!(socket.exists(), "systemd's socket file stays");
}
