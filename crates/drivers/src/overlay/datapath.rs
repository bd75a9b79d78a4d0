//! The kernel objects of the overlay on one node: namespaces, bridges, VXLAN devices and
//! their FDB and neighbour entries.

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use ipnetwork::IpNetwork;
use netctl_kernel::netlink::{FdbEntry, Neighbour, VxlanSpec};
use netctl_kernel::{netns, Netlink, Netns};

use crate::DriverError;

/// The bridge in an overlay network's namespace.
pub const BRIDGE: &str = "br0";
/// The VXLAN device beside it.
pub const VXLAN: &str = "vx0";
/// IANA's VXLAN port, Docker's default.
pub const DEFAULT_VXLAN_PORT: u16 = 4789;
/// What VXLAN adds to a frame over IPv4: outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14.
pub const VXLAN_OVERHEAD: u32 = 50;

/// The MTU inside an overlay whose packets cross an underlay of `underlay_mtu`.
pub fn mtu_over(underlay_mtu: u32) -> u32 {
    underlay_mtu.saturating_sub(VXLAN_OVERHEAD)
}

/// One overlay network as one node builds it.
#[derive(Debug, Clone)]
pub struct Segment {
    pub vni: u32,
    pub mtu: u32,
    /// The gateway addresses with their subnets' prefixes, on the bridge of every node.
    pub gateways: Vec<IpNetwork>,
    /// This node's VTEP address (`--advertise-addr`).
    pub local: IpAddr,
    pub port: u16,
}

/// An endpoint on another node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    pub mac: [u8; 6],
    pub addresses: Vec<IpAddr>,
    /// Its node's VTEP.
    pub vtep: IpAddr,
}

/// The overlay networks' namespaces on this node, under one directory.
#[derive(Clone)]
pub struct DataPath {
    host: Netlink,
    dir: PathBuf,
}

impl DataPath {
    /// `host`: netlink in the daemon's namespace (the underlay's); `dir`: where the
    /// networks' namespaces are bind-mounted (`EXEC_ROOT/overlay`).
    pub fn new(host: Netlink, dir: PathBuf) -> Self {
        Self { host, dir }
    }

    /// `/run/…/overlay/ov-VNI`.
    pub fn namespace_path(&self, vni: u32) -> PathBuf {
        self.dir.join(format!("ov-{vni}"))
    }

    /// Makes (or finds, and completes) the segment's namespace, bridge and VXLAN device:
    /// `ip netns add ov-VNI; ip -n ov-VNI link add br0 mtu MTU type bridge;
    /// ip -n ov-VNI addr replace GATEWAY dev br0; ip link add vx0 netns ov-VNI type vxlan
    /// id VNI local LOCAL dstport PORT nolearning proxy mtu MTU; ip -n ov-VNI link set vx0
    /// master br0 up; ip -n ov-VNI link set br0 up`. Idempotent.
    pub async fn ensure(&self, segment: &Segment) -> Result<Netns, DriverError> {
        let path = self.namespace_path(segment.vni);
        let ns = open_or_create(&path).await?;
        let inside = ns.netlink();
        let bridge = match inside.link_by_name(BRIDGE).await? {
            Some(link) => link.index,
            None => {
                let mac = bridge_mac(segment.vni);
                inside.add_bridge(BRIDGE, mac, segment.mtu, false).await?
            }
        };
        for gateway in &segment.gateways {
            inside.replace_address(bridge, *gateway).await?;
        }
        let vxlan = match inside.link_by_name(VXLAN).await? {
            Some(link) => link.index,
            None => {
                let spec = VxlanSpec {
                    name: VXLAN,
                    vni: segment.vni,
                    local: segment.local,
                    port: segment.port,
                    underlay: None,
                    mtu: segment.mtu,
                };
                self.host.add_vxlan_into(&spec, &ns).await?
            }
        };
        inside.set_controller(vxlan, bridge).await?;
        inside.set_up(bridge).await?;
        Ok(ns)
    }

    /// The VNIs of the segments this node has (`ls DIR`).
    pub fn segments(&self) -> Result<Vec<u32>, DriverError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => {
                return Err(DriverError::Unsupported(format!(
                    "list {}: {source}",
                    self.dir.display()
                )))
            }
        };
        Ok(entries
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("ov-")?.parse().ok())
            .collect())
    }

    /// Opens the segment's namespace, if this node has it.
    pub async fn open(&self, vni: u32) -> Result<Option<Netns>, DriverError> {
        let path = self.namespace_path(vni);
        if !netns::exists(&path) {
            return Ok(None);
        }
        Ok(Some(Netns::open(&path).await?))
    }

    /// `ip netns del ov-VNI`: the bridge, the VXLAN device, its FDB and neighbour entries
    /// and the endpoints' host ends go with the namespace. Nothing there is not an error.
    pub async fn remove(&self, vni: u32) -> Result<(), DriverError> {
        let path = self.namespace_path(vni);
        if netns::exists(&path) {
            // The VXLAN device first, synchronously: a namespace is torn down by the kernel
            // later, and until then its device holds the VNI and port, so the segment could
            // not be made again at once.
            let ns = Netns::open(&path).await?;
            ns.netlink().delete_link_by_name(VXLAN).await?;
            drop(ns);
            netns::remove(&path)?;
        }
        Ok(())
    }

    /// `bridge fdb append MAC dev vx0 dst VTEP self permanent` and `ip neigh replace ADDRESS
    /// lladdr MAC dev vx0 nud permanent` for each address. Idempotent.
    pub async fn add_remote(&self, ns: &Netns, remote: &Remote) -> Result<(), DriverError> {
        let inside = ns.netlink();
        let vxlan = vxlan_index(inside).await?;
        let entry = FdbEntry {
            mac: remote.mac,
            remote: remote.vtep,
        };
        inside.append_fdb(vxlan, &entry).await?;
        for address in &remote.addresses {
            let neighbour = Neighbour {
                address: *address,
                mac: remote.mac,
            };
            inside.replace_neighbour(vxlan, &neighbour).await?;
        }
        Ok(())
    }

    /// Takes a remote endpoint's entries out; keeps going past failures and reports them all.
    pub async fn remove_remote(&self, ns: &Netns, remote: &Remote) -> Result<(), DriverError> {
        let inside = ns.netlink();
        let vxlan = vxlan_index(inside).await?;
        let mut errors = Vec::new();
        for address in &remote.addresses {
            if let Err(e) = inside.delete_neighbour(vxlan, *address).await {
                errors.push(e.into());
            }
        }
        let entry = FdbEntry {
            mac: remote.mac,
            remote: remote.vtep,
        };
        if let Err(e) = inside.delete_fdb(vxlan, &entry).await {
            errors.push(e.into());
        }
        DriverError::collect(errors)
    }

    /// `bridge fdb append 00:00:00:00:00:00 dev vx0 dst VTEP self permanent`: broadcast and
    /// multicast reach that node too. Idempotent.
    pub async fn add_flood(&self, ns: &Netns, vtep: IpAddr) -> Result<(), DriverError> {
        let inside = ns.netlink();
        let vxlan = vxlan_index(inside).await?;
        Ok(inside.append_fdb(vxlan, &flood(vtep)).await?)
    }

    /// `bridge fdb del 00:00:00:00:00:00 dev vx0 dst VTEP self`
    pub async fn remove_flood(&self, ns: &Netns, vtep: IpAddr) -> Result<(), DriverError> {
        let inside = ns.netlink();
        let vxlan = vxlan_index(inside).await?;
        Ok(inside.delete_fdb(vxlan, &flood(vtep)).await?)
    }
    /// Removes every FDB and permanent neighbour entry of the segment's VXLAN device that
    /// `remotes` does not account for (entries of endpoints that left while this node was
    /// not watching). Keeps going past failures and reports them all.
    pub async fn prune(&self, ns: &Netns, remotes: &[Remote]) -> Result<(), DriverError> {
        let inside = ns.netlink();
        let vxlan = vxlan_index(inside).await?;
        let mut wanted_fdb: HashSet<FdbEntry> = remotes
            .iter()
            .map(|r| FdbEntry {
                mac: r.mac,
                remote: r.vtep,
            })
            .collect();
        wanted_fdb.extend(remotes.iter().map(|r| flood(r.vtep)));
        let wanted_neighbours: HashSet<(IpAddr, [u8; 6])> = remotes
            .iter()
            .flat_map(|r| r.addresses.iter().map(|a| (*a, r.mac)))
            .collect();
        let mut errors = Vec::new();
        for entry in inside.fdb_entries(vxlan).await? {
            if !wanted_fdb.contains(&entry) {
                if let Err(e) = inside.delete_fdb(vxlan, &entry).await {
                    errors.push(e.into());
                }
            }
        }
        for neighbour in inside.permanent_neighbours(vxlan).await? {
            if !wanted_neighbours.contains(&(neighbour.address, neighbour.mac)) {
                if let Err(e) = inside.delete_neighbour(vxlan, neighbour.address).await {
                    errors.push(e.into());
                }
            }
        }
        DriverError::collect(errors)
    }
}

fn flood(vtep: IpAddr) -> FdbEntry {
    FdbEntry {
        mac: [0; 6],
        remote: vtep,
    }
}

async fn open_or_create(path: &Path) -> Result<Netns, DriverError> {
    if netns::exists(path) {
        return Ok(Netns::open(path).await?);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| {
            DriverError::Unsupported(format!("create {}: {source}", dir.display()))
        })?;
    }
    Ok(Netns::create_skipping_dad(path).await?)
}

async fn vxlan_index(inside: &Netlink) -> Result<u32, DriverError> {
    inside
        .link_by_name(VXLAN)
        .await?
        .map(|l| l.index)
        .ok_or_else(|| DriverError::Kernel(netctl_kernel::KernelError::LinkNotFound(VXLAN.into())))
}

/// The same on every node for one network (locally administered, from the VNI), so a
/// container's gateway MAC does not change if it moves.
fn bridge_mac(vni: u32) -> [u8; 6] {
    let v = vni.to_be_bytes();
    [0x02, 0x4e, 0x43, v[1], v[2], v[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_overlay_mtu_leaves_room_for_vxlan() {
        assert_eq!(mtu_over(1500), 1450);
        assert_eq!(mtu_over(1400), 1350);
        assert_eq!(mtu_over(9000), 8950);
    }

    #[test]
    fn a_networks_bridge_mac_is_unicast_local_and_its_own() {
        let mac = bridge_mac(4242);
        assert_eq!(mac[0] & 0x03, 0x02);
        assert_ne!(bridge_mac(4096), bridge_mac(4097));
    }
}
