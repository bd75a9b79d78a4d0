//! The `null` driver (`none`): a sandbox on the `none` network has a namespace of its own
//! with loopback only. Nothing is built per network or per endpoint.

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{
    Capabilities, Driver, DriverError, EndpointSpec, JoinTarget, NetworkDefaults, NetworkSettings,
    NetworkSpec, SandboxNamespace, Scope, Wanted,
};

#[derive(Debug, Default, Clone)]
pub struct NullDriver;

#[async_trait]
impl Driver for NullDriver {
    fn name(&self) -> &'static str {
        "null"
    }

    fn aliases(&self) -> &'static [&'static str] {
        &["none"]
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Local,
            addresses: false,
            gateway: false,
            publishes_ports: false,
            serves_dns: false,
            needs_cluster: false,
            namespace: SandboxNamespace::Own,
            exclusive: true,
            singleton: Some("none"),
        }
    }

    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError> {
        crate::options::no_options(self.name(), options, defaults)
    }

    async fn create_network(&self, _: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn delete_network(&self, _: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn restore_network(&self, _: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn join(
        &self,
        _: &NetworkSpec,
        _: &EndpointSpec,
        _: JoinTarget<'_>,
    ) -> Result<(), DriverError> {
        Ok(())
    }

    async fn leave(&self, _: &NetworkSpec, _: &EndpointSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn collect_garbage(&self, _: &Wanted) -> Result<(), DriverError> {
        Ok(())
    }
}
