//! One subnet and the addresses handed out from it.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnetwork::IpNetwork;

use crate::addr::{bounds, from_u128, is_canonical, to_u128};
use crate::intervals::IntervalSet;
use crate::IpamError;

/// What a caller asks for when it wants a pool.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolRequest {
    /// The subnet; `None` lets the address space choose one from its default pools.
    pub subnet: Option<IpNetwork>,
    /// Where automatic addresses come from (`--ip-range`); the whole subnet when `None`.
    pub ip_range: Option<IpNetwork>,
    /// Addresses that are never handed out (`--aux-address name=addr`).
    pub aux_addresses: BTreeMap<String, IpAddr>,
    /// Which family to choose from when `subnet` is `None`.
    pub v6: bool,
}

#[derive(Debug, Clone)]
pub struct Pool {
    subnet: IpNetwork,
    /// Usable addresses of the subnet (without network and broadcast addresses).
    usable: (u128, u128),
    /// Where automatic allocation looks (the ip-range within the usable span).
    automatic: (u128, u128),
    used: IntervalSet,
}

impl Pool {
    pub(crate) fn new(
        subnet: IpNetwork,
        ip_range: Option<IpNetwork>,
        aux_addresses: &BTreeMap<String, IpAddr>,
    ) -> Result<Self, IpamError> {
        if !is_canonical(&subnet) {
            let fixed = IpNetwork::new(subnet.network(), subnet.prefix()).expect("same prefix");
            return Err(IpamError::NotCanonical(subnet, fixed));
        }
        let usable = usable_span(&subnet);
        let automatic = match ip_range {
            None => usable,
            Some(range) => {
                if range.is_ipv6() != subnet.is_ipv6()
                    || !subnet.contains(range.network())
                    || range.prefix() < subnet.prefix()
                {
                    return Err(IpamError::RangeOutsideSubnet { range, subnet });
                }
                let (first, last) = bounds(&range);
                (first.max(usable.0), last.min(usable.1))
            }
        };
        let mut pool = Self {
            subnet,
            usable,
            automatic,
            used: IntervalSet::default(),
        };
        for address in aux_addresses.values() {
            if !pool.in_subnet(*address) {
                return Err(IpamError::AuxOutsideSubnet {
                    address: *address,
                    subnet,
                });
            }
            pool.used.insert(to_u128(*address));
        }
        Ok(pool)
    }

    pub fn subnet(&self) -> IpNetwork {
        self.subnet
    }

    fn in_subnet(&self, address: IpAddr) -> bool {
        address.is_ipv6() == self.subnet.is_ipv6() && self.subnet.contains(address)
    }

    /// Hands out `preferred` if given (anywhere in the subnet but its network and broadcast
    /// addresses, as Docker allows `--ip` outside `--ip-range`), else the lowest free address
    /// of the ip-range.
    pub fn allocate(&mut self, preferred: Option<IpAddr>) -> Result<IpAddr, IpamError> {
        let v6 = self.subnet.is_ipv6();
        let value = match preferred {
            Some(address) => {
                if !self.in_subnet(address) {
                    return Err(IpamError::AddressOutsideSubnet {
                        address,
                        subnet: self.subnet,
                    });
                }
                let value = to_u128(address);
                if value < self.usable.0 || value > self.usable.1 {
                    return Err(IpamError::AddressOutsideRange {
                        address,
                        subnet: self.subnet,
                    });
                }
                if self.used.contains(value) {
                    return Err(IpamError::AddressInUse(address));
                }
                value
            }
            None => self
                .used
                .first_gap(self.automatic.0, self.automatic.1)
                .ok_or(IpamError::PoolExhausted(self.subnet))?,
        };
        self.used.insert(value);
        Ok(from_u128(value, v6))
    }

    /// The first free address of the ip-range at or after a point `seed` picks in it,
    /// wrapping around: allocators that share a pool without talking to each other (nodes
    /// of a cluster, each with its own seed) rarely pick the same address at once.
    pub fn allocate_spread(&mut self, seed: u64) -> Result<IpAddr, IpamError> {
        let (low, high) = self.automatic;
        let start = low + u128::from(seed) % (high - low + 1);
        let value = self
            .used
            .first_gap(start, high)
            .or_else(|| self.used.first_gap(low, start))
            .ok_or(IpamError::PoolExhausted(self.subnet))?;
        self.used.insert(value);
        Ok(from_u128(value, self.subnet.is_ipv6()))
    }

    pub fn release(&mut self, address: IpAddr) -> Result<(), IpamError> {
        if !self.in_subnet(address) || !self.used.remove(to_u128(address)) {
            return Err(IpamError::AddressNotAllocated(address));
        }
        Ok(())
    }
}

/// IPv4 loses its network and broadcast addresses (but /31 and /32 keep all); IPv6 loses the
/// subnet-router anycast address (the first one), as in Docker.
fn usable_span(subnet: &IpNetwork) -> (u128, u128) {
    let (first, last) = bounds(subnet);
    match subnet {
        IpNetwork::V4(_) if subnet.prefix() >= 31 => (first, last),
        IpNetwork::V4(_) => (first + 1, last - 1),
        IpNetwork::V6(_) if subnet.prefix() == 128 => (first, last),
        IpNetwork::V6(_) => (first + 1, last),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(subnet: &str, range: Option<&str>, aux: &[&str]) -> Result<Pool, IpamError> {
        let aux = aux
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("a{i}"), a.parse().unwrap()))
            .collect();
        Pool::new(
            subnet.parse().unwrap(),
            range.map(|r| r.parse().unwrap()),
            &aux,
        )
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hands_out_lowest_free_address_and_reuses_released_ones() {
        let mut p = pool("172.30.0.0/24", None, &[]).unwrap();
        assert_eq!(p.allocate(None).unwrap(), ip("172.30.0.1"));
        assert_eq!(p.allocate(None).unwrap(), ip("172.30.0.2"));
        p.release(ip("172.30.0.1")).unwrap();
        assert_eq!(p.allocate(None).unwrap(), ip("172.30.0.1"));
    }

    #[test]
    fn ip_range_limits_automatic_but_not_preferred_addresses() {
        let mut p = pool("172.30.0.0/24", Some("172.30.0.128/25"), &["172.30.0.5"]).unwrap();
        assert_eq!(p.allocate(None).unwrap(), ip("172.30.0.128"));
        assert_eq!(
            p.allocate(Some(ip("172.30.0.1"))).unwrap(),
            ip("172.30.0.1")
        );
        assert_eq!(
            p.allocate(Some(ip("172.30.0.5"))),
            Err(IpamError::AddressInUse(ip("172.30.0.5")))
        );
        assert!(matches!(
            p.allocate(Some(ip("172.30.0.255"))),
            Err(IpamError::AddressOutsideRange { .. })
        ));
        assert!(matches!(
            p.allocate(Some(ip("10.0.0.1"))),
            Err(IpamError::AddressOutsideSubnet { .. })
        ));
    }

    #[test]
    fn exhaustion_is_reported() {
        let mut p = pool("192.0.2.0/30", None, &[]).unwrap();
        p.allocate(None).unwrap();
        p.allocate(None).unwrap();
        assert_eq!(
            p.allocate(None),
            Err(IpamError::PoolExhausted("192.0.2.0/30".parse().unwrap()))
        );
    }

    #[test]
    fn invalid_requests_are_refused() {
        assert!(matches!(
            pool("172.30.0.1/24", None, &[]),
            Err(IpamError::NotCanonical(..))
        ));
        assert!(matches!(
            pool("172.30.0.0/24", Some("172.31.0.0/25"), &[]),
            Err(IpamError::RangeOutsideSubnet { .. })
        ));
        assert!(matches!(
            pool("172.30.0.0/24", Some("172.30.0.0/16"), &[]),
            Err(IpamError::RangeOutsideSubnet { .. })
        ));
        assert!(matches!(
            pool("172.30.0.0/24", None, &["10.1.1.1"]),
            Err(IpamError::AuxOutsideSubnet { .. })
        ));
    }

    #[test]
    fn huge_pools_are_as_cheap_as_small_ones() {
        let mut p = pool("10.0.0.0/8", None, &[]).unwrap();
        let mut q = pool("fd00::/64", None, &[]).unwrap();
        for _ in 0..10_000 {
            p.allocate(None).unwrap();
            q.allocate(None).unwrap();
        }
        assert_eq!(p.used.runs_len(), 1);
        assert_eq!(q.used.runs_len(), 1);
        assert_eq!(q.allocate(None).unwrap(), ip("fd00::2711"));
    }

    #[test]
    fn ipv6_skips_the_subnet_router_anycast_address() {
        let mut p = pool("fd00:1::/64", None, &[]).unwrap();
        assert_eq!(p.allocate(None).unwrap(), ip("fd00:1::1"));
        assert!(matches!(
            p.allocate(Some(ip("fd00:1::"))),
            Err(IpamError::AddressOutsideRange { .. })
        ));
    }

    #[test]
    fn spread_allocation_starts_at_the_seed_and_wraps() {
        let mut pool = pool("10.9.0.0/29", None, &[]).unwrap();
        // Hosts .1 to .6: six of them; seed 3 starts at .4.
        let first = pool.allocate_spread(3).unwrap();
        assert_eq!(first, "10.9.0.4".parse::<IpAddr>().unwrap());
        assert_eq!(pool.allocate_spread(3).unwrap().to_string(), "10.9.0.5");
        assert_eq!(pool.allocate_spread(3).unwrap().to_string(), "10.9.0.6");
        assert_eq!(
            pool.allocate_spread(3).unwrap().to_string(),
            "10.9.0.1",
            "wraps"
        );
        for _ in 0..2 {
            pool.allocate_spread(3).unwrap();
        }
        assert!(pool.allocate_spread(3).is_err(), "exhausted");
    }
}
