//! Bad input gets a clear error and changes nothing: every case asserts the error text and
//! that the API and the kernel show exactly what they showed before.

use netctl_netns_fixtures::Host;
use tests::{assert_same, full_state};

/// Networks and sandboxes the cases run against.
fn setup() -> Host {
    let host = Host::with_daemon();
    for args in [
        &["network", "create", "web", "--subnet", "172.30.0.0/24"][..],
        &["network", "create", "tiny", "--subnet", "203.0.113.0/30"],
        &[
            "sandbox",
            "create",
            "a",
            "--network",
            "web",
            "--ip",
            "172.30.0.130",
        ],
        &["sandbox", "create", "t1", "--network", "tiny"],
        &["sandbox", "create", "t2"],
    ] {
        host.netctl(args).expect_ok();
    }
    host
}

#[test]
fn bad_cli_input_is_refused_and_changes_nothing() {
    let host = setup();
    let cases: &[(&[&str], &str)] = &[
        (
            &["network", "create", "x", "--subnet", "172.29.0.0/33"],
            "invalid subnet",
        ),
        (
            &["network", "create", "x", "--subnet", "banana"],
            "invalid subnet",
        ),
        (
            &["network", "create", "x", "--subnet", "172.29.0.1/24"],
            "host bits set",
        ),
        (
            &["network", "create", "x", "--subnet", "172.30.0.128/25"],
            "subnet 172.30.0.128/25 overlaps with 172.30.0.0/24",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "172.29.0.0/24",
                "--gateway",
                "172.28.0.1",
            ],
            "gateway 172.28.0.1 is not in subnet 172.29.0.0/24",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "172.29.0.0/24",
                "--ip-range",
                "10.0.0.0/25",
            ],
            "ip range 10.0.0.0/25 is not inside subnet 172.29.0.0/24",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "172.29.0.0/24",
                "--aux-address",
                "r=10.0.0.5",
            ],
            "auxiliary address 10.0.0.5 is not in subnet",
        ),
        (
            &[
                "network",
                "create",
                "x",
                "--subnet",
                "172.29.0.0/24",
                "--subnet",
                "172.28.0.0/24",
                "--gateway",
                "10.0.0.1",
            ],
            "no matching subnet for gateway 10.0.0.1",
        ),
        (
            &["network", "create", "x", "--subnet", "fd00:9::/64"],
            "IPv6 is not enabled",
        ),
        (
            &["network", "create", "web"],
            "network with name web already exists",
        ),
        (&["network", "create", "bad name"], "invalid network name"),
        (
            &["network", "create", "x", "--driver", "macvlan"],
            "unknown network driver \"macvlan\"",
        ),
        (
            &["network", "create", "x", "--driver", "host"],
            "only one instance",
        ),
        (
            &["network", "create", "x", "-o", "colour=blue"],
            "unknown option \"colour\"",
        ),
        (
            &["network", "create", "x", "-o", "mtu=20"],
            "invalid MTU 20",
        ),
        (
            &["network", "create", "x", "-o", "icc=maybe"],
            "is not a boolean",
        ),
        (
            &["network", "create", "x", "--label", "novalue"],
            "expected KEY=VALUE",
        ),
        (&["network", "inspect", "nope"], "network nope not found"),
        (&["network", "rm", "nope"], "network nope not found"),
        (
            &["network", "rm", "web"],
            "network web has active endpoints (sandboxes: a)",
        ),
        (&["network", "rm", "host"], "host is a pre-defined network"),
        (
            &["network", "connect", "nope", "a"],
            "network nope not found",
        ),
        (
            &["network", "connect", "web", "nope"],
            "sandbox nope not found",
        ),
        (
            &["network", "connect", "web", "a"],
            "sandbox a is already connected to network web",
        ),
        (
            &["network", "connect", "web", "t2", "--ip", "10.1.1.1"],
            "address 10.1.1.1 is not in subnet 172.30.0.0/24",
        ),
        (
            &["network", "connect", "web", "t2", "--ip", "172.30.0.130"],
            "address 172.30.0.130 is already in use",
        ),
        (
            &["network", "connect", "web", "t2", "--ip", "172.30.0.1"],
            "address 172.30.0.1 is already in use",
        ),
        (
            &["network", "connect", "web", "t2", "--ip", "172.30.0.255"],
            "not in the allocatable range",
        ),
        (
            &["network", "connect", "web", "t2", "--ip", "300.1.1.1"],
            "invalid IPv4 address",
        ),
        (
            &["network", "connect", "web", "t2", "--ip6", "fd00::1"],
            "network web has no IPv6 subnet",
        ),
        (
            &[
                "network",
                "connect",
                "web",
                "t2",
                "--mac",
                "01:00:5e:00:00:01",
            ],
            "invalid MAC address",
        ),
        (
            &[
                "network",
                "connect",
                "web",
                "t2",
                "--mac",
                "02:42:ac:1e:00:82",
            ],
            "MAC address 02:42:ac:1e:00:82 is already in use",
        ),
        (
            &["network", "connect", "tiny", "t2"],
            "no available addresses in subnet 203.0.113.0/30",
        ),
        (
            &["network", "connect", "host", "t2"],
            "joins the host network only when it is created",
        ),
        (
            &["network", "disconnect", "web", "t2"],
            "sandbox t2 is not connected to network web",
        ),
        (&["network", "disconnect", "none", "t2"], "not connected"),
        (
            &["sandbox", "create", "a"],
            "sandbox with name a already exists",
        ),
        (
            &["sandbox", "create", "t3", "--network", "tiny"],
            "no available addresses in subnet 203.0.113.0/30",
        ),
        (
            &["sandbox", "create", "t3", "--network", "nope"],
            "network nope not found",
        ),
        (
            &[
                "sandbox",
                "create",
                "t3",
                "--network",
                "web",
                "--ip",
                "172.30.0.130",
            ],
            "already in use",
        ),
        (
            &["sandbox", "create", "t3", "--ip", "172.30.0.50"],
            "need --network",
        ),
        (
            &["sandbox", "create", "t3", "--alias", "x"],
            "need --network",
        ),
        (&["sandbox", "inspect", "nope"], "sandbox nope not found"),
        (&["sandbox", "rm", "nope"], "sandbox nope not found"),
    ];
    for (args, expected) in cases {
        let before = full_state(&host);
        let err = host.netctl(args).expect_err();
        assert!(
            err.contains(expected),
            "netctl {args:?}: expected {expected:?} in {err:?}"
        );
        assert!(
            err.lines().count() <= 2,
            "a short message, not a dump: {err}"
        );
        assert_same(&before, &full_state(&host), &format!("netctl {args:?}"));
    }
}

#[test]
fn malformed_api_requests_are_refused_and_change_nothing() {
    let host = setup();
    let client = host.client();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases: &[(&str, &str, &[u8], u16, &str)] = &[
        (
            "POST",
            "/v1/networks",
            b"{\"Name\": ",
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/networks",
            b"{\"Name\": 5}",
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/networks",
            b"not json at all",
            400,
            "invalid_argument",
        ),
        ("POST", "/v1/networks", b"", 400, "invalid_argument"),
        (
            "POST",
            "/v1/networks/web/connect",
            b"{\"Container\": [1,2]}",
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/sandboxes",
            b"{\"Name\": \"z\", \"Network\": {}}",
            400,
            "invalid_argument",
        ),
        ("GET", "/v1/nothing-here", b"", 404, "not_found"),
        ("GET", "/v2/networks", b"", 404, "not_found"),
        (
            "POST",
            "/v1/networks/tiny/connect",
            b"{\"Container\": \"t2\"}",
            409,
            "exhausted",
        ),
        (
            "POST",
            "/v1/networks",
            b"{\"Name\": \"web\"}",
            409,
            "conflict",
        ),
        ("POST", "/v1/runtime/attach", b"{\"ContainerId\": ", 400, "invalid_argument"),
        (
            "POST",
            "/v1/runtime/attach",
            b"{\"ContainerId\": \"../x\", \"Netns\": \"/proc/1/ns/net\", \"Ifname\": \"eth0\", \"Network\": \"web\"}",
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/runtime/attach",
            b"{\"ContainerId\": \"c1\", \"Netns\": \"relative/ns\", \"Ifname\": \"eth0\", \"Network\": \"web\"}",
            400,
            "invalid_argument",
        ),
        (
            "POST",
            "/v1/runtime/attach",
            b"{\"ContainerId\": \"c1\", \"Netns\": \"/nonexistent\", \"Ifname\": \"eth0\", \"Network\": \"web\"}",
            404,
            "not_found",
        ),
        ("POST", "/v1/runtime/detach", b"[]", 400, "invalid_argument"),
        ("POST", "/v1/runtime/gc", b"{\"Network\": 1}", 400, "invalid_argument"),
        ("POST", "/v1/gc", b"{\"DryRun\": \"yes\"}", 400, "invalid_argument"),
    ];
    for (method, path, body, status, code) in cases {
        let before = full_state(&host);
        let (got, answer) = runtime
            .block_on(client.raw(method, path, body.to_vec()))
            .unwrap();
        let answer: serde_json::Value = serde_json::from_slice(&answer).expect("a JSON error body");
        assert_eq!(got, *status, "{method} {path}: {answer}");
        assert_eq!(answer["code"], *code, "{method} {path}: {answer}");
        assert!(!answer["message"].as_str().unwrap().is_empty());
        assert_same(&before, &full_state(&host), &format!("{method} {path}"));
    }
}

/// What the Docker protocol carries that is not Docker's — ids that are not 64 hex digits,
/// pools and gateways that do not parse, a sandbox key that is no absolute path, a pool id
/// netctl never gave, no pool at all — is refused with `{"Err": …}`, and changes nothing.
#[test]
fn docker_plugin_input_that_is_not_dockers_is_refused_and_changes_nothing() {
    let host = setup();
    let plugin = tests::PluginSocket::of(&host);
    let before = host
        .netctl(&["network", "ls", "--format", "{{.Name}}"])
        .expect_ok();
    let links_before = host.ip(&["-o", "link", "show"]).expect_ok();
    let good = "c".repeat(64);
    let pool = |pool: &str, gateway: &str| serde_json::json!([{"AddressSpace": "local", "Pool": pool, "Gateway": gateway}]);
    let cases: Vec<(&str, serde_json::Value, &str)> = vec![
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": "", "IPv4Data": pool("10.77.0.0/24", "")}),
            "invalid NetworkID",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": "a;b", "IPv4Data": pool("10.77.0.0/24", "")}),
            "invalid NetworkID",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": "../../etc", "IPv4Data": pool("10.77.0.0/24", "")}),
            "invalid NetworkID",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": "A".repeat(64), "IPv4Data": pool("10.77.0.0/24", "")}),
            "invalid NetworkID",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": good, "IPv4Data": []}),
            "no IPv4 pool",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": good, "IPv4Data": pool("10.77.0.0/33", "")}),
            "invalid pool",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": good, "IPv4Data": pool("banana", "")}),
            "invalid pool",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": good, "IPv4Data": pool("10.77.0.0/24", "10.77.0.x/24")}),
            "invalid address",
        ),
        (
            "/NetworkDriver.CreateNetwork",
            serde_json::json!({"NetworkID": good, "IPv4Data": pool("0.0.0.0/0", "")}),
            "null IPAM driver",
        ),
        (
            "/NetworkDriver.DeleteNetwork",
            serde_json::json!({"NetworkID": "x"}),
            "invalid NetworkID",
        ),
        (
            "/NetworkDriver.CreateEndpoint",
            serde_json::json!({"NetworkID": good, "EndpointID": "../x"}),
            "invalid EndpointID",
        ),
        (
            "/NetworkDriver.DeleteEndpoint",
            serde_json::json!({"NetworkID": good, "EndpointID": ""}),
            "invalid EndpointID",
        ),
        (
            "/NetworkDriver.Join",
            serde_json::json!({"NetworkID": good, "EndpointID": good, "SandboxKey": "netns/x"}),
            "invalid SandboxKey",
        ),
        (
            "/NetworkDriver.Join",
            serde_json::json!({"NetworkID": good, "EndpointID": good, "SandboxKey": "/run/../etc"}),
            "invalid SandboxKey",
        ),
        (
            "/NetworkDriver.Leave",
            serde_json::json!({"NetworkID": "1", "EndpointID": good}),
            "invalid NetworkID",
        ),
        (
            "/NetworkDriver.ProgramExternalConnectivity",
            serde_json::json!({"NetworkID": good, "EndpointID": "z"}),
            "invalid EndpointID",
        ),
        (
            "/NetworkDriver.RevokeExternalConnectivity",
            serde_json::json!({"NetworkID": good, "EndpointID": "z"}),
            "invalid EndpointID",
        ),
        (
            "/IpamDriver.RequestAddress",
            serde_json::json!({"PoolID": "../pool", "Address": ""}),
            "invalid PoolID",
        ),
        (
            "/IpamDriver.ReleaseAddress",
            serde_json::json!({"PoolID": "nope", "Address": "10.0.0.1"}),
            "invalid PoolID",
        ),
        (
            "/IpamDriver.ReleasePool",
            serde_json::json!({"PoolID": "nope"}),
            "invalid PoolID",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, answer) = plugin.post(path, &body.to_string());
        let err = answer["Err"].as_str().unwrap_or_default();
        assert!(
            status >= 400 && err.contains(expected),
            "{path} {body}: {status} {answer}"
        );
    }
    assert_eq!(
        host.netctl(&["network", "ls", "--format", "{{.Name}}"])
            .expect_ok(),
        before
    );
    assert_eq!(host.ip(&["-o", "link", "show"]).expect_ok(), links_before);
}
