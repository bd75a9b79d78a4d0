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

use std::time::{Duration, Instant};

use netctl_netns_fixtures::Host;

/// One operation under test and what surrounds it.
struct Scenario {
    /// Puts in place what the operation needs.
    setup: &'static [&'static [&'static str]],
    /// The operation (CLI arguments).
    op: &'static [&'static str],
    /// Whether the operation's effect is there.
    done: fn(&Host) -> bool,
    /// What must hold once it is done.
    check: fn(&Host),
    /// Takes everything down.
    teardown: &'static [&'static [&'static str]],
}

const WEB: &[&str] = &["network", "create", "web", "--subnet", "172.30.0.0/24"];
const RM_WEB: &[&str] = &["network", "rm", "web"];

fn ok(host: &Host, args: &[&str]) -> bool {
    host.netctl(args).ok()
}

/// Runs `scenario` with a crash before each step of its operation in turn.
fn walk(scenario: Scenario) {
    let mut host = Host::with_daemon();
    let pristine = host.kernel_snapshot();
    let mut crashes = 0;
    for step in 1.. {
        assert!(step < 200, "the operation never completed without a crash");
        for args in scenario.setup {
            host.netctl(args).expect_ok();
        }
        restart(&mut host, Some(step));
        let answered = host.netctl(scenario.op);
        let crashed = died(&mut host);
        if crashed {
            crashes += 1;
            host.start_daemon();
            if !(scenario.done)(&host) {
                let again = host.netctl(scenario.op);
                assert!(
                    again.ok(),
                    "step {step}, retried: {again:?}\n{}",
                    host.daemon_log()
                );
            }
        } else {
            assert!(
                answered.ok(),
                "step {step}: {answered:?}\n{}",
                host.daemon_log()
            );
            // Disarmed: the operation took fewer steps than that.
            restart(&mut host, None);
        }
        assert!((scenario.done)(&host), "step {step}: not done");
        (scenario.check)(&host);
        for args in scenario.teardown {
            host.netctl(args).expect_ok();
        }
        assert_eq!(
            host.kernel_snapshot(),
            pristine,
            "step {step}: the kernel is not as it was (log:\n{})",
            host.daemon_log()
        );
        if !crashed {
            break;
        }
    }
    assert!(crashes > 0, "no step was crashed at");
    eprintln!("{:?}: crashed at each of its {crashes} steps", scenario.op);
    host.stop_daemon();
}

/// Starts the daemon again, armed to crash before step `step` of what it serves.
fn restart(host: &mut Host, step: Option<usize>) {
    host.stop_daemon();
    match step {
        Some(n) => host.start_daemon_with_env(&[("NETCTL_CRASH_AT_STEP", &n.to_string())]),
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
    walk(Scenario {
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
    });
}

#[test]
fn network_rm() {
    walk(Scenario {
        setup: &[WEB],
        op: RM_WEB,
        done: |h| !ok(h, &["network", "inspect", "web"]),
        check: |_| {},
        teardown: &[],
    });
}

#[test]
fn sandbox_create_with_a_network_and_a_published_port() {
    walk(Scenario {
        setup: &[WEB],
        op: &[
            "sandbox",
            "create",
            "a",
            "--network",
            "web",
            "-p",
            "8080:80",
        ],
        done: |h| ok(h, &["sandbox", "inspect", "a"]),
        check: |h| {
            assert_eq!(address_of(h, "a"), "172.30.0.2", "the first free address");
            assert!(published(h), "{}", h.nft_table());
            h.sandbox_exec("a", &["ping", "-c1", "-W2", "172.30.0.1"])
                .expect_ok();
        },
        teardown: &[&["sandbox", "rm", "a"], RM_WEB],
    });
}

#[test]
fn sandbox_rm() {
    walk(Scenario {
        setup: &[
            WEB,
            &[
                "sandbox",
                "create",
                "a",
                "--network",
                "web",
                "-p",
                "8080:80",
            ],
        ],
        op: &["sandbox", "rm", "a"],
        done: |h| !ok(h, &["sandbox", "inspect", "a"]),
        check: |h| assert!(!published(h), "{}", h.nft_table()),
        teardown: &[RM_WEB],
    });
}

#[test]
fn network_connect() {
    walk(Scenario {
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
    });
}

#[test]
fn network_disconnect() {
    walk(Scenario {
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
    });
}

#[test]
fn publish_and_unpublish() {
    walk(Scenario {
        setup: &[WEB, &["sandbox", "create", "a", "--network", "web"]],
        op: &["network", "publish", "web", "a", "-p", "8080:80"],
        done: published,
        check: |h| {
            let ports = h.netctl(&["port", "a"]).expect_ok();
            assert!(ports.contains("8080"), "{ports}");
        },
        teardown: &[&["sandbox", "rm", "a"], RM_WEB],
    });
    walk(Scenario {
        setup: &[
            WEB,
            &[
                "sandbox",
                "create",
                "a",
                "--network",
                "web",
                "-p",
                "8080:80",
            ],
        ],
        op: &["network", "unpublish", "web", "a"],
        done: |h| !published(h),
        check: |_| {},
        teardown: &[&["sandbox", "rm", "a"], RM_WEB],
    });
}
