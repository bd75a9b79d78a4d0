//! The overlay as a [`Driver`]: a network's segment made on a node with its first local
//! endpoint and removed with its last; remote endpoints kept as the daemon reports them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use async_trait::async_trait;
use netctl_kernel::netlink::{Request, VethEnds};
use netctl_kernel::{KernelError, Netns};
use parking_lot::RwLock;
use tokio::sync::Mutex;

use super::datapath::{DataPath, Remote, Segment, BRIDGE};
use super::options::{self, OverlayConfig};
use super::{mtu_over, VXLAN_OVERHEAD};
use crate::bridge::{host_end, inside_requests, runtime_end, stale_pair};
use crate::ClusterDriver;
use crate::{
    Capabilities, Driver, DriverError, EndpointSpec, JoinKind, JoinTarget, NetworkDefaults,
    NetworkRole, NetworkSettings, NetworkSpec, SandboxNamespace, Scope, Wanted,
};

/// `--driver overlay`.
pub const NAME: &str = "overlay";

/// This node's side of the cluster's underlay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Underlay {
    /// The node's VTEP (`--advertise-addr`).
    pub local: IpAddr,
    /// The cluster's VXLAN port.
    pub port: u16,
    /// The MTU of the interface that carries `local`.
    pub mtu: u32,
}

/// One overlay network on this node.
#[derive(Default)]
struct SegmentState {
    /// Open while the node has local endpoints on the network.
    ns: Option<Arc<Netns>>,
    local: BTreeSet<String>,
    /// Endpoints on other nodes, by endpoint id.
    remotes: BTreeMap<String, Remote>,
}

impl SegmentState {
    fn carries_vtep(&self, vtep: IpAddr) -> bool {
        self.remotes.values().any(|r| r.vtep == vtep)
    }
}

pub struct OverlayDriver {
    datapath: DataPath,
    underlay: RwLock<Option<Underlay>>,
    /// By VNI. One lock for every segment: held only while a segment is made, removed or
    /// given a remote, never across an endpoint's own veth.
    segments: Mutex<HashMap<u32, SegmentState>>,
}

impl OverlayDriver {
    pub fn new(datapath: DataPath) -> Self {
        Self {
            datapath,
            underlay: RwLock::new(None),
            segments: Mutex::default(),
        }
    }

    pub fn underlay(&self) -> Option<Underlay> {
        *self.underlay.read()
    }

    fn require_underlay(&self) -> Result<Underlay, DriverError> {
        self.underlay().ok_or_else(|| {
            DriverError::Unsupported("this node is in no cluster: overlay networks need one".into())
        })
    }

    async fn withdraw(
        &self,
        ns: &Netns,
        segment: &SegmentState,
        remote: &Remote,
    ) -> Result<(), DriverError> {
        let removed = self.datapath.remove_remote(ns, remote).await;
        if !segment.carries_vtep(remote.vtep) {
            self.datapath.remove_flood(ns, remote.vtep).await?;
        }
        removed
    }

    /// The remote endpoints the driver holds for `vni` (what the daemon told it).
    pub async fn remotes(&self, vni: u32) -> Vec<Remote> {
        let segments = self.segments.lock().await;
        segments
            .get(&vni)
            .map(|s| s.remotes.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The segment's namespace, made with every known remote if this is its first local
    /// endpoint; the endpoint is counted in before the lock is let go, so a concurrent
    /// last leave does not take the segment away under it.
    async fn enter(&self, net: &NetworkSpec, endpoint: &str) -> Result<Arc<Netns>, DriverError> {
        let underlay = self.require_underlay()?;
        let vni = vni_of(net)?;
        let mut segments = self.segments.lock().await;
        let segment = segments.entry(vni).or_default();
        let ns = match segment.ns.clone() {
            Some(ns) => ns,
            None => {
                let spec = Segment {
                    vni,
                    mtu: net.mtu,
                    gateways: net.subnets.iter().map(|s| s.gateway_cidr()).collect(),
                    local: underlay.local,
                    port: underlay.port,
                };
                let ns = Arc::new(self.datapath.ensure(&spec).await?);
                for remote in segment.remotes.values() {
                    self.datapath.add_remote(&ns, remote).await?;
                }
                let vteps: HashSet<IpAddr> = segment.remotes.values().map(|r| r.vtep).collect();
                for vtep in vteps {
                    self.datapath.add_flood(&ns, vtep).await?;
                }
                segment.ns = Some(ns.clone());
                ns
            }
        };
        segment.local.insert(endpoint.to_string());
        Ok(ns)
    }

    /// Counts the endpoint out; removes the segment with the last one.
    async fn exit(&self, vni: u32, endpoint: &str) -> Result<(), DriverError> {
        let mut segments = self.segments.lock().await;
        let Some(segment) = segments.get_mut(&vni) else {
            return self.datapath.remove(vni).await;
        };
        segment.local.remove(endpoint);
        if segment.local.is_empty() {
            segment.ns = None;
            self.datapath.remove(vni).await?;
        }
        Ok(())
    }

    /// `ip -n ov-VNI link add HOST type veth peer PEER netns TARGET; ip -n ov-VNI link set
    /// HOST master br0 up`.
    async fn add_veth(
        &self,
        segment: &Netns,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        peer: &str,
        peer_netns: i32,
    ) -> Result<Option<u32>, DriverError> {
        let inside = segment.netlink();
        let bridge = inside
            .link_by_name(BRIDGE)
            .await?
            .ok_or_else(|| KernelError::LinkNotFound(BRIDGE.into()))?
            .index;
        let host = host_end(&ep.id);
        let ends = VethEnds {
            name: &host,
            peer,
            peer_netns,
            peer_mac: ep.mac,
            mtu: net.mtu,
            controller: bridge,
        };
        let made = match inside.add_veth(&ends).await {
            Ok(link) => link,
            Err(e) if e.already_exists() => {
                // A join cut short (a crash between the two) leaves the pair made and down.
                let link = inside
                    .link_by_name(&host)
                    .await?
                    .ok_or_else(|| KernelError::LinkNotFound(host.clone()))?;
                if !link.up {
                    inside
                        .run_all(vec![
                            Request::ipv6_link_local(link.index, false),
                            Request::link_up(link.index),
                        ])
                        .await?;
                }
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        inside
            .run_all(vec![
                Request::ipv6_link_local(made.index, false),
                Request::link_up(made.index),
            ])
            .await?;
        Ok(Some(made.peer_index.unwrap_or(0)))
    }

    async fn join_sandbox(
        &self,
        segment: &Netns,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        sandbox: &Netns,
    ) -> Result<(), DriverError> {
        let inside = sandbox.netlink();
        // Two rounds at most: the second after a pair that led elsewhere was deleted.
        for _ in 0..2 {
            let made = self
                .add_veth(segment, net, ep, &ep.ifname, sandbox.raw_fd())
                .await?;
            let link = match made {
                Some(index) if index != 0 => Some((index, false)),
                _ => inside
                    .link_by_name(&ep.ifname)
                    .await?
                    .map(|link| (link.index, link.up)),
            };
            match link {
                Some((index, up)) => {
                    inside.run_all(inside_requests(index, up, ep)).await?;
                    return Ok(());
                }
                None => stale_pair(segment.netlink(), &host_end(&ep.id), &ep.ifname).await?,
            }
        }
        Err(KernelError::LinkNotFound(ep.ifname.clone()).into())
    }
}

fn vni_of(net: &NetworkSpec) -> Result<u32, DriverError> {
    match OverlayConfig::of(net).vni {
        0 => Err(DriverError::Unsupported(format!(
            "overlay network {} has no VXLAN id yet",
            net.name
        ))),
        vni => Ok(vni),
    }
}

#[async_trait]
impl Driver for OverlayDriver {
    fn name(&self) -> &'static str {
        NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            scope: Scope::Global,
            addresses: true,
            // East–west only: the default route is the gateway bridge's.
            gateway: false,
            // Publishing from an overlay goes through the ingress network (a service).
            publishes_ports: false,
            serves_dns: true,
            needs_cluster: true,
            namespace: SandboxNamespace::Own,
            exclusive: false,
            singleton: None,
            exits_via_gateway_bridge: true,
            role: NetworkRole::User,
        }
    }

    fn parse_options(
        &self,
        options: &BTreeMap<String, String>,
        defaults: &NetworkDefaults,
    ) -> Result<NetworkSettings, DriverError> {
        let default_mtu = match self.underlay() {
            Some(underlay) => mtu_over(underlay.mtu),
            None => defaults.mtu.saturating_sub(VXLAN_OVERHEAD),
        };
        options::parse(options, default_mtu)
    }

    /// Nothing yet: a node makes the segment with its first local endpoint.
    async fn create_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        vni_of(net).map(|_| ())
    }

    async fn delete_network(&self, net: &NetworkSpec) -> Result<(), DriverError> {
        let vni = vni_of(net)?;
        self.segments.lock().await.remove(&vni);
        self.datapath.remove(vni).await
    }

    async fn restore_network(&self, _net: &NetworkSpec) -> Result<(), DriverError> {
        Ok(())
    }

    async fn join(
        &self,
        net: &NetworkSpec,
        ep: &EndpointSpec,
        target: JoinTarget<'_>,
    ) -> Result<(), DriverError> {
        let segment = self.enter(net, &ep.id).await?;
        match target {
            JoinTarget::Sandbox(sandbox) => self.join_sandbox(&segment, net, ep, sandbox).await,
            JoinTarget::Runtime => {
                let own = netctl_kernel::netns::own().map_err(DriverError::Kernel)?;
                use std::os::fd::AsRawFd;
                self.add_veth(&segment, net, ep, &runtime_end(&ep.id), own.as_raw_fd())
                    .await
                    .map(|_| ())
            }
        }
    }

    fn runtime_interface(&self, ep: &EndpointSpec) -> Option<String> {
        Some(runtime_end(&ep.id))
    }

    async fn leave(&self, net: &NetworkSpec, ep: &EndpointSpec) -> Result<(), DriverError> {
        let vni = vni_of(net)?;
        let mut errors = Vec::new();
        if let Some(segment) = self.datapath.open(vni).await? {
            if let Err(e) = segment
                .netlink()
                .delete_link_by_name(&host_end(&ep.id))
                .await
            {
                errors.push(e.into());
            }
        }
        // A runtime's end left in the daemon's namespace goes with its pair.
        if let Err(e) = self.exit(vni, &ep.id).await {
            errors.push(e);
        }
        DriverError::collect(errors)
    }

    /// Removes the segments of networks this node has no endpoint on any more.
    async fn collect_garbage(&self, wanted: &Wanted) -> Result<(), DriverError> {
        let ids: HashSet<&str> = wanted
            .endpoints
            .iter()
            .filter(|(_, kind)| matches!(kind, JoinKind::Sandbox | JoinKind::Runtime))
            .map(|(ep, _)| ep.id.as_str())
            .collect();
        let mut in_use: HashSet<u32> = HashSet::new();
        for net in &wanted.networks {
            if let Ok(vni) = vni_of(net) {
                let segments = self.segments.lock().await;
                let local = segments.get(&vni).map(|s| &s.local);
                if local.is_some_and(|l| l.iter().any(|id| ids.contains(id.as_str()))) {
                    in_use.insert(vni);
                }
            }
        }
        let mut errors = Vec::new();
        for vni in self.datapath.segments()? {
            if !in_use.contains(&vni) {
                tracing::info!(vni, "removing an overlay segment no endpoint here needs");
                metrics::counter!("netctl_reconcile_repairs_total", "what" => "overlay_segment")
                    .increment(1);
                self.segments.lock().await.entry(vni).and_modify(|s| {
                    s.ns = None;
                    s.local.clear();
                });
                if let Err(e) = self.datapath.remove(vni).await {
                    errors.push(e);
                }
            }
        }
        DriverError::collect(errors)
    }

    fn inspect_options(&self, net: &NetworkSpec) -> BTreeMap<String, String> {
        let vni = OverlayConfig::of(net).vni;
        BTreeMap::from([(
            "com.docker.network.driver.overlay.vxlanid_list".to_string(),
            vni.to_string(),
        )])
    }

    fn device(&self, net: &NetworkSpec) -> Option<String> {
        let vni = vni_of(net).ok()?;
        Some(format!(
            "{}:{BRIDGE}",
            self.datapath.namespace_path(vni).display()
        ))
    }
}

#[async_trait]
impl ClusterDriver for OverlayDriver {
    fn vni(&self, config: &serde_json::Value) -> u32 {
        OverlayConfig::from_value(config).vni
    }

    fn with_vni(&self, _config: &serde_json::Value, vni: u32) -> serde_json::Value {
        serde_json::to_value(OverlayConfig { vni }).unwrap_or_default()
    }

    fn set_underlay(&self, underlay: Option<Underlay>) {
        *self.underlay.write() = underlay;
    }

    async fn add_remote(
        &self,
        vni: u32,
        endpoint: &str,
        remote: Remote,
    ) -> Result<(), DriverError> {
        let mut segments = self.segments.lock().await;
        let segment = segments.entry(vni).or_default();
        let old = segment.remotes.insert(endpoint.to_string(), remote.clone());
        let Some(ns) = segment.ns.clone() else {
            return Ok(());
        };
        if let Some(old) = old.filter(|o| *o != remote) {
            self.withdraw(&ns, segment, &old).await?;
        }
        self.datapath.add_remote(&ns, &remote).await?;
        self.datapath.add_flood(&ns, remote.vtep).await
    }

    async fn remove_remote(&self, vni: u32, endpoint: &str) -> Result<(), DriverError> {
        let mut segments = self.segments.lock().await;
        let Some(segment) = segments.get_mut(&vni) else {
            return Ok(());
        };
        let Some(remote) = segment.remotes.remove(endpoint) else {
            return Ok(());
        };
        match segment.ns.clone() {
            Some(ns) => self.withdraw(&ns, segment, &remote).await,
            None => Ok(()),
        }
    }

    async fn prune(&self) -> Result<(), DriverError> {
        let segments = self.segments.lock().await;
        let mut errors = Vec::new();
        for segment in segments.values() {
            if let Some(ns) = &segment.ns {
                let remotes: Vec<Remote> = segment.remotes.values().cloned().collect();
                if let Err(e) = self.datapath.prune(ns, &remotes).await {
                    errors.push(e);
                }
            }
        }
        DriverError::collect(errors)
    }
}
