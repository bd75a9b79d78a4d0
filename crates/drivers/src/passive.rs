//! A driver that builds nothing per network or per endpoint: what sets its networks apart is
//! the namespace a sandbox on them gets (see `host` and `null`).

use std::collections::BTreeMap;

use async_trait::async_trait;

use crate::{
    Capabilities, Driver, DriverError, EndpointSpec, JoinTarget, NetworkDefaults, NetworkSettings,
    NetworkSpec, Wanted,
};

#[derive(Debug, Clone)]
pub struct PassiveDriver {
    pub(crate) name: &'static str,
    pub(crate) aliases: &'static [&'static str],
    pub(crate) capabilities: Capabilities,
}

#[async_trait]
impl Driver for PassiveDriver {
    fn name(&self) -> &'static str {
        self.name
    }

    fn aliases(&self) -> &'static [&'static str] {
        self.aliases
    }

    fn capabilities(&self) -> Capabilities {
        self.capabilities.clone()
    }

    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError> {
        if let Some(key) = options.keys().next() {
            return Err(DriverError::InvalidOption(format!(
                "the {} driver takes no options (got {key:?})",
                self.name
            )));
        }
        Ok(NetworkSettings {
            mtu: defaults.mtu,
            internal: false,
            config: serde_json::Value::Null,
        })
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
