//! Endpoints of DHCP networks (`--ipam-driver dhcp`): the connect plugs the interface in
//! without an address, then the daemon's clients lease one from the LAN's server, and the
//! lease is put in effect: the address, the default route, the MTU, the DNS upstreams, the
//! record, the names and the hosts file. Later changes (a renewal, a new address after a
//! refusal, an expiry) come as events and are put in effect the same way.

use std::sync::Arc;

use netctl_dns::DnsSettings;
use netctl_store::Batch;

use super::effects::Effect;
use super::executor::{self, Policy};
use super::lease_datapath::LeaseOnLink;
use super::specs::endpoint_names;
use super::state::State;
use super::txn::Txn;
use super::Controller;
use crate::controller::error::EngineError;
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
    pub(super) async fn lease_new_endpoint(&self, endpoint_id: &str) -> Result<(), EngineError> {
        let Some(leasing) = self.leasing(endpoint_id).await else {
            return Ok(());
        };
        let target = self.lease_target(&leasing).await?;
        let bound = self.config.dhcp_timeout();
        for family in leasing.net.lease_families() {
            if family == Family::V6 {
                let speak = [Effect::SpeakIpv6 {
                    sandbox: leasing.sandbox.id.clone(),
                    ifname: leasing.ep.ifname.clone(),
                }];
                executor::carry_out(self, "lease IPv6", &speak, Policy::AllOrUndo)
                    .await
                    .map_err(|failed| failed.error)?;
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

    /// Finishes an attach with its DHCP lease, or takes the attach back by `undo` when no
    /// lease comes. The lease needs the endpoint's interface up in its sandbox, so it cannot
    /// be a step of the attach's own transaction: it follows it, and its failure undoes the
    /// attach as a whole (the locks `held` are let go first: `undo` takes them again).
    /// With the lease, the locks are handed back: the caller answers under them.
    pub(super) async fn lease_or_undo<Undone>(
        &self,
        lease: impl std::future::Future<Output = Result<(), EngineError>>,
        held: crate::locks::Held,
        undo: impl std::future::Future<Output = Result<Undone, EngineError>>,
    ) -> Result<crate::locks::Held, EngineError> {
        let Err(e) = lease.await else {
            return Ok(held);
        };
        drop(held);
        if let Err(undo) = undo.await {
            tracing::warn!(error = %undo, "undoing an attach without a lease");
        }
        Err(e)
    }

    /// After `sandbox` was attached to `net`: [`Controller::lease_new_endpoint`] (the
    /// caller undoes the attach when it fails).
    pub(super) async fn lease_attachment(
        &self,
        net_id: &str,
        sandbox_id: &str,
    ) -> Result<(), EngineError> {
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
        leasing_in(&*self.state.lock().await, endpoint_id)
    }

    async fn lease_target(&self, leasing: &Leasing) -> Result<Target, EngineError> {
        let netns = self.namespaces.get(&leasing.sandbox.id).ok_or_else(|| {
            EngineError::internal(format!(
                "the network namespace of sandbox {} is not open",
                leasing.sandbox.name
            ))
        })?;
        let link = netns
            .netlink()
            .link_by_name(&leasing.ep.ifname)
            .await
            .map_err(EngineError::from)?
            .ok_or_else(|| {
                EngineError::internal(format!(
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

    /// Puts a family's lease in effect (`None`: its address withdrawn), as one
    /// transaction: the record and the state, the interface, the sandbox's DNS, and (when
    /// the address changed) the names and the hosts file.
    async fn put_lease_in_effect(
        &self,
        endpoint_id: &str,
        family: Family,
        lease: Option<&Lease>,
    ) -> Result<(), EngineError> {
        self.transact(|state| Ok((plan_lease(state, endpoint_id, family, lease), ())))
            .await?;
        Ok(())
    }

    /// The sandbox resolves through its leases' DNS servers and search domains, unless it
    /// was given its own (`--dns`, `--dns-search`).
    async fn follow_lease_dns(&self, sandbox: &SandboxRecord) -> Result<(), EngineError> {
        let settings = lease_dns(&*self.state.lock().await, sandbox);
        let apply = [Effect::SetSandboxDns {
            sandbox: sandbox.clone(),
            settings,
        }];
        executor::carry_out(self, "follow the leases' DNS", &apply, Policy::AllOrUndo)
            .await
            .map(|_| ())
            .map_err(|failed| failed.error)
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
                tracing::error!(endpoint = %id, error = %e, "cannot resume the endpoint's DHCP leases");
            }
        }
        self.resume_docker_leases().await;
        if self.leases.count() > 0 {
            tracing::info!(clients = self.leases.count(), "DHCP clients resumed");
        }
    }

    async fn resume_endpoint_leases(&self, endpoint_id: &str) -> Result<(), EngineError> {
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
            tracing::error!(endpoint, family, error = %e, "cannot put a DHCP lease in effect");
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

/// The endpoint, its network and sandbox, when it is on a DHCP network and in a sandbox of
/// this daemon.
fn leasing_in(state: &State, endpoint_id: &str) -> Option<Leasing> {
    let ep = state.endpoint(endpoint_id)?.clone();
    let net = state.network_by_id(&ep.network_id)?.clone();
    if !net.leases_addresses() || ep.chained {
        return None;
    }
    let sandbox = state.sandbox_by_id(ep.sandbox_id.as_deref()?)?.clone();
    Some(Leasing { net, sandbox, ep })
}

/// A family's lease put in effect: the endpoint's record and state, its interface, the
/// sandbox's DNS, and (when the address changed) its names and the hosts file. Nothing,
/// when the endpoint left meanwhile.
fn plan_lease(state: &mut State, endpoint_id: &str, family: Family, lease: Option<&Lease>) -> Txn {
    let mut txn = Txn::new(format!(
        "put the {} lease of {endpoint_id} in effect",
        family.name()
    ));
    let Some(Leasing { net, sandbox, ep }) = leasing_in(state, endpoint_id) else {
        return txn;
    };
    let before = ep.clone();
    let mut ep = ep;
    let record = lease.map(lease_record);
    let new = record.as_ref().map(|r| r.address);
    let old = match family {
        Family::V4 => ep.ipv4,
        Family::V6 => ep.ipv6,
    };
    match family {
        Family::V4 => (ep.ipv4, ep.leases.v4) = (new, record),
        Family::V6 => (ep.ipv6, ep.leases.v6) = (new, record),
    }
    state.insert_endpoint(ep.clone());
    txn.persist = Batch::new().put_record(&ep);
    txn.revert = Batch::new().put_record(&before);
    txn.effects.push(Effect::ConfigureLease {
        sandbox: sandbox.id.clone(),
        on: LeaseOnLink {
            ifname: ep.ifname.clone(),
            old,
            lease: lease.cloned(),
            mtu_limit: net.mtu,
            internal: net.internal,
            route_metric: ep.route_metric,
        },
    });
    txn.effects.push(Effect::SetSandboxDns {
        sandbox: sandbox.clone(),
        settings: lease_dns(state, &sandbox),
    });
    if old != new {
        txn.effects.push(Effect::RemoveNames(ep.id.clone()));
        txn.effects
            .push(Effect::AddNames(endpoint_names(&net, &sandbox, &ep)));
        txn.effects.push(Effect::WriteHosts {
            addresses: state.sandbox_addresses(&sandbox.id),
            sandbox,
        });
    }
    txn.unplan = Box::new(move |state: &mut State| state.insert_endpoint(before));
    txn
}

/// The sandbox's DNS settings: its own (`--dns`, `--dns-search`), else its leases' DNS
/// servers and search domains.
fn lease_dns(state: &State, sandbox: &SandboxRecord) -> DnsSettings {
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
}

fn from_lease(e: LeaseError) -> EngineError {
    match e {
        LeaseError::Socket { .. } => EngineError::internal(e.to_string()),
        LeaseError::NoAnswer { .. } | LeaseError::Refused { .. } => {
            EngineError::unavailable(e.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;
    use std::time::{Duration, Instant};

    use netctl_ipam::dhcp::v4;
    use netctl_ipam::{Ipam, PoolTemplate};

    use super::super::executor::test::describe;
    use super::super::test_records::{endpoint, network, sandbox};
    use super::*;

    fn state() -> State {
        let mut state = State::new(Ipam::new(
            PoolTemplate::from_table(netctl_ipam::DEFAULT_LOCAL_POOLS),
            Vec::new(),
        ));
        state.insert_network(network("n1", "lan", "bridge", SubnetOwner::Dhcp));
        state.insert_sandbox(sandbox("s1", "a"));
        state.insert_endpoint(endpoint("e1", "n1", "s1"));
        state
    }

    fn lease(address: [u8; 4]) -> Lease {
        Lease::V4(v4::Lease {
            address: Ipv4Addr::from(address),
            prefix: 24,
            server: Ipv4Addr::new(192, 0, 2, 1),
            routers: vec![Ipv4Addr::new(192, 0, 2, 1)],
            dns_servers: vec![Ipv4Addr::new(192, 0, 2, 53)],
            search: vec!["lan.example".into()],
            mtu: None,
            times: netctl_ipam::dhcp::Lifetimes {
                acquired: Instant::now(),
                renew_after: Duration::from_secs(60),
                rebind_after: Duration::from_secs(105),
                valid: Duration::from_secs(120),
            },
        })
    }

    fn steps(txn: &Txn) -> Vec<String> {
        txn.effects.iter().map(describe).collect()
    }

    #[test]
    fn a_new_address_is_recorded_configured_and_named() {
        let mut state = state();
        let txn = plan_lease(&mut state, "e1", Family::V4, Some(&lease([192, 0, 2, 100])));
        assert_eq!(
            steps(&txn),
            [
                "configure lease s1/eth0",
                "set sandbox dns s1",
                "remove names e1",
                "add names e1",
                "write hosts s1"
            ]
        );
        let ep = state.endpoint("e1").unwrap();
        assert_eq!(ep.ipv4.unwrap().to_string(), "192.0.2.100/24");
        assert!(ep.leases.v4.is_some());
        assert_eq!(txn.persist.ops.len(), 1);
        let Some(Effect::SetSandboxDns { settings, .. }) = txn.effects.get(1) else {
            panic!("the sandbox's DNS")
        };
        assert_eq!(settings.servers, ["192.0.2.53"]);
        assert_eq!(settings.search, ["lan.example"]);
    }

    #[test]
    fn a_renewal_of_the_same_address_leaves_names_and_hosts_alone() {
        let mut state = state();
        let first = lease([192, 0, 2, 100]);
        let _ = plan_lease(&mut state, "e1", Family::V4, Some(&first));
        let txn = plan_lease(&mut state, "e1", Family::V4, Some(&first));
        assert_eq!(
            steps(&txn),
            ["configure lease s1/eth0", "set sandbox dns s1"]
        );
    }

    #[test]
    fn an_expiry_withdraws_the_address_and_unplanning_gives_it_back() {
        let mut state = state();
        let _ = plan_lease(&mut state, "e1", Family::V4, Some(&lease([192, 0, 2, 100])));
        let txn = plan_lease(&mut state, "e1", Family::V4, None);
        assert!(state.endpoint("e1").unwrap().ipv4.is_none());
        let Some(Effect::ConfigureLease { on, .. }) = txn.effects.first() else {
            panic!("the interface first")
        };
        assert_eq!(on.old.unwrap().to_string(), "192.0.2.100/24");
        assert!(on.lease.is_none());
        (txn.unplan)(&mut state);
        assert_eq!(
            state.endpoint("e1").unwrap().ipv4.unwrap().to_string(),
            "192.0.2.100/24"
        );
    }

    #[test]
    fn an_endpoint_that_left_meanwhile_gets_nothing() {
        let mut state = state();
        state.remove_endpoint("e1");
        let txn = plan_lease(&mut state, "e1", Family::V4, Some(&lease([192, 0, 2, 100])));
        assert!(txn.effects.is_empty());
        assert!(txn.persist.is_empty());
    }
}
