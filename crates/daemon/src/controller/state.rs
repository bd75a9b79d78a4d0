//! In-memory desired state, mirrored from the store, with the indexes every request needs:
//! lookups by name, id or id prefix, a sandbox's and a network's endpoints, a network's MACs.
//! Nothing here scans every object, so a request costs the same with ten sandboxes or ten
//! thousand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use netctl_ipam::Ipam;

use super::cluster::GlobalView;
use super::ports::HostPorts;
use crate::controller::error::EngineError;
use crate::model::{
    DockerEndpointRecord, DockerNetworkRecord, DockerPoolRecord, EndpointRecord, NetworkRecord,
    SandboxRecord,
};

/// Records by id, with their names indexed.
struct Named<T> {
    by_id: BTreeMap<String, T>,
    by_name: HashMap<String, String>,
}

impl<T> Default for Named<T> {
    fn default() -> Self {
        Self {
            by_id: BTreeMap::new(),
            by_name: HashMap::new(),
        }
    }
}

impl<T> Named<T> {
    fn insert(&mut self, id: &str, name: &str, record: T) {
        self.by_name.insert(name.to_string(), id.to_string());
        self.by_id.insert(id.to_string(), record);
    }

    fn remove(&mut self, id: &str, name: &str) -> Option<T> {
        if self.by_name.get(name).is_some_and(|i| i == id) {
            self.by_name.remove(name);
        }
        self.by_id.remove(id)
    }

    /// Docker's lookup order (moby's `FindNetwork`): exact id, exact name, then a unique id
    /// prefix.
    fn find(&self, key: &str) -> Result<&T, Lookup> {
        if key.is_empty() {
            return Err(Lookup::NotFound);
        }
        if let Some(record) = self.by_id.get(key) {
            return Ok(record);
        }
        if let Some(record) = self.by_name.get(key).and_then(|id| self.by_id.get(id)) {
            return Ok(record);
        }
        let mut matches = self
            .by_id
            .range(key.to_string()..)
            .take_while(|(id, _)| id.starts_with(key));
        match (matches.next(), matches.count()) {
            (Some((_, record)), 0) => Ok(record),
            (Some(_), others) => Err(Lookup::Ambiguous(others + 1)),
            (None, _) => Err(Lookup::NotFound),
        }
    }
}

/// Why a lookup by name, id or id prefix found nothing.
pub(super) enum Lookup {
    NotFound,
    /// A prefix of this many ids.
    Ambiguous(usize),
}

impl Lookup {
    /// The API's error for a `kind` (`network`, `sandbox`) looked up by `key`.
    pub fn error(self, kind: &str, key: &str) -> EngineError {
        match self {
            Self::NotFound => EngineError::not_found(format!("{kind} {key} not found")),
            Self::Ambiguous(n) => EngineError::invalid(format!(
                "{kind} {key} is ambiguous: {n} {kind} ids start with it (give more of the id, or the name)"
            )),
        }
    }
}

/// Docker's bookkeeping for the objects dockerd made through the plugin.
#[derive(Default)]
pub(super) struct DockerState {
    /// Docker network id → its record.
    pub networks: HashMap<String, DockerNetworkRecord>,
    pub endpoints: HashMap<String, DockerEndpointRecord>,
    /// Pools handed to dockerd by the IPAM driver, by PoolID.
    pub pools: BTreeMap<String, DockerPoolRecord>,
}

pub(super) struct State {
    networks: Named<NetworkRecord>,
    sandboxes: Named<SandboxRecord>,
    endpoints: HashMap<String, EndpointRecord>,
    /// (network, sandbox) → endpoint.
    attachments: HashMap<(String, String), String>,
    of_sandbox: HashMap<String, BTreeSet<String>>,
    of_network: HashMap<String, BTreeSet<String>>,
    /// A network's MACs, to keep them unique on it.
    macs: HashMap<String, HashMap<[u8; 6], String>>,
    pub ipam: Ipam,
    pub ports: HostPorts,
    pub docker: DockerState,
    /// The cluster's nodes and liveness, as last seen.
    pub global: GlobalView,
    /// Where this node starts looking for a free address on a global network (from its
    /// id): nodes allocating at once seldom pick the same one.
    pub spread_seed: u64,
}

impl State {
    pub fn new(ipam: Ipam) -> Self {
        Self {
            networks: Named::default(),
            sandboxes: Named::default(),
            endpoints: HashMap::new(),
            attachments: HashMap::new(),
            of_sandbox: HashMap::new(),
            of_network: HashMap::new(),
            macs: HashMap::new(),
            ipam,
            ports: HostPorts::default(),
            docker: DockerState::default(),
            global: GlobalView::default(),
            spread_seed: 0,
        }
    }

    // Networks

    pub fn network(&self, key: &str) -> Result<&NetworkRecord, EngineError> {
        self.networks
            .find(key)
            .map_err(|lookup| match (&self.global.unlisted, lookup) {
                (Some(members), Lookup::NotFound) => EngineError::unavailable(format!(
                    "network {key} not found: cluster store unavailable: no quorum among \
                 {members} since the daemon started, so global networks are not known here \
                 yet (retrying in the background)"
                )),
                (_, lookup) => lookup.error("network", key),
            })
    }

    pub fn network_by_id(&self, id: &str) -> Option<&NetworkRecord> {
        self.networks.by_id.get(id)
    }

    pub fn network_named(&self, name: &str) -> Option<&NetworkRecord> {
        self.networks
            .by_name
            .get(name)
            .and_then(|id| self.networks.by_id.get(id))
    }

    pub fn networks(&self) -> impl Iterator<Item = &NetworkRecord> {
        self.networks.by_id.values()
    }

    pub fn insert_network(&mut self, net: NetworkRecord) {
        self.networks
            .insert(&net.id.clone(), &net.name.clone(), net);
    }

    pub fn remove_network(&mut self, id: &str) -> Option<NetworkRecord> {
        let name = self.networks.by_id.get(id)?.name.clone();
        self.macs.remove(id);
        self.networks.remove(id, &name)
    }

    /// The netctl network dockerd knows by `docker_id`.
    pub fn docker_network(&self, docker_id: &str) -> Option<&NetworkRecord> {
        let binding = self.docker.networks.get(docker_id)?;
        self.networks.by_id.get(&binding.network_id)
    }

    /// Whether dockerd made the network (its changes then go through dockerd).
    pub fn is_docker_network(&self, network_id: &str) -> bool {
        self.docker
            .networks
            .values()
            .any(|d| d.network_id == network_id && !d.bound)
    }

    // Sandboxes

    pub fn sandbox(&self, key: &str) -> Result<&SandboxRecord, EngineError> {
        self.sandboxes
            .find(key)
            .map_err(|lookup| lookup.error("sandbox", key))
    }

    pub fn sandbox_by_id(&self, id: &str) -> Option<&SandboxRecord> {
        self.sandboxes.by_id.get(id)
    }

    /// The sandbox `ep` is in, when it names one this daemon knows.
    pub fn sandbox_of(&self, ep: &EndpointRecord) -> Option<&SandboxRecord> {
        self.sandbox_by_id(ep.sandbox_id.as_deref()?)
    }

    pub fn sandbox_named(&self, name: &str) -> Option<&SandboxRecord> {
        self.sandboxes
            .by_name
            .get(name)
            .and_then(|id| self.sandboxes.by_id.get(id))
    }

    pub fn sandboxes(&self) -> impl Iterator<Item = &SandboxRecord> {
        self.sandboxes.by_id.values()
    }

    pub fn insert_sandbox(&mut self, sandbox: SandboxRecord) {
        self.sandboxes
            .insert(&sandbox.id.clone(), &sandbox.name.clone(), sandbox);
    }

    pub fn remove_sandbox(&mut self, id: &str) -> Option<SandboxRecord> {
        let name = self.sandboxes.by_id.get(id)?.name.clone();
        self.of_sandbox.remove(id);
        self.sandboxes.remove(id, &name)
    }

    // Endpoints

    pub fn endpoint(&self, id: &str) -> Option<&EndpointRecord> {
        self.endpoints.get(id)
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &EndpointRecord> {
        self.endpoints.values()
    }

    /// The sandbox's endpoint on the network.
    pub fn attachment(&self, network_id: &str, sandbox_id: &str) -> Option<&EndpointRecord> {
        let id = self
            .attachments
            .get(&(network_id.to_string(), sandbox_id.to_string()))?;
        self.endpoints.get(id)
    }

    pub fn endpoints_of_network<'a>(
        &'a self,
        network_id: &str,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        self.of_network
            .get(network_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.endpoints.get(id))
    }

    pub fn endpoints_of_sandbox<'a>(
        &'a self,
        sandbox_id: &str,
    ) -> impl Iterator<Item = &'a EndpointRecord> + 'a {
        self.of_sandbox
            .get(sandbox_id)
            .into_iter()
            .flatten()
            .filter_map(|id| self.endpoints.get(id))
    }

    pub fn mac_in_use(&self, network_id: &str, mac: &[u8; 6]) -> bool {
        self.macs
            .get(network_id)
            .is_some_and(|macs| macs.contains_key(mac))
    }

    /// Adds or replaces an endpoint, keeping every index.
    pub fn insert_endpoint(&mut self, ep: EndpointRecord) {
        if self.endpoints.contains_key(&ep.id) {
            self.remove_endpoint(&ep.id.clone());
        }
        let id = ep.id.clone();
        if let Some(sandbox) = &ep.sandbox_id {
            self.attachments
                .insert((ep.network_id.clone(), sandbox.clone()), id.clone());
            self.of_sandbox
                .entry(sandbox.clone())
                .or_default()
                .insert(id.clone());
        }
        self.of_network
            .entry(ep.network_id.clone())
            .or_default()
            .insert(id.clone());
        if let Some(mac) = ep.mac {
            self.macs
                .entry(ep.network_id.clone())
                .or_default()
                .insert(mac, id.clone());
        }
        self.endpoints.insert(id, ep);
    }

    pub fn remove_endpoint(&mut self, id: &str) -> Option<EndpointRecord> {
        let ep = self.endpoints.remove(id)?;
        if let Some(sandbox) = &ep.sandbox_id {
            self.attachments
                .remove(&(ep.network_id.clone(), sandbox.clone()));
            if let Some(set) = self.of_sandbox.get_mut(sandbox) {
                set.remove(id);
                // Also the index of a sandbox that was planned and never recorded.
                if set.is_empty() {
                    self.of_sandbox.remove(sandbox);
                }
            }
        }
        if let Some(set) = self.of_network.get_mut(&ep.network_id) {
            set.remove(id);
            if set.is_empty() {
                self.of_network.remove(&ep.network_id);
            }
        }
        if let (Some(mac), Some(macs)) = (ep.mac, self.macs.get_mut(&ep.network_id)) {
            if macs.get(&mac).is_some_and(|owner| owner == id) {
                macs.remove(&mac);
            }
        }
        Some(ep)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_records::endpoint;
    use super::*;
    use crate::model::*;

    fn ep(id: &str, net: &str, sandbox: Option<&str>, mac: u8) -> EndpointRecord {
        let mut ep = endpoint(id, net, sandbox.unwrap_or_default());
        ep.sandbox_id = sandbox.map(String::from);
        ep.names = vec![];
        ep.node = "n".into();
        ep.mac = Some([2, 0, 0, 0, 0, mac]);
        ep
    }

    fn state() -> State {
        State::new(Ipam::new(Vec::new(), Vec::new()))
    }

    #[test]
    fn endpoints_are_indexed_by_sandbox_network_and_mac() {
        let mut s = state();
        s.insert_endpoint(ep("e1", "n1", Some("s1"), 1));
        s.insert_endpoint(ep("e2", "n1", Some("s2"), 2));
        s.insert_endpoint(ep("e3", "n2", Some("s1"), 3));
        s.insert_endpoint(ep("d1", "n1", None, 4));
        assert_eq!(s.attachment("n1", "s1").unwrap().id, "e1");
        assert_eq!(s.endpoints_of_sandbox("s1").count(), 2);
        assert_eq!(s.endpoints_of_network("n1").count(), 3);
        assert!(s.mac_in_use("n1", &[2, 0, 0, 0, 0, 2]));
        assert!(!s.mac_in_use("n2", &[2, 0, 0, 0, 0, 2]));
        // Replacing keeps one copy in every index.
        s.insert_endpoint(ep("e1", "n1", Some("s1"), 9));
        assert_eq!(s.endpoints_of_network("n1").count(), 3);
        assert!(!s.mac_in_use("n1", &[2, 0, 0, 0, 0, 1]));
        s.remove_endpoint("e1");
        assert!(s.attachment("n1", "s1").is_none());
        assert_eq!(s.endpoints_of_sandbox("s1").count(), 1);
        assert!(!s.mac_in_use("n1", &[2, 0, 0, 0, 0, 9]));
    }

    #[test]
    fn an_endpoint_planned_and_undone_leaves_no_index_behind() {
        let mut s = state();
        s.insert_endpoint(ep("e1", "n1", Some("never-recorded"), 1));
        s.remove_endpoint("e1");
        assert!(s.of_sandbox.is_empty() && s.of_network.is_empty() && s.attachments.is_empty());
        assert!(s.macs.values().all(|m| m.is_empty()));
    }

    #[test]
    fn lookups_follow_docker_name_id_then_prefix() {
        let mut s = state();
        for (id, name) in [("abc123", "web"), ("abd456", "db"), ("web", "other")] {
            s.insert_sandbox(SandboxRecord {
                id: id.into(),
                name: name.into(),
                hostname: name.into(),
                created: String::new(),
                netns: Default::default(),
                mode: SandboxMode::Isolated,
                dns: Default::default(),
                role: Default::default(),
                netns_inode: None,
                netns_cookie: None,
                extra_hosts: Vec::new(),
            });
        }
        assert_eq!(
            s.sandbox("web").unwrap().name,
            "other",
            "an id before a name"
        );
        assert_eq!(s.sandbox("db").unwrap().id, "abd456");
        assert_eq!(s.sandbox("abd4").unwrap().name, "db");
        let ambiguous = s.sandbox("ab").unwrap_err();
        assert_eq!(
            ambiguous.to_string(),
            "sandbox ab is ambiguous: 2 sandbox ids start with it (give more of the id, or the name)"
        );
        assert_eq!(
            s.sandbox("zz").unwrap_err().to_string(),
            "sandbox zz not found"
        );
        assert!(s.sandbox("").is_err());
        s.remove_sandbox("web");
        assert_eq!(s.sandbox("web").unwrap().id, "abc123");
    }
}
