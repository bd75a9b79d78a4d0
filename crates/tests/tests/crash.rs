//! A crash at any step loses nothing and leaks nothing. Each operation is run once per step
//! it takes, with the daemon armed to die (SIGKILL) just before that step (`NETCTL_CRASH_AT_STEP`,
//! read by debug builds only); after each crash the daemon is started again and:
//!
//! - the operation is either done or undone — and when undone, it is tried again and
//!   succeeds;
//! - what it made works (addresses are the first free ones, so none leaked or doubled;
//!   sandboxes reach their gateway and each other's names; published ports are in the
//!   firewall);
//! - taking everything down again leaves the kernel exactly as it was before the scenario
//!   (links, addresses, routes, bridge ports, the nft table's elements, namespaces): nothing
//!   leaked.
//!
//! The walk ends at the first step number that the operation no longer reaches.
//!
//! Overlay operations are walked on a node of a two-node cluster: there, "nothing leaked"
//! also means no key left in etcd and no overlay namespace or neighbour entry on either
//! node, and the other node's sandbox reaches the one made.

use std::time::{Duration, Instant};

use netctl_netns_fixtures::cni::{exec_plugin, Call, Container};
use netctl_netns_fixtures::{netctl_bin, Host};
use serde_json::{json, Value};
use tests::cluster::{within, Cluster, OVERLAY};
use tests::PluginSocket;

/// An operation: whether it answered with success.
type Operation<'a> = dyn Fn(&Host) -> Result<(), String> + 'a;

/// One operation under test and what surrounds it.
struct Scenario<'a> {
    /// What the operation is, for the log.
    name: String,
    /// Puts in place what the operation needs.
    setup: Box<dyn Fn(&Host) + 'a>,
    /// The operation: whether it answered with success.
    op: Box<Operation<'a>>,
    /// Whether the operation's effect is there.
    done: Box<dyn Fn(&Host) -> bool + 'a>,
    /// What must hold once it is done.
    check: Box<dyn Fn(&Host) + 'a>,
    /// Takes everything down.
    teardown: Box<dyn Fn(&Host) + 'a>,
}

/// A [`Scenario`] of the CLI's: set up, run and taken down by CLI commands.
struct Cli {
    setup: &'static [&'static [&'static str]],
    op: &'static [&'static str],
    done: fn(&Host) -> bool,
    check: fn(&Host),
    teardown: &'static [&'static [&'static str]],
}

impl From<Cli> for Scenario<'static> {
    fn from(cli: Cli) -> Self {
        let run_all = |commands: &'static [&'static [&'static str]]| {
            move |host: &Host| {
                for args in commands {
                    host.netctl(args).expect_ok();
                }
            }
        };
        Scenario {
            name: cli.op.join(" "),
            setup: Box::new(run_all(cli.setup)),
            op: Box::new(move |host: &Host| {
                let out = host.netctl(cli.op);
                out.ok().then_some(()).ok_or_else(|| format!("{out:?}"))
            }),
            done: Box::new(cli.done),
            check: Box::new(cli.check),
            teardown: Box::new(run_all(cli.teardown)),
        }
    }
}

const WEB: &[&str] = &["network", "create", "web", "--subnet", "172.30.0.0/24"];
const RM_WEB: &[&str] = &["network", "rm", "web"];
const A_PUBLISHING: &[&str] = &[
    "sandbox",
    "create",
    "a",
    "--network",
    "web",
    "-p",
    "8080:80",
];

fn ok(host: &Host, args: &[&str]) -> bool {
    host.netctl(args).ok()
}

/// Runs `scenario` with a crash before each step of its operation in turn.
fn walk(scenario: Scenario) {
    let mut host = Host::with_daemon();
    walk_on(&mut host, scenario, &|_| {});
    host.stop_daemon();
}

/// [`walk`] on `host`, whose daemon runs (a node of a cluster, say); `settle` waits after
/// each start of the daemon for what it must have caught up with before it is used (the
/// crash is armed after it: only the operation's steps count).
fn walk_on(host: &mut Host, scenario: Scenario, settle: &dyn Fn(&Host)) {
    let pristine = settled_snapshot(host);
    let mut crashes = 0;
    for step in 1.. {
        assert!(step < 200, "the operation never completed without a crash");
        (scenario.setup)(host);
        restart(host, Some(step));
        settle(host);
        host.arm_crash();
        let answered = (scenario.op)(host);
        let crashed = died(host);
        eprintln!("{}: step {step}: crashed: {crashed}", scenario.name);
        if crashed {
            crashes += 1;
            host.start_daemon();
            settle(host);
            if !(scenario.done)(host) {
                let again = (scenario.op)(host);
                let log = host.daemon_log();
                assert!(again.is_ok(), "step {step}, retried: {again:?}\n{log}");
            }
        } else {
            let log = host.daemon_log();
            assert!(answered.is_ok(), "step {step}: {answered:?}\n{log}");
            // Disarmed: the operation took fewer steps than that.
            restart(host, None);
            settle(host);
        }
        assert!(
            (scenario.done)(host),
            "step {step}: not done (crashed: {crashed}):\n{}",
            host.daemon_log()
        );
        (scenario.check)(host);
        (scenario.teardown)(host);
        // A removed namespace's links go in the kernel's own time: wait for them.
        within(Duration::from_secs(5), || {
            host.kernel_snapshot() == pristine
        });
        let now = host.kernel_snapshot();
        assert!(
            now == pristine,
            "step {step}: the kernel is not as it was:\n{}\n(log:\n{})",
            line_diff(&pristine, &now),
            host.daemon_log()
        );
        if !crashed {
            break;
        }
    }
    assert!(crashes > 0, "no step was crashed at");
    eprintln!("{}: crashed at each of its {crashes} steps", scenario.name);
}

/// The kernel as `host` has it once nothing changes any more (a removed namespace's
/// links go in the kernel's own time, and a bridge's carrier with its last port).
fn settled_snapshot(host: &Host) -> String {
    let mut last = host.kernel_snapshot();
    for _ in 0..25 {
        std::thread::sleep(Duration::from_millis(200));
        let now = host.kernel_snapshot();
        if now == last {
            return now;
        }
        last = now;
    }
    last
}

/// The lines only in `before` (`-`) and only in `after` (`+`).
fn line_diff(before: &str, after: &str) -> String {
    let gone = before.lines().filter(|l| !after.lines().any(|a| a == *l));
    let new = after.lines().filter(|l| !before.lines().any(|b| b == *l));
    gone.map(|l| format!("- {l}"))
        .chain(new.map(|l| format!("+ {l}")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Starts the daemon again, armed to crash before step `step` of what it serves.
fn restart(host: &mut Host, step: Option<usize>) {
    host.stop_daemon();
    match step {
        Some(n) => host.start_daemon_with_env(&[
            ("NETCTL_CRASH_AT_STEP", &n.to_string()),
            ("NETCTL_CRASH_ARM_ON_SIGNAL", "1"),
        ]),
        None => host.start_daemon(),
    }
}

/// Whether the daemon was killed by an injected crash (its exit may trail the CLI's answer
/// by a moment).
fn died(host: &mut Host) -> bool {
    let deadline = Instant::now() + Duration::from_millis(500);
    while Instant::now() < deadline {
        if host.daemon_died() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn address_of(host: &Host, sandbox: &str) -> String {
    tests::sandbox(host, sandbox)["NetworkSettings"]["Networks"]["web"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn published(host: &Host) -> bool {
    host.nft_table().contains("8080")
}

#[test]
fn network_create() {
    walk(
        Cli {
            setup: &[],
            op: WEB,
            done: |h| ok(h, &["network", "inspect", "web"]),
            check: |h| {
                assert_eq!(
                    tests::network(h, "web")["IPAM"]["Config"][0]["Subnet"],
                    "172.30.0.0/24"
                );
            },
            teardown: &[RM_WEB],
        }
        .into(),
    );
}

#[test]
fn network_rm() {
    walk(
        Cli {
            setup: &[WEB],
            op: RM_WEB,
            done: |h| !ok(h, &["network", "inspect", "web"]),
            check: |_| {},
            teardown: &[],
        }
        .into(),
    );
}

#[test]
fn sandbox_create_with_a_network_and_a_published_port() {
    walk(
        Cli {
            setup: &[WEB],
            op: A_PUBLISHING,
            done: |h| ok(h, &["sandbox", "inspect", "a"]),
            check: |h| {
                assert_eq!(address_of(h, "a"), "172.30.0.2", "the first free address");
                assert!(published(h), "{}", h.nft_table());
                h.sandbox_exec("a", &["ping", "-c1", "-W2", "172.30.0.1"])
                    .expect_ok();
            },
            teardown: &[&["sandbox", "rm", "a"], RM_WEB],
        }
        .into(),
    );
}

#[test]
fn sandbox_rm() {
    walk(
        Cli {
            setup: &[WEB, A_PUBLISHING],
            op: &["sandbox", "rm", "a"],
            done: |h| !ok(h, &["sandbox", "inspect", "a"]),
            check: |h| assert!(!published(h), "{}", h.nft_table()),
            teardown: &[RM_WEB],
        }
        .into(),
    );
}

#[test]
fn network_connect() {
    walk(
        Cli {
            setup: &[
                WEB,
                &["sandbox", "create", "a", "--network", "web"],
                &["sandbox", "create", "b"],
            ],
            op: &["network", "connect", "web", "b"],
            done: |h| !address_of(h, "b").is_empty(),
            check: |h| {
                assert_eq!(address_of(h, "b"), "172.30.0.3", "the first free address");
                let seen = h.sandbox_exec("a", &["dig", "+short", "+tries=1", "b"]);
                assert_eq!(seen.expect_ok().trim(), "172.30.0.3", "b's name");
                h.sandbox_exec("b", &["ping", "-c1", "-W2", "172.30.0.2"])
                    .expect_ok();
            },
            teardown: &[&["sandbox", "rm", "a", "b"], RM_WEB],
        }
        .into(),
    );
}

#[test]
fn network_disconnect() {
    walk(
        Cli {
            setup: &[
                WEB,
                &["sandbox", "create", "a", "--network", "web"],
                &["sandbox", "create", "b", "--network", "web"],
            ],
            op: &["network", "disconnect", "web", "b"],
            done: |h| address_of(h, "b").is_empty(),
            check: |h| {
                let seen = h.sandbox_exec("a", &["dig", "+short", "+tries=1", "b"]);
                assert_eq!(seen.expect_ok().trim(), "", "b's name is gone");
            },
            teardown: &[&["sandbox", "rm", "a", "b"], RM_WEB],
        }
        .into(),
    );
}

#[test]
fn publish_and_unpublish() {
    walk(
        Cli {
            setup: &[WEB, &["sandbox", "create", "a", "--network", "web"]],
            op: &["network", "publish", "web", "a", "-p", "8080:80"],
            done: published,
            check: |h| {
                let ports = h.netctl(&["port", "a"]).expect_ok();
                assert!(ports.contains("8080"), "{ports}");
            },
            teardown: &[&["sandbox", "rm", "a"], RM_WEB],
        }
        .into(),
    );
    walk(
        Cli {
            setup: &[WEB, A_PUBLISHING],
            op: &["network", "unpublish", "web", "a"],
            done: |h| !published(h),
            check: |_| {},
            teardown: &[&["sandbox", "rm", "a"], RM_WEB],
        }
        .into(),
    );
}

/// The runtime's CNI call for `container` on network `web`.
fn cni(host: &Host, command: &str, container: &Container) -> Result<(), String> {
    let netns = container.netns_path().display().to_string();
    let call = Call {
        command,
        container_id: &container.id,
        netns: &netns,
        ifname: "eth0",
        args: "",
    };
    let conf =
        json!({"cniVersion": "1.0.0", "name": "web", "type": "netctl", "socket": host.socket()});
    let answer = exec_plugin(&netctl_bin(), &call, &conf);
    answer
        .output
        .ok()
        .then_some(())
        .ok_or_else(|| format!("{:?}", answer.output))
}

fn attached(host: &Host) -> bool {
    !tests::containers_on(host, "web").is_empty()
}

fn container_address(container: &Container) -> String {
    container.ip(&["-4", "-o", "addr", "show"]).expect_ok()
}

#[test]
fn cni_add() {
    let container = Container::new();
    walk(Scenario {
        name: "CNI ADD".into(),
        setup: Box::new(|h| drop(h.netctl(WEB).expect_ok())),
        op: Box::new(|h| cni(h, "ADD", &container)),
        done: Box::new(attached),
        check: Box::new(|_| {
            assert!(container_address(&container).contains("172.30.0.2/24"));
            container
                .exec(&["ping", "-c1", "-W2", "172.30.0.1"])
                .expect_ok();
        }),
        teardown: Box::new(|h| {
            cni(h, "DEL", &container).unwrap();
            assert!(!container_address(&container).contains("eth0"));
            h.netctl(RM_WEB).expect_ok();
        }),
    });
}

#[test]
fn cni_del() {
    let container = Container::new();
    walk(Scenario {
        name: "CNI DEL".into(),
        setup: Box::new(|h| {
            h.netctl(WEB).expect_ok();
            cni(h, "ADD", &container).unwrap();
        }),
        op: Box::new(|h| cni(h, "DEL", &container)),
        done: Box::new(|h| !attached(h)),
        check: Box::new(|_| assert!(!container_address(&container).contains("eth0"))),
        teardown: Box::new(|h| drop(h.netctl(RM_WEB).expect_ok())),
    });
}

const DOCKER_NETWORK: &str = "dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd";
const DOCKER_ENDPOINT: &str = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee";

/// dockerd's `POST /NetworkDriver.METHOD` with `body`: the answer.
fn docker(host: &Host, method: &str, body: Value) -> Result<Value, String> {
    let (status, answer) = PluginSocket::of(host)
        .try_post(&format!("/NetworkDriver.{method}"), &body.to_string())
        .map_err(|e| format!("{method}: {e}"))?;
    (status == 200)
        .then_some(answer.clone())
        .ok_or_else(|| format!("{method}: {status} {answer}"))
}

fn docker_network(host: &Host) {
    let pool = json!([{"Pool": "10.72.0.0/24", "Gateway": "10.72.0.1/24"}]);
    let body = json!({"NetworkID": DOCKER_NETWORK, "IPv4Data": pool});
    docker(host, "CreateNetwork", body).unwrap();
}

fn endpoint() -> Value {
    json!({"NetworkID": DOCKER_NETWORK, "EndpointID": DOCKER_ENDPOINT})
}

/// The Docker network's endpoints, as netctl lists them.
fn docker_endpoints(host: &Host) -> usize {
    let listed = host
        .netctl(&["network", "ls", "--format", "json"])
        .expect_ok();
    tests::json(&listed)
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["Name"].as_str().unwrap().starts_with("docker-"))
        .map_or(0, |n| n["Containers"].as_object().unwrap().len())
}

/// The runtime end's name in the container, once dockerd has moved it there.
fn moved_into(container: &Container) -> Option<String> {
    let links = container.ip(&["-o", "link"]).expect_ok();
    links
        .lines()
        .filter_map(|l| l.split(':').nth(1))
        .map(|name| {
            name.trim()
                .split('@')
                .next()
                .unwrap_or_default()
                .to_string()
        })
        .find(|name| name != "lo")
}

/// dockerd starting a container: CreateEndpoint, Join, and the runtime end moved into the
/// container. After a failure dockerd deletes the endpoint before it tries again.
fn docker_start(host: &Host, container: &Container) -> Result<(), String> {
    if docker_endpoints(host) == 1 {
        let _ = docker(host, "Leave", endpoint());
        docker(host, "DeleteEndpoint", endpoint())?;
    }
    let mut create = endpoint();
    create["Interface"] = json!({"Address": "10.72.0.2/24"});
    docker(host, "CreateEndpoint", create)?;
    let mut join = endpoint();
    join["SandboxKey"] = json!("/var/run/docker/netns/x");
    let joined = docker(host, "Join", join)?;
    let taken = joined["InterfaceName"]["SrcName"]
        .as_str()
        .unwrap_or_default();
    let netns = container.netns_path().display().to_string();
    host.ip(&["link", "set", taken, "netns", &netns])
        .expect_ok();
    Ok(())
}

#[test]
fn docker_create_endpoint_and_join() {
    let container = Container::new();
    walk(Scenario {
        name: "Docker CreateEndpoint, Join".into(),
        setup: Box::new(docker_network),
        op: Box::new(|h| docker_start(h, &container)),
        done: Box::new(|_| moved_into(&container).is_some()),
        check: Box::new(|h| {
            assert_eq!(docker_endpoints(h), 1);
            let links = h.ip(&["-o", "link"]).expect_ok();
            assert_eq!(links.matches("master").count(), 1, "one port: {links}");
        }),
        teardown: Box::new(|h| {
            // dockerd hands the runtime end back before DeleteEndpoint.
            let taken = moved_into(&container).expect("the runtime end");
            let host_netns = h.netns_path().display().to_string();
            container
                .ip(&["link", "set", &taken, "netns", &host_netns])
                .expect_ok();
            docker(h, "Leave", endpoint()).unwrap();
            docker(h, "DeleteEndpoint", endpoint()).unwrap();
            docker(h, "DeleteNetwork", json!({"NetworkID": DOCKER_NETWORK})).unwrap();
        }),
    });
}

#[test]
fn docker_leave_and_delete_endpoint() {
    walk(Scenario {
        name: "Docker Leave, DeleteEndpoint".into(),
        setup: Box::new(|h| {
            docker_network(h);
            let mut create = endpoint();
            create["Interface"] = json!({"Address": "10.72.0.2/24"});
            docker(h, "CreateEndpoint", create).unwrap();
        }),
        op: Box::new(|h| {
            docker(h, "Leave", endpoint())?;
            docker(h, "DeleteEndpoint", endpoint()).map(drop)
        }),
        done: Box::new(|h| docker_endpoints(h) == 0),
        check: Box::new(|_| {}),
        teardown: Box::new(|h| {
            docker(h, "DeleteNetwork", json!({"NetworkID": DOCKER_NETWORK})).unwrap();
        }),
    });
}

/// A cluster of two managers; the walks crash node 0 (the subject, taken out of the
/// cluster's hosts so the checks can look at the rest while it restarts).
struct Overlay {
    cluster: Cluster,
    /// `/netctl/global/` keys with the cluster formed and nothing made.
    keys: String,
}

impl Overlay {
    fn new() -> (Self, Host) {
        let mut cluster = Cluster::formed(2);
        let subject = cluster.hosts.remove(0);
        // The gateway bridge's first port gives it routes it keeps (IPv6 multicast): take
        // the kernel's "before" after one such round, not before any.
        subject.netctl(OVERLAY).expect_ok();
        subject
            .netctl(&["sandbox", "create", "warm", "--network", "ov"])
            .expect_ok();
        subject.netctl(&["sandbox", "rm", "warm"]).expect_ok();
        subject.netctl(&["network", "rm", "ov"]).expect_ok();
        let keys = store_keys(&cluster);
        (Self { cluster, keys }, subject)
    }

    fn other(&self) -> &Host {
        &self.cluster.hosts[0]
    }

    /// Until the restarted `subject` is back in the cluster: the store reached, the node
    /// ready and a manager, and the global networks the other node knows, known.
    fn settle(&self, subject: &Host) {
        let globals = |host: &Host| {
            let listed = tests::json(
                &host
                    .netctl(&["network", "ls", "--format", "json"])
                    .expect_ok(),
            );
            let mut names: Vec<String> = listed
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["Scope"] == "global")
                .map(|n| n["Name"].as_str().unwrap().to_string())
                .collect();
            names.sort();
            names
        };
        within(Duration::from_secs(10), || {
            let out = subject.netctl(&["cluster", "inspect", "--format", "json"]);
            let Ok(inspect) = serde_json::from_str::<Value>(&out.stdout) else {
                return false;
            };
            inspect["StoreReachable"] == true
                && inspect["ThisNode"]["Status"] == "ready"
                && inspect["ThisNode"]["Role"] == "manager"
                && globals(subject) == globals(self.other())
        })
        .expect("the node is back in the cluster");
    }

    /// Nothing of the scenario is left: no key in etcd (network, VNI, name, subnet,
    /// endpoint, address claim) and no overlay namespace on either node.
    fn assert_clean(&self, subject: &Host) {
        let other = self.other();
        within(Duration::from_secs(5), || {
            overlay_segments(subject).is_empty() && overlay_segments(other).is_empty()
        })
        .unwrap_or_else(|| {
            panic!(
                "overlay namespaces left: {:?} {:?}",
                overlay_segments(subject),
                overlay_segments(other)
            )
        });
        assert_eq!(store_keys(&self.cluster), self.keys, "etcd keys left");
    }
}

fn store_keys(cluster: &Cluster) -> String {
    let keys = cluster
        .etcd
        .etcdctl(&["get", "--prefix", "--keys-only", "/netctl/global/"])
        .expect_ok();
    let mut keys: Vec<&str> = keys.lines().filter(|l| !l.is_empty()).collect();
    keys.sort();
    keys.join("\n")
}

fn overlay_segments(host: &Host) -> Vec<String> {
    std::fs::read_dir(host.exec_root().join("overlay"))
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn overlay_address(host: &Host, sandbox: &str) -> String {
    tests::sandbox(host, sandbox)["NetworkSettings"]["Networks"]["ov"]["IPAddress"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// What `dig -q a` answers in sandbox `b` on `host`: a's address, or nothing (`-q`: a bare
/// `a` is dig's record type A).
fn b_resolves_a(host: &Host) -> String {
    host.sandbox_exec("b", &["dig", "+short", "+tries=1", "-q", "a"])
        .stdout
        .trim()
        .to_string()
}

/// Everything in `host`'s overlay segments and sandbox `a`, for a failure's message.
fn overlay_dump(host: &Host) -> String {
    let mut out = String::new();
    for segment in overlay_segments(host) {
        let ns = host.exec_root().join("overlay").join(&segment);
        for args in [
            &["ip", "-o", "link"][..],
            &["ip", "-o", "addr"],
            &["bridge", "fdb", "show"],
            &["ip", "neigh"],
        ] {
            let got = netctl_netns_fixtures::command_in(&ns, args[0])
                .args(&args[1..])
                .output()
                .expect("dump");
            out.push_str(&format!(
                "== {segment}: {}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&got.stdout)
            ));
        }
    }
    out.push_str(&host.sandbox_exec("a", &["ip", "-o", "addr"]).stdout);
    out.push_str(&host.sandbox_exec("a", &["ip", "route"]).stdout);
    out
}

/// Permanent `ip neigh` entries in the overlay segments of `host`: one per remote endpoint.
fn remote_neighbours(host: &Host) -> Vec<String> {
    let mut entries = Vec::new();
    for segment in overlay_segments(host) {
        let ns = host.exec_root().join("overlay").join(segment);
        let out = netctl_netns_fixtures::command_in(&ns, "ip")
            .args(["neigh", "show", "dev", "vx0"])
            .output()
            .expect("ip neigh");
        entries.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| l.contains("PERMANENT"))
                .map(String::from),
        );
    }
    entries
}

#[test]
fn overlay_network_create_and_rm() {
    let (overlay, mut subject) = Overlay::new();
    let other_sees = |yes: bool| {
        within(Duration::from_secs(5), || {
            overlay.other().netctl(&["network", "inspect", "ov"]).ok() == yes
        })
        .is_some()
    };
    walk_on(
        &mut subject,
        Scenario {
            name: "overlay network create".into(),
            setup: Box::new(|_| {}),
            op: Box::new(|h| {
                let out = h.netctl(OVERLAY);
                out.ok().then_some(()).ok_or_else(|| format!("{out:?}"))
            }),
            done: Box::new(|h| ok(h, &["network", "inspect", "ov"])),
            check: Box::new(|h| {
                assert!(other_sees(true), "the other node has the network");
                // One more VNI and subnet claim than before: the network's, none leaked.
                let keys = store_keys(&overlay.cluster);
                for kind in ["/netctl/global/vni/", "/netctl/global/subnet/"] {
                    let before = overlay.keys.matches(kind).count();
                    assert_eq!(keys.matches(kind).count(), before + 1, "{keys}");
                }
                let inspect = tests::network(h, "ov");
                assert_eq!(inspect["IPAM"]["Config"][0]["Subnet"], "10.200.0.0/16");
            }),
            teardown: Box::new(|h| {
                h.netctl(&["network", "rm", "ov"]).expect_ok();
                assert!(other_sees(false), "the other node dropped the network");
                overlay.assert_clean(h);
            }),
        },
        &|h| overlay.settle(h),
    );
    walk_on(
        &mut subject,
        Scenario {
            name: "overlay network rm".into(),
            setup: Box::new(|h| {
                h.netctl(OVERLAY).expect_ok();
                assert!(other_sees(true));
            }),
            op: Box::new(|h| {
                let out = h.netctl(&["network", "rm", "ov"]);
                out.ok().then_some(()).ok_or_else(|| format!("{out:?}"))
            }),
            done: Box::new(|h| !ok(h, &["network", "inspect", "ov"])),
            check: Box::new(|_| assert!(other_sees(false), "the other node dropped it")),
            teardown: Box::new(|h| overlay.assert_clean(h)),
        },
        &|h| overlay.settle(h),
    );
    subject.stop_daemon();
}

#[test]
fn overlay_attach_and_detach() {
    let (overlay, mut subject) = Overlay::new();
    let other = overlay.other();
    // Each time: the network, and a sandbox on the other node that must reach ours.
    let setup = |h: &Host| {
        h.netctl(OVERLAY).expect_ok();
        within(Duration::from_secs(5), || {
            other
                .netctl(&["sandbox", "create", "b", "--network", "ov"])
                .ok()
        })
        .expect("b on the other node");
    };
    let teardown = |h: &Host| {
        other.netctl(&["sandbox", "rm", "b"]).expect_ok();
        h.netctl(&["network", "rm", "ov"]).expect_ok();
        overlay.assert_clean(h);
    };
    walk_on(
        &mut subject,
        Scenario {
            name: "overlay sandbox create".into(),
            setup: Box::new(setup),
            op: Box::new(|h| {
                let out = h.netctl(&["sandbox", "create", "a", "--network", "ov"]);
                out.ok().then_some(()).ok_or_else(|| format!("{out:?}"))
            }),
            done: Box::new(|h| ok(h, &["sandbox", "inspect", "a"])),
            check: Box::new(|h| {
                let a = overlay_address(h, "a");
                assert_ne!(a, overlay_address(other, "b"));
                within(Duration::from_secs(5), || other.ping("b", &a)).unwrap_or_else(|| {
                    panic!(
                        "b does not reach a ({a}): {:?}; here: {:?} {:?}\n{}\n--- this node:\n{}\n--- the other:\n{}",
                        remote_neighbours(other),
                        remote_neighbours(h),
                        overlay_dump(h),
                        store_keys(&overlay.cluster),
                        h.daemon_log(),
                        other.daemon_log()
                    )
                });
                let entries = remote_neighbours(other);
                assert!(
                    entries.len() == 1 && entries[0].starts_with(&format!("{a} ")),
                    "one neighbour entry, a's ({a}): {entries:?}\n{}",
                    store_keys(&overlay.cluster)
                );
                // a's claim and b's, no other: an attach undone by a crash gave its back.
                let claims = store_keys(&overlay.cluster);
                assert!(claims.contains(&format!("/{a}")), "{claims}");
                assert_eq!(
                    claims.matches("/netctl/global/address/").count(),
                    2,
                    "{claims}"
                );
                within(Duration::from_secs(5), || b_resolves_a(other) == a).unwrap_or_else(|| {
                    let dig = other.sandbox_exec("b", &["dig", "+tries=1", "-q", "a"]);
                    panic!(
                        "b does not resolve a's name ({a}): {dig:?}\n{}",
                        other.daemon_log()
                    )
                });
                h.netctl(&["sandbox", "rm", "a"]).expect_ok();
                within(Duration::from_secs(5), || {
                    remote_neighbours(other).is_empty()
                })
                .expect("a's neighbour entry goes with it");
                within(Duration::from_secs(5), || b_resolves_a(other).is_empty())
                    .expect("a's name goes with it");
            }),
            teardown: Box::new(teardown),
        },
        &|h| overlay.settle(h),
    );
    walk_on(
        &mut subject,
        Scenario {
            name: "overlay sandbox rm".into(),
            setup: Box::new(|h| {
                setup(h);
                h.netctl(&["sandbox", "create", "a", "--network", "ov"])
                    .expect_ok();
            }),
            op: Box::new(|h| {
                let out = h.netctl(&["sandbox", "rm", "a"]);
                out.ok().then_some(()).ok_or_else(|| format!("{out:?}"))
            }),
            done: Box::new(|h| !ok(h, &["sandbox", "inspect", "a"])),
            check: Box::new(|_| {
                within(Duration::from_secs(5), || {
                    remote_neighbours(other).is_empty()
                })
                .expect("a's neighbour entry is gone from the other node");
                within(Duration::from_secs(5), || b_resolves_a(other).is_empty())
                    .expect("a's name is gone from the other node");
                let claims = store_keys(&overlay.cluster);
                assert_eq!(
                    claims.matches("/netctl/global/address/").count(),
                    1,
                    "{claims}"
                );
            }),
            teardown: Box::new(teardown),
        },
        &|h| overlay.settle(h),
    );
    subject.stop_daemon();
}
