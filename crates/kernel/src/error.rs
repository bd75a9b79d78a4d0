use std::path::PathBuf;

/// A kernel operation that failed, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error("netlink: {op}: {source}")]
    Netlink {
        op: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("network namespace {path}: {what}: {source}")]
    Netns {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("nft: {0}")]
    Nft(String),
    #[error("sysctl {key}: {source}")]
    Sysctl {
        key: String,
        #[source]
        source: std::io::Error,
    },
    #[error("link {0} not found")]
    LinkNotFound(String),
    /// A socket or file the kernel refused.
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A helper program (`iptables`, `conntrack`) could not run or failed.
    #[error("{program}: {message}")]
    Command {
        program: &'static str,
        message: String,
    },
}

impl KernelError {
    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let op = op.into();
        move |source| Self::Netlink { op, source }
    }

    /// The kernel's errno, when the failure came from netlink.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Netlink { source, .. } => crate::netlink::errno(source),
            _ => None,
        }
    }

    /// The object to be made is there already (`EEXIST`).
    pub fn already_exists(&self) -> bool {
        self.errno() == Some(crate::netlink::EEXIST)
    }

    /// The object named is not there (`ENODEV`, `ENOENT`, a route's `ESRCH`, an address's
    /// `EADDRNOTAVAIL`, or a link looked up in vain).
    pub fn not_found(&self) -> bool {
        matches!(self, Self::LinkNotFound(_))
            || matches!(
                self.errno(),
                Some(
                    crate::netlink::ENODEV
                        | crate::netlink::ENOENT
                        | crate::netlink::ESRCH
                        | crate::netlink::EADDRNOTAVAIL
                )
            )
    }
}
