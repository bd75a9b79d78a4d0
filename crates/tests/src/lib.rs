//! Helpers shared by the integration tests in `tests/`.

pub mod as_user;
pub mod cluster;

use netctl_netns_fixtures::Host;
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

/// The endpoints `netctl network inspect` lists on `name` (its `Containers`).
#[track_caller]
pub fn containers_on(host: &Host, name: &str) -> Vec<Value> {
    network(host, name)["Containers"]
        .as_object()
        .expect("Containers")
        .values()
        .cloned()
        .collect()
}

/// Polls `check` every 100 ms until it holds, failing the test after `within`.
#[track_caller]
pub fn eventually(what: &str, within: std::time::Duration, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + within;
    while !check() {
        assert!(
            std::time::Instant::now() < deadline,
            "never happened: {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
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

/// The sandbox's network namespace file (`SandboxKey`).
#[track_caller]
pub fn netns_of(host: &Host, name: &str) -> String {
    sandbox(host, name)["NetworkSettings"]["SandboxKey"]
        .as_str()
        .expect("SandboxKey")
        .to_string()
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

/// What `dig` printed about one query.
#[derive(Debug, Clone, Default)]
pub struct Dig {
    /// NOERROR, NXDOMAIN, SERVFAIL, REFUSED, FORMERR…; empty when no answer came.
    pub status: String,
    /// The header flags (`qr aa rd ra tc`…).
    pub flags: Vec<String>,
    /// The answer section's data, in the order received.
    pub answers: Vec<String>,
    pub raw: String,
}

impl Dig {
    pub fn parse(text: &str) -> Self {
        let mut dig = Dig {
            raw: text.to_string(),
            ..Default::default()
        };
        for line in text.lines() {
            if let Some(rest) = line.split("status: ").nth(1) {
                dig.status = rest.split(',').next().unwrap_or_default().to_string();
            } else if let Some(rest) = line.strip_prefix(";; flags: ") {
                let flags = rest.split(';').next().unwrap_or_default();
                dig.flags = flags.split_whitespace().map(String::from).collect();
            } else if !line.starts_with(';') && !line.trim().is_empty() {
                if let Some(data) = line.split_whitespace().last() {
                    dig.answers.push(data.to_string());
                }
            }
        }
        dig
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
}

/// `dig ARGS…` inside the sandbox, through its resolv.conf (the embedded server), printing
/// the header and the answer section only.
pub fn dig(host: &Host, sandbox: &str, args: &[&str]) -> Dig {
    let mut all = vec![
        "dig",
        "+noall",
        "+comments",
        "+answer",
        "+tries=1",
        "+time=4",
    ];
    all.extend_from_slice(args);
    let out = host.sandbox_exec(sandbox, &all);
    Dig::parse(&out.stdout)
}

/// A DNS query for `name` (type A, class IN, RD set) with `id`, built by hand so tests can
/// also build broken ones.
pub fn dns_query(id: u16, name: &str) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in name.trim_end_matches('.').split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// The response code and the last A record of an answer to [`dns_query`].
pub fn dns_answer(answer: &[u8]) -> (u8, Option<std::net::Ipv4Addr>) {
    let rcode = answer[3] & 0x0f;
    let count = u16::from_be_bytes([answer[6], answer[7]]);
    let a = (count > 0 && answer.len() >= 4).then(|| {
        let o = &answer[answer.len() - 4..];
        std::net::Ipv4Addr::new(o[0], o[1], o[2], o[3])
    });
    (rcode, a)
}

/// The host's Docker plugin socket, spoken to as dockerd does.
pub struct PluginSocket {
    client: netctl_plugin_api::client::Client,
    runtime: tokio::runtime::Runtime,
}

impl PluginSocket {
    pub fn of(host: &Host) -> Self {
        Self {
            client: netctl_plugin_api::client::Client::new(
                host.docker_plugins().join("netctl.sock"),
            ),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    /// `POST PATH` with `body`: the status and the JSON answer.
    pub fn post(&self, path: &str, body: &str) -> (u16, serde_json::Value) {
        self.try_post(path, body).unwrap()
    }

    /// [`PluginSocket::post`], or why no answer came (the daemon died on the way).
    pub fn try_post(
        &self,
        path: &str,
        body: &str,
    ) -> Result<(u16, serde_json::Value), netctl_plugin_api::client::ClientError> {
        let (status, answer) =
            self.runtime
                .block_on(self.client.raw("POST", path, body.as_bytes().to_vec()))?;
        Ok((status, serde_json::from_slice(&answer).unwrap()))
    }
}
