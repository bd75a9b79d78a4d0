//! Debian's dockerd, run by the test fixtures in a namespace of its own (the harness the
//! Docker remote-plugin tests stand on).

use netns_fixtures::{Dockerd, Host};

#[test]
fn dockerd_runs_containers_inside_a_test_host() {
    let host = Host::new();
    let dockerd = Dockerd::start(&host);
    dockerd.import_busybox();
    let none = dockerd.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox:local",
        "ip",
        "-o",
        "link",
    ]);
    assert!(none.ok(), "{none:?}\n{}", dockerd.log());
    assert!(!none.stdout.contains("eth0"), "{}", none.stdout);
    let bridged = dockerd
        .docker(&[
            "run",
            "--rm",
            "busybox:local",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ])
        .expect_ok();
    assert!(bridged.contains("172.17."), "{bridged}");
    // docker0 and the containers' veths are in the test host, not in the root namespace.
    assert!(host.ip(&["link", "show", "docker0"]).ok());
}
