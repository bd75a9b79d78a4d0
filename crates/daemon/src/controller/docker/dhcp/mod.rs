//! Docker's side of the DHCP IPAM: `docker network create -d netctl --ipam-driver netctl
//! --ipam-opt netctl.dhcp=true -o parent=eth1 lan`.
//!
//! RequestPool learns the LAN's subnet and router by leasing one address and giving it back
//! at once; CreateNetwork makes a DHCP network of it; each RequestAddress leases an address
//! through the network's bridge (dockerd wants it before the container's interface exists)
//! with a MAC of netctl's choosing, which the endpoint then gets; after Join the lease's
//! client moves into the container, where renewals can come from the leased address;
//! ReleaseAddress gives the lease back.

mod containers;

use std::net::IpAddr;
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use netctl_plugin_api::docker::{AddressResponse, PoolResponse, RequestPool, GATEWAY_REQUEST};
use netctl_store::Batch;

use crate::controller::error::EngineError;
use crate::controller::specs::network_spec;
use crate::controller::state::State;
use crate::controller::Controller;
use crate::ids::new_id;
use crate::leases::{lease_from_record, lease_record, Family, Lease, Target};
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
/// Links dockerd makes (its bridges, its containers' veths), which lead to no LAN.
const DOCKERS_LINKS: [&str; 2] = ["docker", "veth"];

impl Controller {
    /// RequestPool with `netctl.dhcp`: the subnet of the first LAN whose server leases.
    pub(super) async fn docker_request_dhcp_pool(
        &self,
        req: &RequestPool,
        wanted: &str,
    ) -> Result<PoolResponse, EngineError> {
        if req.v6 {
            return Err(EngineError::invalid(
                "netctl.dhcp pools are IPv4: dockerd configures a container's IPv6 address \
                 itself, which DHCPv6 needs the container's own interface for; use `netctl \
                 network create --ipam-driver dhcp --ipv6` for DHCPv6",
            ));
        }
        let (lease, ifname) = self.probe_lan(wanted).await?;
        let subnet = IpNetwork::new(lease.address.into(), lease.prefix)
            .and_then(|n| IpNetwork::new(n.network(), n.prefix()))
            .map_err(|e| EngineError::internal(format!("the server's subnet: {e}")))?;
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
            .map_err(EngineError::from)?;
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
    ) -> Result<(), EngineError> {
        if !req.pool.is_empty() {
            return match req.pool.parse::<IpNetwork>() {
                Ok(named) if named == subnet => Ok(()),
                _ => Err(EngineError::invalid(format!(
                    "the LAN's DHCP server serves {subnet}, not {}",
                    req.pool
                ))),
            };
        }
        let routes = self
            .host
            .route_destinations()
            .await
            .map_err(EngineError::from)?;
        let overlapping = routes.iter().find(|r| {
            r.is_ipv4() && r.prefix() > 0 && (r.contains(subnet.ip()) || subnet.contains(r.ip()))
        });
        match overlapping {
            Some(route) => Err(EngineError::invalid(format!(
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
    ) -> Result<(netctl_ipam::dhcp::v4::Lease, String), EngineError> {
        let links = self.host.links().await.map_err(EngineError::from)?;
        let candidates: Vec<_> = links
            .into_iter()
            .filter(|l| match wanted {
                "true" | "" => {
                    l.up && !l.loopback
                        && l.controller.is_none()
                        && l.kind.as_deref() != Some("bridge")
                        && !self.drivers.made_link(&l.name)
                        && !DOCKERS_LINKS.iter().any(|p| l.name.starts_with(p))
                }
                name => l.name == name,
            })
            .collect();
        if candidates.is_empty() {
            return Err(EngineError::invalid(format!(
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
        found.ok_or_else(|| EngineError::unavailable(failures.join("; ")))
    }

    /// RequestAddress on a DHCP pool: the router for the gateway, else a lease through the
    /// network's bridge.
    pub(super) async fn docker_request_dhcp_address(
        &self,
        pool: DockerPoolRecord,
        address: Option<IpAddr>,
        gateway: bool,
    ) -> Result<AddressResponse, EngineError> {
        let dhcp = pool.dhcp.clone().unwrap_or_default();
        let prefix = pool.subnet.prefix();
        if gateway {
            let router = dhcp.router.ok_or_else(|| {
                EngineError::invalid("the LAN's DHCP server names no router to be the gateway")
            })?;
            return Ok(AddressResponse {
                address: format!("{router}/{prefix}"),
                data: Default::default(),
            });
        }
        if let Some(address) = address {
            return Err(EngineError::invalid(format!(
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
            .map_err(|e| EngineError::unavailable(e.to_string()))?;
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
    ) -> Result<(), EngineError> {
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
            (Err(e), _) => Err(e.to_string()),
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
    ) -> Result<Target, EngineError> {
        let no_network = || EngineError::not_found("the DHCP pool's network is not made yet");
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
            .map_err(EngineError::from)?
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
    ) -> Result<(), EngineError> {
        let mut state = self.state.lock().await;
        let mut pool = state
            .docker
            .pools
            .get(pool_id)
            .cloned()
            .ok_or_else(|| EngineError::not_found(format!("no pool {pool_id}")))?;
        let mut dhcp = pool.dhcp.take().unwrap_or_default();
        change(&mut pool, &mut dhcp);
        pool.dhcp = Some(dhcp);
        self.store
            .apply(Batch::new().put_record(&pool))
            .await
            .map_err(EngineError::from)?;
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
    ) -> Result<(), EngineError> {
        let id = net.id.clone();
        self.update_dhcp_pool(pool_id, |_, dhcp| dhcp.network_id = Some(id))
            .await
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
