//! A Docker lease once dockerd hands it to a container: its client follows the interface
//! into the container after Join, renews from there, gives the lease back at Leave, and is
//! taken up again after a restart.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::controller::Controller;
use crate::leases::{lease_from_record, lease_record, Change, Family, LeaseEvent, Target};
use crate::model::DockerLease;

impl Controller {
    /// The lease behind a Docker endpoint's address, if it has one.
    pub(in crate::controller::docker) async fn docker_lease_of(
        &self,
        address: IpAddr,
    ) -> Option<(String, DockerLease)> {
        let state = self.state.lock().await;
        state.docker.pools.values().find_map(|p| {
            let leased = p.dhcp.as_ref()?.leases.get(&address)?;
            Some((p.id.clone(), leased.clone()))
        })
    }

    /// The router a Docker endpoint's lease names: its gateway.
    pub(in crate::controller::docker) async fn docker_lease_router(
        &self,
        address: IpAddr,
    ) -> Option<IpAddr> {
        let (_, leased) = self.docker_lease_of(address).await?;
        leased.lease.routers.first().copied()
    }

    /// After Join: the lease's client goes where the container takes its interface, once
    /// dockerd has moved it there (just after Join's answer).
    pub(in crate::controller::docker) async fn follow_docker_lease(
        &self,
        address: IpAddr,
        sandbox_key: &str,
    ) {
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
            tracing::warn!(%address, error = %e, "cannot record where a Docker lease went");
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
    pub async fn docker_leave(&self, endpoint_id: &str) {
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
