//! Management API bodies for runtimes that bring their own network namespace (the CNI
//! plugin): attach one interface to a network, detach it, check it, and collect what a
//! runtime forgot. Addresses travel as strings, as in the rest of the API.

use serde::{Deserialize, Serialize};

use crate::{EndpointConfig, NetworkCreateRequest};

/// `POST /v1/runtime/attach`: one interface of a runtime's container on one network.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachRequest {
    /// The runtime's container id (`CNI_CONTAINERID`): the sandbox's name.
    pub container_id: String,
    /// The container's namespace as the runtime names it (a bind mount or
    /// `/proc/PID/ns/net`).
    pub netns: String,
    /// The caller's pid: the namespace is looked up through `/proc/PID/root` when the
    /// daemon's mount namespace does not show the path.
    #[serde(default)]
    pub caller_pid: Option<u32>,
    /// The interface's name inside the container (`CNI_IFNAME`).
    pub ifname: String,
    pub network: String,
    /// Made when `network` does not exist (a conflist that carries the network's settings);
    /// its name is `network`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create: Option<NetworkCreateRequest>,
    /// The container's name (`K8S_POD_NAME`): its hostname and DNS name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    /// Addresses, MAC, aliases and published ports.
    #[serde(default)]
    pub endpoint_config: EndpointConfig,
    /// Chained after another plugin that made the interface and gave it these addresses:
    /// publish ports and register names only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chained_addresses: Vec<String>,
}

/// What an attach made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Attachment {
    pub endpoint_id: String,
    pub ifname: String,
    /// Empty when the interface is another plugin's (chained).
    pub mac_address: String,
    pub mtu: u32,
    pub netns: String,
    /// `10.88.0.2/16` with its gateway.
    pub addresses: Vec<AttachedAddress>,
    pub routes: Vec<AttachedRoute>,
    pub nameservers: Vec<String>,
    pub search: Vec<String>,
    pub dns_options: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedAddress {
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachedRoute {
    pub destination: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
}

/// `POST /v1/runtime/detach` and `POST /v1/runtime/check`: one interface of a container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttachmentRef {
    pub container_id: String,
    pub ifname: String,
    pub network: String,
    /// CHECK: the namespace the runtime says the container has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<String>,
    #[serde(default)]
    pub caller_pid: Option<u32>,
}

/// The answer to a check: what differs between the kernel and the record (empty: all is
/// as recorded).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CheckReport {
    pub differences: Vec<String>,
}

/// `POST /v1/runtime/gc`: every runtime attachment of `network` not listed is removed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RuntimeGcRequest {
    pub network: String,
    pub valid: Vec<ValidAttachment>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ValidAttachment {
    pub container_id: String,
    pub ifname: String,
}

/// `POST /v1/gc`: endpoints whose namespace is gone, for every front end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GcRequest {
    /// Report what would be reclaimed, change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a collection reclaimed (or, dry, would).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GcReport {
    pub dry_run: bool,
    pub endpoints: Vec<ReclaimedEndpoint>,
    /// netctl's own sandboxes that differed from their records (a namespace or interface
    /// lost), and whether they were made whole again.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sandboxes: Vec<SandboxRepair>,
    /// Failures met on the way (the rest was reclaimed all the same).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// A sandbox of netctl's own that `gc` found differing from its record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SandboxRepair {
    pub sandbox: String,
    /// What differed: `interface eth0 is missing`, `its namespace is not bound at PATH`…
    pub problems: Vec<String>,
    /// Made whole again (never, in a dry run).
    pub repaired: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ReclaimedEndpoint {
    pub endpoint_id: String,
    pub network: String,
    /// The sandbox (for a runtime's container, its container id), or Docker's endpoint.
    pub owner: String,
    pub addresses: Vec<String>,
    /// `8080/tcp`
    pub ports: Vec<String>,
    /// Why it was reclaimed.
    pub reason: String,
}
