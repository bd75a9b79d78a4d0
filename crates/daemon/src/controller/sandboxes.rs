//! Creating and removing sandboxes (network namespaces).

use std::path::Path;

use netctl_drivers::SandboxNamespace;
use netctl_plugin_api::SandboxCreateRequest;
use netctl_store::Batch;

use super::effects::Effect;
use super::endpoints::EndpointRequest;
use super::state::State;
use super::txn::Txn;
use super::Controller;
use crate::controller::error::EngineError;
use crate::ids::{new_id, now_rfc3339, valid_dns_name, valid_name, DNS_NAME_RULE};
use crate::model::{
    DnsConfig, EndpointRecord, ExtraHost, NetworkRecord, SandboxMode, SandboxRecord, SandboxRole,
};
use crate::persist::BatchExt;

impl Controller {
    pub async fn create_sandbox(
        &self,
        req: SandboxCreateRequest,
    ) -> Result<SandboxRecord, EngineError> {
        self.create_sandbox_as(req, SandboxRole::User).await
    }

    /// Makes a sandbox for `role` (a user's, or one of the daemon's own balancers).
    pub(super) async fn create_sandbox_as(
        &self,
        req: SandboxCreateRequest,
        role: SandboxRole,
    ) -> Result<SandboxRecord, EngineError> {
        let wanted = SandboxWanted::parse(&req, role)?;
        if let Some(key) = req.network.as_deref() {
            self.ensure_gateway_bridge_for(key).await?;
        }
        let network_id = match req.network.as_deref() {
            Some(key) => Some(self.state.lock().await.network(key)?.id.clone()),
            None => None,
        };
        let id = new_id();
        let shared: Vec<&str> = network_id.iter().map(String::as_str).collect();
        let held = self.locks.hold(&shared, &[], &[&id]).await;
        let (record, _) = self
            .transact_claiming(
                |state| {
                    if state.sandbox_named(&wanted.name).is_some() {
                        return Err(EngineError::conflict(format!(
                            "sandbox with name {} already exists",
                            wanted.name
                        )));
                    }
                    let network = match (&network_id, req.network.as_deref()) {
                        (Some(net_id), Some(key)) => {
                            Some(state.network_by_id(net_id).cloned().ok_or_else(|| {
                                EngineError::not_found(format!("network {key} not found"))
                            })?)
                        }
                        _ => None,
                    };
                    let mode = match &network {
                        Some(net) => self.mode_on(net)?,
                        None => SandboxMode::Isolated,
                    };
                    let record = wanted.record(&id, mode, &self.paths.exec_root);
                    // Planned before the sandbox is recorded: should it fail, nothing changed.
                    let connect = match &network {
                        Some(net) => {
                            Some(self.plan_connect(state, net, &record, wanted.endpoint.clone())?)
                        }
                        None => None,
                    };
                    let mut txn = Self::sandbox_txn(state, &record);
                    if let Some(connect) = connect {
                        txn = txn.then(connect);
                    }
                    Ok((txn, record))
                },
                super::endpoints::lost_address,
            )
            .await?;
        if let Some(net_id) = &network_id {
            self.lease_or_undo(
                self.lease_attachment(net_id, &id),
                held,
                self.remove_sandbox(&id),
            )
            .await?;
        }
        tracing::debug!(sandbox = %record.name, netns = %record.netns.display(), "sandbox created");
        Ok(record)
    }

    /// A sandbox made on `net` shares the host's namespace when the network's driver says
    /// so (the host network), and has its own otherwise.
    fn mode_on(&self, net: &NetworkRecord) -> Result<SandboxMode, EngineError> {
        Ok(match self.capabilities(net)?.namespace {
            SandboxNamespace::Host => SandboxMode::Host,
            _ => SandboxMode::Isolated,
        })
    }

    /// Records the sandbox and returns the transaction that makes its namespace and serves
    /// its DNS.
    pub(super) fn sandbox_txn(state: &mut State, record: &SandboxRecord) -> Txn {
        state.insert_sandbox(record.clone());
        let mut txn = Txn::new(format!("create sandbox {}", record.name));
        txn.persist = Batch::new().put_record(record);
        txn.revert = Batch::new().delete_record::<SandboxRecord>(&record.id);
        txn.effects = vec![
            Effect::CreateNamespace {
                sandbox: record.id.clone(),
                path: record.netns.clone(),
                mode: record.mode,
            },
            Effect::ServeDns(record.clone()),
        ];
        let id = record.id.clone();
        txn.unplan = Box::new(move |state: &mut State| {
            state.remove_sandbox(&id);
        });
        txn
    }

    /// Removes the sandbox, its endpoints and its namespace. Kernel cleanup keeps going past
    /// failures and reports all of them; the store no longer wants any of it either way.
    pub async fn remove_sandbox(&self, key: &str) -> Result<(), EngineError> {
        let id = self.state.lock().await.sandbox(key)?.id.clone();
        let _held = self.locks.hold(&[], &[], &[&id]).await;
        let (name, done) = self
            .transact(|state| {
                let sandbox = state
                    .sandbox_by_id(&id)
                    .cloned()
                    .ok_or_else(|| EngineError::not_found(format!("sandbox {key} not found")))?;
                let endpoints: Vec<EndpointRecord> =
                    state.endpoints_of_sandbox(&id).cloned().collect();
                let mut txn = Txn::new(format!("remove sandbox {}", sandbox.name));
                txn.effects.push(Effect::StopDns(sandbox.clone()));
                let mut left = Vec::new();
                for endpoint in &endpoints {
                    let Some(net) = state.network_by_id(&endpoint.network_id).cloned() else {
                        txn.persist = txn.persist.delete_record::<EndpointRecord>(&endpoint.id);
                        state.remove_endpoint(&endpoint.id);
                        continue;
                    };
                    txn.persist = txn.persist.and(self.endpoint_removal(&net, endpoint));
                    txn.effects
                        .extend(self.plan_leave(state, &net, Some(&sandbox), endpoint));
                    left.push((net, endpoint.clone()));
                }
                state.remove_sandbox(&id);
                txn.persist = txn.persist.delete_record::<SandboxRecord>(&id);
                txn.effects.push(Effect::RemoveNamespace {
                    sandbox: id.clone(),
                    path: sandbox.netns.clone(),
                    mode: sandbox.mode,
                });
                let name = sandbox.name.clone();
                txn.unplan = Box::new(move |state: &mut State| {
                    state.insert_sandbox(sandbox);
                    for (net, endpoint) in left {
                        state.retake_endpoint(&net, &endpoint);
                        state.insert_endpoint(endpoint);
                    }
                });
                Ok((txn, name))
            })
            .await?;
        done.into_result(format!("sandbox {name} removed"))
    }
}

/// What a sandbox create asks for, checked whole before anything is touched.
struct SandboxWanted {
    name: String,
    hostname: String,
    role: SandboxRole,
    dns: DnsConfig,
    extra_hosts: Vec<ExtraHost>,
    /// Its first endpoint's addresses, MAC and aliases (with `--network`).
    endpoint: EndpointRequest,
}

impl SandboxWanted {
    fn parse(req: &SandboxCreateRequest, role: SandboxRole) -> Result<Self, EngineError> {
        if !valid_name(&req.name) || !valid_dns_name(&req.name) {
            return Err(EngineError::invalid(format!(
                "invalid sandbox name {:?}: a sandbox's name is its DNS name: {DNS_NAME_RULE}",
                req.name
            )));
        }
        let hostname = req.hostname.clone().unwrap_or_else(|| req.name.clone());
        if hostname.len() > 64 || !valid_dns_name(&hostname) {
            return Err(EngineError::invalid(format!(
                "invalid hostname {hostname:?}: at most 64 characters of {DNS_NAME_RULE}"
            )));
        }
        let extra_hosts = req
            .extra_hosts
            .iter()
            .map(|spec| ExtraHost::parse(spec))
            .collect::<Result<Vec<_>, _>>()
            .map_err(EngineError::invalid)?;
        if req.network.is_none() && req.endpoint_config != Default::default() {
            return Err(EngineError::invalid(
                "addresses, MAC and aliases need --network: they belong to an endpoint",
            ));
        }
        let dns = DnsConfig {
            servers: req.dns.clone(),
            search: req.dns_search.clone(),
            options: req.dns_options.clone(),
        };
        netctl_dns::DnsSettings::from(&dns).validate()?;
        Ok(Self {
            name: req.name.clone(),
            hostname,
            role,
            dns,
            extra_hosts,
            endpoint: EndpointRequest::parse(&req.endpoint_config)?,
        })
    }

    /// The sandbox's record, its namespace bound under `exec_root`.
    fn record(&self, id: &str, mode: SandboxMode, exec_root: &Path) -> SandboxRecord {
        SandboxRecord {
            netns: exec_root.join("netns").join(&id[..12]),
            id: id.into(),
            name: self.name.clone(),
            hostname: self.hostname.clone(),
            created: now_rfc3339(),
            mode,
            dns: self.dns.clone(),
            role: self.role,
            netns_inode: None,
            netns_cookie: None,
            extra_hosts: self.extra_hosts.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str) -> SandboxCreateRequest {
        SandboxCreateRequest {
            name: name.into(),
            ..Default::default()
        }
    }

    fn refusal(req: SandboxCreateRequest) -> String {
        match SandboxWanted::parse(&req, SandboxRole::User) {
            Ok(_) => panic!("{:?} was taken", req.name),
            Err(e) => {
                assert_eq!(e.kind(), crate::controller::ErrorKind::Invalid);
                e.to_string()
            }
        }
    }

    #[test]
    fn a_sandbox_s_name_must_be_a_dns_name() {
        assert!(refusal(request("-web")).contains("invalid sandbox name"));
        assert!(refusal(request("web..1")).contains("invalid sandbox name"));
        assert!(SandboxWanted::parse(&request("web-1"), SandboxRole::User).is_ok());
    }

    #[test]
    fn a_hostname_is_at_most_64_characters() {
        let mut req = request("a");
        req.hostname = Some("h".repeat(65));
        assert!(refusal(req).contains("at most 64 characters"));
    }

    #[test]
    fn an_endpoint_s_settings_need_a_network() {
        let mut req = request("a");
        req.endpoint_config.aliases = vec!["db".into()];
        assert!(refusal(req).contains("need --network"));
    }

    #[test]
    fn the_record_takes_the_name_for_hostname_and_binds_under_the_exec_root() {
        let wanted = SandboxWanted::parse(&request("web"), SandboxRole::User).unwrap();
        let record = wanted.record(
            "0123456789abcdef",
            SandboxMode::Isolated,
            Path::new("/run/x"),
        );
        assert_eq!(record.hostname, "web");
        assert_eq!(record.netns, Path::new("/run/x/netns/0123456789ab"));
    }
}
