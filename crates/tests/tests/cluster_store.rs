//! The cluster store on a real 3-member etcd cluster, each member in a namespace of its own:
//! unique creates under concurrency, watches across clients, leases, and what a client sees
//! when members die.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use netctl_netns_fixtures::{in_netns, EtcdCluster, Host, Lan};
use netctl_store::{Batch, ClusterStore, Event, Key, Prefix, Scope, Store, StoreError};

/// A LAN with an etcd cluster, and a client host on it.
struct Fixture {
    etcd: EtcdCluster,
    client: Host,
    _lan: Lan,
    /// One cluster at a time: five 3-member clusters fsyncing on two cores miss their
    /// heartbeats and hold elections the tests did not ask for.
    _turn: std::sync::MutexGuard<'static, ()>,
}

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Fixture {
    fn new() -> Self {
        let turn = TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lan = Lan::new();
        let etcd = EtcdCluster::start(&lan, 3);
        let client = Host::new();
        lan.plug(&client, "203.0.113.11");
        Self {
            etcd,
            client,
            _lan: lan,
            _turn: turn,
        }
    }

    /// Runs `body` with connected stores in the client host's namespace.
    fn run<T: Send + 'static, F>(
        &self,
        clients: usize,
        body: impl FnOnce(Vec<ClusterStore>) -> F + Send + 'static,
    ) -> T
    where
        F: std::future::Future<Output = T>,
    {
        let endpoints = self.etcd.endpoints();
        in_netns(self.client.netns(), move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let mut stores = Vec::new();
                for _ in 0..clients {
                    stores.push(ClusterStore::connect(&endpoints).await.expect("connect"));
                }
                body(stores).await
            })
        })
    }
}

fn key(kind: &str, id: &str) -> Key {
    Key::new(Scope::Global, kind, id)
}

#[test]
fn concurrent_creates_from_three_clients_never_take_one_key_twice() {
    let fixture = Fixture::new();
    let winners = fixture.run(3, |stores| async move {
        // Each client tries to take the same 50 VNIs, in its own order.
        let tries = stores
            .into_iter()
            .enumerate()
            .map(|(client, store)| async move {
                let mut won = Vec::new();
                for i in 0..50u32 {
                    let vni = 4096 + (i + client as u32 * 17) % 50;
                    let batch = Batch::new().create(
                        key("vni", &vni.to_string()),
                        format!("client {client}").into_bytes(),
                    );
                    match store.apply(batch).await {
                        Ok(_) => won.push(vni),
                        Err(StoreError::Exists(k)) => assert_eq!(k.id, vni.to_string()),
                        Err(e) => panic!("{e}"),
                    }
                }
                won
            });
        futures::future::join_all(tries).await
    });
    let all: Vec<u32> = winners.into_iter().flatten().collect();
    let unique: HashSet<u32> = all.iter().copied().collect();
    assert_eq!(all.len(), 50, "every VNI taken exactly once: {all:?}");
    assert_eq!(unique.len(), 50);
}

#[test]
fn a_failed_batch_changes_nothing_and_names_the_key_that_exists() {
    let fixture = Fixture::new();
    fixture.run(1, |stores| async move {
        let store = &stores[0];
        store
            .apply(Batch::new().create(key("name", "web"), b"1".to_vec()))
            .await
            .unwrap();
        let err = store
            .apply(
                Batch::new()
                    .put(key("network", "n2"), b"x".to_vec())
                    .create(key("name", "fresh"), b"2".to_vec())
                    .create(key("name", "web"), b"2".to_vec()),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Exists(k) if k.id == "web"),
            "{err}"
        );
        let all = store.load(&Prefix::scope(Scope::Global)).await.unwrap();
        let ids: Vec<_> = all.entries.iter().map(|e| e.key.encode()).collect();
        assert_eq!(ids, vec!["global/name/web"]);
        let refused = store
            .apply(Batch::new().put(Key::new(Scope::Local, "network", "x"), vec![]))
            .await
            .unwrap_err();
        assert!(matches!(refused, StoreError::WrongScope { .. }));
        let nobody = vec!["http://203.0.113.199:2379".to_string()];
        let started = Instant::now();
        let err = ClusterStore::connect(&nobody)
            .await
            .err()
            .expect("nobody there");
        assert!(
            err.to_string().starts_with("cluster store unavailable")
                && err.to_string().contains("203.0.113.199"),
            "{err}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    });
}

#[test]
fn a_watch_sees_another_clients_batches_whole_and_in_order() {
    let fixture = Fixture::new();
    fixture.run(2, |stores| async move {
        let (watcher, writer) = (&stores[0], &stores[1]);
        let from = watcher
            .load(&Prefix::scope(Scope::Global))
            .await
            .unwrap()
            .revision;
        let mut watch = watcher
            .watch(&Prefix::kind(Scope::Global, "endpoint"), from)
            .unwrap();
        writer
            .apply(
                Batch::new()
                    .put(key("endpoint", "a"), b"1".to_vec())
                    .put(key("address", "10.0.0.2"), b"a".to_vec())
                    .put(key("endpoint", "b"), b"2".to_vec()),
            )
            .await
            .unwrap();
        writer
            .apply(Batch::new().delete(key("endpoint", "a")))
            .await
            .unwrap();
        let first = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap();
        let ids: Vec<_> = first.events.iter().map(|e| e.key().id.clone()).collect();
        assert_eq!(ids, vec!["a", "b"], "one batch, only the endpoints");
        let second = watch.next().await.unwrap();
        assert!(second.revision > first.revision);
        assert!(matches!(&second.events[..], [Event::Delete { key, .. }] if key.id == "a"));
    });
}

#[test]
fn a_leased_key_goes_with_its_lease_and_watchers_hear_it() {
    let fixture = Fixture::new();
    fixture.run(1, |stores| async move {
        let store = &stores[0];
        let lease = store.grant_lease(Duration::from_secs(5)).await.unwrap();
        assert!(store.keep_alive(lease).await.unwrap());
        let revision = store
            .put_leased(&key("node", "n1"), b"here".to_vec(), lease)
            .await
            .unwrap();
        let mut watch = store
            .watch(&Prefix::kind(Scope::Global, "node"), revision)
            .unwrap();
        store.revoke_lease(lease).await.unwrap();
        let gone = tokio::time::timeout(Duration::from_secs(5), watch.next())
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(&gone.events[..], [Event::Delete { key, .. }] if key.id == "n1"));
        assert!(
            !store.keep_alive(lease).await.unwrap(),
            "a revoked lease is dead"
        );
        store.revoke_lease(lease).await.unwrap();
    });
}

#[test]
fn one_member_down_is_invisible_and_quorum_lost_fails_fast_and_clearly() {
    let mut fixture = Fixture::new();
    fixture.etcd.kill(2);
    fixture.run(1, |stores| async move {
        stores[0]
            .apply(Batch::new().put(key("network", "one-down"), b"1".to_vec()))
            .await
            .expect("two of three members are a quorum");
    });
    fixture.etcd.kill(1);
    // The survivor notices it has lost the quorum within an election timeout (0.5 s here);
    // a write sent before that may still land when the quorum is back (its outcome is
    // unknown), one sent after never does.
    std::thread::sleep(Duration::from_secs(1));
    let (err, took) = fixture.run(1, |stores| async move {
        let started = Instant::now();
        let err = stores[0]
            .apply(Batch::new().put(key("network", "two-down"), b"1".to_vec()))
            .await
            .unwrap_err();
        (err.to_string(), started.elapsed())
    });
    assert!(err.starts_with("cluster store unavailable"), "{err}");
    assert!(
        err.contains("203.0.113.102:2379"),
        "names the members: {err}"
    );
    // Generous: the bound is the store's 2 s deadline, not a figure measured here.
    assert!(took < Duration::from_secs(5), "failed after {took:?}");
    fixture.etcd.restart(1);
    fixture.etcd.wait_healthy();
    fixture.run(1, |stores| async move {
        let all = stores[0]
            .load(&Prefix::kind(Scope::Global, "network"))
            .await
            .unwrap();
        let ids: Vec<_> = all.entries.iter().map(|e| e.key.id.clone()).collect();
        assert_eq!(ids, vec!["one-down"], "nothing of the failed write");
    });
}

#[test]
fn three_nodes_claiming_vnis_and_addresses_at_once_never_share_one() {
    use netctl_daemon::cluster_store::claims::{
        claim_address, claim_vni, ClaimError, FIRST_AUTO_VNI,
    };
    let fixture = Fixture::new();
    let (vnis, addresses) = fixture
        .run(3, |stores| async move {
            let nodes = stores
                .into_iter()
                .enumerate()
                .map(|(node, store)| async move {
                    let (mut vnis, mut addresses) = (Vec::new(), Vec::new());
                    let subnet = "10.200.0.0/24".parse().unwrap();
                    let gateway = "10.200.0.1".parse().unwrap();
                    for i in 0..20 {
                        let network = format!("net-{node}-{i}");
                        vnis.push(claim_vni(&store, &network, None).await.expect("vni"));
                        let holder = format!("ep-{node}-{i}");
                        let address =
                            claim_address(&store, "ov", subnet, &[gateway], None, &holder)
                                .await
                                .expect("address");
                        addresses.push(address);
                    }
                    (vnis, addresses)
                });
            let all = futures::future::join_all(nodes).await;
            let store = ClusterStore::connect(&[]).await.err();
            assert!(store.is_some(), "no endpoints is an error");
            all
        })
        .into_iter()
        .fold((Vec::new(), Vec::new()), |(mut v, mut a), (nv, na)| {
            v.extend(nv);
            a.extend(na);
            (v, a)
        });
    let unique_vnis: HashSet<u32> = vnis.iter().copied().collect();
    assert_eq!(unique_vnis.len(), 60, "{vnis:?}");
    assert!(vnis
        .iter()
        .all(|v| (FIRST_AUTO_VNI..FIRST_AUTO_VNI + 60).contains(v)));
    let unique_addresses: HashSet<_> = addresses.iter().copied().collect();
    assert_eq!(unique_addresses.len(), 60, "{addresses:?}");
    assert!(!unique_addresses.contains(&"10.200.0.1".parse().unwrap()));
    assert!(!unique_addresses.contains(&"10.200.0.0".parse().unwrap()));
    // A named VNI or address that is taken is refused, and a free one is given.
    fixture.run(1, |stores| async move {
        let store = &stores[0];
        let taken = claim_vni(store, "other", Some(FIRST_AUTO_VNI))
            .await
            .unwrap_err();
        assert!(matches!(taken, ClaimError::Taken(_)), "{taken}");
        assert_eq!(taken.to_string(), "vxlan-id 4096 is in use");
        assert_eq!(claim_vni(store, "other", Some(42)).await.unwrap(), 42);
        let out_of_range = claim_vni(store, "x", Some(1 << 24)).await.unwrap_err();
        assert!(matches!(out_of_range, ClaimError::Invalid(_)));
        let subnet = "10.200.0.0/24".parse().unwrap();
        let err = claim_address(
            store,
            "ov",
            subnet,
            &[],
            Some("10.200.0.2".parse().unwrap()),
            "x",
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "address 10.200.0.2 is in use");
    });
}

#[test]
fn a_cluster_is_made_once_joined_with_its_tokens_only_and_knows_who_is_alive() {
    use netctl_daemon::cluster_store::members::{
        announce, init, join, nodes, rotate_token, MembershipError, Newcomer, Role,
    };
    let fixture = Fixture::new();
    fixture.run(1, |stores| async move {
        let store = &stores[0];
        let newcomer = |id: &str, address: &str| Newcomer {
            id: id.to_string(),
            hostname: format!("host-{id}"),
            address: address.to_string(),
        };
        let (cluster, tokens) = init(store, &newcomer("n1", "203.0.113.11"), 4789)
            .await
            .unwrap();
        assert_eq!(cluster.vxlan_port, 4789);
        let again = init(store, &newcomer("n9", "203.0.113.19"), 4789)
            .await
            .unwrap_err();
        assert!(matches!(again, MembershipError::AlreadyInitialized(ref id) if *id == cluster.id));
        // Only hashes are stored: no token text anywhere in the store.
        let all = store.load(&Prefix::scope(Scope::Global)).await.unwrap();
        for entry in &all.entries {
            let text = String::from_utf8_lossy(&entry.value);
            assert!(!text.contains(&tokens.worker[20..]), "{text}");
            assert!(!text.contains(&tokens.manager[20..]), "{text}");
        }
        let (_, role) = join(store, &tokens.worker, &newcomer("n2", "203.0.113.12"))
            .await
            .unwrap();
        assert_eq!(role, Role::Worker);
        let (_, role) = join(store, &tokens.manager, &newcomer("n3", "203.0.113.13"))
            .await
            .unwrap();
        assert_eq!(role, Role::Manager);
        // A wrong token, or a rotated one, is refused and leaves nothing behind.
        let before = store
            .load(&Prefix::scope(Scope::Global))
            .await
            .unwrap()
            .entries;
        let wrong = format!("NETCTL-1-{}-{}", cluster.id, "0".repeat(32));
        let err = join(store, &wrong, &newcomer("n4", "203.0.113.14"))
            .await
            .unwrap_err();
        assert!(err.to_string().starts_with("invalid join token"), "{err}");
        let new_worker = rotate_token(store, Role::Worker).await.unwrap();
        let err = join(store, &tokens.worker, &newcomer("n4", "203.0.113.14"))
            .await
            .unwrap_err();
        assert!(matches!(err, MembershipError::BadToken(_)), "{err}");
        let after = store
            .load(&Prefix::kind(Scope::Global, "node"))
            .await
            .unwrap()
            .entries;
        assert_eq!(after.len(), 3, "no trace of n4");
        assert_eq!(
            before.len(),
            after.len() + 1,
            "cluster + three nodes before"
        );
        join(store, &new_worker, &newcomer("n4", "203.0.113.14"))
            .await
            .unwrap();
        // Alive while its lease lives.
        let lease = store.grant_lease(Duration::from_secs(5)).await.unwrap();
        announce(store, "n2", lease).await.unwrap();
        let ready = |list: &[netctl_daemon::cluster_store::members::NodeStatus], id: &str| {
            list.iter().find(|s| s.node.id == id).map(|s| s.ready)
        };
        let list = nodes(store).await.unwrap();
        assert_eq!(list.len(), 4);
        assert_eq!(ready(&list, "n2"), Some(true));
        assert_eq!(ready(&list, "n4"), Some(false));
        store.revoke_lease(lease).await.unwrap();
        let list = nodes(store).await.unwrap();
        assert_eq!(ready(&list, "n2"), Some(false), "down, and still listed");
    });
}

#[test]
fn a_backup_restored_into_an_empty_etcd_brings_back_networks_vnis_and_allocations() {
    use netctl_daemon::cluster_store::backup::{backup, restore, Backup, BackupError};
    use netctl_daemon::cluster_store::claims::{claim_address, claim_vni};
    use netctl_daemon::cluster_store::members::{announce, init, join, nodes, Newcomer};
    let fixture = Fixture::new();
    let newcomer = |id: &str| Newcomer {
        id: id.to_string(),
        hostname: id.to_string(),
        address: "203.0.113.11".to_string(),
    };
    let (file, token) = fixture.run(1, move |stores| async move {
        let store = &stores[0];
        let (_, tokens) = init(store, &newcomer("n1"), 4789).await.unwrap();
        let lease = store.grant_lease(Duration::from_secs(30)).await.unwrap();
        announce(store, "n1", lease).await.unwrap();
        assert_eq!(claim_vni(store, "ov", None).await.unwrap(), 4096);
        let subnet = "10.200.0.0/16".parse().unwrap();
        // More keys than one etcd transaction takes.
        for i in 0..250 {
            claim_address(store, "ov", subnet, &[], None, &format!("ep{i}"))
                .await
                .unwrap();
        }
        let taken = backup(store).await.unwrap();
        assert!(
            !taken
                .entries
                .iter()
                .any(|e| e.key.starts_with("global/node.alive/")),
            "liveness is not backed up"
        );
        (serde_json::to_string(&taken).unwrap(), tokens.worker)
    });
    fixture
        .etcd
        .etcdctl(&["del", "--prefix", "/netctl/"])
        .expect_ok();
    fixture.run(1, move |stores| async move {
        let store = &stores[0];
        let backup_file: Backup = serde_json::from_str(&file).unwrap();
        let restored = restore(store, &backup_file).await.unwrap();
        assert_eq!(restored, backup_file.entries.len());
        assert_eq!(
            restored,
            1 + 1 + 1 + 250,
            "cluster, node, VNI and 250 addresses"
        );
        let again = restore(store, &backup_file).await.unwrap_err();
        assert!(matches!(again, BackupError::NotEmpty(_)), "{again}");
        // The same cluster: its VNI and addresses are taken, its tokens still work, and the
        // node is there, down until it announces itself.
        assert_eq!(claim_vni(store, "ov2", None).await.unwrap(), 4097);
        let subnet = "10.200.0.0/16".parse().unwrap();
        let next = claim_address(store, "ov", subnet, &[], None, "ep-new")
            .await
            .unwrap();
        assert_eq!(next, "10.200.0.251".parse::<std::net::IpAddr>().unwrap());
        join(store, &token, &newcomer("n2")).await.unwrap();
        let list = nodes(store).await.unwrap();
        assert!(list.iter().any(|s| s.node.id == "n1" && !s.ready));
        let after = backup(store).await.unwrap();
        assert_eq!(after.entries.len(), restored + 3);
    });
}

#[test]
fn a_kept_lease_keeps_a_node_ready_a_restart_within_its_ttl_is_unseen_and_a_dead_node_goes_down() {
    use netctl_daemon::cluster_store::liveness::Liveness;
    use netctl_daemon::cluster_store::members::{init, nodes, Newcomer};
    use std::sync::{Arc, Mutex};
    let fixture = Fixture::new();
    fixture.run(2, |stores| async move {
        let (store, observer) = (stores[0].clone(), &stores[1]);
        let me = Newcomer {
            id: "n1".into(),
            hostname: "n1".into(),
            address: "203.0.113.11".into(),
        };
        init(&store, &me, 4789).await.unwrap();
        let ttl = Duration::from_secs(2);
        let granted = Arc::new(Mutex::new(Vec::new()));
        let record = |granted: &Arc<Mutex<Vec<i64>>>| {
            let granted = granted.clone();
            move |lease| granted.lock().unwrap().push(lease)
        };
        let ready = || async {
            nodes(observer)
                .await
                .unwrap()
                .iter()
                .any(|s| s.node.id == "n1" && s.ready)
        };
        let alive = Liveness::start(store.clone(), "n1".into(), ttl, None, record(&granted))
            .await
            .unwrap();
        let lease = granted.lock().unwrap()[0];
        tokio::time::sleep(ttl * 2).await;
        assert!(ready().await, "kept alive past two TTLs");
        // A restart: the keeper goes, a new one takes the same lease up within the TTL.
        let from = observer.current_revision().await.unwrap();
        let mut watch = observer
            .watch(&Prefix::kind(Scope::Global, "node.alive"), from)
            .unwrap();
        drop(alive);
        tokio::time::sleep(ttl / 2).await;
        let alive = Liveness::start(
            store.clone(),
            "n1".into(),
            ttl,
            Some(lease),
            record(&granted),
        )
        .await
        .unwrap();
        assert_eq!(
            granted.lock().unwrap().len(),
            1,
            "the same lease, taken up again"
        );
        tokio::time::sleep(ttl).await;
        while let Ok(Ok(changes)) =
            tokio::time::timeout(Duration::from_millis(100), watch.next()).await
        {
            assert!(
                !changes
                    .events
                    .iter()
                    .any(|e| matches!(e, Event::Delete { .. })),
                "another node saw n1 go down: {changes:?}"
            );
        }
        assert!(ready().await);
        // Gone for good: down within its TTL and a second.
        drop(alive);
        let gone = Instant::now();
        while ready().await {
            assert!(gone.elapsed() < ttl + Duration::from_secs(1), "still ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Back after its lease expired: a new lease, ready again.
        let _alive = Liveness::start(
            store.clone(),
            "n1".into(),
            ttl,
            Some(lease),
            record(&granted),
        )
        .await
        .unwrap();
        assert_eq!(granted.lock().unwrap().len(), 2, "a new lease");
        assert!(ready().await);
    });
}
