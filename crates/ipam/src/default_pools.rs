//! The pools a subnet is carved from when a network is created without one.

use ipnetwork::IpNetwork;
use serde::{Deserialize, Serialize};

use crate::addr::{bounds, max_prefix};
use crate::IpamError;

/// `{"base": "172.17.0.0/16", "size": 24}`: carve subnets of `/size` out of `base`, as in
/// daemon.json's `default-address-pools`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolTemplate {
    pub base: IpNetwork,
    pub size: u8,
}

/// Docker's local-scope defaults (moby ipamutils), used when daemon.json sets none.
pub const DEFAULT_LOCAL_POOLS: &[(&str, u8)] = &[
    ("172.17.0.0/16", 16),
    ("172.18.0.0/16", 16),
    ("172.19.0.0/16", 16),
    ("172.20.0.0/14", 16),
    ("172.24.0.0/14", 16),
    ("172.28.0.0/14", 16),
    ("192.168.0.0/16", 20),
];

/// Docker's global-scope (overlay) defaults.
pub const DEFAULT_GLOBAL_POOLS: &[(&str, u8)] = &[("10.0.0.0/8", 24)];

/// Where `--ipv6` networks without an explicit subnet get a /64 from: a ULA prefix.
pub const DEFAULT_IPV6_POOL: (&str, u8) = ("fd6e:6574:6374::/48", 64);

impl PoolTemplate {
    pub fn new(base: IpNetwork, size: u8) -> Result<Self, IpamError> {
        let too_small = (size as u32) < base.prefix() as u32;
        if too_small || size as u32 > max_prefix(&base) || base.ip() != base.network() {
            return Err(IpamError::InvalidTemplate { base, size });
        }
        Ok(Self { base, size })
    }

    pub fn from_table(table: &[(&str, u8)]) -> Vec<Self> {
        table
            .iter()
            .map(|(base, size)| Self::new(base.parse().expect("valid builtin pool"), *size))
            .collect::<Result<_, _>>()
            .expect("valid builtin pools")
    }

    /// The subnets of this template, in order, lazily: a /8 carved into /24s is never listed.
    pub fn subnets(&self) -> impl Iterator<Item = IpNetwork> + '_ {
        let (first, last) = bounds(&self.base);
        let step_bits = max_prefix(&self.base) - self.size as u32;
        let step = if step_bits >= 128 {
            u128::MAX
        } else {
            1u128 << step_bits
        };
        let v6 = self.base.is_ipv6();
        let size = self.size;
        std::iter::successors(Some(first), move |s| {
            s.checked_add(step).filter(|n| *n <= last)
        })
        .map(move |start| {
            IpNetwork::new(crate::addr::from_u128(start, v6), size).expect("valid prefix")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carves_lazily_in_order() {
        let t = PoolTemplate::new("10.0.0.0/8".parse().unwrap(), 24).unwrap();
        let first: Vec<_> = t.subnets().take(2).map(|n| n.to_string()).collect();
        assert_eq!(first, ["10.0.0.0/24", "10.0.1.0/24"]);
        assert_eq!(t.subnets().last().unwrap().to_string(), "10.255.255.0/24");
    }

    #[test]
    fn rejects_a_size_wider_than_the_base() {
        assert!(PoolTemplate::new("10.0.0.0/16".parse().unwrap(), 8).is_err());
        assert!(PoolTemplate::new("10.0.0.1/16".parse().unwrap(), 24).is_err());
    }
}
