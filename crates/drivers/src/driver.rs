//! The one trait every driver implements, and what a driver is given and says about itself.

use std::collections::BTreeMap;
use std::net::IpAddr;

use async_trait::async_trait;
use ipnetwork::IpNetwork;
use netctl_kernel::Netns;

use crate::firewall::FirewallNetwork;
use crate::DriverError;

/// Where a network exists: on one host, or on every node of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Local,
    Global,
}

impl Scope {
    /// Docker's word for it (`docker network ls`'s SCOPE, a plugin's `Scope`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Global => "global",
        }
    }
}

/// Which namespace a sandbox on the network has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SandboxNamespace {
    /// One of its own.
    Own,
    /// The host's (the daemon's) namespace.
    Host,
}

/// What a driver does and needs; the daemon asks these instead of branching on names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub scope: Scope,
    /// Endpoints get addresses from the network's subnets and an interface of their own.
    pub addresses: bool,
    /// Endpoints get a default route through the network's gateway (unless it is internal).
    pub gateway: bool,
    /// Ports can be published to the network's endpoints.
    pub publishes_ports: bool,
    /// The embedded DNS server answers the endpoints' names.
    pub serves_dns: bool,
    /// Networks of this driver need a cluster store.
    pub needs_cluster: bool,
    /// The namespace of a sandbox that joins (only when the sandbox is made).
    pub namespace: SandboxNamespace,
    /// A sandbox on such a network joins no other network, and leaves it only when removed.
    pub exclusive: bool,
    /// The driver has exactly one network, this one, which the daemon makes at start and
    /// nobody removes (Docker's `host` and `none`).
    pub singleton: Option<&'static str>,
    /// Endpoints reach the outside through the node's gateway bridge: unless the network is
    /// internal, a sandbox that joins also gets an interface there, with its default route.
    pub exits_via_gateway_bridge: bool,
    /// What the daemon uses the driver's networks for.
    pub role: NetworkRole,
}

/// What a network is for. The daemon asks this instead of comparing driver or network
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NetworkRole {
    /// A network users make and attach to.
    #[default]
    User,
    /// The node's gateway bridge (Docker's `docker_gwbridge`): the way out for sandboxes on
    /// networks whose endpoints exit through it.
    GatewayBridge,
    /// The cluster's one ingress network (the routing mesh): a published service's replicas
    /// join it, and each node balances its published ports over them from there.
    Ingress,
}

/// Settings the daemon passes to every driver when a network is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkDefaults {
    /// daemon.json's `mtu`.
    pub mtu: u32,
}

/// What a driver made of a network's options: the settings the daemon itself reads, and the
/// driver's own, kept with the network and handed back in every [`NetworkSpec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    pub mtu: u32,
    /// An option asked for an internal network (Docker's `--internal` can also say so).
    pub internal: bool,
    pub config: serde_json::Value,
}

/// One subnet and its gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetSpec {
    pub subnet: IpNetwork,
    pub gateway: IpAddr,
}

impl SubnetSpec {
    /// The gateway with the subnet's prefix, `172.30.0.1/24`.
    pub fn gateway_cidr(&self) -> IpNetwork {
        IpNetwork::new(self.gateway, self.subnet.prefix()).expect("the subnet's prefix")
    }
}

/// A network as a driver is asked to build it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSpec {
    pub id: String,
    pub name: String,
    pub mtu: u32,
    pub internal: bool,
    pub subnets: Vec<SubnetSpec>,
    /// The driver's own settings, as [`Driver::parse_options`] gave them.
    pub config: serde_json::Value,
}

/// One endpoint: one interface of one sandbox on one network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointSpec {
    pub id: String,
    /// The interface's name where the sandbox sees it (`eth0`, or a runtime's choice).
    pub ifname: String,
    pub mac: [u8; 6],
    /// With the subnet's prefix, `172.30.0.130/24`.
    pub addresses: Vec<IpNetwork>,
    /// Default routes through these (none on internal networks).
    pub gateways: Vec<IpAddr>,
    /// Metric of the default routes: the network a sandbox joined first keeps the lowest.
    pub route_metric: u32,
}

/// Where an endpoint's interface goes.
#[derive(Debug, Clone, Copy)]
pub enum JoinTarget<'a> {
    /// Into this namespace (a sandbox's, or one a runtime made), configured by the driver.
    Sandbox(&'a Netns),
    /// Left in the daemon's namespace, down, named [`Driver::runtime_interface`], for a
    /// runtime that moves and configures it itself (dockerd).
    Runtime,
}

/// What is wanted of one driver's kernel objects, for garbage collection: its networks and
/// their endpoints (with whether each was made for a runtime).
#[derive(Debug, Clone, Default)]
pub struct Wanted {
    pub networks: Vec<NetworkSpec>,
    pub endpoints: Vec<(EndpointSpec, JoinKind)>,
}

/// How an endpoint was joined, without the namespace itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Sandbox,
    Runtime,
}

/// A host object one network alone may take, named as messages name it (`parent interface
/// eth1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim(pub String);

impl std::fmt::Display for Claim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A network driver. Every method that changes the kernel is idempotent: called twice with
/// the same arguments it finds its objects in place and changes nothing.
#[async_trait]
pub trait Driver: Send + Sync {
    /// Its name, as users give it (`--driver bridge`).
    fn name(&self) -> &'static str;

    /// Other names it answers to (`none` for `null`).
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    fn capabilities(&self) -> Capabilities;

    /// Checks a network's options (netctl's names and Docker's) before anything is made.
    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError>;

    /// How the names of the links it makes in the daemon's namespace begin (`ncb`, `ncv`…):
    /// such a link leads to no LAN.
    fn host_link_prefixes(&self) -> &'static [&'static str] {
        &[]
    }

    /// Host objects a network of this driver takes for itself alone, read from its config
    /// (a bridge's parent interface): the daemon refuses a second network that claims one.
    fn exclusive_claims(&self, _config: &serde_json::Value) -> Vec<Claim> {
        Vec::new()
    }

    /// Makes the network's kernel objects, its firewall elements included.
    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError>;

    /// Removes them; what is missing already is not an error.
    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError>;

    /// After a restart: the network's kernel objects as `net` says, except its firewall
    /// elements (the whole table is rebuilt at once from [`Driver::firewall`]).
    async fn restore_network(&self, net: &NetworkSpec) -> Result<(), DriverError>;

    /// Plugs an endpoint in.
    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        target: JoinTarget<'_>,
    ) -> Result<(), DriverError>;

    /// The name of the interface a [`JoinTarget::Runtime`] join leaves for the runtime;
    /// `None` when the driver gives endpoints no interface.
    fn runtime_interface(&self, _ep: &EndpointSpec) -> Option<String> {
        None
    }

    /// Unplugs it; a missing interface is not an error.
    async fn leave(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), DriverError>;

    /// Removes kernel objects the driver made that nothing in `wanted` needs any more.
    async fn collect_garbage(&self, wanted: &Wanted) -> Result<(), DriverError>;

    /// The driver whose [`Driver::collect_garbage`] is handed this driver's networks and
    /// endpoints: itself, unless its networks are made of another driver's kernel objects
    /// (the gateway bridge's are the bridge driver's), which that driver would otherwise
    /// take for garbage.
    fn collected_by(&self) -> &'static str {
        self.name()
    }

    /// Whether a runtime has handed back the interface of a [`JoinTarget::Runtime`]
    /// endpoint it had taken (its container is gone).
    async fn released_by_runtime(&self, _net: &NetworkSpec, _ep: &EndpointSpec) -> bool {
        false
    }

    /// Whether the endpoint's interface is gone from the host: the namespace a runtime took
    /// it into went away, and the kernel removed the whole pair with it.
    async fn vanished(&self, _net: &NetworkSpec, _ep: &EndpointSpec) -> bool {
        false
    }

    /// The network's elements in the shared firewall table, if it has any.
    fn firewall(&self, _net: &NetworkSpec) -> Option<FirewallNetwork> {
        None
    }

    /// Settings the driver chose for the network, shown by inspect beside the user's
    /// options (an overlay's VNI, under Docker's name).
    fn inspect_options(&self, _net: &NetworkSpec) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    /// The network's own device on the host, shown by inspect (`Bridge`).
    fn device(&self, _net: &NetworkSpec) -> Option<String> {
        None
    }
}
