use std::path::PathBuf;

/// Why the daemon could not start or keep serving.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("config {path}: {message}")]
    Config { path: PathBuf, message: String },
    /// The daemon will not start here, for the reason given.
    #[error("{0}")]
    Refused(String),
    #[error("store: {0}")]
    Store(String),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kernel: {0}")]
    Driver(#[from] netctl_drivers::DriverError),
    #[error("kernel: {0}")]
    Kernel(#[from] netctl_kernel::KernelError),
}
