//! The embedded DNS server's side of the controller: serving sandboxes, their resolv.conf
//! and hosts files, and explaining a sandbox's resolution.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use netctl_dns::{DnsSettings, Resolution, Source};
use netctl_plugin_api::DnsExplain;

use super::Controller;
use crate::controller::error::EngineError;
use crate::model::{SandboxMode, SandboxRecord};
use crate::paths::Paths;

/// What Docker puts in every container's hosts file before the container's own lines.
const HOSTS_PREAMBLE: &str = "127.0.0.1\tlocalhost
::1\tlocalhost ip6-localhost ip6-loopback
fe00::0\tip6-localnet
ff00::0\tip6-mcastprefix
ff02::1\tip6-allnodes
ff02::2\tip6-allrouters
";

impl Paths {
    /// Per-sandbox files, one directory each, named by the sandbox id's first 12 digits.
    pub fn sandbox_files(&self) -> PathBuf {
        self.exec_root.join("sandboxes")
    }

    /// Where a sandbox's resolv.conf is written, for a runtime to bind-mount.
    pub fn resolv_conf(&self, sandbox_id: &str) -> PathBuf {
        self.sandbox_files()
            .join(&sandbox_id[..12])
            .join("resolv.conf")
    }

    /// Where a sandbox's hosts file is written, for a runtime to bind-mount.
    pub fn hosts(&self, sandbox_id: &str) -> PathBuf {
        self.sandbox_files().join(&sandbox_id[..12]).join("hosts")
    }

    /// Where the identity of a sandbox's namespace is kept (see `namespaces::remember_id`);
    /// the file's name is from when it held the inode alone, kept so a newer daemon reads
    /// what an older one wrote.
    pub fn netns_id(&self, sandbox_id: &str) -> PathBuf {
        self.sandbox_files()
            .join(&sandbox_id[..12])
            .join("netns-inode")
    }
}

/// The host's resolv.conf; a missing or unreadable one says nothing.
pub(super) fn host_dns(path: &Path) -> DnsSettings {
    match std::fs::read_to_string(path) {
        Ok(text) => netctl_dns::settings::parse_resolv_conf(&text),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the host's resolv.conf");
            DnsSettings::default()
        }
    }
}

impl Controller {
    /// Starts serving DNS in the sandbox and writes its resolv.conf. Sandboxes in the host's
    /// namespace get a resolv.conf naming the upstreams themselves (as with Docker).
    pub(super) async fn start_dns(&self, sandbox: &SandboxRecord) -> Result<(), EngineError> {
        let resolution = self
            .dns
            .add_sandbox(&sandbox.id, &DnsSettings::from(&sandbox.dns));
        if sandbox.mode.has_own_namespace() {
            let redirect: netctl_dns::Redirect = Box::new(|port| {
                netctl_drivers::firewall::dns_redirect::redirect_dns_here(
                    netctl_dns::SERVER_ADDRESS,
                    port,
                )
                .map_err(|e| e.to_string())
            });
            if sandbox.mode == SandboxMode::Runtime {
                self.serve_runtime_dns(sandbox, redirect)?;
            } else if let Err(e) = self.dns.serve(&sandbox.id, &sandbox.netns, redirect).await {
                self.dns.remove_sandbox(&sandbox.id);
                return Err(EngineError::from(e));
            }
        }
        self.write_resolv_conf(sandbox, &resolution, Make::Yes)?;
        self.write_hosts(sandbox, &[])
    }

    /// A runtime's container: served from a task of its own, off the answer's path (the
    /// redirect costs a process), as the runtime starts the container only after the
    /// answer. The namespace is reached through the daemon's own handle (its path may be
    /// the runtime's alone), kept open by the task until the server is up.
    fn serve_runtime_dns(
        &self,
        sandbox: &SandboxRecord,
        redirect: netctl_dns::Redirect,
    ) -> Result<(), EngineError> {
        let netns = self.namespaces.get(&sandbox.id).ok_or_else(|| {
            EngineError::internal(format!("container {} has no open namespace", sandbox.name))
        })?;
        let (dns, id, name) = (self.dns.clone(), sandbox.id.clone(), sandbox.name.clone());
        tokio::spawn(async move {
            if let Err(e) = dns.serve(&id, &netns.fd_path(), redirect).await {
                tracing::error!(container = %name, error = %e, "cannot serve DNS");
            }
        });
        Ok(())
    }

    pub(super) fn stop_dns(&self, sandbox: &SandboxRecord) {
        self.dns.remove_sandbox(&sandbox.id);
        if let Some(dir) = self.paths.resolv_conf(&sandbox.id).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Written in place, not replaced: a runtime's bind mount keeps showing the same file.
    /// Made only with the sandbox (`Make::Yes`): an update meeting a sandbox being removed
    /// leaves no file behind.
    pub(super) fn write_resolv_conf(
        &self,
        sandbox: &SandboxRecord,
        resolution: &Resolution,
        make: Make,
    ) -> Result<(), EngineError> {
        let text = resolution.resolv_conf(sandbox.mode.has_own_namespace());
        write_in_place(&self.paths.resolv_conf(&sandbox.id), &text, make)
    }

    /// The sandbox's hosts file, as Docker writes it: localhost, then the sandbox's hostname
    /// at each of its addresses. A sandbox in the host's namespace sees the host's own.
    pub(super) fn write_hosts(
        &self,
        sandbox: &SandboxRecord,
        addresses: &[IpAddr],
    ) -> Result<(), EngineError> {
        let text = match sandbox.mode {
            SandboxMode::Host => std::fs::read_to_string("/etc/hosts").unwrap_or_default(),
            SandboxMode::Isolated | SandboxMode::Runtime => {
                let mut text = hosts_file(&sandbox.hostname, addresses);
                for extra in &sandbox.extra_hosts {
                    text.push_str(&format!("{}\t{}\n", extra.address, extra.name));
                }
                text
            }
        };
        write_in_place(&self.paths.hosts(&sandbox.id), &text, Make::Yes)
    }

    /// New daemon-wide settings: every sandbox's resolution and resolv.conf follow. The
    /// files are written without the state lock: a thousand sandboxes take a while.
    pub(super) async fn apply_dns_defaults(&self, daemon: DnsSettings, host: DnsSettings) {
        self.dns.set_defaults(daemon, host);
        let sandboxes: Vec<SandboxRecord> = self.state.lock().await.sandboxes().cloned().collect();
        for sandbox in &sandboxes {
            if let Some(resolution) = self.dns.resolution(&sandbox.id) {
                if let Err(e) = self.write_resolv_conf(sandbox, &resolution, Make::No) {
                    tracing::warn!(sandbox = %sandbox.name, error = %e, "cannot update resolv.conf");
                }
            }
        }
    }

    pub async fn explain_dns(&self, key: &str) -> Result<DnsExplain, EngineError> {
        let state = self.state.lock().await;
        let sandbox = state.sandbox(key)?;
        let resolution = self.dns.resolution(&sandbox.id).ok_or_else(|| {
            EngineError::internal(format!("sandbox {} has no DNS settings", sandbox.name))
        })?;
        let embedded = sandbox.mode.has_own_namespace();
        let forwarding = !embedded || self.dns.may_forward(&sandbox.id);
        let upstreams: Vec<String> = resolution
            .upstreams
            .iter()
            .map(|u| u.text.clone())
            .collect();
        let unreachable: Vec<String> = resolution
            .upstreams
            .iter()
            .filter_map(|u| unroutable(u.addr).map(|why| format!("{}: {why}", u.text)))
            .collect();
        let mut reasons = reasons(&resolution, embedded, forwarding);
        if forwarding && !upstreams.is_empty() && unreachable.len() == upstreams.len() {
            reasons.push(
                "no upstream can be reached from the daemon's network namespace: forwarded names get SERVFAIL".into(),
            );
        }
        Ok(DnsExplain {
            sandbox: sandbox.name.clone(),
            nameservers: if embedded {
                vec![netctl_dns::SERVER_ADDRESS.to_string()]
            } else {
                upstreams.clone()
            },
            resolv_conf_path: self.paths.resolv_conf(&sandbox.id).display().to_string(),
            upstreams,
            upstreams_from: source_name(resolution.upstreams_from).into(),
            unusable: resolution
                .unusable
                .iter()
                .map(|(server, why)| format!("{server}: {why}"))
                .collect(),
            search: resolution.search.clone(),
            search_from: source_name(resolution.search_from).into(),
            options: resolution.options.clone(),
            options_from: source_name(resolution.options_from).into(),
            forwarding,
            unreachable,
            reasons,
        })
    }
}

/// Why the daemon's network namespace cannot reach `upstream`, if it cannot: it has no
/// route there (or no address of that family). A UDP `connect` looks the route up and
/// sends nothing.
fn unroutable(upstream: std::net::SocketAddr) -> Option<String> {
    let any: std::net::SocketAddr = if upstream.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = match std::net::UdpSocket::bind(any) {
        Ok(socket) => socket,
        Err(e) => return Some(format!("no socket of its family here ({e})")),
    };
    socket
        .connect(upstream)
        .err()
        .map(|e| format!("no route from the daemon's network namespace ({e})"))
}

fn source_name(source: Source) -> &'static str {
    match source {
        Source::Sandbox => "sandbox",
        Source::DaemonConfig => "daemon-config",
        Source::Host => "host",
        Source::Nowhere => "nowhere",
    }
}

fn described(source: Source) -> &'static str {
    match source {
        Source::Sandbox => "the sandbox's own settings (--dns, --dns-search, --dns-option)",
        Source::DaemonConfig => "daemon.json",
        Source::Host => "the host's resolv.conf",
        Source::Nowhere => "nowhere",
    }
}

fn reasons(r: &Resolution, embedded: bool, forwarding: bool) -> Vec<String> {
    let mut reasons = Vec::new();
    if embedded {
        reasons.push(
            "names of sandboxes on the same networks are answered by netctl at 127.0.0.11"
                .to_string(),
        );
    } else {
        reasons.push(
            "in the host's namespace: no embedded server, upstreams are used directly".into(),
        );
    }
    match (forwarding, r.upstreams.is_empty()) {
        (false, _) => reasons
            .push("only internal networks: other names are refused, nothing is forwarded".into()),
        (true, true) => reasons.push("no usable upstream: other names get SERVFAIL".into()),
        (true, false) => reasons.push(format!(
            "other names are forwarded from the host's namespace to the upstreams from {}; one \
             that does not answer within {} ms is passed over for the next",
            described(r.upstreams_from),
            netctl_dns::HEDGE_AFTER.as_millis()
        )),
    }
    if r.upstreams_from == Source::Sandbox {
        reasons.push(
            "the sandbox's --dns overrides daemon.json's dns and the host's resolv.conf".into(),
        );
    } else if r.upstreams_from == Source::DaemonConfig {
        reasons.push("daemon.json's dns overrides the host's resolv.conf".into());
    }
    if r.search_from != Source::Nowhere {
        reasons.push(format!("search domains from {}", described(r.search_from)));
    }
    if r.options_from != Source::Nowhere {
        reasons.push(format!("options from {}", described(r.options_from)));
    }
    if forwarding && r.single_labels_stay_local() {
        reasons.push(
            "ndots is 1 or more: names without a dot are answered locally (NXDOMAIN when unknown), never forwarded"
                .into(),
        );
    }
    reasons
}

/// Whether a sandbox file that is missing is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Make {
    Yes,
    No,
}

/// Rewrites `path` (made with its directory if missing, when `make` says so) without
/// replacing the file: a runtime's bind mount keeps showing it. Overwritten, not truncated
/// first, and shortened only when the new text is shorter: truncating costs a journal
/// commit on ext4 (a third of a millisecond, on every connect).
fn write_in_place(path: &Path, text: &str, make: Make) -> Result<(), EngineError> {
    use std::io::Write;
    let written = (|| {
        if make == Make::Yes {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
        }
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .create(make == Make::Yes)
            .truncate(false)
            .open(path);
        let mut file = match opened {
            Err(e) if make == Make::No && e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            opened => opened?,
        };
        file.write_all(text.as_bytes())?;
        if file.metadata()?.len() > text.len() as u64 {
            file.set_len(text.len() as u64)?;
        }
        Ok::<(), std::io::Error>(())
    })();
    written.map_err(|e| EngineError::internal(format!("cannot write {}: {e}", path.display())))
}

fn hosts_file(hostname: &str, addresses: &[IpAddr]) -> String {
    let mut text = HOSTS_PREAMBLE.to_string();
    for address in addresses {
        text.push_str(&format!("{address}\t{hostname}\n"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_files_read_like_dockers() {
        let text = hosts_file(
            "web",
            &["172.30.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
        );
        assert!(
            text.starts_with("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
        );
        assert!(
            text.ends_with("ip6-allrouters\n172.30.0.2\tweb\nfd00::2\tweb\n"),
            "{text}"
        );
    }
}
