//! Addresses as integers, so v4 and v6 share one allocator.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnetwork::IpNetwork;

pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u32::from(a) as u128,
        IpAddr::V6(a) => u128::from(a),
    }
}

pub(crate) fn from_u128(value: u128, v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(value))
    } else {
        IpAddr::V4(Ipv4Addr::from(value as u32))
    }
}

/// First and last address of a network, inclusive.
pub(crate) fn bounds(net: &IpNetwork) -> (u128, u128) {
    let host_bits = max_prefix(net) - net.prefix() as u32;
    let first = to_u128(net.network());
    let span = if host_bits >= 128 {
        u128::MAX
    } else {
        (1u128 << host_bits) - 1
    };
    (first, first + span)
}

pub(crate) fn max_prefix(net: &IpNetwork) -> u32 {
    if net.is_ipv6() {
        128
    } else {
        32
    }
}

/// True when two networks share at least one address.
pub fn overlaps(a: &IpNetwork, b: &IpNetwork) -> bool {
    if a.is_ipv6() != b.is_ipv6() {
        return false;
    }
    let (a0, a1) = bounds(a);
    let (b0, b1) = bounds(b);
    a0 <= b1 && b0 <= a1
}

/// True when the network's address has no host bits set (10.0.0.0/8, not 10.0.0.1/8).
pub(crate) fn is_canonical(net: &IpNetwork) -> bool {
    net.ip() == net.network()
}
