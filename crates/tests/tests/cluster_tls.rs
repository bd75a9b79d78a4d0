//! A cluster whose store is etcd over TLS with client certificates and etcd's own
//! authentication: nodes get their certificates only through a join token, and a worker's
//! certificate, even in etcdctl's hands, writes only what is the worker's.

use std::time::Duration;

use netctl_netns_fixtures::Host;
use tests::cluster::{a_and_b, create_overlay, wait_for_network, within, Cluster};
use tests::json;

fn overlay_address(host: &Host, sandbox: &str) -> String {
    tests::address(host, sandbox, "ov")
}

fn node_id(host: &Host) -> String {
    json(
        &host
            .netctl(&["cluster", "inspect", "--format", "json"])
            .expect_ok(),
    )["ThisNode"]["ID"]
        .as_str()
        .unwrap()
        .to_string()
}

/// etcdctl as node `host`'s etcd user, with the credentials its daemon exported.
fn etcdctl_as(cluster: &Cluster, host: &Host, args: &[&str]) -> netctl_netns_fixtures::Output {
    let dir = host.data_root().join("cluster");
    cluster
        .etcd
        .etcdctl_as(&dir.join("node.pem"), &dir.join("node-key.pem"), args)
}

fn ready(cluster: &Cluster, from: usize) -> usize {
    cluster
        .nodes(from)
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["Status"] == "ready")
        .count()
}

#[test]
fn a_tls_cluster_admits_by_token_and_a_workers_certificate_writes_only_its_own_keys() {
    let cluster = Cluster::formed_tls(3);
    let (manager, worker) = (&cluster.hosts[0], &cluster.hosts[2]);
    within(Duration::from_secs(10), || ready(&cluster, 0) == 3).expect("three ready nodes");
    let inspect = json(
        &worker
            .netctl(&["cluster", "inspect", "--format", "json"])
            .expect_ok(),
    );
    let worker_id = node_id(worker);
    assert_eq!(inspect["StoreUser"], format!("netctl-node-{worker_id}"));
    assert!(inspect["Store"][0]
        .as_str()
        .unwrap()
        .starts_with("https://"));

    // The overlay works as on a plain store: a manager makes the network, the worker
    // attaches, both reach each other.
    create_overlay(manager);
    wait_for_network(worker);
    manager
        .netctl(&["sandbox", "create", "a", "--network", "ov"])
        .expect_ok();
    worker
        .netctl(&["sandbox", "create", "w", "--network", "ov"])
        .expect_ok();
    let (addr_a, addr_w) = (overlay_address(manager, "a"), overlay_address(worker, "w"));
    within(Duration::from_secs(5), || manager.ping("a", &addr_w)).expect("a pings w");
    assert!(worker.ping("w", &addr_a), "w pings a");
    // The worker's endpoint sits under its node id in the store.
    let keys = cluster
        .etcd
        .etcdctl(&["get", "--prefix", "--keys-only", "/netctl/global/endpoint/"])
        .expect_ok();
    assert!(
        keys.lines()
            .any(|k| k.starts_with(&format!("/netctl/global/endpoint/{worker_id}/"))),
        "{keys}"
    );

    // The worker's certificate in etcdctl: reads the cluster, writes its own keys…
    let read = etcdctl_as(
        &cluster,
        worker,
        &["get", "--prefix", "--keys-only", "/netctl/global/"],
    );
    assert!(
        read.ok() && read.stdout.contains("/netctl/global/network/"),
        "{read:?}"
    );
    let own = format!("/netctl/global/endpoint/{worker_id}/probe");
    etcdctl_as(&cluster, worker, &["put", &own, "x"]).expect_ok();
    etcdctl_as(&cluster, worker, &["del", &own]).expect_ok();
    // …and nothing else: no global network, no other node's record or endpoint, no
    // cluster record, no CA.
    let manager_id = node_id(manager);
    for key in [
        "/netctl/global/network/forged".to_string(),
        "/netctl/global/network.name/forged".to_string(),
        "/netctl/global/vni/4097".to_string(),
        "/netctl/global/service/forged".to_string(),
        "/netctl/global/cluster/info".to_string(),
        format!("/netctl/global/node/{manager_id}"),
        format!("/netctl/global/endpoint/{manager_id}/forged"),
        "/netctl/secret/forged".to_string(),
    ] {
        let out = etcdctl_as(&cluster, worker, &["put", &key, "{}"]);
        assert!(
            !out.ok() && out.stderr.contains("permission denied"),
            "a worker wrote {key}: {out:?}"
        );
    }
    let secret = etcdctl_as(&cluster, worker, &["get", "/netctl/secret/ca"]);
    assert!(
        !secret.ok() && secret.stderr.contains("permission denied"),
        "{secret:?}"
    );
    let gone = etcdctl_as(
        &cluster,
        worker,
        &["del", "--prefix", "/netctl/global/network/"],
    );
    assert!(!gone.ok(), "a worker deleted networks: {gone:?}");
    assert_eq!(tests::network(manager, "ov")["Scope"], "global");
    // Nor through netctl: a worker changes no global network.
    let refused = worker.netctl(&["network", "create", "ov2", "--driver", "overlay"]);
    assert!(
        !refused.ok() && refused.stderr.contains("only managers"),
        "{refused:?}"
    );

    // The store takes no client without a certificate from the cluster's CA, nor plain
    // HTTP.
    let no_cert = cluster.etcd.etcdctl_with(
        &[
            format!("--cacert={}", cluster.cert("ca.pem")),
            "--dial-timeout=2s".into(),
        ],
        &["get", "/netctl/global/cluster/info"],
    );
    assert!(!no_cert.ok(), "no certificate, yet: {no_cert:?}");

    // The second manager (joined with the manager token) changes global networks.
    cluster.hosts[1]
        .netctl(&["network", "create", "ov3", "--driver", "overlay"])
        .expect_ok();
    cluster.hosts[1]
        .netctl(&["network", "rm", "ov3"])
        .expect_ok();
    // The worker detaches and leaves with its own credentials: its endpoint, address claim,
    // node record and liveness key go.
    worker.netctl(&["sandbox", "rm", "w"]).expect_ok();
    worker.netctl(&["cluster", "leave"]).expect_ok();
    let left = cluster
        .etcd
        .etcdctl(&["get", "--prefix", "--keys-only", "/netctl/global/"])
        .expect_ok();
    assert!(!left.contains(&worker_id), "{left}");
    // The managers see it go and delete its etcd user: its certificate opens nothing.
    within(Duration::from_secs(5), || {
        !cluster
            .etcd
            .etcdctl(&["user", "list"])
            .stdout
            .contains(&worker_id)
    })
    .expect("the worker's etcd user is removed");
    assert!(!left.contains(&format!("/{addr_w}")), "{left}");
    // The worker's daemon was never refused by etcd in all this (its lease, liveness,
    // watch, endpoint and address claims are all within its role).
    let log = worker.daemon_log();
    assert!(!log.contains("permission denied"), "{log}");
    assert!(manager.daemon_log().contains("answering joins"));
}

#[test]
fn tokens_gate_joins_and_rotating_them_or_restarting_keeps_joined_nodes() {
    let mut cluster = Cluster::formed_tls(2);
    let extra = Cluster::address(2);
    let mut newcomer = Host::new();
    cluster.lan.plug_with_mtu(&newcomer, &extra, 1400);
    newcomer.start_daemon();
    // A wrong token, and a rotated one, are refused by the manager with nothing written.
    let old = cluster.token("worker");
    let forged = format!("{}0000", &old[..old.len() - 4]);
    let out = cluster.join_as(&newcomer, &extra, &forged);
    assert!(
        !out.ok() && out.stderr.contains("refused the join"),
        "{out:?}"
    );
    cluster.hosts[0]
        .netctl(&["cluster", "join-token", "--rotate", "worker"])
        .expect_ok();
    let out = cluster.join_as(&newcomer, &extra, &old);
    assert!(!out.ok() && out.stderr.contains("rotated"), "{out:?}");
    assert_eq!(cluster.nodes(0).as_array().unwrap().len(), 2);
    let users = cluster.etcd.etcdctl(&["user", "list"]).expect_ok();
    assert_eq!(
        users
            .lines()
            .filter(|u| u.starts_with("netctl-node-"))
            .count(),
        2,
        "{users}"
    );
    // A TLS store joined without credentials is refused with the way to do it.
    let out = newcomer.netctl(&[
        "cluster",
        "join",
        "--token",
        &cluster.token("worker"),
        "--advertise-addr",
        &extra,
        "--store",
        &cluster.etcd.endpoints_arg(),
    ]);
    assert!(!out.ok() && out.stderr.contains("--store-ca"), "{out:?}");

    // The rotation disturbed nobody: the joined manager restarts on its certificate and
    // is ready again.
    cluster.hosts[1].stop_daemon();
    cluster.hosts[1].start_daemon();
    within(Duration::from_secs(10), || ready(&cluster, 0) == 2)
        .expect("both ready after a restart");
    within(Duration::from_secs(10), || ready(&cluster, 1) == 2).expect("and seen from it");

    // The new token admits; node rm takes the node's etcd user, so its certificate opens
    // nothing any more.
    cluster
        .join_as(&newcomer, &extra, &cluster.token("worker"))
        .expect_ok();
    let id = node_id(&newcomer);
    etcdctl_as(&cluster, &newcomer, &["get", "/netctl/global/cluster/info"]).expect_ok();
    newcomer.stop_daemon();
    cluster.hosts[0]
        .netctl(&["node", "rm", "--force", &id])
        .expect_ok();
    let after = etcdctl_as(&cluster, &newcomer, &["get", "/netctl/global/cluster/info"]);
    assert!(
        !after.ok(),
        "a removed node's certificate still reads: {after:?}"
    );
    let users = cluster.etcd.etcdctl(&["user", "list"]).expect_ok();
    assert!(!users.contains(&id), "{users}");
}

#[test]
fn init_on_a_tls_store_refuses_bad_material_and_changes_nothing() {
    let cluster = Cluster::new_tls(1);
    let host = &cluster.hosts[0];
    let init = |extra: &[&str]| {
        let mut args = vec!["cluster", "init", "--advertise-addr", "203.0.113.11"];
        let store = cluster.etcd.endpoints_arg();
        args.extend(["--store", &store]);
        args.extend(extra);
        host.netctl(&args)
    };
    let (ca, ca_key, root, root_key) = (
        cluster.cert("ca.pem"),
        cluster.cert("ca-key.pem"),
        cluster.cert("root.pem"),
        cluster.cert("root-key.pem"),
    );
    // https without credentials.
    let out = init(&[]);
    assert!(!out.ok() && out.stderr.contains("--store-ca"), "{out:?}");
    // The CA's key is not the CA's (the etcd server's key given instead).
    let etcd_key = cluster.cert("etcd-key.pem");
    let out = init(&[
        "--store-ca",
        &ca,
        "--store-ca-key",
        &etcd_key,
        "--store-cert",
        &root,
        "--store-key",
        &root_key,
    ]);
    assert!(!out.ok() && out.stderr.contains("not the key"), "{out:?}");
    // Nothing changed: no cluster, no users, auth still off.
    let keys = cluster
        .etcd
        .etcdctl(&["get", "--prefix", "--keys-only", "/netctl/"])
        .expect_ok();
    assert!(keys.trim().is_empty(), "{keys}");
    let users = cluster.etcd.etcdctl(&["user", "list"]).expect_ok();
    assert!(users.trim().is_empty(), "{users}");
    // And the right material makes the cluster.
    init(&[
        "--store-ca",
        &ca,
        "--store-ca-key",
        &ca_key,
        "--store-cert",
        &root,
        "--store-key",
        &root_key,
    ])
    .expect_ok();
    let users = cluster.etcd.etcdctl(&["user", "list"]).expect_ok();
    assert!(
        users.contains("root") && users.contains("netctl-node-"),
        "{users}"
    );
    // Authentication is on: the administrator's certificate is the only way in for it.
    let anonymous = cluster.etcd.etcdctl_as(
        &std::path::PathBuf::from(cluster.cert("etcd.pem")),
        &std::path::PathBuf::from(cluster.cert("etcd-key.pem")),
        &["put", "/netctl/global/network/forged", "{}"],
    );
    assert!(!anonymous.ok(), "an unknown etcd user wrote: {anonymous:?}");
}

/// A cluster from before endpoint keys moved under their node's id: a node's restart moves
/// its own, and the other nodes keep reaching its sandbox throughout.
#[test]
fn endpoint_keys_of_the_older_layout_move_under_their_node() {
    let mut cluster = Cluster::formed(2);
    a_and_b(&cluster);
    let id_b = node_id(&cluster.hosts[1]);
    let current = cluster
        .etcd
        .etcdctl(&[
            "get",
            "--prefix",
            &format!("/netctl/global/endpoint/{id_b}/"),
        ])
        .expect_ok();
    let mut lines = current.lines();
    let (key, value) = (lines.next().unwrap(), lines.next().unwrap());
    let old_key = format!(
        "/netctl/global/endpoint/{}",
        key.rsplit('/').next().unwrap()
    );
    cluster.hosts[1].stop_daemon();
    cluster.etcd.etcdctl(&["put", &old_key, value]).expect_ok();
    cluster.etcd.etcdctl(&["del", key]).expect_ok();
    cluster.hosts[1].start_daemon();
    within(Duration::from_secs(10), || {
        cluster.etcd.etcdctl(&["get", key]).stdout.contains(value)
            && cluster
                .etcd
                .etcdctl(&["get", &old_key])
                .stdout
                .trim()
                .is_empty()
    })
    .expect("the key moved under its node");
    let addr_b = overlay_address(&cluster.hosts[1], "b");
    within(Duration::from_secs(5), || {
        cluster.hosts[0].ping("a", &addr_b)
    })
    .expect("a pings b");
}
