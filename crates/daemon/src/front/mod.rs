//! The front ends: each speaks one protocol (the management API, Docker's remote plugin
//! API) and translates it into calls on the engine (`crate::controller`), which knows none
//! of them. A front end checks and times a call and says its errors its protocol's way;
//! it holds no state and plans nothing.

mod docker_plugin;
mod error;
mod management;

pub use docker_plugin::DockerFront;
pub use management::ManagementApi;
