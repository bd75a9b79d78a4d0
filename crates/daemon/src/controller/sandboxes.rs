//! Creating and removing sandboxes (network namespaces).

use std::sync::Arc;

use drivers::netns::{self, Netns};
use plugin_api::{ApiError, SandboxCreateRequest};

use dns::DnsSettings;

use super::errors::{from_daemon, from_dns, from_driver};
use super::state::Sandbox;
use super::Controller;
use crate::ids::{new_id, now_rfc3339, valid_name};
use crate::model::{DriverKind, SandboxMode, SandboxRecord};
use crate::store::Change;

impl Controller {
    pub async fn create_sandbox(
        &self,
        req: SandboxCreateRequest,
    ) -> Result<SandboxRecord, ApiError> {
        let mut state = self.state.lock().await;
        if !valid_name(&req.name) {
            return Err(ApiError::invalid(format!(
                "invalid sandbox name {:?}: names start with a letter or digit and contain only [a-zA-Z0-9_.-]",
                req.name
            )));
        }
        if state.sandbox_by_name(&req.name).is_some() {
            return Err(ApiError::conflict(format!(
                "sandbox with name {} already exists",
                req.name
            )));
        }
        let network = match req.network.as_deref() {
            Some(key) => Some(state.network(key)?.clone()),
            None if req.endpoint_config != Default::default() => {
                return Err(ApiError::invalid(
                    "addresses, MAC and aliases need --network: they belong to an endpoint",
                ))
            }
            None => None,
        };
        let hostname = req.hostname.clone().unwrap_or_else(|| req.name.clone());
        if hostname.is_empty() || hostname.len() > 64 || !valid_name(&hostname) {
            return Err(ApiError::invalid(format!("invalid hostname {hostname:?}")));
        }
        let mode = match &network {
            Some(n) if n.driver == DriverKind::Host => SandboxMode::Host,
            _ => SandboxMode::Isolated,
        };
        let dns = DnsSettings {
            servers: req.dns.clone(),
            search: req.dns_search.clone(),
            options: req.dns_options.clone(),
        };
        dns.validate().map_err(from_dns)?;
        let id = new_id();
        let record = SandboxRecord {
            netns: self.paths.exec_root.join("netns").join(&id[..12]),
            id,
            name: req.name.clone(),
            hostname,
            created: now_rfc3339(),
            mode,
            dns,
        };
        self.store
            .apply(&[Change::PutSandbox(&record)])
            .map_err(from_daemon)?;
        let made = match mode {
            SandboxMode::Host => Netns::bind_current(&record.netns).await,
            SandboxMode::Isolated => Netns::create(&record.netns).await,
        };
        let netns = match made {
            Ok(netns) => Arc::new(netns),
            Err(e) => {
                let _ = netns::remove(&record.netns);
                let _ = self.store.apply(&[Change::DeleteSandbox(&record.id)]);
                return Err(from_driver(e));
            }
        };
        if let Err(e) = self.start_dns(&record).await {
            let _ = netns::remove(&record.netns);
            let _ = self.store.apply(&[Change::DeleteSandbox(&record.id)]);
            return Err(e);
        }
        state.sandboxes.insert(
            record.id.clone(),
            Sandbox {
                record: record.clone(),
                netns: Some(netns.clone()),
            },
        );
        if let Some(net) = network {
            let connected = self
                .connect_locked(&mut state, &net, &record, Some(netns), &req.endpoint_config)
                .await;
            if let Err(e) = connected {
                self.stop_dns(&record);
                state.sandboxes.remove(&record.id);
                let _ = self.store.apply(&[Change::DeleteSandbox(&record.id)]);
                let _ = netns::remove(&record.netns);
                return Err(e);
            }
        }
        tracing::debug!(sandbox = %record.name, netns = %record.netns.display(), "sandbox created");
        Ok(record)
    }

    /// Removes the sandbox, its endpoints and its namespace. Kernel cleanup keeps going past
    /// failures and reports all of them; the store no longer wants any of it either way.
    pub async fn remove_sandbox(&self, key: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let sandbox = state.sandbox(key)?.record.clone();
        let endpoints: Vec<_> = state.endpoints_of_sandbox(&sandbox.id).cloned().collect();
        let mut changes: Vec<Change> = endpoints
            .iter()
            .map(|e| Change::DeleteEndpoint(&e.id))
            .collect();
        changes.push(Change::DeleteSandbox(&sandbox.id));
        self.store.apply(&changes).map_err(from_daemon)?;

        let mut errors = Vec::new();
        self.stop_dns(&sandbox);
        for endpoint in &endpoints {
            self.dns.directory().remove_endpoint(&endpoint.id);
            state.endpoints.remove(&endpoint.id);
            let Some(net) = state.networks.get(&endpoint.network_id).cloned() else {
                continue;
            };
            state.release_endpoint(&net, endpoint);
            self.withdraw_ports(endpoint).await;
            if let Err(e) = self.drivers.leave(&net, endpoint).await {
                errors.push(e.to_string());
            }
        }
        // Dropping the last handle closes the sandbox's netlink socket and file.
        state.sandboxes.remove(&sandbox.id);
        if let Err(e) = netns::remove(&sandbox.netns) {
            errors.push(e.to_string());
        }
        if !errors.is_empty() {
            return Err(ApiError::internal(format!(
                "sandbox {} removed, but some kernel objects could not be cleaned up (retried at \
                 the daemon's next start): {}",
                sandbox.name,
                errors.join("; ")
            )));
        }
        Ok(())
    }
}
