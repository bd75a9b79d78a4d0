//! An address space: the pools of one scope and the templates new subnets are carved from.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::addr::overlaps;
use crate::{IpamError, Pool, PoolRequest, PoolTemplate};

/// `local` pools belong to one host; `global` ones to a whole cluster (overlay networks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Local,
    Global,
}

#[derive(Debug, Clone)]
pub struct AddressSpace {
    templates: Vec<PoolTemplate>,
    pools: HashMap<IpNetwork, Pool>,
}

impl AddressSpace {
    /// `templates` may mix IPv4 and IPv6; each family is carved from its own templates.
    pub fn new(templates: Vec<PoolTemplate>) -> Self {
        Self {
            templates,
            pools: HashMap::new(),
        }
    }

    /// Reserves a subnet: the requested one if it overlaps no existing pool, or the first
    /// subnet of the default templates that overlaps neither a pool nor one of `host_routes`.
    pub fn request_pool(
        &mut self,
        request: &PoolRequest,
        host_routes: &[IpNetwork],
    ) -> Result<IpNetwork, IpamError> {
        let subnet = match request.subnet {
            Some(subnet) => {
                if let Some(existing) = self.overlapping_pool(&subnet) {
                    return Err(IpamError::Overlap {
                        requested: subnet,
                        existing,
                    });
                }
                subnet
            }
            None => self.choose_subnet(request.v6, host_routes)?,
        };
        let pool = Pool::new(subnet, request.ip_range, &request.aux_addresses)?;
        self.pools.insert(subnet, pool);
        Ok(subnet)
    }

    fn overlapping_pool(&self, subnet: &IpNetwork) -> Option<IpNetwork> {
        self.pools.keys().find(|p| overlaps(p, subnet)).copied()
    }

    fn choose_subnet(&self, v6: bool, host_routes: &[IpNetwork]) -> Result<IpNetwork, IpamError> {
        // A default route overlaps everything and says nothing about which subnets are taken.
        let routes: Vec<_> = host_routes.iter().filter(|r| r.prefix() > 0).collect();
        self.templates
            .iter()
            .filter(|t| t.base.is_ipv6() == v6)
            .flat_map(|t| t.subnets())
            .find(|candidate| {
                self.overlapping_pool(candidate).is_none()
                    && !routes.iter().any(|r| overlaps(r, candidate))
            })
            .ok_or(IpamError::NoAvailableSubnet {
                family: if v6 { "IPv6" } else { "IPv4" },
            })
    }

    pub fn release_pool(&mut self, subnet: &IpNetwork) -> Result<(), IpamError> {
        self.pools
            .remove(subnet)
            .map(|_| ())
            .ok_or(IpamError::UnknownPool(*subnet))
    }

    pub fn pool(&self, subnet: &IpNetwork) -> Option<&Pool> {
        self.pools.get(subnet)
    }

    pub fn allocate(
        &mut self,
        subnet: &IpNetwork,
        preferred: Option<IpAddr>,
    ) -> Result<IpAddr, IpamError> {
        self.pool_mut(subnet)?.allocate(preferred)
    }

    /// See [`Pool::allocate_spread`].
    pub fn allocate_spread(&mut self, subnet: &IpNetwork, seed: u64) -> Result<IpAddr, IpamError> {
        self.pool_mut(subnet)?.allocate_spread(seed)
    }

    pub fn release(&mut self, subnet: &IpNetwork, address: IpAddr) -> Result<(), IpamError> {
        self.pool_mut(subnet)?.release(address)
    }

    fn pool_mut(&mut self, subnet: &IpNetwork) -> Result<&mut Pool, IpamError> {
        self.pools
            .get_mut(subnet)
            .ok_or(IpamError::UnknownPool(*subnet))
    }
}

/// Both address spaces: pools of one host (`local`) and of a whole cluster (`global`) never
/// meet, so the same subnet may be a local pool here and a global pool of an overlay.
#[derive(Debug, Clone)]
pub struct Ipam {
    local: AddressSpace,
    global: AddressSpace,
}

impl Ipam {
    pub fn new(local: Vec<PoolTemplate>, global: Vec<PoolTemplate>) -> Self {
        Self {
            local: AddressSpace::new(local),
            global: AddressSpace::new(global),
        }
    }

    pub fn space(&self, scope: Scope) -> &AddressSpace {
        match scope {
            Scope::Local => &self.local,
            Scope::Global => &self.global,
        }
    }

    pub fn space_mut(&mut self, scope: Scope) -> &mut AddressSpace {
        match scope {
            Scope::Local => &mut self.local,
            Scope::Global => &mut self.global,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DEFAULT_GLOBAL_POOLS, DEFAULT_IPV6_POOL, DEFAULT_LOCAL_POOLS};

    fn space() -> AddressSpace {
        let mut templates = PoolTemplate::from_table(DEFAULT_LOCAL_POOLS);
        templates.extend(PoolTemplate::from_table(&[DEFAULT_IPV6_POOL]));
        AddressSpace::new(templates)
    }

    fn net(s: &str) -> IpNetwork {
        s.parse().unwrap()
    }

    fn explicit(s: &str) -> PoolRequest {
        PoolRequest {
            subnet: Some(net(s)),
            ..Default::default()
        }
    }

    #[test]
    fn explicit_subnets_must_not_overlap() {
        let mut s = space();
        s.request_pool(&explicit("172.30.0.0/24"), &[]).unwrap();
        assert_eq!(
            s.request_pool(&explicit("172.30.0.128/25"), &[]),
            Err(IpamError::Overlap {
                requested: net("172.30.0.128/25"),
                existing: net("172.30.0.0/24")
            })
        );
        s.request_pool(&explicit("172.30.1.0/24"), &[]).unwrap();
    }

    #[test]
    fn automatic_subnets_skip_pools_and_host_routes() {
        let mut s = space();
        s.request_pool(&explicit("172.17.0.0/16"), &[]).unwrap();
        let routes = [net("0.0.0.0/0"), net("172.18.5.0/24")];
        let chosen = s.request_pool(&PoolRequest::default(), &routes).unwrap();
        assert_eq!(chosen, net("172.19.0.0/16"));
        let v6 = PoolRequest {
            v6: true,
            ..Default::default()
        };
        assert_eq!(
            s.request_pool(&v6, &[]).unwrap(),
            net("fd6e:6574:6374::/64")
        );
        assert_eq!(
            s.request_pool(&v6, &[]).unwrap(),
            net("fd6e:6574:6374:1::/64")
        );
    }

    #[test]
    fn exhausting_the_templates_is_an_error() {
        let mut s = AddressSpace::new(vec![PoolTemplate::new(net("192.0.2.0/24"), 25).unwrap()]);
        s.request_pool(&PoolRequest::default(), &[]).unwrap();
        s.request_pool(&PoolRequest::default(), &[]).unwrap();
        assert_eq!(
            s.request_pool(&PoolRequest::default(), &[]),
            Err(IpamError::NoAvailableSubnet { family: "IPv4" })
        );
    }

    #[test]
    fn released_pools_can_be_requested_again() {
        let mut s = space();
        let subnet = s.request_pool(&explicit("172.30.0.0/24"), &[]).unwrap();
        s.allocate(&subnet, None).unwrap();
        s.release_pool(&subnet).unwrap();
        assert_eq!(s.release_pool(&subnet), Err(IpamError::UnknownPool(subnet)));
        s.request_pool(&explicit("172.30.0.0/24"), &[]).unwrap();
    }

    #[test]
    fn thousands_of_pools_from_a_slash_eight() {
        let mut s = AddressSpace::new(vec![PoolTemplate::new(net("10.0.0.0/8"), 24).unwrap()]);
        for _ in 0..300 {
            s.request_pool(&PoolRequest::default(), &[]).unwrap();
        }
        assert!(s.pool(&net("10.0.255.0/24")).is_some());
        assert!(s.pool(&net("10.1.43.0/24")).is_some());
    }

    #[test]
    fn local_and_global_spaces_are_separate() {
        let mut ipam = Ipam::new(
            PoolTemplate::from_table(DEFAULT_LOCAL_POOLS),
            PoolTemplate::from_table(DEFAULT_GLOBAL_POOLS),
        );
        let global = ipam
            .space_mut(Scope::Global)
            .request_pool(&PoolRequest::default(), &[])
            .unwrap();
        assert_eq!(global, net("10.0.0.0/24"));
        // The same subnet as a local pool does not clash with the global one.
        ipam.space_mut(Scope::Local)
            .request_pool(&explicit("10.0.0.0/24"), &[])
            .unwrap();
        assert!(ipam.space(Scope::Global).pool(&global).is_some());
        assert_eq!(
            ipam.space(Scope::Local).pool(&global).unwrap().subnet(),
            global
        );
    }
}
