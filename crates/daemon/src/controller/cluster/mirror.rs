//! The cluster's state mirrored into the controller: global networks and every node's
//! endpoints in the state (so names, addresses and inspect see them), remote endpoints of
//! ready nodes in the overlay's FDB and neighbour tables and in the DNS directory, this
//! node's own endpoints plugged in again after a restart.
//!
//! A listing and a watch's events go through the same functions; each compares with what
//! the state holds, so an event for a change this node made itself changes nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;

use netctl_drivers::cluster::Remote;
use netctl_drivers::{JoinKind, Wanted};
use netctl_store::{Batch, Entry, Event, Key, Revision, Store};

use super::super::effects::{endpoint_effects, Effect};
use super::super::executor;
use super::super::specs::{endpoint_spec, network_spec};
use super::super::state::State;
use super::super::Controller;
use crate::cluster_store::members::{ClusterNode, ClusterRecord};
use crate::model::{EndpointRecord, NetworkRecord, ServiceRecord};
use crate::persist::{decode, id_in_global_key, Record};

/// What the cluster says beyond networks and endpoints (which live in the state's maps).
#[derive(Debug, Default)]
pub(in crate::controller) struct GlobalView {
    pub cluster: Option<ClusterRecord>,
    pub nodes: BTreeMap<String, ClusterNode>,
    /// Nodes whose lease lives.
    pub ready: BTreeSet<String>,
    /// The revision of this node's last write: a listing older than it is listed again.
    pub written: Revision,
    /// Endpoints seen before their network (a restore writes in several transactions).
    pub waiting: BTreeMap<String, EndpointRecord>,
    /// The store's members while this node, in a cluster, has not listed it since the
    /// daemon started: its global networks are not known yet.
    pub unlisted: Option<String>,
    /// The cluster's services, by id.
    pub services: BTreeMap<String, ServiceRecord>,
}

impl GlobalView {
    pub fn is_ready(&self, node: &str) -> bool {
        self.ready.contains(node)
    }
}

/// Work a change asks for, done once the state lock is let go.
enum Action {
    /// Kernel and DNS work: a remote endpoint's entries and names added or removed; this
    /// node's own endpoint plugged in (again) or taken out. Best effort: what fails is
    /// tried again at the next listing.
    Effects(Vec<Effect>),
    /// This node's liveness key went (the store was emptied and restored, say) while its
    /// lease lives: put it back.
    Announce,
    /// This node's endpoint that a crash left half made: its cluster records go.
    Undo(Batch),
    /// A node left, or was removed: a manager of a TLS store deletes its etcd user, so its
    /// certificate opens nothing any more.
    ForgetUser(String),
}

/// One decoded global key.
enum Change {
    Cluster(Option<ClusterRecord>),
    Node(String, Option<ClusterNode>),
    Alive(String, bool),
    Network(String, Option<NetworkRecord>),
    /// Boxed: an endpoint record is the largest by far.
    Endpoint(String, Option<Box<EndpointRecord>>),
    Service(String, Option<ServiceRecord>),
}

fn decode_change(key: &Key, value: Option<&[u8]>) -> Option<Change> {
    let decoded = |what: &str| -> Option<serde_json::Value> {
        let value = value?;
        match serde_json::from_slice(value) {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(%key, error = %e, "unreadable {what} in the cluster store");
                None
            }
        }
    };
    let id = id_in_global_key(key).to_string();
    match key.kind.as_str() {
        "cluster" => Some(Change::Cluster(
            decoded("cluster").and_then(|v| serde_json::from_value(v).ok()),
        )),
        "node" => Some(Change::Node(
            id,
            decoded("node").and_then(|v| serde_json::from_value(v).ok()),
        )),
        "node.alive" => Some(Change::Alive(id, value.is_some())),
        NetworkRecord::KIND => Some(Change::Network(id, record(key, value))),
        EndpointRecord::KIND => Some(Change::Endpoint(id, record(key, value).map(Box::new))),
        ServiceRecord::KIND => Some(Change::Service(id, record(key, value))),
        _ => None,
    }
}

fn record<R: Record>(key: &Key, value: Option<&[u8]>) -> Option<R> {
    decode(key, value?)
        .inspect_err(|e| tracing::warn!(%key, error = %e, "unreadable record in the cluster store"))
        .ok()
}

/// Whether this node's endpoint `ep`, listed from the cluster, has nothing here that it
/// belongs to: no sandbox (it names one), or no Docker endpoint (a Docker container's,
/// which names none). Only a crash between an attach's two transactions (the cluster's
/// first) leaves one: the state takes a sandbox before its endpoint is written anywhere.
fn half_made(state: &State, ep: &EndpointRecord) -> bool {
    match ep.sandbox_id.as_deref() {
        Some(sandbox) => state.sandbox_by_id(sandbox).is_none(),
        None => !state.docker.endpoints.contains_key(&ep.id),
    }
}

/// Nodes first (endpoints need their node's address), then networks, then endpoints.
fn order(change: &Change) -> u8 {
    match change {
        Change::Cluster(_) | Change::Node(..) | Change::Alive(..) => 0,
        Change::Network(..) => 1,
        Change::Endpoint(..) => 2,
        Change::Service(..) => 3,
    }
}

impl Controller {
    /// A listing of the whole global scope. `false` when it is older than this node's own
    /// last write (list again).
    pub(super) async fn mirror_snapshot(
        self: &Arc<Self>,
        entries: Vec<Entry>,
        revision: Revision,
    ) -> bool {
        let actions = {
            let _alone = self.cluster_writes.write().await;
            let mut state = self.state.lock().await;
            if revision < state.global.written {
                return false;
            }
            state.global.unlisted = None;
            let mut changes: Vec<Change> = entries
                .iter()
                .filter_map(|e| decode_change(&e.key, Some(&e.value)))
                .collect();
            changes.extend(self.vanished(&state, &entries));
            changes.sort_by_key(order);
            let mut actions = Vec::new();
            for change in changes {
                actions.extend(self.mirror(&mut state, change));
            }
            actions
        };
        self.carry_out_actions(actions).await;
        self.settle_overlay().await;
        self.refresh_services().await;
        true
    }

    /// Events of the watch, in order.
    pub(super) async fn mirror_changes(self: &Arc<Self>, events: Vec<Event>) {
        let actions = {
            let _alone = self.cluster_writes.write().await;
            let mut state = self.state.lock().await;
            let mut actions = Vec::new();
            for event in events {
                let change = match &event {
                    Event::Put(entry) => decode_change(&entry.key, Some(&entry.value)),
                    Event::Delete { key, .. } => decode_change(key, None),
                };
                if let Some(change) = change {
                    actions.extend(self.mirror(&mut state, change));
                }
            }
            actions
        };
        self.carry_out_actions(actions).await;
        self.refresh_services().await;
        self.serve_joins_if_promoted().await;
    }

    /// What the state holds from the cluster but a listing no longer has: deletions. This
    /// node's own endpoints are left alone (a listing may predate them; their removal by
    /// someone else comes as a watch event).
    fn vanished(&self, state: &State, entries: &[Entry]) -> Vec<Change> {
        let listed: BTreeSet<(&str, &str)> = entries
            .iter()
            .map(|e| (e.key.kind.as_str(), id_in_global_key(&e.key)))
            .collect();
        let mut gone = Vec::new();
        for net in state.networks().filter(|n| self.is_global(n)) {
            if !listed.contains(&(NetworkRecord::KIND, net.id.as_str())) {
                gone.push(Change::Network(net.id.clone(), None));
            }
        }
        for ep in state.endpoints().filter(|e| e.node != self.node.id) {
            let global = state
                .network_by_id(&ep.network_id)
                .is_some_and(|n| self.is_global(n));
            if global && !listed.contains(&(EndpointRecord::KIND, ep.id.as_str())) {
                gone.push(Change::Endpoint(ep.id.clone(), None));
            }
        }
        for id in state.global.services.keys() {
            if !listed.contains(&(ServiceRecord::KIND, id.as_str())) {
                gone.push(Change::Service(id.clone(), None));
            }
        }
        for node in state.global.nodes.keys() {
            if !listed.contains(&("node", node.as_str())) {
                gone.push(Change::Node(node.clone(), None));
            }
        }
        for node in &state.global.ready {
            if !listed.contains(&("node.alive", node.as_str())) {
                gone.push(Change::Alive(node.clone(), false));
            }
        }
        gone
    }

    fn mirror(&self, state: &mut State, change: Change) -> Vec<Action> {
        match change {
            Change::Cluster(record) => {
                state.global.cluster = record;
                Vec::new()
            }
            Change::Node(id, Some(node)) => {
                state.global.nodes.insert(id, node);
                Vec::new()
            }
            Change::Node(id, None) => {
                state.global.nodes.remove(&id);
                if id == self.node.id {
                    tracing::warn!("this node was removed from the cluster (`netctl node rm`)");
                    return Vec::new();
                }
                vec![Action::ForgetUser(id)]
            }
            Change::Alive(id, alive) => self.node_liveness(state, &id, alive),
            Change::Network(_, Some(net)) => self.put_network(state, net),
            Change::Network(id, None) => self.delete_network(state, &id),
            Change::Endpoint(_, Some(ep)) => self.put_endpoint(state, *ep),
            Change::Endpoint(id, None) => self.delete_endpoint(state, &id),
            Change::Service(_, Some(service)) => {
                state.put_service(service);
                Vec::new()
            }
            Change::Service(id, None) => {
                state.delete_service(&id);
                Vec::new()
            }
        }
    }

    fn node_liveness(&self, state: &mut State, node: &str, alive: bool) -> Vec<Action> {
        let changed = if alive {
            state.global.ready.insert(node.to_string())
        } else {
            state.global.ready.remove(node)
        };
        if node == self.node.id {
            return if changed && !alive {
                vec![Action::Announce]
            } else {
                Vec::new()
            };
        }
        if !changed {
            return Vec::new();
        }
        tracing::info!(
            node,
            status = if alive { "ready" } else { "down" },
            "cluster node"
        );
        let endpoints: Vec<EndpointRecord> = state
            .endpoints()
            .filter(|e| e.node == node)
            .cloned()
            .collect();
        endpoints
            .iter()
            .filter_map(|ep| {
                let net = state.network_by_id(&ep.network_id)?;
                if alive {
                    self.remote_added(state, net, ep)
                } else {
                    Some(self.remote_removed(net, &ep.id))
                }
            })
            .collect()
    }

    fn put_network(&self, state: &mut State, net: NetworkRecord) -> Vec<Action> {
        match state.network_by_id(&net.id) {
            Some(known) if *known == net => return Vec::new(),
            Some(known) => {
                let known = known.clone();
                state.release_network_subnets(&known);
            }
            None => {}
        }
        if let Some(clash) = state.network_named(&net.name).filter(|n| n.id != net.id) {
            tracing::warn!(network = %net.name, local = %clash.id, "a global network has the name of a local one; the local one keeps it here");
        }
        state.restore_network_subnets(&net);
        let waiting: Vec<EndpointRecord> = state
            .global
            .waiting
            .values()
            .filter(|e| e.network_id == net.id)
            .cloned()
            .collect();
        state.insert_network(net);
        waiting
            .into_iter()
            .flat_map(|ep| {
                state.global.waiting.remove(&ep.id);
                self.put_endpoint(state, ep)
            })
            .collect()
    }

    fn delete_network(&self, state: &mut State, id: &str) -> Vec<Action> {
        let Some(net) = state.network_by_id(id).cloned() else {
            return Vec::new();
        };
        if !self.is_global(&net) {
            return Vec::new();
        }
        let endpoints: Vec<String> = state
            .endpoints_of_network(id)
            .map(|e| e.id.clone())
            .collect();
        let mut actions: Vec<Action> = endpoints
            .iter()
            .flat_map(|ep| self.delete_endpoint(state, ep))
            .collect();
        state.remove_network(id);
        state.release_network_subnets(&net);
        actions.push(Action::Effects(vec![Effect::DeleteNetwork {
            driver: net.driver.clone(),
            net: network_spec(&net),
        }]));
        actions
    }

    fn put_endpoint(&self, state: &mut State, ep: EndpointRecord) -> Vec<Action> {
        if state.endpoint(&ep.id) == Some(&ep) {
            return Vec::new();
        }
        let Some(net) = state.network_by_id(&ep.network_id).cloned() else {
            tracing::debug!(endpoint = %ep.id, "an endpoint of a network not known here yet");
            state.global.waiting.insert(ep.id.clone(), ep);
            return Vec::new();
        };
        if ep.node == self.node.id && half_made(state, &ep) {
            // An attach that a crash cut between its cluster-store transaction and its
            // local one: what it wrote in the cluster goes (its address claims included).
            tracing::warn!(endpoint = %ep.id, network = %net.name, "this node's endpoint has no sandbox here (an attach cut short); removing it from the cluster");
            return vec![Action::Undo(self.endpoint_removal(&net, &ep))];
        }
        let mut actions = Vec::new();
        if let Some(old) = state.remove_endpoint(&ep.id) {
            state.release_endpoint(&net, &old);
            if old.node != self.node.id {
                actions.push(self.remote_removed(&net, &old.id));
            }
        }
        state.retake_global_endpoint(&net, &ep);
        state.insert_endpoint(ep.clone());
        if ep.node == self.node.id {
            actions.extend(self.own_endpoint_back(state, &net, &ep));
        } else if state.global.is_ready(&ep.node) {
            actions.extend(self.remote_added(state, &net, &ep));
        }
        actions
    }

    fn delete_endpoint(&self, state: &mut State, id: &str) -> Vec<Action> {
        state.global.waiting.remove(id);
        let Some(ep) = state.endpoint(id).cloned() else {
            return Vec::new();
        };
        let Some(net) = state.network_by_id(&ep.network_id).cloned() else {
            state.remove_endpoint(id);
            return Vec::new();
        };
        if !self.is_global(&net) {
            return Vec::new();
        }
        if ep.node == self.node.id {
            tracing::warn!(endpoint = %ep.id, network = %net.name, "this node's endpoint was removed from the cluster; unplugging it");
            let sandbox = state.sandbox_of(&ep).cloned();
            let effects = self.plan_leave(state, &net, sandbox.as_ref(), &ep);
            return vec![Action::Effects(effects)];
        }
        state.remove_endpoint(id);
        state.release_endpoint(&net, &ep);
        vec![self.remote_removed(&net, &ep.id)]
    }

    /// A remote endpoint's entries and names.
    fn remote_added(
        &self,
        state: &State,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Option<Action> {
        let node = state.global.nodes.get(&ep.node)?;
        let vtep: IpAddr = node.address.parse().ok()?;
        let addresses: Vec<IpAddr> = ep.addresses().map(|a| a.ip()).collect();
        let remote = Effect::AddRemote {
            driver: net.driver.clone(),
            vni: self.vni(net),
            endpoint: ep.id.clone(),
            remote: Remote {
                mac: ep.mac?,
                addresses: addresses.clone(),
                vtep,
            },
        };
        let names = Effect::AddNames(netctl_dns::EndpointNames {
            endpoint_id: ep.id.clone(),
            network_id: net.id.clone(),
            network_name: net.name.clone(),
            internal: net.internal,
            sandbox_id: ep.sandbox_id.clone().unwrap_or_else(|| ep.id.clone()),
            names: ep.names.clone(),
            addresses,
        });
        Some(Action::Effects(vec![remote, names]))
    }

    /// This node's endpoint, listed after a restart: plugged into its sandbox again (all
    /// idempotent), or, when its sandbox is gone, nothing here to plug.
    fn own_endpoint_back(
        &self,
        state: &State,
        net: &NetworkRecord,
        ep: &EndpointRecord,
    ) -> Vec<Action> {
        if ep.sandbox_id.is_none() && state.docker.endpoints.contains_key(&ep.id) {
            // A Docker container's: its interface is dockerd's; the segment counts it again.
            return vec![Action::Effects(vec![Effect::Join {
                driver: net.driver.clone(),
                net: network_spec(net),
                ep: endpoint_spec(net, ep, false),
                sandbox: None,
            }])];
        }
        let Some(sandbox) = state.sandbox_of(ep) else {
            // Not reached: `put_endpoint` undoes such an endpoint (see `half_made`).
            return Vec::new();
        };
        let caps = match self.capabilities(net) {
            Ok(caps) => caps,
            Err(e) => {
                tracing::warn!(endpoint = %ep.id, error = %e, "cannot plug in this node's endpoint");
                return Vec::new();
            }
        };
        let mut effects = endpoint_effects(net, &caps, sandbox, ep);
        if sandbox.mode.has_own_namespace() {
            effects.push(Effect::WriteHosts {
                sandbox: sandbox.clone(),
                addresses: state.sandbox_addresses(&sandbox.id),
            });
        }
        vec![Action::Effects(effects)]
    }

    async fn carry_out_actions(&self, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Effects(effects) => {
                    executor::best_effort(self, "mirror the cluster", &effects).await;
                }
                Action::Announce => self.announce_again().await,
                Action::ForgetUser(node) => self.forget_user(&node).await,
                Action::Undo(batch) => {
                    let undone = match self.cluster.store() {
                        Ok(store) => store.apply(batch).await.map_err(|e| e.to_string()),
                        Err(e) => Err(e.to_string()),
                    };
                    if let Err(e) = undone {
                        tracing::warn!(error = %e, "cannot remove a half-made endpoint from the cluster; the next listing tries again");
                    }
                }
            }
        }
    }

    async fn announce_again(&self) {
        let (Ok(store), Some(lease)) = (
            self.cluster.store(),
            self.cluster.membership().and_then(|m| m.lease),
        ) else {
            return;
        };
        match crate::cluster_store::members::announce(&store, &self.node.id, lease).await {
            Ok(()) => tracing::info!("this node's liveness key was gone; announced it again"),
            // An expired lease: the keeper grants a new one and announces on it.
            Err(e) => tracing::debug!(error = %e, "cannot announce this node on its lease"),
        }
    }

    /// After a listing: segments no local endpoint needs are removed, and entries of remote
    /// endpoints that left unseen are pruned.
    async fn settle_overlay(&self) {
        let wanted = {
            let state = self.state.lock().await;
            let mut wanted = Wanted::default();
            for net in state.networks().filter(|n| self.is_global(n)) {
                wanted.networks.push(network_spec(net));
                for ep in state.endpoints_of_network(&net.id) {
                    if ep.node == self.node.id {
                        wanted
                            .endpoints
                            .push((endpoint_spec(net, ep, false), JoinKind::Sandbox));
                    }
                }
            }
            wanted
        };
        for datapath in self.drivers.cluster_datapaths() {
            if let Err(e) = datapath.collect_garbage(&wanted).await {
                tracing::warn!(driver = datapath.name(), error = %e, "cannot remove unused segments");
            }
            if let Err(e) = datapath.prune().await {
                tracing::warn!(driver = datapath.name(), error = %e, "cannot prune stale remote entries");
            }
        }
    }
}

impl Controller {
    /// A remote endpoint's names and entries removed.
    fn remote_removed(&self, net: &NetworkRecord, endpoint: &str) -> Action {
        Action::Effects(vec![
            Effect::RemoveNames(endpoint.to_string()),
            Effect::RemoveRemote {
                driver: net.driver.clone(),
                vni: self.vni(net),
                endpoint: endpoint.to_string(),
            },
        ])
    }

    /// A global network's VXLAN id, as its driver keeps it; 0 for a local network.
    pub(in crate::controller) fn vni(&self, net: &NetworkRecord) -> u32 {
        self.drivers
            .cluster_driver(&net.driver)
            .map_or(0, |d| d.vni(&net.driver_config))
    }
}

#[cfg(test)]
mod tests {
    //! The mirror's decisions, change by change, on a controller that touches no kernel.

    use crate::cluster_store::members::Role;
    use crate::controller::executor::test::describe;
    use crate::controller::test_controller::THIS_NODE;
    use crate::controller::test_records::{endpoint, network, sandbox};
    use crate::model::{AddressScope, SubnetOwner, SubnetRecord};

    use super::*;

    struct Mirror {
        _dir: tempfile::TempDir,
        controller: Controller,
    }

    impl Mirror {
        fn new() -> Self {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let controller = Controller::for_unit_tests(dir.path());
            Self {
                _dir: dir,
                controller,
            }
        }

        /// What the change asks for, one line per effect or action.
        async fn apply(&self, change: Change) -> Vec<String> {
            let mut state = self.controller.state.lock().await;
            self.controller
                .mirror(&mut state, change)
                .iter()
                .flat_map(|action| match action {
                    Action::Effects(effects) => effects.iter().map(describe).collect(),
                    Action::Announce => vec!["announce".to_string()],
                    Action::Undo(_) => vec!["undo".to_string()],
                    Action::ForgetUser(node) => vec![format!("forget user {node}")],
                })
                .collect()
        }

        async fn knows_endpoint(&self, id: &str) -> bool {
            self.controller.state.lock().await.endpoint(id).is_some()
        }
    }

    fn node(id: &str, address: &str) -> Change {
        Change::Node(
            id.into(),
            Some(ClusterNode {
                id: id.into(),
                hostname: id.into(),
                address: address.into(),
                role: Role::Worker,
                joined: String::new(),
            }),
        )
    }

    fn overlay() -> NetworkRecord {
        let mut net = network("n1", "web", "overlay", SubnetOwner::Network);
        net.address_scope = AddressScope::Global;
        net.driver_config = serde_json::json!({"vni": 4097});
        net.subnets = vec![SubnetRecord {
            subnet: "10.0.1.0/24".parse().unwrap(),
            gateway: "10.0.1.1".parse().unwrap(),
            ip_range: None,
            aux_addresses: Default::default(),
            explicit: false,
        }];
        net
    }

    fn endpoint_on(id: &str, node: &str, sandbox: &str, address: &str) -> Change {
        let mut ep = endpoint(id, "n1", sandbox);
        ep.node = node.into();
        ep.ipv4 = Some(address.parse().unwrap());
        Change::Endpoint(id.into(), Some(Box::new(ep)))
    }

    #[tokio::test]
    async fn a_remote_endpoint_of_a_ready_node_gets_its_entries_and_names() {
        let m = Mirror::new();
        m.apply(node("node-b", "192.0.2.2")).await;
        m.apply(Change::Alive("node-b".into(), true)).await;
        m.apply(Change::Network("n1".into(), Some(overlay()))).await;
        let steps = m
            .apply(endpoint_on("e2", "node-b", "s2", "10.0.1.2/24"))
            .await;
        assert_eq!(steps, ["add remote e2", "add names e2"]);
        // The same record again (this node's own write coming back, say): nothing.
        let again = m
            .apply(endpoint_on("e2", "node-b", "s2", "10.0.1.2/24"))
            .await;
        assert!(again.is_empty(), "{again:?}");
    }

    #[tokio::test]
    async fn a_node_going_down_and_up_withdraws_and_restores_its_endpoints() {
        let m = Mirror::new();
        m.apply(node("node-b", "192.0.2.2")).await;
        m.apply(Change::Network("n1".into(), Some(overlay()))).await;
        let unready = m
            .apply(endpoint_on("e2", "node-b", "s2", "10.0.1.2/24"))
            .await;
        assert!(unready.is_empty(), "a node not ready yet: {unready:?}");
        let up = m.apply(Change::Alive("node-b".into(), true)).await;
        assert_eq!(up, ["add remote e2", "add names e2"]);
        let down = m.apply(Change::Alive("node-b".into(), false)).await;
        assert_eq!(down, ["remove names e2", "remove remote e2"]);
        assert!(
            m.knows_endpoint("e2").await,
            "kept: its address stays its own"
        );
    }

    #[tokio::test]
    async fn an_endpoint_seen_before_its_network_waits_for_it() {
        let m = Mirror::new();
        m.apply(node("node-b", "192.0.2.2")).await;
        m.apply(Change::Alive("node-b".into(), true)).await;
        let early = m
            .apply(endpoint_on("e2", "node-b", "s2", "10.0.1.2/24"))
            .await;
        assert!(early.is_empty());
        let steps = m.apply(Change::Network("n1".into(), Some(overlay()))).await;
        assert_eq!(steps, ["add remote e2", "add names e2"]);
    }

    #[tokio::test]
    async fn a_deleted_network_takes_its_remote_endpoints_and_segment() {
        let m = Mirror::new();
        m.apply(node("node-b", "192.0.2.2")).await;
        m.apply(Change::Alive("node-b".into(), true)).await;
        m.apply(Change::Network("n1".into(), Some(overlay()))).await;
        m.apply(endpoint_on("e2", "node-b", "s2", "10.0.1.2/24"))
            .await;
        let steps = m.apply(Change::Network("n1".into(), None)).await;
        assert_eq!(
            steps,
            ["remove names e2", "remove remote e2", "delete network n1"]
        );
        assert!(!m.knows_endpoint("e2").await);
    }

    #[tokio::test]
    async fn this_nodes_endpoint_listed_after_a_restart_is_plugged_in_again() {
        let m = Mirror::new();
        m.controller
            .state
            .lock()
            .await
            .insert_sandbox(sandbox("s1", "a"));
        m.apply(Change::Network("n1".into(), Some(overlay()))).await;
        let steps = m
            .apply(endpoint_on("e1", THIS_NODE, "s1", "10.0.1.3/24"))
            .await;
        assert_eq!(steps, ["join e1", "add names e1", "write hosts s1"]);
    }

    #[tokio::test]
    async fn this_nodes_endpoint_without_its_sandbox_is_undone_in_the_cluster() {
        let m = Mirror::new();
        m.apply(Change::Network("n1".into(), Some(overlay()))).await;
        let steps = m
            .apply(endpoint_on("e1", THIS_NODE, "gone", "10.0.1.3/24"))
            .await;
        assert_eq!(steps, ["undo"]);
    }

    #[tokio::test]
    async fn this_nodes_liveness_key_gone_is_announced_again() {
        let m = Mirror::new();
        m.apply(Change::Alive(THIS_NODE.into(), true)).await;
        let steps = m.apply(Change::Alive(THIS_NODE.into(), false)).await;
        assert_eq!(steps, ["announce"]);
    }

    #[tokio::test]
    async fn a_node_removed_loses_its_store_user() {
        let m = Mirror::new();
        m.apply(node("node-b", "192.0.2.2")).await;
        let steps = m.apply(Change::Node("node-b".into(), None)).await;
        assert_eq!(steps, ["forget user node-b"]);
    }
}
