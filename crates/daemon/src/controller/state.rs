//! In-memory desired state, mirrored from the store, with lookups by name, id or id prefix.

use std::collections::BTreeMap;

use ipam::Ipam;
use plugin_api::ApiError;

use super::NetnsRef;
use crate::model::{DockerPoolRecord, EndpointRecord, NetworkRecord, SandboxRecord};

pub(super) struct Sandbox {
    pub record: SandboxRecord,
    /// `None` while the namespace could not be opened (reconcile logged why).
    pub netns: Option<NetnsRef>,
}

pub(super) struct State {
    pub networks: BTreeMap<String, NetworkRecord>,
    pub sandboxes: BTreeMap<String, Sandbox>,
    pub endpoints: BTreeMap<String, EndpointRecord>,
    pub ipam: Ipam,
    pub ports: super::ports::HostPorts,
    /// Pools handed to dockerd by the IPAM driver, by PoolID.
    pub docker_pools: BTreeMap<String, DockerPoolRecord>,
}

impl State {
    pub fn new(ipam: Ipam) -> Self {
        Self {
            networks: BTreeMap::new(),
            sandboxes: BTreeMap::new(),
            endpoints: BTreeMap::new(),
            ipam,
            ports: Default::default(),
            docker_pools: BTreeMap::new(),
        }
    }

    pub fn network(&self, key: &str) -> Result<&NetworkRecord, ApiError> {
        find(&self.networks, key, |n| &n.name)
            .ok_or_else(|| ApiError::not_found(format!("network {key} not found")))
    }

    /// The network dockerd knows by `docker_id`.
    pub fn docker_network(&self, docker_id: &str) -> Option<&NetworkRecord> {
        self.networks
            .values()
            .find(|n| n.docker_id.as_deref() == Some(docker_id))
    }

    /// An endpoint dockerd made through the plugin, by its Docker endpoint ID.
    pub fn docker_endpoint(&self, id: &str) -> Option<&EndpointRecord> {
        self.endpoints.get(id).filter(|e| e.docker)
    }

    pub fn network_by_name(&self, name: &str) -> Option<&NetworkRecord> {
        self.networks.values().find(|n| n.name == name)
    }

    pub fn sandbox(&self, key: &str) -> Result<&Sandbox, ApiError> {
        find(&self.sandboxes, key, |s| &s.record.name)
            .ok_or_else(|| ApiError::not_found(format!("sandbox {key} not found")))
    }

    pub fn sandbox_by_name(&self, name: &str) -> Option<&Sandbox> {
        self.sandboxes.values().find(|s| s.record.name == name)
    }

    pub fn endpoints_of_network<'a>(
        &'a self,
        network_id: &'a str,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        self.endpoints
            .values()
            .filter(move |e| e.network_id == network_id)
    }

    pub fn endpoints_of_sandbox<'a>(
        &'a self,
        sandbox_id: &'a str,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        self.endpoints
            .values()
            .filter(move |e| e.sandbox_id == sandbox_id)
    }

    pub fn endpoint(&self, network_id: &str, sandbox_id: &str) -> Option<&EndpointRecord> {
        self.endpoints
            .values()
            .find(|e| e.network_id == network_id && e.sandbox_id == sandbox_id)
    }
}

/// Docker's lookup order: exact name, exact id, then a unique id prefix.
fn find<'a, T>(
    map: &'a BTreeMap<String, T>,
    key: &str,
    name: impl Fn(&T) -> &String,
) -> Option<&'a T> {
    if key.is_empty() {
        return None;
    }
    if let Some(v) = map.values().find(|v| name(v) == key) {
        return Some(v);
    }
    if let Some(v) = map.get(key) {
        return Some(v);
    }
    let mut matches = map
        .range(key.to_string()..)
        .take_while(|(id, _)| id.starts_with(key));
    match (matches.next(), matches.next()) {
        (Some((_, v)), None) => Some(v),
        _ => None,
    }
}
