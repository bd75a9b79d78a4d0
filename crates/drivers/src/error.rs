use std::path::PathBuf;

/// A kernel operation that failed, with what was being done.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
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
    #[error("{0}")]
    Unsupported(String),
    /// Several steps failed; teardown keeps going and reports all of them.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<DriverError>),
}

impl DriverError {
    pub(crate) fn netlink(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> Self {
        let op = op.into();
        move |source| Self::Netlink { op, source }
    }

    /// The kernel's errno, when the failure came from netlink.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Self::Netlink {
                source: rtnetlink::Error::NetlinkError(msg),
                ..
            } => msg.code.map(|c| -c.get()),
            _ => None,
        }
    }

    /// Folds a list of errors from a best-effort teardown into one result.
    pub fn collect(errors: Vec<DriverError>) -> Result<(), DriverError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.into_iter().next().expect("one error")),
            _ => Err(Self::Many(errors)),
        }
    }
}
