//! The CNI plugin protocol as a runtime speaks it (spec 0.3.0 to 1.1.0): what arrives in the
//! environment and on stdin ([`Invocation`], [`NetConf`]), and what goes back on stdout
//! ([`Attachment`] rendered in the version the config asks for, [`CniError`] with the spec's
//! codes). Pure decoding and encoding: no daemon, no kernel, so it is fast to test and to
//! start — runtimes exec the plugin for every call.

mod args;
mod config;
mod error;
mod invocation;
mod result;
mod version;

pub use args::CniArgs;
pub use config::{NetConf, PortMapping, RuntimeConfig, ValidAttachment};
pub use error::{CniError, ErrorCode};
pub use invocation::{Command, Invocation};
pub use result::{Attachment, Dns, Interface, IpConfig, Route};
pub use version::{version_answer, Version, SUPPORTED_VERSIONS};
