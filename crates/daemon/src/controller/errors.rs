//! How internal failures reach the API: a stable code and a message a user understands.

use drivers::DriverError;
use ipam::IpamError;
use kernel::KernelError;
use plugin_api::{ApiError, ErrorCode};
use store::StoreError;

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
        _ => ApiError::internal(e.to_string()),
    }
}

pub(super) fn from_dns(e: dns::DnsError) -> ApiError {
    match e {
        dns::DnsError::Invalid { .. } => ApiError::invalid(e.to_string()),
        dns::DnsError::Bind { .. } => ApiError::internal(e.to_string()),
    }
}
