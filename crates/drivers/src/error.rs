use netctl_kernel::KernelError;

/// Why a driver could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// A network option the driver does not know, or a value it cannot use: nothing was made.
    #[error("{0}")]
    InvalidOption(String),
    /// What was asked cannot be done with this driver (or on this kernel).
    #[error("{0}")]
    Unsupported(String),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// Several steps failed; teardown keeps going and reports all of them.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<DriverError>),
}

impl DriverError {
    /// Folds a list of errors from a best-effort teardown into one result.
    pub fn collect(errors: Vec<DriverError>) -> Result<(), DriverError> {
        match errors.len() {
            0 => Ok(()),
            1 => Err(errors.into_iter().next().expect("one error")),
            _ => Err(Self::Many(errors)),
        }
    }
}
