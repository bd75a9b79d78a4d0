//! Docker's objects in the engine: what dockerd's calls (through the front end in
//! `front::docker_plugin`) do to the same state, store and drivers as the CLI's.
//!
//! Docker's objects map onto netctl's: a network created by dockerd is a network of
//! [`DOCKER_DRIVER`] bound to the Docker network ID by a record of Docker's own; an endpoint
//! is an endpoint without a netctl sandbox (the container is dockerd's), whose interface the
//! driver leaves in this namespace for dockerd to move; a pool of the IPAM driver is a
//! [`DockerPoolRecord`](crate::model::DockerPoolRecord), reserved in netctl's address space
//! like any network's subnet, so the two never overlap. Everything is persisted: dockerd does
//! not re-activate a restarted plugin, and its next call may name a pool or endpoint from
//! before.

mod dhcp;
mod docker_endpoints;
mod docker_networks;
mod ipam;

use super::Controller;

/// The driver of the networks dockerd makes with `-d netctl`: netctl's default.
pub(super) const DOCKER_DRIVER: &str = netctl_drivers::DEFAULT_DRIVER;

impl Controller {
    /// The scope of the networks dockerd makes with netctl's driver (`local`, or `global`
    /// when the default driver is a cluster's).
    pub fn docker_scope(&self) -> &'static str {
        self.drivers
            .get(DOCKER_DRIVER)
            .map(|d| d.capabilities().scope)
            .unwrap_or(netctl_drivers::Scope::Local)
            .name()
    }
}
