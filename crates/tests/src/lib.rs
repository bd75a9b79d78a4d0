//! Helpers shared by the integration tests in `tests/`.

use netns_fixtures::Host;
use serde_json::Value;

/// Parses a command's JSON output.
#[track_caller]
pub fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// `netctl network inspect NAME --format json`, the one network.
#[track_caller]
pub fn network(host: &Host, name: &str) -> Value {
    json(
        &host
            .netctl(&["network", "inspect", name, "--format", "json"])
            .expect_ok(),
    )[0]
    .clone()
}

/// `netctl sandbox inspect NAME --format json`, the one sandbox.
#[track_caller]
pub fn sandbox(host: &Host, name: &str) -> Value {
    json(
        &host
            .netctl(&["sandbox", "inspect", name, "--format", "json"])
            .expect_ok(),
    )[0]
    .clone()
}

/// The sandbox's IPv4 address on `network`.
#[track_caller]
pub fn address(host: &Host, sandbox_name: &str, network: &str) -> String {
    let s = sandbox(host, sandbox_name);
    s["NetworkSettings"]["Networks"][network]["IPAddress"]
        .as_str()
        .expect("address")
        .to_string()
}

/// Everything the API and the kernel show, for "nothing changed" assertions.
pub fn full_state(host: &Host) -> String {
    let api = ["network", "sandbox"]
        .iter()
        .map(|kind| host.netctl(&[kind, "ls", "--format", "json"]).expect_ok())
        .collect::<Vec<_>>()
        .join("\n");
    format!("{api}\n{}", host.kernel_snapshot())
}

/// Asserts two snapshots hold the same lines, as many times each (order aside: a re-created
/// link lists elsewhere), printing only the lines that differ.
#[track_caller]
pub fn assert_same(before: &str, after: &str, context: &str) {
    let (mut b, mut a): (Vec<_>, Vec<_>) = (before.lines().collect(), after.lines().collect());
    b.sort_unstable();
    a.sort_unstable();
    if a == b {
        return;
    }
    let gone: Vec<_> = b.iter().filter(|l| !a.contains(l)).collect();
    let new: Vec<_> = a.iter().filter(|l| !b.contains(l)).collect();
    panic!(
        "{context}: state changed ({} lines before, {} after)\n--- only before:\n{gone:#?}\n+++ only after:\n{new:#?}",
        b.len(),
        a.len()
    );
}
