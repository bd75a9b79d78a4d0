//! How internal failures reach the API: a stable code and a message a user understands.

use netctl_drivers::DriverError;
use netctl_ipam::IpamError;
use netctl_kernel::KernelError;
use netctl_plugin_api::{ApiError, ErrorCode};
use netctl_store::StoreError;

use crate::cluster_store::members::MembershipError;

pub(super) fn from_ipam(e: IpamError) -> ApiError {
    let code = match e {
        IpamError::Overlap { .. } | IpamError::AddressInUse(_) => ErrorCode::Conflict,
        IpamError::PoolExhausted(_) | IpamError::NoAvailableSubnet { .. } => ErrorCode::Exhausted,
        _ => ErrorCode::InvalidArgument,
    };
    ApiError::new(code, e.to_string())
}

pub(super) fn from_driver(e: DriverError) -> ApiError {
    match e {
        DriverError::InvalidOption(_) | DriverError::Unsupported(_) => {
            ApiError::invalid(e.to_string())
        }
        _ => ApiError::internal(e.to_string()),
    }
}

pub(super) fn from_kernel(e: KernelError) -> ApiError {
    ApiError::internal(e.to_string())
}

pub(super) fn from_store(e: StoreError) -> ApiError {
    match e {
        StoreError::Exists(_) => ApiError::conflict(e.to_string()),
        StoreError::Unavailable { .. } => ApiError::unavailable(e.to_string()),
        StoreError::Denied(_) => {
            ApiError::new(netctl_plugin_api::ErrorCode::Forbidden, e.to_string())
        }
        _ => ApiError::internal(e.to_string()),
    }
}

pub(super) fn from_dns(e: netctl_dns::DnsError) -> ApiError {
    match e {
        netctl_dns::DnsError::Invalid { .. } => ApiError::invalid(e.to_string()),
        netctl_dns::DnsError::Bind { .. } => ApiError::internal(e.to_string()),
    }
}

pub(super) fn from_membership(e: MembershipError) -> ApiError {
    match e {
        MembershipError::Store(e) => from_store(e),
        MembershipError::AlreadyInitialized(_) => ApiError::conflict(e.to_string()),
        MembershipError::BadToken(_) => {
            ApiError::new(netctl_plugin_api::ErrorCode::Forbidden, e.to_string())
        }
        MembershipError::NodeNotFound(_) => ApiError::not_found(e.to_string()),
        MembershipError::NoCluster => ApiError::invalid(e.to_string()),
        MembershipError::Corrupt { .. } => ApiError::internal(e.to_string()),
    }
}
