//! Concurrent requests are safe: parallel connects to one network get distinct addresses.

use std::collections::HashSet;

use netctl_netns_fixtures::Host;
use netctl_plugin_api::{ConnectRequest, SandboxCreateRequest};

#[test]
fn a_hundred_parallel_connects_get_a_hundred_addresses() {
    let host = Host::with_daemon();
    host.netctl(&["network", "create", "busy", "--subnet", "10.88.0.0/16"])
        .expect_ok();
    let client = host.client();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let creates = (0..100).map(|i| {
            let client = client.clone();
            async move {
                let req = SandboxCreateRequest {
                    name: format!("s{i}"),
                    ..Default::default()
                };
                client.sandbox_create(&req).await
            }
        });
        for result in futures::future::join_all(creates).await {
            result.expect("sandbox create");
        }
        let connects = (0..100).map(|i| {
            let client = client.clone();
            async move {
                let req = ConnectRequest {
                    container: format!("s{i}"),
                    ..Default::default()
                };
                client.network_connect("busy", &req).await
            }
        });
        for result in futures::future::join_all(connects).await {
            result.expect("connect");
        }
    });
    let net = tests::network(&host, "busy");
    let addresses: HashSet<String> = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["IPv4Address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addresses.len(), 100);
    let macs: HashSet<String> = net["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["MacAddress"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(macs.len(), 100);
    let bridge = net["Bridge"].as_str().unwrap();
    let ports = host
        .ip(&["-o", "link", "show", "master", bridge])
        .expect_ok();
    assert_eq!(ports.lines().count(), 100);
    // Every sandbox really has its address: a sample reaches the others.
    for i in [0, 42, 99] {
        let name = format!("s{i}");
        let addr = tests::address(&host, &name, "busy");
        let seen = host
            .sandbox_exec(&name, &["ip", "-br", "addr", "show", "eth0"])
            .expect_ok();
        assert!(seen.contains(&format!("{addr}/16")), "{seen}");
        assert!(host.ping("s7", &addr));
    }
}
