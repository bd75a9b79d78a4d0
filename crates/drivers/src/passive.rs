//! The `host` and `none` drivers. Neither builds anything per network or per endpoint: what
//! sets them apart is the namespace the daemon gives the sandbox — the host's own (the
//! daemon's) for `host`, a fresh one with loopback only for `none`.

use crate::netns::Netns;
use crate::{DriverError, EndpointSpec, NetworkDriver, NetworkSpec};

#[derive(Debug, Default, Clone)]
pub struct PassiveDriver;

/// `--network host`: the sandbox is the host's namespace.
pub type HostDriver = PassiveDriver;
/// `--network none`: the sandbox has loopback only.
pub type NoneDriver = PassiveDriver;

impl NetworkDriver for PassiveDriver {
    async fn create_network(&self, _net: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn delete_network(&self, _net: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn join(&self, _: &NetworkSpec, _: &EndpointSpec, _: &Netns) -> Result<(), DriverError> {
        Ok(())
    }

    async fn leave(&self, _: &NetworkSpec, _: &EndpointSpec) -> Result<(), DriverError> {
        Ok(())
    }
}
