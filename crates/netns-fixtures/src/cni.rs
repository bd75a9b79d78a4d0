//! A CNI runtime's side, as the spec defines it: containers are namespaces made by the test
//! (`ip netns add`), and the plugin is exec'd with the `CNI_*` environment and the network
//! configuration on stdin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::{run, Output};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A runtime's container: a network namespace of its own, removed on drop (as a runtime
/// removes it, whether or not it said DEL).
pub struct Container {
    pub id: String,
    netns: String,
}

impl Container {
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let netns = format!("ncc-{}-{n}", std::process::id());
        run("ip", &["netns", "add", &netns]).expect_ok();
        Self {
            id: format!("c{}x{n}", std::process::id()),
            netns,
        }
    }

    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// `/run/netns/NAME`: what the runtime passes as `CNI_NETNS`.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/netns/{}", self.netns))
    }

    /// `ip -n NETNS ARGS…`
    pub fn ip(&self, args: &[&str]) -> Output {
        crate::host::ip_in(&self.netns, args)
    }

    /// `ip netns exec NETNS ARGS…`
    pub fn exec(&self, args: &[&str]) -> Output {
        crate::host::exec_in(&self.netns, args)
    }

    /// Removes the namespace now (a container gone without DEL).
    pub fn remove(&mut self) {
        let _ = run("ip", &["netns", "del", &self.netns]);
    }
}

impl Default for Container {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

/// One plugin call: the command, the container, the interface and `CNI_ARGS`.
#[derive(Debug, Clone, Default)]
pub struct Call<'a> {
    pub command: &'a str,
    pub container_id: &'a str,
    pub netns: &'a str,
    pub ifname: &'a str,
    pub args: &'a str,
}

/// What the plugin printed, and its stdout as JSON (`Value::Null` when empty or not JSON).
pub struct Answer {
    pub output: Output,
    pub json: Value,
}

impl Answer {
    /// The error object's code, when the call failed with one.
    pub fn code(&self) -> Option<u64> {
        self.json["code"].as_u64()
    }
}

/// Execs `plugin` as a runtime does (libcni's `ExecPlugin`): a clean environment but for
/// `PATH`, the `CNI_*` variables, and `config` on stdin.
pub fn exec_plugin(plugin: &Path, call: &Call, config: &Value) -> Answer {
    let mut cmd = Command::new(plugin);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.args)
        .env("CNI_PATH", plugin.parent().unwrap_or(Path::new("/")))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    exec(cmd, config.to_string().as_bytes())
}

/// As [`exec_plugin`], with raw bytes on stdin (bad input).
pub fn exec_plugin_raw(plugin: &Path, call: &Call, stdin: &[u8]) -> Answer {
    let mut cmd = Command::new(plugin);
    cmd.env_clear()
        .env("CNI_COMMAND", call.command)
        .env("CNI_CONTAINERID", call.container_id)
        .env("CNI_NETNS", call.netns)
        .env("CNI_IFNAME", call.ifname)
        .env("CNI_ARGS", call.args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    exec(cmd, stdin)
}

fn exec(mut cmd: Command, stdin: &[u8]) -> Answer {
    let mut child = cmd.spawn().expect("exec the plugin");
    let _ = child.stdin.take().expect("stdin").write_all(stdin);
    let output = Output::from(child.wait_with_output().expect("wait for the plugin"));
    let json = serde_json::from_str(output.stdout.trim()).unwrap_or(Value::Null);
    Answer { output, json }
}
