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

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let host = Host::with_daemon();
    let out = host.exec(&[
        netctl_netns_fixtures::netctl_bin().to_str().unwrap(),
        "--socket",
        host.socket().to_str().unwrap(),
        "daemon",
        "--data-root",
        host.dir().join("other-data").to_str().unwrap(),
        "--exec-root",
        host.dir().join("other-run").to_str().unwrap(),
    ]);
    let err = out.expect_err();
    assert!(err.contains("another daemon is already listening"), "{err}");
    // It stopped before touching anything: the first daemon's state is whole.
    assert!(!host.dir().join("other-data").exists());
}

#[test]
fn cli_without_a_daemon_says_so() {
    let host = Host::new();
    let err = host.netctl(&["network", "ls"]).expect_err();
    assert!(err.contains("cannot reach the netctl daemon"), "{err}");
}
