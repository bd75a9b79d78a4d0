//! The engine's error: what went wrong, kept typed until a front end says it in its own
//! words (the management API's code and message — which the CNI plugin, a client of that
//! API, turns into a CNI error code — or Docker's `Err`).
//!
//! Library failures (IPAM, drivers, kernel, store, DNS, membership) are carried as they are;
//! [`EngineError::kind`] says which sort of failure each is — an address already taken is a
//! conflict, a full pool is exhaustion — so every front end classifies them alike.

use netctl_drivers::DriverError;
use netctl_ipam::IpamError;
use netctl_kernel::KernelError;
use netctl_store::StoreError;

use crate::cluster_store::members::MembershipError;

/// The sort of a failure, the same for every front end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request is malformed or its values are invalid.
    Invalid,
    /// A named network, sandbox, endpoint or node does not exist.
    NotFound,
    /// The request clashes with what exists (a name taken, a subnet overlapping…).
    Conflict,
    /// A pool has no address, subnet or identifier left.
    Exhausted,
    /// The caller or this node may not do this.
    Forbidden,
    /// Something the request needs (the cluster store) cannot be reached now.
    Unavailable,
    /// The kernel, the store or the daemon itself failed.
    Internal,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The engine's own refusals and failures, said in words.
    #[error("{message}")]
    Said { kind: ErrorKind, message: String },
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Driver(#[from] DriverError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dns(#[from] netctl_dns::DnsError),
    #[error(transparent)]
    Membership(#[from] MembershipError),
    /// A failure with what the engine was doing when it happened.
    #[error("{context}: {source}")]
    Context {
        context: String,
        source: Box<EngineError>,
    },
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::Said {
            kind,
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    pub fn exhausted(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Exhausted, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// This failure, said as what the engine was doing: `context: failure`.
    pub fn context(self, context: impl Into<String>) -> Self {
        Self::Context {
            context: context.into(),
            source: Box::new(self),
        }
    }

    /// The sort of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Said { kind, .. } => *kind,
            Self::Ipam(e) => match e {
                IpamError::Overlap { .. } | IpamError::AddressInUse(_) => ErrorKind::Conflict,
                IpamError::PoolExhausted(_) | IpamError::NoAvailableSubnet { .. } => {
                    ErrorKind::Exhausted
                }
                _ => ErrorKind::Invalid,
            },
            Self::Driver(DriverError::InvalidOption(_) | DriverError::Unsupported(_)) => {
                ErrorKind::Invalid
            }
            Self::Driver(_) | Self::Kernel(_) => ErrorKind::Internal,
            Self::Store(e) => store_kind(e),
            Self::Dns(netctl_dns::DnsError::Invalid { .. }) => ErrorKind::Invalid,
            Self::Dns(netctl_dns::DnsError::Bind { .. }) => ErrorKind::Internal,
            Self::Membership(e) => match e {
                MembershipError::Store(e) => store_kind(e),
                MembershipError::AlreadyInitialized(_) => ErrorKind::Conflict,
                MembershipError::BadToken(_) => ErrorKind::Forbidden,
                MembershipError::NodeNotFound(_) => ErrorKind::NotFound,
                MembershipError::NoCluster => ErrorKind::Invalid,
                MembershipError::Corrupt { .. } => ErrorKind::Internal,
            },
            Self::Context { source, .. } => source.kind(),
        }
    }

    /// Whether this is a "no such thing".
    pub fn is_not_found(&self) -> bool {
        self.kind() == ErrorKind::NotFound
    }
}

fn store_kind(e: &StoreError) -> ErrorKind {
    match e {
        StoreError::Exists(_) => ErrorKind::Conflict,
        StoreError::Unavailable { .. } => ErrorKind::Unavailable,
        StoreError::Denied(_) => ErrorKind::Forbidden,
        _ => ErrorKind::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_library_failure_keeps_its_message_and_sort_under_context() {
        let taken = EngineError::from(IpamError::AddressInUse("10.0.0.2".parse().unwrap()));
        let message = taken.to_string();
        let wrapped = taken.context("connecting s1 to n1");
        assert_eq!(wrapped.kind(), ErrorKind::Conflict);
        assert_eq!(
            wrapped.to_string(),
            format!("connecting s1 to n1: {message}")
        );
    }
}
