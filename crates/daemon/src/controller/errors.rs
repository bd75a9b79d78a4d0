//! How internal failures reach the API: a stable code and a message a user understands.

use drivers::DriverError;
use ipam::IpamError;
use plugin_api::{ApiError, ErrorCode};

use crate::DaemonError;

pub(super) fn from_ipam(e: IpamError) -> ApiError {
    let code = match e {
        IpamError::Overlap { .. } | IpamError::AddressInUse(_) => ErrorCode::Conflict,
        IpamError::PoolExhausted(_) | IpamError::NoAvailableSubnet { .. } => ErrorCode::Exhausted,
        _ => ErrorCode::InvalidArgument,
    };
    ApiError::new(code, e.to_string())
}

pub(super) fn from_driver(e: DriverError) -> ApiError {
    ApiError::internal(e.to_string())
}

pub(super) fn from_daemon(e: DaemonError) -> ApiError {
    ApiError::internal(e.to_string())
}

pub(super) fn from_dns(e: dns::DnsError) -> ApiError {
    match e {
        dns::DnsError::Invalid { .. } => ApiError::invalid(e.to_string()),
        dns::DnsError::Bind { .. } => ApiError::internal(e.to_string()),
    }
}
