//! Start-up: load desired state, rebuild address allocations, converge the kernel to the
//! store, and remove what netctl owns but no longer wants. Nothing is served yet, so the work
//! runs in order, under the state lock.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use netctl_drivers::{JoinKind, Wanted};
use netctl_kernel::Netns;
use netctl_store::{Batch, LocalStore, Prefix, Scope, Store};

use netctl_plugin_api::runtime::{GcReport, SandboxRepair};

use super::effects::{endpoint_effects, Effect};
use super::executor;
use super::namespaces::{remember_id, remembered_id, NamespaceSearch, Restored};
use super::runtime::interface_differences;
use super::specs::{endpoint_spec, network_spec};
use super::state::State;
use super::Controller;
use crate::error::DaemonError;
use crate::ids::{new_id, now_rfc3339};
use crate::model::{
    AddressScope, DockerEndpointRecord, DockerPoolRecord, EndpointRecord, NetworkRecord,
    NodeRecord, SandboxMode, SandboxRecord, SubnetOwner,
};
use crate::persist::{self, BatchExt, Loaded};

/// This daemon's node, made on its first start.
pub(super) async fn this_node(store: &LocalStore) -> Result<NodeRecord, DaemonError> {
    let stored = store
        .load(&Prefix::kind(Scope::Local, "node"))
        .await
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    if let Some(entry) = stored.entries.first() {
        let envelope: serde_json::Value = serde_json::from_slice(&entry.value)
            .map_err(|e| DaemonError::Store(format!("node record: {e}")))?;
        return serde_json::from_value(envelope["record"].clone())
            .map_err(|e| DaemonError::Store(format!("node record: {e}")));
    }
    let node = NodeRecord {
        id: new_id(),
        hostname: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_default(),
        created: now_rfc3339(),
    };
    store
        .apply(Batch::new().put_record(&node))
        .await
        .map_err(|e| DaemonError::Store(e.to_string()))?;
    Ok(node)
}

impl Controller {
    pub(super) async fn reconcile(&self) -> Result<(), DaemonError> {
        let loaded = persist::load(&*self.store).await?;
        self.load_into(&mut *self.state.lock().await, loaded)
            .await?;
        self.sync_firewall().await?;
        let mut state = self.state.lock().await;
        let restore = self.network_restores(&state);
        executor::best_effort(self, "restore networks", &restore).await;
        let sandboxes: Vec<SandboxRecord> = state.sandboxes().cloned().collect();
        let mut search = NamespaceSearch::default();
        for sandbox in &sandboxes {
            self.restore_sandbox(&state, sandbox, &mut search).await;
        }
        self.collect_stale_runtime_endpoints(&mut state).await;
        self.collect_garbage(&state).await;
        tracing::info!(
            networks = state.networks().count(),
            sandboxes = sandboxes.len(),
            endpoints = state.endpoints().count(),
            "reconciled"
        );
        Ok(())
    }

    /// The stored records in memory, with their addresses and ports taken again; the
    /// predefined networks made if missing, and endpoints whose network or sandbox is gone
    /// dropped.
    async fn load_into(&self, state: &mut State, loaded: Loaded) -> Result<(), DaemonError> {
        if let Some(membership) = loaded.membership.clone() {
            match self.underlay(&membership).await {
                Ok(underlay) => self.set_underlay(Some(underlay)),
                Err(e) => {
                    tracing::error!(error = %e, "this node's cluster address is gone; overlay networks cannot be joined here")
                }
            }
            state.global.unlisted = Some(membership.store.join(", "));
            self.restore_membership(membership);
        }
        let Loaded {
            networks,
            sandboxes,
            endpoints,
            docker_networks,
            docker_endpoints,
            docker_pools,
            ..
        } = loaded;
        networks.into_iter().for_each(|n| state.insert_network(n));
        self.ensure_predefined_networks(state).await?;
        sandboxes.into_iter().for_each(|s| state.insert_sandbox(s));
        for binding in docker_networks {
            state
                .docker
                .networks
                .insert(binding.docker_id.clone(), binding);
        }
        for pool in docker_pools {
            state.restore_docker_pool(&pool);
            state.docker.pools.insert(pool.id.clone(), pool);
        }
        for net in state.networks().cloned().collect::<Vec<_>>() {
            state.restore_network_subnets(&net);
        }
        let mut orphans = Batch::new();
        for ep in endpoints {
            let sandbox_gone = ep
                .sandbox_id
                .as_ref()
                .is_some_and(|id| state.sandbox_by_id(id).is_none());
            let Some(net) = state
                .network_by_id(&ep.network_id)
                .cloned()
                .filter(|_| !sandbox_gone)
            else {
                orphans = orphans.delete_record::<EndpointRecord>(&ep.id);
                continue;
            };
            state.retake_endpoint(&net, &ep);
            state.insert_endpoint(ep);
        }
        // In a cluster, an endpoint of a Docker network bound to a global network lives in
        // the cluster store: it is known once the cluster is mirrored.
        let in_cluster = self.cluster.membership().is_some();
        for docker in docker_endpoints {
            if in_cluster || state.endpoint(&docker.endpoint_id).is_some() {
                state
                    .docker
                    .endpoints
                    .insert(docker.endpoint_id.clone(), docker);
            } else {
                orphans = orphans.delete_record::<DockerEndpointRecord>(&docker.endpoint_id);
            }
        }
        if !orphans.is_empty() {
            tracing::warn!(
                count = orphans.ops.len(),
                "dropping records whose network or sandbox is gone"
            );
            self.store
                .apply(orphans)
                .await
                .map_err(|e| DaemonError::Store(e.to_string()))?;
        }
        Ok(())
    }

    /// The one network of each driver that has a predefined one (`host`, `none`), with an
    /// id that persists across restarts.
    async fn ensure_predefined_networks(&self, state: &mut State) -> Result<(), DaemonError> {
        for driver in self.drivers.all() {
            let Some(name) = driver.capabilities().singleton else {
                continue;
            };
            if state.network_named(name).is_some() {
                continue;
            }
            let settings = driver.parse_options(&BTreeMap::new(), &self.network_defaults())?;
            let record = NetworkRecord {
                id: new_id(),
                name: name.into(),
                driver: driver.name().into(),
                created: now_rfc3339(),
                address_scope: AddressScope::Local,
                mtu: settings.mtu,
                internal: false,
                ipv6: false,
                subnets: Vec::new(),
                subnet_owner: SubnetOwner::Network,
                options: BTreeMap::new(),
                driver_config: settings.config,
                labels: BTreeMap::new(),
            };
            self.store
                .apply(Batch::new().put_record(&record))
                .await
                .map_err(|e| DaemonError::Store(e.to_string()))?;
            state.insert_network(record);
        }
        Ok(())
    }

    /// The sandbox's namespace (found again, or made anew if it is gone: a reboot, its mount
    /// lost with the daemon's mount namespace, or someone unmounted it), its DNS server and
    /// files, and its endpoints plugged in again.
    pub(super) async fn restore_sandbox(
        &self,
        state: &State,
        sandbox: &SandboxRecord,
        search: &mut NamespaceSearch,
    ) {
        let opened = match sandbox.mode {
            SandboxMode::Runtime => search.reopen_runtime(sandbox).await,
            _ => self
                .restore_own_netns(sandbox, search)
                .await
                .map(|(netns, _)| netns),
        };
        match opened {
            Ok(netns) => self.namespaces.insert(&sandbox.id, netns),
            // Its runtime let it go while netctl was down: collected once started.
            Err(e) if sandbox.mode == SandboxMode::Runtime => {
                tracing::info!(container = %sandbox.name, error = %e, "the container's namespace is gone")
            }
            Err(e) => {
                tracing::error!(sandbox = %sandbox.name, error = %e, "cannot restore sandbox namespace")
            }
        }
        let netns = self.namespaces.get(&sandbox.id);
        if netns.is_some() || sandbox.mode == SandboxMode::Host {
            if let Err(e) = self.start_dns(sandbox).await {
                tracing::error!(sandbox = %sandbox.name, error = %e, "cannot serve DNS");
            }
        }
        let effects = self.sandbox_effects(state, sandbox, netns.is_some());
        let what = format!("restore sandbox {}", sandbox.name);
        executor::best_effort(self, &what, &effects).await;
    }

    /// A sandbox's endpoints put in place again as an attach puts them (every effect is
    /// idempotent: what is there already is only re-asserted), then its hosts file. Without
    /// its namespace (a runtime let it go), only the names.
    fn sandbox_effects(
        &self,
        state: &State,
        sandbox: &SandboxRecord,
        plugged: bool,
    ) -> Vec<Effect> {
        let mut effects = Vec::new();
        for ep in state.endpoints_of_sandbox(&sandbox.id) {
            let Some(net) = state.network_by_id(&ep.network_id) else {
                continue;
            };
            match self.capabilities(net) {
                Ok(caps) => effects.extend(
                    endpoint_effects(net, &caps, sandbox, ep)
                        .into_iter()
                        .filter(|e| plugged || !matches!(e, Effect::Join { .. })),
                ),
                Err(e) => {
                    tracing::error!(network = %net.name, endpoint = %ep.id, error = %e, "cannot restore endpoint")
                }
            }
        }
        effects.push(Effect::WriteHosts {
            sandbox: sandbox.clone(),
            addresses: state.sandbox_addresses(&sandbox.id),
        });
        effects
    }

    /// `netctl gc`'s look at netctl's own sandboxes: each one's namespace bound where its
    /// record says, and each endpoint's interface as recorded. One that differs is made
    /// whole again as at start (unless the run is dry), and reported; what stays wrong is
    /// an error of the report.
    pub(super) async fn repair_sandboxes(&self, report: &mut GcReport) {
        let sandboxes: Vec<SandboxRecord> = {
            let state = self.state.lock().await;
            let own = state
                .sandboxes()
                .filter(|s| s.mode == SandboxMode::Isolated);
            own.cloned().collect()
        };
        for sandbox in sandboxes {
            let problems = self.sandbox_differences(&sandbox).await;
            if problems.is_empty() {
                continue;
            }
            let mut repair = SandboxRepair {
                sandbox: sandbox.name.clone(),
                problems,
                repaired: false,
            };
            if !report.dry_run {
                self.repair_sandbox(&sandbox).await;
                let left = self.sandbox_differences(&sandbox).await;
                repair.repaired = left.is_empty();
                report.errors.extend(
                    left.iter()
                        .map(|p| format!("sandbox {}: cannot repair: {p}", sandbox.name)),
                );
            }
            report.sandboxes.push(repair);
        }
    }

    /// A running daemon's repair of one sandbox: its namespace bound again from the
    /// daemon's own handle (or made anew, its DNS server with it), its endpoints plugged in.
    async fn repair_sandbox(&self, sandbox: &SandboxRecord) {
        let _held = self.locks.hold(&[], &[], &[&sandbox.id]).await;
        let state = self.state.lock().await;
        let Some(sandbox) = state.sandbox_by_id(&sandbox.id).cloned() else {
            return;
        };
        let restored = self
            .restore_own_netns(&sandbox, &mut NamespaceSearch::default())
            .await;
        let (netns, how) = match restored {
            Ok(restored) => restored,
            Err(e) => {
                tracing::error!(sandbox = %sandbox.name, error = %e, "cannot repair the sandbox's namespace");
                return;
            }
        };
        self.namespaces.insert(&sandbox.id, netns);
        if how == Restored::Rebuilt {
            self.dns.remove_sandbox(&sandbox.id);
            if let Err(e) = self.start_dns(&sandbox).await {
                tracing::error!(sandbox = %sandbox.name, error = %e, "cannot serve DNS");
            }
        }
        let plugged = self.namespaces.get(&sandbox.id).is_some();
        let effects = self.sandbox_effects(&state, &sandbox, plugged);
        let what = format!("repair sandbox {}", sandbox.name);
        executor::best_effort(self, &what, &effects).await;
    }

    /// How the kernel differs from the sandbox's record.
    async fn sandbox_differences(&self, sandbox: &SandboxRecord) -> Vec<String> {
        let Some(netns) = self.namespaces.get(&sandbox.id) else {
            return vec!["the daemon does not hold its namespace".into()];
        };
        let mut problems = Vec::new();
        if !netns.id().is_ok_and(|id| id.is_at(&sandbox.netns)) {
            problems.push(format!(
                "its namespace is not bound at {}",
                sandbox.netns.display()
            ));
        }
        let endpoints: Vec<(NetworkRecord, EndpointRecord, bool)> = {
            let state = self.state.lock().await;
            state
                .endpoints_of_sandbox(&sandbox.id)
                .filter_map(|ep| {
                    let net = state.network_by_id(&ep.network_id)?;
                    let caps = self.capabilities(net).ok()?;
                    Some((net.clone(), ep.clone(), !net.internal && caps.gateway))
                })
                .collect()
        };
        for (net, ep, routed) in &endpoints {
            problems.extend(interface_differences(&netns, net, ep, *routed).await);
        }
        problems
    }

    /// One of netctl's own namespaces, found again or made anew (see
    /// [`NamespaceSearch::restore_own`]), its identity kept for the next time.
    async fn restore_own_netns(
        &self,
        sandbox: &SandboxRecord,
        search: &mut NamespaceSearch,
    ) -> Result<(Netns, Restored), String> {
        let remembered = remembered_id(&self.paths, &sandbox.id);
        let open = self.namespaces.get(&sandbox.id);
        let (netns, how) = search
            .restore_own(sandbox, remembered, open.as_deref())
            .await?;
        match &how {
            Restored::Opened => {}
            Restored::Rebound(held) => {
                tracing::info!(sandbox = %sandbox.name, held = %held.display(), "the sandbox's namespace had lost its mount but was still held: bound again");
                metrics::counter!("netctl_reconcile_repairs_total", "what" => "namespace")
                    .increment(1);
            }
            Restored::Rebuilt => {
                tracing::warn!(sandbox = %sandbox.name, "the sandbox's namespace was gone: made anew, with its interfaces, addresses and routes");
                metrics::counter!("netctl_reconcile_repairs_total", "what" => "namespace")
                    .increment(1);
            }
        }
        if sandbox.mode == SandboxMode::Isolated && remembered != netns.id().ok() {
            remember_id(&self.paths, &sandbox.id, &netns);
        }
        Ok((netns, how))
    }

    /// Endpoints a runtime deleted while netctl was down (its calls failed, and dockerd
    /// ignores that): the runtime had taken their interface and has handed it back.
    async fn collect_stale_runtime_endpoints(&self, state: &mut State) {
        let mut stale = Vec::new();
        for docker in state.docker.endpoints.values().filter(|d| d.joined) {
            let Some(ep) = state.endpoint(&docker.endpoint_id) else {
                continue;
            };
            let Some(net) = state.network_by_id(&ep.network_id) else {
                continue;
            };
            let Some(driver) = self.drivers.get(&net.driver) else {
                continue;
            };
            let spec = endpoint_spec(net, ep, false);
            if driver.released_by_runtime(&network_spec(net), &spec).await {
                stale.push((net.clone(), ep.clone()));
            }
        }
        if stale.is_empty() {
            return;
        }
        // The runtime's ReleaseAddress failed too: the addresses go back to their pools,
        // unless another endpoint holds one already.
        let pools = stale_addresses_released(state, &stale);
        let mut batch = Batch::new();
        for (_, ep) in &stale {
            batch = batch
                .delete_record::<EndpointRecord>(&ep.id)
                .delete_record::<DockerEndpointRecord>(&ep.id);
        }
        for pool in &pools {
            batch = batch.put_record(pool);
        }
        if let Err(e) = self.store.apply(batch).await {
            tracing::warn!(error = %e, "cannot forget stale Docker endpoints");
            return;
        }
        metrics::counter!("netctl_reconcile_repairs_total", "what" => "docker_endpoint")
            .increment(stale.len() as u64);
        for pool in pools {
            let gone: Vec<IpAddr> = state.docker.pools[&pool.id]
                .addresses
                .difference(&pool.addresses)
                .copied()
                .collect();
            for address in gone {
                let _ = state
                    .ipam
                    .space_mut(pool.address_scope.into())
                    .release(&pool.subnet, address);
            }
            state.docker.pools.insert(pool.id.clone(), pool);
        }
        for (net, ep) in &stale {
            tracing::info!(endpoint = %ep.id, "removing a Docker endpoint dockerd deleted while netctl was down");
            state.docker.endpoints.remove(&ep.id);
            let effects = self.plan_leave(state, net, None, ep);
            let what = format!("remove Docker endpoint {}", ep.id);
            executor::best_effort(self, &what, &effects).await;
        }
    }

    /// Removes kernel objects and files that netctl made but that no record wants: each
    /// driver's own, then sandbox namespaces and files.
    async fn collect_garbage(&self, state: &State) {
        let mut wanted: HashMap<&str, Wanted> = HashMap::new();
        let collector = |driver: &str| -> &str {
            self.drivers
                .get(driver)
                .map(|d| d.collected_by())
                .unwrap_or("")
        };
        for net in state.networks() {
            wanted
                .entry(collector(&net.driver))
                .or_default()
                .networks
                .push(network_spec(net));
        }
        for ep in state.endpoints() {
            let Some(net) = state.network_by_id(&ep.network_id) else {
                continue;
            };
            let kind = match ep.sandbox_id {
                Some(_) => JoinKind::Sandbox,
                None => JoinKind::Runtime,
            };
            wanted
                .entry(collector(&net.driver))
                .or_default()
                .endpoints
                .push((endpoint_spec(net, ep, false), kind));
        }
        // A cluster's drivers wait for the cluster's state: collected once it is mirrored.
        let mut effects: Vec<Effect> = self
            .drivers
            .all()
            .filter(|d| !d.capabilities().needs_cluster)
            .map(|driver| Effect::CollectGarbage {
                driver: driver.name().into(),
                wanted: wanted.remove(driver.name()).unwrap_or_default(),
            })
            .collect();
        effects.extend(
            self.stray_namespaces(state)
                .map(Effect::RemoveStrayNamespace),
        );
        executor::best_effort(self, "collect garbage", &effects).await;
        self.remove_unwanted_sandbox_files(state);
    }

    /// Every recorded network made whole again, by its driver; a network whose driver this
    /// daemon lacks is left as it is.
    fn network_restores(&self, state: &State) -> Vec<Effect> {
        state
            .networks()
            .filter_map(|net| {
                if self.drivers.get(&net.driver).is_none() {
                    tracing::error!(network = %net.name, driver = %net.driver, "no such driver in this daemon; the network is left as it is");
                    return None;
                }
                Some(Effect::RestoreNetwork {
                    driver: net.driver.clone(),
                    net: network_spec(net),
                })
            })
            .collect()
    }

    /// Namespaces bound under the exec root that no sandbox has.
    fn stray_namespaces<'a>(&self, state: &'a State) -> impl Iterator<Item = PathBuf> + 'a {
        let wanted: HashSet<&Path> = state.sandboxes().map(|s| s.netns.as_path()).collect();
        std::fs::read_dir(self.paths.exec_root.join("netns"))
            .into_iter()
            .flat_map(|entries| entries.flatten())
            .map(|entry| entry.path())
            .filter(move |path| !wanted.contains(path.as_path()))
    }

    fn remove_unwanted_sandbox_files(&self, state: &State) {
        let Ok(entries) = std::fs::read_dir(self.paths.sandbox_files()) else {
            return;
        };
        let wanted: HashSet<&str> = state.sandboxes().map(|s| &s.id[..12]).collect();
        for entry in entries.flatten() {
            if !wanted.contains(entry.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The Docker pools with the stale endpoints' addresses taken out (only those that changed).
fn stale_addresses_released(
    state: &State,
    stale: &[(NetworkRecord, EndpointRecord)],
) -> Vec<DockerPoolRecord> {
    let stale_ids: HashSet<&str> = stale.iter().map(|(_, e)| e.id.as_str()).collect();
    let held: HashSet<IpAddr> = state
        .endpoints()
        .filter(|e| !stale_ids.contains(e.id.as_str()))
        .flat_map(|e| e.addresses().map(|a| a.ip()))
        .collect();
    let mut changed: BTreeMap<String, DockerPoolRecord> = BTreeMap::new();
    let addresses = stale
        .iter()
        .flat_map(|(_, e)| e.addresses().map(|a| a.ip()));
    for address in addresses.filter(|a| !held.contains(a)) {
        let Some(pool) = state
            .docker
            .pools
            .values()
            .find(|p| p.subnet.contains(address) && p.addresses.contains(&address))
        else {
            continue;
        };
        changed
            .entry(pool.id.clone())
            .or_insert_with(|| pool.clone())
            .addresses
            .remove(&address);
    }
    changed.into_values().collect()
}

#[cfg(test)]
mod tests {
    //! What a restart plans for a sandbox, on a controller that touches no kernel.

    use crate::controller::executor::test::describe;
    use crate::controller::test_records::{endpoint, network, sandbox};
    use crate::model::SubnetOwner;

    use super::*;

    async fn planned(plugged: bool, tweak: impl FnOnce(&mut EndpointRecord)) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let controller = Controller::for_unit_tests(dir.path());
        let mut state = State::new(netctl_ipam::Ipam::new(Vec::new(), Vec::new()));
        state.insert_network(network("n1", "web", "bridge", SubnetOwner::Network));
        state.insert_network(network("n2", "none", "null", SubnetOwner::Network));
        let sbx = sandbox("s1", "a");
        state.insert_sandbox(sbx.clone());
        let mut ep = endpoint("e1", "n1", "s1");
        tweak(&mut ep);
        state.insert_endpoint(ep);
        controller
            .sandbox_effects(&state, &sbx, plugged)
            .iter()
            .map(describe)
            .collect()
    }

    #[tokio::test]
    async fn a_restored_sandbox_gets_its_endpoints_as_an_attach_gives_them() {
        assert_eq!(
            planned(true, |_| {}).await,
            ["join e1", "add names e1", "write hosts s1"]
        );
    }

    #[tokio::test]
    async fn without_its_namespace_a_sandbox_keeps_only_its_names() {
        assert_eq!(
            planned(false, |_| {}).await,
            ["add names e1", "write hosts s1"]
        );
    }

    #[tokio::test]
    async fn a_chained_endpoint_is_not_joined_again() {
        assert_eq!(
            planned(true, |ep| ep.chained = true).await,
            ["add names e1", "write hosts s1"]
        );
    }

    #[tokio::test]
    async fn a_driver_that_serves_no_names_gets_none() {
        assert_eq!(
            planned(true, |ep| ep.network_id = "n2".into()).await,
            ["join e1", "write hosts s1"]
        );
    }

    #[tokio::test]
    async fn a_restart_restores_every_network_whose_driver_it_has() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let controller = Controller::for_unit_tests(dir.path());
        let mut state = State::new(netctl_ipam::Ipam::new(Vec::new(), Vec::new()));
        state.insert_network(network("n1", "web", "bridge", SubnetOwner::Network));
        state.insert_network(network(
            "n2",
            "gone",
            "a-driver-removed",
            SubnetOwner::Network,
        ));
        let planned: Vec<String> = controller
            .network_restores(&state)
            .iter()
            .map(describe)
            .collect();
        assert_eq!(planned, ["restore network n1"]);
    }

    #[tokio::test]
    async fn a_namespace_no_sandbox_has_is_collected_and_a_sandbox_s_is_kept() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let controller = Controller::for_unit_tests(dir.path());
        let netns = controller.paths.exec_root.join("netns");
        std::fs::create_dir_all(&netns).unwrap();
        let mut kept = sandbox("s1", "a");
        kept.netns = netns.join("s1");
        std::fs::write(&kept.netns, "").unwrap();
        std::fs::write(netns.join("stray"), "").unwrap();
        let mut state = State::new(netctl_ipam::Ipam::new(Vec::new(), Vec::new()));
        state.insert_sandbox(kept);
        let stray: Vec<PathBuf> = controller.stray_namespaces(&state).collect();
        assert_eq!(stray, [netns.join("stray")]);
    }
}
