//! The IPAM driver: pools and addresses for dockerd, from netctl's own address spaces.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netctl_ipam::{PoolRequest, Scope};
use netctl_plugin_api::docker::{
    AddressResponse, PoolResponse, ReleaseAddress, RequestAddress, RequestPool, GLOBAL_SPACE,
};

use netctl_store::Batch;

use crate::controller::error::EngineError;
use crate::controller::state::State;
use crate::controller::txn::Txn;
use crate::controller::Controller;
use crate::ids::new_id;
use crate::model::DockerPoolRecord;
use crate::persist::BatchExt;

fn parse_cidr(what: &str, text: &str) -> Result<Option<IpNetwork>, EngineError> {
    if text.is_empty() {
        return Ok(None);
    }
    let net: IpNetwork = text
        .parse()
        .map_err(|_| EngineError::invalid(format!("invalid {what} {text:?}")))?;
    if net.network() != net.ip() {
        return Err(EngineError::invalid(format!(
            "invalid {what} {text}: host bits are set (did you mean {}/{}?)",
            net.network(),
            net.prefix()
        )));
    }
    Ok(Some(net))
}

impl Controller {
    pub async fn docker_request_pool(&self, req: RequestPool) -> Result<PoolResponse, EngineError> {
        if let Some(wanted) = super::dhcp::dhcp_option(&req) {
            return self.docker_request_dhcp_pool(&req, &wanted).await;
        }
        let scope = if req.address_space == GLOBAL_SPACE {
            Scope::Global
        } else {
            Scope::Local
        };
        let subnet = parse_cidr("subnet", &req.pool)?;
        let ip_range = parse_cidr("ip range", &req.sub_pool)?;
        if let (Some(subnet), Some(range)) = (subnet, ip_range) {
            if !subnet.contains(range.network()) || range.prefix() < subnet.prefix() {
                return Err(EngineError::invalid(format!(
                    "ip range {range} is not inside subnet {subnet}"
                )));
            }
        }
        let host_routes = match subnet {
            None => self
                .host
                .route_destinations()
                .await
                .map_err(EngineError::from)?,
            Some(_) => Vec::new(),
        };
        let request = PoolRequest {
            subnet,
            ip_range,
            aux_addresses: Default::default(),
            v6: req.v6,
        };
        let (record, _) = self
            .transact(|state| {
                let subnet = state
                    .ipam
                    .space_mut(scope)
                    .request_pool(&request, &host_routes)
                    .map_err(EngineError::from)?;
                let record = DockerPoolRecord {
                    id: format!("netctl-{}", &new_id()[..24]),
                    address_scope: scope.into(),
                    subnet,
                    ip_range,
                    addresses: BTreeSet::new(),
                    dhcp: None,
                };
                state.docker.pools.insert(record.id.clone(), record.clone());
                let mut txn = Txn::new(format!("give pool {subnet} to dockerd"));
                txn.persist = Batch::new().put_record(&record);
                let id = record.id.clone();
                txn.unplan = Box::new(move |state: &mut State| {
                    state.docker.pools.remove(&id);
                    let _ = state.ipam.space_mut(scope).release_pool(&subnet);
                });
                Ok((txn, record))
            })
            .await?;
        tracing::info!(pool = %record.id, subnet = %record.subnet, "pool given to dockerd");
        Ok(PoolResponse {
            pool_id: record.id,
            pool: record.subnet.to_string(),
            data: Default::default(),
        })
    }

    /// Idempotent: dockerd may release a pool twice, or one from before a lost store.
    pub async fn docker_release_pool(&self, pool_id: &str) -> Result<(), EngineError> {
        self.transact(|state| {
            let Some(pool) = state.docker.pools.remove(pool_id) else {
                return Ok((Txn::new("nothing to do"), ()));
            };
            let scope = pool.address_scope.into();
            // A DHCP pool's subnet is the LAN's: it reserved nothing.
            if pool.dhcp.is_none() {
                let _ = state.ipam.space_mut(scope).release_pool(&pool.subnet);
            }
            let mut txn = Txn::new(format!("release pool {pool_id}"));
            txn.persist = Batch::new().delete_record::<DockerPoolRecord>(pool_id);
            txn.unplan = Box::new(move |state: &mut State| {
                state.restore_docker_pool(&pool);
                state.docker.pools.insert(pool.id.clone(), pool);
            });
            Ok((txn, ()))
        })
        .await
        .map(drop)
    }

    pub async fn docker_request_address(
        &self,
        req: RequestAddress,
    ) -> Result<AddressResponse, EngineError> {
        let wanted: Option<IpAddr> = match req.address.as_str() {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| EngineError::invalid(format!("invalid address {text:?}")))?,
            ),
        };
        let gateway = super::dhcp::is_gateway_request(req.options.as_ref());
        let dhcp_pool = self.docker_dhcp_pool(&req.pool_id).await;
        if let Some(pool) = dhcp_pool {
            return self
                .docker_request_dhcp_address(pool, wanted, gateway)
                .await;
        }
        let (answer, _) = self
            .transact(|state| {
                let mut pool = state
                    .docker
                    .pools
                    .get(&req.pool_id)
                    .cloned()
                    .ok_or_else(|| EngineError::not_found(format!("no pool {}", req.pool_id)))?;
                let scope: Scope = pool.address_scope.into();
                let space = state.ipam.space_mut(scope);
                let address = match (wanted, gateway) {
                    (Some(ip), _) => space.allocate(&pool.subnet, Some(ip)),
                    // Docker's default: the subnet's first address, even outside --ip-range.
                    (None, true) => match first_host(&pool.subnet) {
                        Some(first) => space
                            .allocate(&pool.subnet, Some(first))
                            .or_else(|_| space.allocate(&pool.subnet, None)),
                        None => space.allocate(&pool.subnet, None),
                    },
                    (None, false) => space.allocate(&pool.subnet, None),
                }
                .map_err(EngineError::from)?;
                pool.addresses.insert(address);
                let answer = AddressResponse {
                    address: format!("{address}/{}", pool.subnet.prefix()),
                    data: Default::default(),
                };
                Ok((Self::pool_txn(state, pool, address, true), answer))
            })
            .await?;
        Ok(answer)
    }

    /// Idempotent, as dockerd retries nothing and swallows little.
    pub async fn docker_release_address(&self, req: ReleaseAddress) -> Result<(), EngineError> {
        let Ok(address) = req
            .address
            .split('/')
            .next()
            .unwrap_or_default()
            .parse::<IpAddr>()
        else {
            return Err(EngineError::invalid(format!(
                "invalid address {:?}",
                req.address
            )));
        };
        let dhcp_pool = self.docker_dhcp_pool(&req.pool_id).await;
        if let Some(pool) = dhcp_pool {
            return self.docker_release_dhcp_address(pool, address).await;
        }
        self.transact(|state| {
            let Some(mut pool) = state.docker.pools.get(&req.pool_id).cloned() else {
                return Ok((Txn::new("nothing to do"), ()));
            };
            if !pool.addresses.remove(&address) {
                return Ok((Txn::new("nothing to do"), ()));
            }
            let _ = state
                .ipam
                .space_mut(pool.address_scope.into())
                .release(&pool.subnet, address);
            Ok((Self::pool_txn(state, pool, address, false), ()))
        })
        .await
        .map(drop)
    }

    /// The pool, when it is one of a LAN's DHCP server.
    async fn docker_dhcp_pool(&self, pool_id: &str) -> Option<DockerPoolRecord> {
        let state = self.state.lock().await;
        state
            .docker
            .pools
            .get(pool_id)
            .filter(|p| p.dhcp.is_some())
            .cloned()
    }

    /// Records the pool as `pool` says now (`address` just taken, or given back).
    fn pool_txn(state: &mut State, pool: DockerPoolRecord, address: IpAddr, taken: bool) -> Txn {
        let before = state.docker.pools.insert(pool.id.clone(), pool.clone());
        let mut txn = Txn::new(format!("update pool {}", pool.id));
        txn.persist = Batch::new().put_record(&pool);
        txn.unplan = Box::new(move |state: &mut State| {
            let space = state.ipam.space_mut(pool.address_scope.into());
            let _ = if taken {
                space.release(&pool.subnet, address)
            } else {
                space.allocate(&pool.subnet, Some(address)).map(drop)
            };
            if let Some(before) = before {
                state.docker.pools.insert(before.id.clone(), before);
            }
        });
        txn
    }
}

impl State {
    /// A pool and the addresses it handed out, reserved again (after a restart, or an
    /// undone release).
    pub(in crate::controller) fn restore_docker_pool(&mut self, pool: &DockerPoolRecord) {
        if pool.dhcp.is_some() {
            return;
        }
        let request = PoolRequest {
            subnet: Some(pool.subnet),
            ip_range: pool.ip_range,
            aux_addresses: Default::default(),
            v6: pool.subnet.is_ipv6(),
        };
        let space = self.ipam.space_mut(pool.address_scope.into());
        let restored = space.request_pool(&request, &[]).and_then(|subnet| {
            pool.addresses
                .iter()
                .try_for_each(|a| space.allocate(&subnet, Some(*a)).map(drop))
        });
        if let Err(e) = restored {
            tracing::error!(pool = %pool.id, error = %e, "cannot restore a Docker pool");
        }
    }
}

/// The subnet's first address after the network address: Docker's default gateway.
pub(super) fn first_host(subnet: &IpNetwork) -> Option<IpAddr> {
    match subnet {
        IpNetwork::V4(n) => n.nth(1).map(IpAddr::V4),
        IpNetwork::V6(n) => n.nth(1).map(IpAddr::V6),
    }
}
