use std::net::IpAddr;

use ipnetwork::IpNetwork;

/// Why an IPAM request was refused. Each message is meant to be shown to a user as it is.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IpamError {
    #[error("invalid subnet {0}: the address has host bits set (did you mean {1}?)")]
    NotCanonical(IpNetwork, IpNetwork),
    #[error("subnet {requested} overlaps with {existing}, which is already in use")]
    Overlap {
        requested: IpNetwork,
        existing: IpNetwork,
    },
    #[error("gateway {gateway} is not in subnet {subnet}")]
    GatewayOutsideSubnet { gateway: IpAddr, subnet: IpNetwork },
    #[error("ip range {range} is not inside subnet {subnet}")]
    RangeOutsideSubnet { range: IpNetwork, subnet: IpNetwork },
    #[error("auxiliary address {address} is not in subnet {subnet}")]
    AuxOutsideSubnet { address: IpAddr, subnet: IpNetwork },
    #[error("address {address} is not in subnet {subnet}")]
    AddressOutsideSubnet { address: IpAddr, subnet: IpNetwork },
    #[error("address {address} is not in the allocatable range of subnet {subnet}")]
    AddressOutsideRange { address: IpAddr, subnet: IpNetwork },
    #[error("address {0} is already in use")]
    AddressInUse(IpAddr),
    #[error("address {0} is not allocated")]
    AddressNotAllocated(IpAddr),
    #[error("no available addresses in subnet {0}")]
    PoolExhausted(IpNetwork),
    #[error("no available {family} subnet in the default address pools: all are in use or overlap the host's routes")]
    NoAvailableSubnet { family: &'static str },
    #[error("no pool for subnet {0}")]
    UnknownPool(IpNetwork),
    #[error("invalid default address pool {base} with size /{size}")]
    InvalidTemplate { base: IpNetwork, size: u8 },
}
