//! Docker's side of the DHCP IPAM: `docker network create -d netctl --ipam-driver netctl
//! --ipam-opt netctl.dhcp=true -o parent=eth1 lan`.
//!
//! RequestPool learns the LAN's subnet and router by leasing one address and giving it back
//! at once; CreateNetwork makes a DHCP network of it; each RequestAddress leases an address
//! through the network's bridge (dockerd wants it before the container's interface exists)
//! with a MAC of netctl's choosing, which the endpoint then gets; after Join the lease's
//! client moves into the container, where renewals can come from the leased address;
//! ReleaseAddress gives the lease back.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnetwork::IpNetwork;
use netctl_plugin_api::docker::{AddressResponse, PoolResponse, RequestPool, GATEWAY_REQUEST};
use netctl_plugin_api::ApiError;
use netctl_store::Batch;

use crate::controller::errors::{from_kernel, from_store};
use crate::controller::specs::network_spec;
use crate::controller::state::State;
use crate::controller::Controller;
use crate::ids::new_id;
use crate::leases::{lease_from_record, lease_record, Change, Family, Lease, LeaseEvent, Target};
use crate::model::{
    generate_mac, AddressScope, DockerDhcpPool, DockerLease, DockerPoolRecord, NetworkRecord,
};
use crate::persist::BatchExt;

/// `--ipam-opt netctl.dhcp=true` (or `=IFACE`: where to look for the server).
pub(super) const DHCP_OPTION: &str = "netctl.dhcp";
/// Pool data that makes dockerd take the gateway from the pool instead of asking for one.
const GATEWAY_DATA: &str = "com.docker.network.gateway";
/// The daemon's own namespace, from any of its threads.
const OWN_NETNS: &str = "/proc/self/ns/net";
/// Links netctl and dockerd make, which lead to no LAN.
const NOT_A_LAN: [&str; 5] = ["ncb", "ncv", "ncs", "docker", "veth"];

impl Controller {
    /// RequestPool with `netctl.dhcp`: the subnet of the first LAN whose server leases.
    pub(super) async fn docker_request_dhcp_pool(
        &self,
        req: &RequestPool,
        wanted: &str,
    ) -> Result<PoolResponse, ApiError> {
        if req.v6 {
            return Err(ApiError::invalid(
                "netctl.dhcp pools are IPv4: dockerd configures a container's IPv6 address \
                 itself, which DHCPv6 needs the container's own interface for; use `netctl \
                 network create --ipam-driver dhcp --ipv6` for DHCPv6",
            ));
        }
        let (lease, ifname) = self.probe_lan(wanted).await?;
        let subnet = IpNetwork::new(lease.address.into(), lease.prefix)
            .and_then(|n| IpNetwork::new(n.network(), n.prefix()))
            .map_err(|e| ApiError::internal(format!("the server's subnet: {e}")))?;
        self.check_docker_takes(req, subnet).await?;
        let router = lease.routers.first().map(|r| IpAddr::V4(*r));
        let record = DockerPoolRecord {
            id: format!("netctl-dhcp-{}", &new_id()[..24]),
            address_scope: AddressScope::Local,
            subnet,
            ip_range: None,
            addresses: Default::default(),
            dhcp: Some(DockerDhcpPool {
                router,
                network_id: None,
                leases: Default::default(),
            }),
        };
        self.store
            .apply(Batch::new().put_record(&record))
            .await
            .map_err(from_store)?;
        self.state
            .lock()
            .await
            .docker
            .pools
            .insert(record.id.clone(), record.clone());
        tracing::info!(pool = %record.id, %subnet, interface = %ifname, "DHCP pool given to dockerd");
        let mut data = std::collections::BTreeMap::new();
        if let Some(router) = router {
            data.insert(
                GATEWAY_DATA.to_string(),
                format!("{router}/{}", subnet.prefix()),
            );
        }
        Ok(PoolResponse {
            pool_id: record.id,
            pool: subnet.to_string(),
            data,
        })
    }

    /// dockerd takes a pool it did not name only when no host route overlaps it, and asks
    /// again (forever) otherwise; a named one must be the LAN's.
    async fn check_docker_takes(
        &self,
        req: &RequestPool,
        subnet: IpNetwork,
    ) -> Result<(), ApiError> {
        if !req.pool.is_empty() {
            return match req.pool.parse::<IpNetwork>() {
                Ok(named) if named == subnet => Ok(()),
                _ => Err(ApiError::invalid(format!(
                    "the LAN's DHCP server serves {subnet}, not {}",
                    req.pool
                ))),
            };
        }
        let routes = self.host.route_destinations().await.map_err(from_kernel)?;
        let overlapping = routes.iter().find(|r| {
            r.is_ipv4() && r.prefix() > 0 && (r.contains(subnet.ip()) || subnet.contains(r.ip()))
        });
        match overlapping {
            Some(route) => Err(ApiError::invalid(format!(
                "the LAN's subnet {subnet} is routed on this host already ({route}), and dockerd \
                 refuses such a pool unless it is named: add --subnet {subnet}"
            ))),
            None => Ok(()),
        }
    }

    /// Leases and gives back one address on the interface named, or on each candidate in
    /// turn: what the first server says.
    async fn probe_lan(
        &self,
        wanted: &str,
    ) -> Result<(netctl_ipam::dhcp::v4::Lease, String), ApiError> {
        let links = self.host.links().await.map_err(from_kernel)?;
        let candidates: Vec<_> = links
            .into_iter()
            .filter(|l| match wanted {
                "true" | "" => {
                    l.up && !l.loopback
                        && l.controller.is_none()
                        && l.kind.as_deref() != Some("bridge")
                        && !NOT_A_LAN.iter().any(|p| l.name.starts_with(p))
                }
                name => l.name == name,
            })
            .collect();
        if candidates.is_empty() {
            return Err(ApiError::invalid(format!(
                "no interface to look for a DHCP server on ({DHCP_OPTION}={wanted})"
            )));
        }
        // All candidates at once; the first lease wins and the other clients stop.
        let bound = self.config.dhcp_timeout();
        let mut probes = tokio::task::JoinSet::new();
        let mut ids = Vec::new();
        for link in candidates {
            let target = own_target(&link.name, link.index, generate_mac(None));
            ids.push(target.endpoint.clone());
            let leases = self.leases.clone();
            probes.spawn(async move {
                let result = leases.acquire(&target, Family::V4, bound).await;
                (result, target.endpoint, link.name)
            });
        }
        let (mut found, mut failures) = (None, Vec::new());
        while let Some(Ok((result, id, name))) = probes.join_next().await {
            match result {
                Ok(Lease::V4(lease)) => {
                    self.leases.release(&id).await;
                    if found.is_none() {
                        found = Some((lease, name));
                        for other in ids.iter().filter(|other| **other != id) {
                            self.leases.forget(other);
                        }
                    }
                }
                Ok(Lease::V6(_)) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        found.ok_or_else(|| ApiError::unavailable(failures.join("; ")))
    }

    /// RequestAddress on a DHCP pool: the router for the gateway, else a lease through the
    /// network's bridge.
    pub(super) async fn docker_request_dhcp_address(
        &self,
        pool: DockerPoolRecord,
        address: Option<IpAddr>,
        gateway: bool,
    ) -> Result<AddressResponse, ApiError> {
        let dhcp = pool.dhcp.clone().unwrap_or_default();
        let prefix = pool.subnet.prefix();
        if gateway {
            let router = dhcp.router.ok_or_else(|| {
                ApiError::invalid("the LAN's DHCP server names no router to be the gateway")
            })?;
            return Ok(AddressResponse {
                address: format!("{router}/{prefix}"),
                data: Default::default(),
            });
        }
        if let Some(address) = address {
            return Err(ApiError::invalid(format!(
                "addresses on this network come from the LAN's DHCP server: {address} cannot \
                 be asked for (--ip)"
            )));
        }
        let target = self
            .bridge_target(&dhcp, new_id(), generate_mac(None))
            .await?;
        let lease = self
            .leases
            .acquire(&target, Family::V4, self.config.dhcp_timeout())
            .await
            .map_err(|e| ApiError::unavailable(e.to_string()))?;
        let record = lease_record(&lease);
        let leased = DockerLease {
            id: target.endpoint.clone(),
            mac: target.mac,
            lease: record.clone(),
            sandbox_key: None,
            released: false,
        };
        let ip = record.address.ip();
        self.update_dhcp_pool(&pool.id, |pool, dhcp| {
            pool.addresses.insert(ip);
            dhcp.leases.insert(ip, leased.clone());
        })
        .await?;
        Ok(AddressResponse {
            address: format!("{ip}/{}", record.address.prefix()),
            data: Default::default(),
        })
    }

    /// ReleaseAddress on a DHCP pool: the lease given back to the server from the bridge
    /// (the container's namespace, where its client ran, is gone by now).
    pub(super) async fn docker_release_dhcp_address(
        &self,
        pool: DockerPoolRecord,
        address: IpAddr,
    ) -> Result<(), ApiError> {
        let dhcp = pool.dhcp.clone().unwrap_or_default();
        let Some(leased) = dhcp.leases.get(&address).cloned() else {
            return Ok(());
        };
        self.update_dhcp_pool(&pool.id, |pool, dhcp| {
            pool.addresses.remove(&address);
            dhcp.leases.remove(&address);
        })
        .await?;
        self.leases.forget(&leased.id);
        if leased.released {
            return Ok(());
        }
        let target = self
            .bridge_target(&dhcp, leased.id.clone(), leased.mac)
            .await;
        let released = match (target, lease_from_record(&leased.lease)) {
            (Ok(target), Some(lease)) => self
                .leases
                .release_from(&target, lease)
                .await
                .map_err(|e| e.to_string()),
            (Err(e), _) => Err(e.message),
            (_, None) => Ok(()),
        };
        if let Err(e) = released {
            tracing::warn!(%address, error = %e, "cannot give a Docker container's lease back");
        }
        Ok(())
    }

    /// A client on the network's bridge, in the daemon's namespace.
    async fn bridge_target(
        &self,
        dhcp: &DockerDhcpPool,
        id: String,
        mac: [u8; 6],
    ) -> Result<Target, ApiError> {
        let no_network = || ApiError::not_found("the DHCP pool's network is not made yet");
        let net = {
            let state = self.state.lock().await;
            let id = dhcp.network_id.as_deref().ok_or_else(no_network)?;
            state.network_by_id(id).cloned().ok_or_else(no_network)?
        };
        let bridge = self
            .drivers
            .get(&net.driver)
            .and_then(|d| d.device(&network_spec(&net)))
            .ok_or_else(no_network)?;
        let link = self
            .host
            .link_by_name(&bridge)
            .await
            .map_err(from_kernel)?
            .ok_or_else(no_network)?;
        let mut target = own_target(&bridge, link.index, mac);
        target.endpoint = id;
        Ok(target)
    }

    /// Changes a DHCP pool's record and persists it.
    async fn update_dhcp_pool(
        &self,
        pool_id: &str,
        change: impl FnOnce(&mut DockerPoolRecord, &mut DockerDhcpPool),
    ) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let mut pool = state
            .docker
            .pools
            .get(pool_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no pool {pool_id}")))?;
        let mut dhcp = pool.dhcp.take().unwrap_or_default();
        change(&mut pool, &mut dhcp);
        pool.dhcp = Some(dhcp);
        self.store
            .apply(Batch::new().put_record(&pool))
            .await
            .map_err(from_store)?;
        state.docker.pools.insert(pool.id.clone(), pool);
        Ok(())
    }

    /// CreateNetwork on a DHCP pool's subnet: the pool, to be bound to the network.
    pub(super) fn dhcp_pool_of(state: &State, subnet: &str) -> Option<DockerPoolRecord> {
        state
            .docker
            .pools
            .values()
            .find(|p| p.dhcp.is_some() && p.subnet.to_string() == subnet)
            .cloned()
    }

    /// Binds the pool to its network, where its leases go out.
    pub(super) async fn bind_dhcp_pool(
        &self,
        pool_id: &str,
        net: &NetworkRecord,
    ) -> Result<(), ApiError> {
        let id = net.id.clone();
        self.update_dhcp_pool(pool_id, |_, dhcp| dhcp.network_id = Some(id))
            .await
    }

    /// The lease behind a Docker endpoint's address, if it has one.
    pub(super) async fn docker_lease_of(&self, address: IpAddr) -> Option<(String, DockerLease)> {
        let state = self.state.lock().await;
        state.docker.pools.values().find_map(|p| {
            let leased = p.dhcp.as_ref()?.leases.get(&address)?;
            Some((p.id.clone(), leased.clone()))
        })
    }

    /// The router a Docker endpoint's lease names: its gateway.
    pub(super) async fn docker_lease_router(&self, address: IpAddr) -> Option<IpAddr> {
        let (_, leased) = self.docker_lease_of(address).await?;
        leased.lease.routers.first().copied()
    }

    /// After Join: the lease's client goes where the container takes its interface, once
    /// dockerd has moved it there (just after Join's answer).
    pub(super) async fn follow_docker_lease(&self, address: IpAddr, sandbox_key: &str) {
        let Some((pool_id, leased)) = self.docker_lease_of(address).await else {
            return;
        };
        let key = PathBuf::from(sandbox_key);
        let recorded = key.clone();
        if let Err(e) = self
            .update_dhcp_pool(&pool_id, |_, dhcp| {
                if let Some(l) = dhcp.leases.get_mut(&address) {
                    l.sandbox_key = Some(recorded);
                }
            })
            .await
        {
            tracing::warn!(%address, error = %e.message, "cannot record where a Docker lease went");
        }
        self.leases.forget(&leased.id);
        let Some(remembered) = lease_from_record(&leased.lease) else {
            return;
        };
        let leases = self.leases.clone();
        tokio::spawn(async move {
            match container_target(&key, &leased).await {
                Some(target) => {
                    if let Err(e) = leases.resume(&target, Family::V4, Some(remembered)).await {
                        tracing::warn!(%address, error = %e, "cannot renew a Docker container's lease");
                    }
                }
                None => {
                    tracing::warn!(%address, "the container's interface never showed up: its lease will not be renewed")
                }
            }
        });
    }

    /// Leave: the container's lease given back from the container, while its interface and
    /// address are still there.
    pub(super) async fn docker_leave(&self, endpoint_id: &str) {
        let address = {
            let state = self.state.lock().await;
            state.endpoint(endpoint_id).and_then(|e| e.ipv4)
        };
        let Some(address) = address.map(|a| a.ip()) else {
            return;
        };
        let Some((pool_id, leased)) = self.docker_lease_of(address).await else {
            return;
        };
        if self.leases.release(&leased.id).await {
            let _ = self
                .update_dhcp_pool(&pool_id, |_, dhcp| {
                    if let Some(l) = dhcp.leases.get_mut(&address) {
                        l.released = true;
                    }
                })
                .await;
        }
    }

    /// After a restart: each Docker lease's client again, in its container when it is in
    /// one.
    pub(in crate::controller) async fn resume_docker_leases(&self) {
        let leases: Vec<DockerLease> = {
            let state = self.state.lock().await;
            state
                .docker
                .pools
                .values()
                .filter_map(|p| p.dhcp.as_ref())
                .flat_map(|d| d.leases.values().cloned())
                .collect()
        };
        for leased in leases {
            let (Some(key), Some(lease)) =
                (leased.sandbox_key.clone(), lease_from_record(&leased.lease))
            else {
                continue;
            };
            if leased.released {
                continue;
            }
            // Off the start's path: a container gone meanwhile is waited for in vain.
            let leases = self.leases.clone();
            tokio::spawn(async move {
                if let Some(target) = container_target(&key, &leased).await {
                    if let Err(e) = leases.resume(&target, Family::V4, Some(lease)).await {
                        tracing::warn!(error = %e, "cannot resume a Docker container's lease");
                    }
                }
            });
        }
    }

    /// A Docker lease's client's news: kept when renewed. dockerd configured the container
    /// and does not hear of a change, so a lost lease is only reported.
    pub(in crate::controller) async fn on_docker_lease_event(&self, event: &LeaseEvent) {
        let found = {
            let state = self.state.lock().await;
            state.docker.pools.values().find_map(|p| {
                let dhcp = p.dhcp.as_ref()?;
                dhcp.leases
                    .iter()
                    .find(|(_, l)| l.id == event.endpoint)
                    .map(|(address, _)| (p.id.clone(), *address))
            })
        };
        let Some((pool_id, address)) = found else {
            return;
        };
        match &event.change {
            Change::Bound(lease) if lease_record(lease).address.ip() == address => {
                let record = lease_record(lease);
                let _ = self
                    .update_dhcp_pool(&pool_id, |_, dhcp| {
                        if let Some(l) = dhcp.leases.get_mut(&address) {
                            l.lease = record;
                        }
                    })
                    .await;
            }
            other => {
                tracing::error!(%address, change = ?other, "a Docker container's DHCP lease was lost; dockerd keeps the address configured")
            }
        }
    }
}

fn own_target(ifname: &str, ifindex: u32, mac: [u8; 6]) -> Target {
    Target {
        endpoint: new_id(),
        netns: PathBuf::from(OWN_NETNS),
        ifname: ifname.to_string(),
        ifindex,
        mac,
        hostname: None,
    }
}

/// The container's interface with the lease's MAC, waited for: at Join, dockerd's sandbox
/// key may still be a placeholder (the container's namespace is bound there when its
/// process starts), and dockerd moves the interface in after Join's answer.
async fn container_target(key: &std::path::Path, leased: &DockerLease) -> Option<Target> {
    for attempt in 0..100 {
        // dockerd may keep its mounts to itself (a mount namespace of its own, a managed
        // plugin's container): then the key is reached through its process.
        let path = match netctl_kernel::netns::inode_at(key) {
            Some(_) => Some(key.to_path_buf()),
            None if attempt % 4 == 3 => netctl_kernel::netns::HeldNamespaces::scan()
                .mounted_at(key)
                .map(std::path::Path::to_path_buf),
            None => None,
        };
        if let Some(target) = match path {
            Some(path) => interface_in(&path, leased).await,
            None => None,
        } {
            return Some(target);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn interface_in(path: &std::path::Path, leased: &DockerLease) -> Option<Target> {
    let netns = netctl_kernel::Netns::open(path).await.ok()?;
    let links = netns.netlink().links().await.ok()?;
    let link = links
        .into_iter()
        .find(|l| l.mac.as_deref() == Some(&leased.mac[..]) && l.up)?;
    Some(Target {
        endpoint: leased.id.clone(),
        netns: path.to_path_buf(),
        ifname: link.name,
        ifindex: link.index,
        mac: leased.mac,
        hostname: None,
    })
}

/// The `netctl.dhcp` option of a RequestPool, if given.
pub(super) fn dhcp_option(req: &RequestPool) -> Option<String> {
    req.options.as_ref()?.get(DHCP_OPTION).cloned()
}

/// Docker's gateway request type, for the DHCP pools.
pub(super) fn is_gateway_request(
    options: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    options
        .and_then(|o| o.get(netctl_plugin_api::docker::REQUEST_ADDRESS_TYPE))
        .is_some_and(|t| t == GATEWAY_REQUEST)
}
