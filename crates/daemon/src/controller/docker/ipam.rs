//! The IPAM driver: pools and addresses for dockerd, from netctl's own address spaces.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipam::{PoolRequest, Scope};
use ipnetwork::IpNetwork;
use plugin_api::docker::{
    AddressResponse, PoolResponse, ReleaseAddress, RequestAddress, RequestPool, GATEWAY_REQUEST,
    GLOBAL_SPACE, REQUEST_ADDRESS_TYPE,
};
use plugin_api::ApiError;

use crate::controller::errors::{from_daemon, from_driver, from_ipam};
use crate::controller::Controller;
use crate::ids::new_id;
use crate::model::DockerPoolRecord;
use crate::store::Change;

fn parse_cidr(what: &str, text: &str) -> Result<Option<IpNetwork>, ApiError> {
    if text.is_empty() {
        return Ok(None);
    }
    let net: IpNetwork = text
        .parse()
        .map_err(|_| ApiError::invalid(format!("invalid {what} {text:?}")))?;
    if net.network() != net.ip() {
        return Err(ApiError::invalid(format!(
            "invalid {what} {text}: host bits are set (did you mean {}/{}?)",
            net.network(),
            net.prefix()
        )));
    }
    Ok(Some(net))
}

impl Controller {
    pub(super) async fn docker_request_pool(
        &self,
        req: RequestPool,
    ) -> Result<PoolResponse, ApiError> {
        let scope = if req.address_space == GLOBAL_SPACE {
            Scope::Global
        } else {
            Scope::Local
        };
        let subnet = parse_cidr("subnet", &req.pool)?;
        let ip_range = parse_cidr("ip range", &req.sub_pool)?;
        if let (Some(subnet), Some(range)) = (subnet, ip_range) {
            if !subnet.contains(range.network()) || range.prefix() < subnet.prefix() {
                return Err(ApiError::invalid(format!(
                    "ip range {range} is not inside subnet {subnet}"
                )));
            }
        }
        let host_routes = match subnet {
            None => self.host.route_destinations().await.map_err(from_driver)?,
            Some(_) => Vec::new(),
        };
        let mut state = self.state.lock().await;
        let request = PoolRequest {
            subnet,
            ip_range,
            aux_addresses: Default::default(),
            v6: req.v6,
        };
        let subnet = state
            .ipam
            .space_mut(scope)
            .request_pool(&request, &host_routes)
            .map_err(from_ipam)?;
        let record = DockerPoolRecord {
            id: format!("netctl-{}", &new_id()[..24]),
            scope,
            subnet,
            ip_range,
            addresses: BTreeSet::new(),
        };
        if let Err(e) = self.store.apply(&[Change::PutDockerPool(&record)]) {
            let _ = state.ipam.space_mut(scope).release_pool(&subnet);
            return Err(from_daemon(e));
        }
        state.docker_pools.insert(record.id.clone(), record.clone());
        tracing::info!(pool = %record.id, %subnet, "pool given to dockerd");
        Ok(PoolResponse {
            pool_id: record.id,
            pool: subnet.to_string(),
            data: Default::default(),
        })
    }

    /// Idempotent: dockerd may release a pool twice, or one from before a lost store.
    pub(super) async fn docker_release_pool(&self, pool_id: &str) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let Some(pool) = state.docker_pools.get(pool_id).cloned() else {
            return Ok(());
        };
        self.store
            .apply(&[Change::DeleteDockerPool(pool_id)])
            .map_err(from_daemon)?;
        state.docker_pools.remove(pool_id);
        let _ = state.ipam.space_mut(pool.scope).release_pool(&pool.subnet);
        Ok(())
    }

    pub(super) async fn docker_request_address(
        &self,
        req: RequestAddress,
    ) -> Result<AddressResponse, ApiError> {
        let mut state = self.state.lock().await;
        let mut pool = state
            .docker_pools
            .get(&req.pool_id)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("no pool {}", req.pool_id)))?;
        let wanted: Option<IpAddr> = match req.address.as_str() {
            "" => None,
            text => Some(
                text.parse()
                    .map_err(|_| ApiError::invalid(format!("invalid address {text:?}")))?,
            ),
        };
        let gateway = req
            .options
            .as_ref()
            .and_then(|o| o.get(REQUEST_ADDRESS_TYPE))
            .is_some_and(|t| t == GATEWAY_REQUEST);
        let space = state.ipam.space_mut(pool.scope);
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
        .map_err(from_ipam)?;
        pool.addresses.insert(address);
        if let Err(e) = self.store.apply(&[Change::PutDockerPool(&pool)]) {
            let _ = state
                .ipam
                .space_mut(pool.scope)
                .release(&pool.subnet, address);
            return Err(from_daemon(e));
        }
        let prefix = pool.subnet.prefix();
        state.docker_pools.insert(pool.id.clone(), pool);
        Ok(AddressResponse {
            address: format!("{address}/{prefix}"),
            data: Default::default(),
        })
    }

    /// Idempotent, as dockerd retries nothing and swallows little.
    pub(super) async fn docker_release_address(&self, req: ReleaseAddress) -> Result<(), ApiError> {
        let mut state = self.state.lock().await;
        let Some(mut pool) = state.docker_pools.get(&req.pool_id).cloned() else {
            return Ok(());
        };
        let Ok(address) = req
            .address
            .split('/')
            .next()
            .unwrap_or_default()
            .parse::<IpAddr>()
        else {
            return Err(ApiError::invalid(format!(
                "invalid address {:?}",
                req.address
            )));
        };
        if !pool.addresses.remove(&address) {
            return Ok(());
        }
        self.store
            .apply(&[Change::PutDockerPool(&pool)])
            .map_err(from_daemon)?;
        let _ = state
            .ipam
            .space_mut(pool.scope)
            .release(&pool.subnet, address);
        state.docker_pools.insert(pool.id.clone(), pool);
        Ok(())
    }
}

/// The subnet's first address after the network address: Docker's default gateway.
pub(super) fn first_host(subnet: &IpNetwork) -> Option<IpAddr> {
    match subnet {
        IpNetwork::V4(n) => n.nth(1).map(IpAddr::V4),
        IpNetwork::V6(n) => n.nth(1).map(IpAddr::V6),
    }
}
