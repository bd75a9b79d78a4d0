//! The embedded DNS server's side of the controller: registering sandboxes and endpoints,
//! resolv.conf files, explaining a sandbox's resolution, and applying changes to daemon.json's
//! `dns*` settings and the host's resolv.conf while running.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dns::{DnsSettings, EndpointNames, Resolution, Source};
use plugin_api::{ApiError, DnsExplain};

use super::errors::from_dns;
use super::Controller;
use crate::model::{DriverKind, EndpointRecord, NetworkRecord, SandboxMode, SandboxRecord};
use crate::{DaemonConfig, Paths};

/// How often daemon.json and the host's resolv.conf are looked at for changes.
const WATCH_EVERY: Duration = Duration::from_secs(1);

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
}

/// The names an endpoint answers to on its network: the sandbox's name, its hostname and
/// the endpoint's aliases.
pub(super) fn endpoint_names(
    net: &NetworkRecord,
    sandbox: &SandboxRecord,
    ep: &EndpointRecord,
) -> Option<EndpointNames> {
    if net.driver != DriverKind::Bridge {
        return None;
    }
    let mut names = vec![sandbox.name.clone()];
    for name in std::iter::once(&sandbox.hostname).chain(&ep.aliases) {
        if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            names.push(name.clone());
        }
    }
    Some(EndpointNames {
        endpoint_id: ep.id.clone(),
        network_id: net.id.clone(),
        network_name: net.name.clone(),
        internal: net.internal,
        sandbox_id: sandbox.id.clone(),
        names,
        addresses: ep.ipv4.iter().chain(&ep.ipv6).map(|a| a.ip()).collect(),
    })
}

/// The host's resolv.conf; a missing or unreadable one says nothing.
pub(super) fn host_dns(path: &Path) -> DnsSettings {
    match std::fs::read_to_string(path) {
        Ok(text) => dns::settings::parse_resolv_conf(&text),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "cannot read the host's resolv.conf");
            DnsSettings::default()
        }
    }
}

impl Controller {
    /// Starts serving DNS in the sandbox and writes its resolv.conf. Sandboxes in the host's
    /// namespace get a resolv.conf naming the upstreams themselves (as with Docker).
    pub(super) async fn start_dns(&self, sandbox: &SandboxRecord) -> Result<(), ApiError> {
        let resolution = self.dns.add_sandbox(&sandbox.id, &sandbox.dns);
        if sandbox.mode == SandboxMode::Isolated {
            let redirect: dns::Redirect = Box::new(|port| {
                drivers::firewall::dns_redirect::redirect_dns_here(dns::SERVER_ADDRESS, port)
                    .map_err(|e| e.to_string())
            });
            if let Err(e) = self.dns.serve(&sandbox.id, &sandbox.netns, redirect).await {
                self.dns.remove_sandbox(&sandbox.id);
                return Err(from_dns(e));
            }
        }
        self.write_resolv_conf(sandbox, &resolution)
    }

    pub(super) fn stop_dns(&self, sandbox: &SandboxRecord) {
        self.dns.remove_sandbox(&sandbox.id);
        if let Some(dir) = self.paths.resolv_conf(&sandbox.id).parent() {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    /// Written in place, not replaced: a runtime's bind mount keeps showing the same file.
    fn write_resolv_conf(
        &self,
        sandbox: &SandboxRecord,
        resolution: &Resolution,
    ) -> Result<(), ApiError> {
        let path = self.paths.resolv_conf(&sandbox.id);
        let text = resolution.resolv_conf(sandbox.mode == SandboxMode::Isolated);
        let written = path
            .parent()
            .map_or(Ok(()), std::fs::create_dir_all)
            .and_then(|()| std::fs::write(&path, text));
        written.map_err(|e| ApiError::internal(format!("cannot write {}: {e}", path.display())))
    }

    /// New daemon-wide settings: every sandbox's resolution and resolv.conf follow.
    async fn apply_dns_defaults(&self, daemon: DnsSettings, host: DnsSettings) {
        let state = self.state.lock().await;
        self.dns.set_defaults(daemon, host);
        for sandbox in state.sandboxes.values() {
            if let Some(resolution) = self.dns.resolution(&sandbox.record.id) {
                if let Err(e) = self.write_resolv_conf(&sandbox.record, &resolution) {
                    tracing::warn!(sandbox = %sandbox.record.name, error = %e.message, "cannot update resolv.conf");
                }
            }
        }
    }

    pub async fn explain_dns(&self, key: &str) -> Result<DnsExplain, ApiError> {
        let state = self.state.lock().await;
        let sandbox = &state.sandbox(key)?.record;
        let resolution = self.dns.resolution(&sandbox.id).ok_or_else(|| {
            ApiError::internal(format!("sandbox {} has no DNS settings", sandbox.name))
        })?;
        let embedded = sandbox.mode == SandboxMode::Isolated;
        let forwarding = !embedded || self.dns.may_forward(&sandbox.id);
        let upstreams: Vec<String> = resolution
            .upstreams
            .iter()
            .map(|u| u.text.clone())
            .collect();
        Ok(DnsExplain {
            sandbox: sandbox.name.clone(),
            nameservers: if embedded {
                vec![dns::SERVER_ADDRESS.to_string()]
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
            reasons: reasons(&resolution, embedded, forwarding),
        })
    }
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
            dns::HEDGE_AFTER.as_millis()
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

/// A file's identity for change detection.
fn stamp(path: &Path) -> Option<(SystemTime, u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len(), meta.ino()))
}

/// Applies changes to daemon.json's `dns*` settings and to the host's resolv.conf while the
/// daemon runs. The listening sockets are never touched: the settings are swapped under them,
/// so no query is lost. Other daemon.json changes need a restart, and say so.
pub async fn watch_dns_sources(controller: Arc<Controller>) {
    let config_path = controller.paths.config.clone();
    let resolv_path = controller.paths.host_resolv_conf.clone();
    // Nothing seen yet: the first look applies what is there, including a change made
    // between the daemon's start and this watcher's.
    let mut seen = (None, None);
    let mut config = controller.config.clone();
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let now = (stamp(&config_path), stamp(&resolv_path));
        if now == seen {
            continue;
        }
        seen = now;
        match DaemonConfig::load(&config_path, false) {
            Ok(new) => {
                if new.without_dns() != config.without_dns() {
                    tracing::warn!(path = %config_path.display(), "daemon.json changed: only dns, dns-search and dns-opts apply without a restart");
                }
                config = new;
            }
            Err(e) => {
                tracing::error!(error = %e, "daemon.json changed but cannot be used; keeping the DNS settings in force");
            }
        }
        controller
            .apply_dns_defaults(config.dns_settings(), host_dns(&resolv_path))
            .await;
        tracing::info!("DNS settings reloaded");
    }
}
