//! Start-up: load desired state, rebuild address allocations, converge the kernel to the
//! store, and remove what netctl owns but no longer wants.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use drivers::bridge::BridgeDriver;
use drivers::firewall::Firewall;
use drivers::netlink::Netlink;
use drivers::netns::{self, Netns};
use drivers::passive::PassiveDriver;
use drivers::{BRIDGE_PREFIX, DOCKER_PEER_PREFIX, VETH_PREFIX};
use ipam::{Ipam, PoolRequest, PoolTemplate};
use tokio::sync::Mutex;

use super::drivers::{network_spec, Drivers};
use super::state::{Sandbox, State};
use super::Controller;
use crate::ids::{new_id, now_rfc3339};
use crate::model::{
    DockerPoolRecord, DriverKind, EndpointRecord, NetworkRecord, SandboxMode, SandboxRecord,
};
use crate::store::{Change, Store};
use crate::{DaemonConfig, DaemonError, Paths};

impl Controller {
    /// Opens the store, reconciles the kernel to it, and returns a controller ready to serve.
    pub async fn start(config: DaemonConfig, paths: Paths) -> Result<Self, DaemonError> {
        for dir in [
            &paths.data_root,
            &paths.exec_root,
            &paths.exec_root.join("netns"),
        ] {
            std::fs::create_dir_all(dir).map_err(|source| DaemonError::Io {
                what: "create directory",
                path: dir.clone(),
                source,
            })?;
        }
        let store = Store::open(&paths.data_root.join("netctl.redb"))?;
        let host = Netlink::connect().map_err(|source| DaemonError::Io {
            what: "netlink socket",
            path: "/proc/self/ns/net".into(),
            source,
        })?;
        for setting in config.inert_settings() {
            tracing::warn!("daemon.json: {setting} is accepted but has no effect");
        }
        let manage_forwarding = config.ip_forward.unwrap_or(true);
        let controller = Self {
            state: Mutex::new(State::new(Ipam::new(
                config.local_pool_templates(),
                PoolTemplate::from_table(ipam::DEFAULT_GLOBAL_POOLS),
            ))),
            store,
            drivers: Drivers {
                bridge: BridgeDriver::new(host.clone(), Firewall, manage_forwarding),
                passive: PassiveDriver,
            },
            host,
            dns: ::dns::Dns::new().map_err(|source| DaemonError::Io {
                what: "DNS thread",
                path: paths.exec_root.clone(),
                source,
            })?,
            config,
            paths,
        };
        controller.dns.set_defaults(
            controller.config.dns_settings(),
            super::dns::host_dns(&controller.paths.host_resolv_conf),
        );
        controller.reconcile().await?;
        Ok(controller)
    }

    async fn reconcile(&self) -> Result<(), DaemonError> {
        let snapshot = self.store.load()?;
        let mut state = self.state.lock().await;
        state.networks = snapshot
            .networks
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        self.ensure_builtin_networks(&mut state)?;
        // A Docker endpoint's sandbox is a container, dockerd's business.
        let (endpoints, orphans): (Vec<_>, Vec<_>) =
            snapshot.endpoints.into_iter().partition(|e| {
                state.networks.contains_key(&e.network_id)
                    && (e.docker || snapshot.sandboxes.iter().any(|s| s.id == e.sandbox_id))
            });
        if !orphans.is_empty() {
            tracing::warn!(
                count = orphans.len(),
                "dropping endpoints whose network or sandbox is gone"
            );
            let changes: Vec<_> = orphans
                .iter()
                .map(|e| Change::DeleteEndpoint(&e.id))
                .collect();
            self.store.apply(&changes)?;
        }
        state.endpoints = endpoints.into_iter().map(|e| (e.id.clone(), e)).collect();
        state.docker_pools = snapshot
            .docker_pools
            .into_iter()
            .map(|p| (p.id.clone(), p))
            .collect();
        rebuild_ipam(&mut state);

        let bridges: Vec<&NetworkRecord> = state
            .networks
            .values()
            .filter(|n| n.driver == DriverKind::Bridge)
            .collect();
        self.sync_firewall(&state).await?;
        for net in &bridges {
            if let Err(e) = self.drivers.bridge.ensure_network(&network_spec(net)).await {
                tracing::error!(network = %net.name, error = %e, "cannot restore network");
            }
            if let Err(e) = drivers::firewall::docker_user::admit_bridge(&net.bridge).await {
                tracing::warn!(network = %net.name, error = %e, "cannot admit the bridge in dockerd's DOCKER-USER chain");
            }
        }

        for record in snapshot.sandboxes {
            let netns = match restore_netns(&record).await {
                Ok(netns) => Some(Arc::new(netns)),
                Err(e) => {
                    tracing::error!(sandbox = %record.name, error = %e, "cannot restore sandbox namespace");
                    None
                }
            };
            if netns.is_some() || record.mode == SandboxMode::Host {
                if let Err(e) = self.start_dns(&record).await {
                    tracing::error!(sandbox = %record.name, error = %e.message, "cannot serve DNS");
                }
            }
            state
                .sandboxes
                .insert(record.id.clone(), Sandbox { record, netns });
        }
        for endpoint in state.endpoints.values() {
            let net = &state.networks[&endpoint.network_id];
            if endpoint.docker {
                // Its veth went into a container that dockerd owns; a missing one is not
                // netctl's to re-create (dockerd's DeleteEndpoint will come for the record).
                continue;
            }
            let sandbox = &state.sandboxes[&endpoint.sandbox_id];
            if let Some(names) = super::dns::endpoint_names(net, &sandbox.record, endpoint) {
                self.dns.directory().add_endpoint(names);
            }
            let Some(netns) = sandbox.netns.as_ref() else {
                continue;
            };
            if let Err(e) = self.drivers.join(net, endpoint, netns).await {
                tracing::error!(network = %net.name, endpoint = %endpoint.id, error = %e, "cannot restore endpoint");
            }
        }
        self.collect_stale_docker_endpoints(&mut state).await;
        self.collect_garbage(&state).await;
        tracing::info!(
            networks = state.networks.len(),
            sandboxes = state.sandboxes.len(),
            endpoints = state.endpoints.len(),
            "reconciled"
        );
        Ok(())
    }

    /// `host` and `none` always exist, with ids that persist across restarts.
    fn ensure_builtin_networks(&self, state: &mut State) -> Result<(), DaemonError> {
        for (name, driver) in [("host", DriverKind::Host), ("none", DriverKind::None)] {
            if state.network_by_name(name).is_some() {
                continue;
            }
            let record = NetworkRecord {
                id: new_id(),
                name: name.into(),
                driver,
                created: now_rfc3339(),
                bridge: String::new(),
                mtu: self.config.mtu(),
                icc: true,
                internal: false,
                ipv6: false,
                subnets: Vec::new(),
                scope: ipam::Scope::Local,
                options: BTreeMap::new(),
                labels: BTreeMap::new(),
                builtin: true,
                docker_id: None,
            };
            self.store.apply(&[Change::PutNetwork(&record)])?;
            state.networks.insert(record.id.clone(), record);
        }
        Ok(())
    }

    /// Deletes links and namespaces that carry netctl's names but that no record wants.
    async fn collect_garbage(&self, state: &State) {
        let wanted_links: HashSet<&str> = state
            .networks
            .values()
            .map(|n| n.bridge.as_str())
            .chain(state.endpoints.values().map(|e| e.host_ifname.as_str()))
            .chain(
                state
                    .endpoints
                    .values()
                    .filter(|e| e.docker)
                    .map(|e| e.ifname.as_str()),
            )
            .collect();
        match self.host.links().await {
            Ok(links) => {
                for link in links {
                    let ours = [BRIDGE_PREFIX, VETH_PREFIX, DOCKER_PEER_PREFIX]
                        .iter()
                        .any(|prefix| link.name.starts_with(prefix));
                    if ours && !wanted_links.contains(link.name.as_str()) {
                        tracing::info!(link = %link.name, "removing unwanted link");
                        if let Err(e) = self.host.delete_link_by_name(&link.name).await {
                            tracing::warn!(link = %link.name, error = %e, "cannot remove link");
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list links"),
        }
        let wanted_netns: HashSet<&Path> = state
            .sandboxes
            .values()
            .map(|s| s.record.netns.as_path())
            .collect();
        self.remove_unwanted_resolv_confs(state);
        let dir = self.paths.exec_root.join("netns");
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !wanted_netns.contains(path.as_path()) {
                tracing::info!(netns = %path.display(), "removing unwanted namespace");
                if let Err(e) = netns::remove(&path) {
                    tracing::warn!(netns = %path.display(), error = %e, "cannot remove namespace");
                }
            }
        }
    }
}

impl Controller {
    /// Docker endpoints that dockerd deleted while netctl was down: dockerd took the veth
    /// into the container at Join and gives it back before DeleteEndpoint, so a joined
    /// endpoint whose container end is in this namespace again is no longer in use.
    async fn collect_stale_docker_endpoints(&self, state: &mut State) {
        let mut stale = Vec::new();
        for ep in state.endpoints.values().filter(|e| e.docker && e.joined) {
            if let Ok(Some(_)) = self.host.link_by_name(&ep.ifname).await {
                stale.push(ep.clone());
            }
        }
        if stale.is_empty() {
            return;
        }
        // dockerd's ReleaseAddress failed too: its addresses go back to their pools, unless
        // another endpoint holds one already.
        let pools = stale_addresses_released(state, &stale);
        let mut changes: Vec<_> = stale
            .iter()
            .map(|e| Change::DeleteEndpoint(&e.id))
            .collect();
        changes.extend(pools.iter().map(Change::PutDockerPool));
        if let Err(e) = self.store.apply(&changes) {
            tracing::warn!(error = %e, "cannot forget stale Docker endpoints");
            return;
        }
        for pool in pools {
            for gone in state.docker_pools[&pool.id]
                .addresses
                .difference(&pool.addresses)
            {
                let _ = state
                    .ipam
                    .space_mut(pool.scope)
                    .release(&pool.subnet, *gone);
            }
            state.docker_pools.insert(pool.id.clone(), pool);
        }
        for ep in &stale {
            tracing::info!(endpoint = %ep.id, "removing a Docker endpoint dockerd deleted while netctl was down");
            state.endpoints.remove(&ep.id);
            state.ports.release_all(&ep.ports);
            self.withdraw_ports(ep).await;
            if let Err(e) = self.host.delete_link_by_name(&ep.host_ifname).await {
                tracing::warn!(link = %ep.host_ifname, error = %e, "cannot remove link");
            }
        }
    }

    fn remove_unwanted_resolv_confs(&self, state: &State) {
        let Ok(entries) = std::fs::read_dir(self.paths.sandbox_files()) else {
            return;
        };
        let wanted: HashSet<&str> = state.sandboxes.keys().map(|id| &id[..12]).collect();
        for entry in entries.flatten() {
            if !wanted.contains(entry.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// The Docker pools with the stale endpoints' addresses taken out (only those that changed).
fn stale_addresses_released(state: &State, stale: &[EndpointRecord]) -> Vec<DockerPoolRecord> {
    let stale_ids: HashSet<&str> = stale.iter().map(|e| e.id.as_str()).collect();
    let held: HashSet<IpAddr> = state
        .endpoints
        .values()
        .filter(|e| !stale_ids.contains(e.id.as_str()))
        .flat_map(|e| e.ipv4.iter().chain(&e.ipv6).map(|a| a.ip()))
        .collect();
    let mut changed: BTreeMap<String, DockerPoolRecord> = BTreeMap::new();
    let addresses = stale
        .iter()
        .flat_map(|e| e.ipv4.iter().chain(&e.ipv6).map(|a| a.ip()));
    for address in addresses.filter(|a| !held.contains(a)) {
        let Some(pool) = state
            .docker_pools
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

async fn restore_netns(record: &SandboxRecord) -> Result<Netns, drivers::DriverError> {
    if netns::exists(&record.netns) {
        return Netns::open(&record.netns).await;
    }
    // Gone (a reboot, or someone unmounted it): make it anew; endpoints are re-joined next.
    let _ = netns::remove(&record.netns);
    match record.mode {
        SandboxMode::Host => Netns::bind_current(&record.netns).await,
        SandboxMode::Isolated => Netns::create(&record.netns).await,
    }
}

/// Re-reserves every subnet, gateway and endpoint address from the records.
fn rebuild_ipam(state: &mut State) {
    let State {
        networks,
        endpoints,
        ipam,
        ports: state_ports,
        docker_pools,
        ..
    } = state;
    for pool in docker_pools.values() {
        let request = PoolRequest {
            subnet: Some(pool.subnet),
            ip_range: pool.ip_range,
            aux_addresses: BTreeMap::new(),
            v6: pool.subnet.is_ipv6(),
        };
        let space = ipam.space_mut(pool.scope);
        let restored = space.request_pool(&request, &[]).and_then(|subnet| {
            pool.addresses
                .iter()
                .try_for_each(|a| space.allocate(&subnet, Some(*a)).map(drop))
        });
        if let Err(e) = restored {
            tracing::error!(pool = %pool.id, error = %e, "cannot restore a Docker pool");
        }
    }
    // A Docker network's addresses are its pool's (restored above) or Docker's own.
    for net in networks.values().filter(|n| n.docker_id.is_none()) {
        for s in &net.subnets {
            let request = PoolRequest {
                subnet: Some(s.subnet),
                ip_range: s.ip_range,
                aux_addresses: s.aux_addresses.clone(),
                v6: s.subnet.is_ipv6(),
            };
            let space = ipam.space_mut(net.scope);
            let restored = space
                .request_pool(&request, &[])
                .and_then(|subnet| space.allocate(&subnet, Some(s.gateway)));
            if let Err(e) = restored {
                tracing::error!(network = %net.name, subnet = %s.subnet, error = %e, "cannot restore pool");
            }
        }
    }
    for ep in endpoints.values() {
        if let Err(e) = state_ports.take_all(&ep.ports) {
            tracing::error!(endpoint = %ep.id, error = %e, "cannot reserve published ports again");
        }
        let Some(net) = networks
            .get(&ep.network_id)
            .filter(|n| n.docker_id.is_none())
        else {
            continue;
        };
        for address in ep.ipv4.iter().chain(ep.ipv6.iter()) {
            let Some(s) = net.subnets.iter().find(|s| s.subnet.contains(address.ip())) else {
                continue;
            };
            if let Err(e) = ipam
                .space_mut(net.scope)
                .allocate(&s.subnet, Some(address.ip()))
            {
                tracing::error!(endpoint = %ep.id, error = %e, "cannot restore address");
            }
        }
    }
}
