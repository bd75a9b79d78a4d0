//! Endpoints of DHCP networks (`--ipam-driver dhcp`): the connect plugs the interface in
//! without an address, then the daemon's clients lease one from the LAN's server, and the
//! lease is put in effect: the address, the default route, the MTU, the DNS upstreams, the
//! record, the names and the hosts file. Later changes (a renewal, a new address after a
//! refusal, an expiry) come as events and are put in effect the same way.

use std::sync::Arc;

use ipnetwork::IpNetwork;
use netctl_dns::DnsSettings;
use netctl_kernel::netlink::Request;
use netctl_plugin_api::ApiError;
use netctl_store::Batch;

use super::errors::{from_kernel, from_store};
use super::specs::endpoint_names;
use super::Controller;
use crate::leases::{
    lease_from_record, lease_record, Change, Family, Lease, LeaseError, LeaseEvent, Target,
};
use crate::model::{EndpointRecord, NetworkRecord, SandboxRecord, SubnetOwner};
use crate::persist::BatchExt;

impl NetworkRecord {
    /// Whether its endpoints lease their addresses from the LAN's DHCP server.
    pub(super) fn leases_addresses(&self) -> bool {
        self.subnet_owner == SubnetOwner::Dhcp
    }

    /// The families its endpoints lease.
    fn lease_families(&self) -> Vec<Family> {
        let mut families = vec![Family::V4];
        if self.ipv6 {
            families.push(Family::V6);
        }
        families
    }
}

/// Where an endpoint of a DHCP network stands while it is attached.
struct Leasing {
    net: NetworkRecord,
    sandbox: SandboxRecord,
    ep: EndpointRecord,
}

impl Controller {
    /// After an endpoint joined: when its network is a DHCP one, its first leases (within
    /// the bound), put in effect. The caller undoes the attach when this fails.
    pub(super) async fn lease_new_endpoint(&self, endpoint_id: &str) -> Result<(), ApiError> {
        let Some(leasing) = self.leasing(endpoint_id).await else {
            return Ok(());
        };
        let target = self.lease_target(&leasing).await?;
        let bound = self.config.dhcp_timeout();
        for family in leasing.net.lease_families() {
            if family == Family::V6 {
                self.speak_ipv6(&leasing, &target).await?;
            }
            let started = std::time::Instant::now();
            let lease = self
                .leases
                .acquire(&target, family, bound)
                .await
                .map_err(from_lease)?;
            tracing::info!(
                endpoint = endpoint_id,
                family = family.name(),
                address = %lease_record(&lease).address,
                exchange_us = started.elapsed().as_micros() as u64,
                "leased"
            );
            self.put_lease_in_effect(endpoint_id, family, Some(&lease))
                .await?;
        }
        Ok(())
    }

    /// After `sandbox` was attached to `net`: [`Controller::lease_new_endpoint`] (the
    /// caller undoes the attach when it fails).
    pub(super) async fn lease_attachment(
        &self,
        net_id: &str,
        sandbox_id: &str,
    ) -> Result<(), ApiError> {
        let endpoint = self
            .state
            .lock()
            .await
            .attachment(net_id, sandbox_id)
            .map(|e| e.id.clone());
        match endpoint {
            Some(id) => self.lease_new_endpoint(&id).await,
            None => Ok(()),
        }
    }

    /// The endpoint, its network and sandbox, when it is on a DHCP network and in a
    /// sandbox of this daemon.
    async fn leasing(&self, endpoint_id: &str) -> Option<Leasing> {
        let state = self.state.lock().await;
        let ep = state.endpoint(endpoint_id)?.clone();
        let net = state.network_by_id(&ep.network_id)?.clone();
        if !net.leases_addresses() || ep.chained {
            return None;
        }
        let sandbox = state.sandbox_by_id(ep.sandbox_id.as_deref()?)?.clone();
        Some(Leasing { net, sandbox, ep })
    }

    async fn lease_target(&self, leasing: &Leasing) -> Result<Target, ApiError> {
        let netns = self.namespaces.get(&leasing.sandbox.id).ok_or_else(|| {
            ApiError::internal(format!(
                "the network namespace of sandbox {} is not open",
                leasing.sandbox.name
            ))
        })?;
        let link = netns
            .netlink()
            .link_by_name(&leasing.ep.ifname)
            .await
            .map_err(from_kernel)?
            .ok_or_else(|| {
                ApiError::internal(format!(
                    "sandbox {} has no interface {}",
                    leasing.sandbox.name, leasing.ep.ifname
                ))
            })?;
        Ok(Target {
            endpoint: leasing.ep.id.clone(),
            netns: netns.fd_path(),
            ifname: leasing.ep.ifname.clone(),
            ifindex: link.index,
            mac: leasing.ep.mac.unwrap_or_default(),
            hostname: Some(leasing.sandbox.hostname.clone()),
        })
    }

    /// An interface joined without an IPv6 address has no link-local one, which DHCPv6
    /// sends from: it gets one, usable at once (no duplicate address detection: its MAC is
    /// the endpoint's own), and hears router advertisements, where its default route comes
    /// from.
    async fn speak_ipv6(&self, leasing: &Leasing, target: &Target) -> Result<(), ApiError> {
        let ifname = target.ifname.clone();
        netctl_kernel::netns::run_in(&target.netns, move || {
            for (key, value) in [("accept_dad", "0"), ("accept_ra", "1")] {
                netctl_kernel::sysctl::ensure(&format!("net.ipv6.conf.{ifname}.{key}"), value)?;
            }
            Ok(())
        })
        .await
        .map_err(from_kernel)?;
        let netns = self.namespaces.get(&leasing.sandbox.id).ok_or_else(|| {
            ApiError::internal(format!("sandbox {} is gone", leasing.sandbox.name))
        })?;
        // The link-local address is made when the link comes up.
        netns
            .netlink()
            .run_all(vec![
                Request::link_down(target.ifindex),
                Request::ipv6_link_local(target.ifindex, true),
                Request::link_up(target.ifindex),
            ])
            .await
            .map_err(from_kernel)
    }

    /// Puts a family's lease in effect (`None`: its address withdrawn): the kernel, the
    /// record, and (when the address changed) the names and the hosts file.
    async fn put_lease_in_effect(
        &self,
        endpoint_id: &str,
        family: Family,
        lease: Option<&Lease>,
    ) -> Result<(), ApiError> {
        let Some(mut leasing) = self.leasing(endpoint_id).await else {
            return Ok(());
        };
        let record = lease.map(lease_record);
        let new = record.as_ref().map(|r| r.address);
        let old = match family {
            Family::V4 => leasing.ep.ipv4,
            Family::V6 => leasing.ep.ipv6,
        };
        self.configure_lease(&leasing, old, lease).await?;
        match family {
            Family::V4 => (leasing.ep.ipv4, leasing.ep.leases.v4) = (new, record),
            Family::V6 => (leasing.ep.ipv6, leasing.ep.leases.v6) = (new, record),
        }
        self.store
            .apply(Batch::new().put_record(&leasing.ep))
            .await
            .map_err(from_store)?;
        let addresses = {
            let mut state = self.state.lock().await;
            if state.endpoint(endpoint_id).is_none() {
                // Disconnected meanwhile: its removal deleted the record, and the kernel
                // objects went with its interface.
                drop(state);
                let _ = self
                    .store
                    .apply(Batch::new().delete_record::<EndpointRecord>(endpoint_id))
                    .await;
                return Ok(());
            }
            state.insert_endpoint(leasing.ep.clone());
            state.sandbox_addresses(&leasing.sandbox.id)
        };
        if old != new {
            let directory = self.dns.directory();
            directory.remove_endpoint(endpoint_id);
            directory.add_endpoint(endpoint_names(&leasing.net, &leasing.sandbox, &leasing.ep));
            self.write_hosts(&leasing.sandbox, &addresses)?;
        }
        self.follow_lease_dns(&leasing.sandbox).await
    }

    /// The lease's address, default route and MTU on the interface; the old address gone
    /// when it changed.
    async fn configure_lease(
        &self,
        leasing: &Leasing,
        old: Option<IpNetwork>,
        lease: Option<&Lease>,
    ) -> Result<(), ApiError> {
        let Some(netns) = self.namespaces.get(&leasing.sandbox.id) else {
            return Ok(());
        };
        let netlink = netns.netlink();
        let Some(link) = netlink
            .link_by_name(&leasing.ep.ifname)
            .await
            .map_err(from_kernel)?
        else {
            return Ok(());
        };
        let new = lease.map(|l| lease_record(l).address);
        if let Some(old) = old.filter(|old| Some(*old) != new) {
            if let Err(e) = netlink.run(Request::delete_address(link.index, old)).await {
                if !e.not_found() {
                    return Err(from_kernel(e));
                }
            }
        }
        let mut requests = Vec::new();
        match lease {
            Some(Lease::V4(l)) => {
                let mtu = l.mtu.map(u32::from).filter(|m| *m >= 576);
                if let Some(mtu) = mtu.filter(|m| *m <= leasing.net.mtu && Some(*m) != link.mtu) {
                    requests.push(Request::link_mtu(link.index, mtu));
                }
                requests.push(Request::replace_address(
                    link.index,
                    new.expect("a lease's address"),
                ));
                if let Some(router) = l.routers.first().filter(|_| !leasing.net.internal) {
                    requests.push(Request::replace_default_route(
                        (*router).into(),
                        link.index,
                        leasing.ep.route_metric,
                    ));
                }
            }
            Some(Lease::V6(_)) => {
                requests.push(Request::replace_address(
                    link.index,
                    new.expect("a lease's address"),
                ));
            }
            None => {}
        }
        netlink.run_all(requests).await.map_err(from_kernel)
    }

    /// The sandbox resolves through its leases' DNS servers and search domains, unless it
    /// was given its own (`--dns`, `--dns-search`).
    async fn follow_lease_dns(&self, sandbox: &SandboxRecord) -> Result<(), ApiError> {
        let own = {
            let state = self.state.lock().await;
            let mut own = DnsSettings::from(&sandbox.dns);
            let leases: Vec<_> = state
                .endpoints_of_sandbox(&sandbox.id)
                .flat_map(|e| e.leases.v4.iter().chain(&e.leases.v6).cloned())
                .collect();
            if own.servers.is_empty() {
                own.servers = leases
                    .iter()
                    .flat_map(|l| &l.dns_servers)
                    .map(|ip| ip.to_string())
                    .collect();
                own.servers.dedup();
            }
            if own.search.is_empty() {
                for domain in leases.iter().flat_map(|l| &l.search) {
                    if !own.search.contains(domain) {
                        own.search.push(domain.clone());
                    }
                }
            }
            own
        };
        let resolution = self.dns.add_sandbox(&sandbox.id, &own);
        self.write_resolv_conf(sandbox, &resolution, super::dns::Make::No)
    }

    /// At start: every leasing endpoint's clients again, confirming what they hold
    /// (INIT-REBOOT, or a DHCPv6 Rebind) or asking anew. Their answers come as events.
    pub(super) async fn resume_leases(&self) {
        let endpoints: Vec<String> = {
            let state = self.state.lock().await;
            state
                .endpoints()
                .filter(|e| {
                    state
                        .network_by_id(&e.network_id)
                        .is_some_and(NetworkRecord::leases_addresses)
                })
                .map(|e| e.id.clone())
                .collect()
        };
        for id in endpoints {
            if let Err(e) = self.resume_endpoint_leases(&id).await {
                tracing::error!(endpoint = %id, error = %e.message, "cannot resume the endpoint's DHCP leases");
            }
        }
        self.resume_docker_leases().await;
        if self.leases.count() > 0 {
            tracing::info!(clients = self.leases.count(), "DHCP clients resumed");
        }
    }

    async fn resume_endpoint_leases(&self, endpoint_id: &str) -> Result<(), ApiError> {
        let Some(leasing) = self.leasing(endpoint_id).await else {
            return Ok(());
        };
        let target = self.lease_target(&leasing).await?;
        for family in leasing.net.lease_families() {
            let remembered = match family {
                Family::V4 => leasing.ep.leases.v4.as_ref(),
                Family::V6 => leasing.ep.leases.v6.as_ref(),
            }
            .and_then(lease_from_record);
            self.leases
                .resume(&target, family, remembered)
                .await
                .map_err(from_lease)?;
        }
        self.follow_lease_dns(&leasing.sandbox).await
    }

    /// A client's news after its first lease.
    async fn on_lease_event(&self, event: LeaseEvent) {
        let family = event.family.name();
        let endpoint = event.endpoint.as_str();
        let found = self.state.lock().await.endpoint(endpoint).map(|e| {
            (
                e.network_id.clone(),
                e.sandbox_id.clone().unwrap_or_default(),
            )
        });
        let Some((net_id, sandbox_id)) = found else {
            // Not an endpoint's: a lease dockerd holds.
            return self.on_docker_lease_event(&event).await;
        };
        let lease = match &event.change {
            Change::Bound(lease) => Some(lease),
            Change::Refused(reason) => {
                tracing::warn!(endpoint, family, %reason, "the DHCP server refused the endpoint's address: withdrawn, asking for another");
                None
            }
            Change::Expired => {
                tracing::error!(endpoint, family, "the endpoint's DHCP lease expired with no server answering: its address is withdrawn");
                None
            }
        };
        let _held = self.locks.hold(&[&net_id], &[], &[&sandbox_id]).await;
        if let Err(e) = self
            .put_lease_in_effect(endpoint, event.family, lease)
            .await
        {
            tracing::error!(endpoint, family, error = %e.message, "cannot put a DHCP lease in effect");
        }
    }
}

/// Puts every client's news in effect, one after another.
pub async fn watch_leases(controller: Arc<Controller>) {
    let Some(mut events) = controller.lease_events.lock().await.take() else {
        return;
    };
    while let Some(event) = events.recv().await {
        controller.on_lease_event(event).await;
    }
}

fn from_lease(e: LeaseError) -> ApiError {
    match e {
        LeaseError::Socket { .. } => ApiError::internal(e.to_string()),
        LeaseError::NoAnswer { .. } | LeaseError::Refused { .. } => {
            ApiError::unavailable(e.to_string())
        }
    }
}
