//! Cluster-wide unique things — an overlay network's VNI, an address on a global network —
//! taken with one etcd transaction each (`Create`: the key must not exist), so nodes taking
//! them at the same moment never get the same one. A node that loses a race tries the next
//! free one.
//!
//! Keys: `global/vni/VNI` → the network's id; `global/address/NETWORK/ADDRESS` → its holder;
//! `global/network.name/NAME` and `global/subnet/CIDR` → the network's id.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnetwork::IpNetwork;
use netctl_store::{Batch, Key, Prefix, Scope, Store, StoreError};

/// Docker swarm's first automatically allocated VNI; lower ones are for `-o vxlan-id`.
pub const FIRST_AUTO_VNI: u32 = 4096;
/// VXLAN's 24 bits.
pub const MAX_VNI: u32 = (1 << 24) - 1;

/// How many times a claim goes on after losing races before it says so.
const RACES: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("{0} is in use")]
    Taken(String),
    #[error("{0}")]
    Invalid(String),
    #[error("no free {what} left in {range}")]
    Exhausted { what: &'static str, range: String },
    #[error("{what}: lost {RACES} races in a row to other nodes; try again")]
    Contended { what: &'static str },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub fn vni_key(vni: u32) -> Key {
    Key::new(Scope::Global, "vni", vni.to_string())
}

pub fn address_key(network: &str, address: IpAddr) -> Key {
    Key::new(Scope::Global, "address", format!("{network}/{address}"))
}

/// A global network's name, unique in the cluster.
pub fn network_name_key(name: &str) -> Key {
    Key::new(Scope::Global, "network.name", name)
}

/// The cluster's one ingress network.
pub fn ingress_key() -> Key {
    Key::new(Scope::Global, "network.ingress", "ingress")
}

/// A global network's subnet, unique in the cluster's address space.
pub fn subnet_key(subnet: IpNetwork) -> Key {
    Key::new(Scope::Global, "subnet", subnet.to_string())
}

/// Takes `requested` (refused when taken or out of range), or the lowest free VNI from
/// [`FIRST_AUTO_VNI`] up, for `network`.
pub async fn claim_vni(
    store: &dyn Store,
    network: &str,
    requested: Option<u32>,
) -> Result<u32, ClaimError> {
    if let Some(vni) = requested {
        if vni == 0 || vni > MAX_VNI {
            return Err(ClaimError::Invalid(format!(
                "vxlan-id {vni} is out of range (1-{MAX_VNI})"
            )));
        }
        return match create(store, vni_key(vni), network).await? {
            true => Ok(vni),
            false => Err(ClaimError::Taken(format!("vxlan-id {vni}"))),
        };
    }
    for _ in 0..RACES {
        let taken = taken_ids(store, "vni").await?;
        let free = (FIRST_AUTO_VNI..=MAX_VNI)
            .find(|v| !taken.contains(&v.to_string()))
            .ok_or(ClaimError::Exhausted {
                what: "VNI",
                range: format!("{FIRST_AUTO_VNI}-{MAX_VNI}"),
            })?;
        if create(store, vni_key(free), network).await? {
            return Ok(free);
        }
    }
    Err(ClaimError::Contended { what: "VNI" })
}

/// Gives a VNI back.
pub async fn release_vni(store: &dyn Store, vni: u32) -> Result<(), ClaimError> {
    store.apply(Batch::new().delete(vni_key(vni))).await?;
    Ok(())
}

/// An address on a global network, for `holder` (an endpoint's id): `requested`, or the
/// lowest free host address of `subnet` that is not in `reserved` (the gateway…).
pub async fn claim_address(
    store: &dyn Store,
    network: &str,
    subnet: IpNetwork,
    reserved: &[IpAddr],
    requested: Option<IpAddr>,
    holder: &str,
) -> Result<IpAddr, ClaimError> {
    if let Some(address) = requested {
        if !subnet.contains(address) || !is_host_address(subnet, address) {
            return Err(ClaimError::Invalid(format!(
                "address {address} is not a host address of {subnet}"
            )));
        }
        if reserved.contains(&address) {
            return Err(ClaimError::Taken(format!("address {address}")));
        }
        return match create(store, address_key(network, address), holder).await? {
            true => Ok(address),
            false => Err(ClaimError::Taken(format!("address {address}"))),
        };
    }
    for _ in 0..RACES {
        let prefix = format!("{network}/");
        let taken: BTreeSet<String> = taken_ids(store, "address")
            .await?
            .into_iter()
            .filter_map(|id| id.strip_prefix(&prefix).map(str::to_string))
            .collect();
        let free = subnet
            .iter()
            .filter(|a| is_host_address(subnet, *a) && !reserved.contains(a))
            .find(|a| !taken.contains(&a.to_string()))
            .ok_or(ClaimError::Exhausted {
                what: "address",
                range: subnet.to_string(),
            })?;
        if create(store, address_key(network, free), holder).await? {
            return Ok(free);
        }
    }
    Err(ClaimError::Contended { what: "address" })
}

/// Gives an address back.
pub async fn release_address(
    store: &dyn Store,
    network: &str,
    address: IpAddr,
) -> Result<(), ClaimError> {
    store
        .apply(Batch::new().delete(address_key(network, address)))
        .await?;
    Ok(())
}

/// Neither the subnet's own address nor (IPv4) its broadcast.
fn is_host_address(subnet: IpNetwork, address: IpAddr) -> bool {
    match subnet {
        IpNetwork::V4(net) if net.prefix() < 31 => {
            address != IpAddr::V4(net.network()) && address != IpAddr::V4(net.broadcast())
        }
        IpNetwork::V6(net) if net.prefix() < 127 => address != IpAddr::V6(net.network()),
        _ => true,
    }
}

/// Whether the key was made here (false: somebody has it).
async fn create(store: &dyn Store, key: Key, value: &str) -> Result<bool, StoreError> {
    match store
        .apply(Batch::new().create(key, value.as_bytes().to_vec()))
        .await
    {
        Ok(_) => Ok(true),
        Err(StoreError::Exists(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

async fn taken_ids(store: &dyn Store, kind: &str) -> Result<BTreeSet<String>, StoreError> {
    let snapshot = store.load(&Prefix::kind(Scope::Global, kind)).await?;
    Ok(snapshot.entries.into_iter().map(|e| e.key.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_addresses_leave_out_the_network_and_broadcast() {
        let net: IpNetwork = "10.200.0.0/24".parse().unwrap();
        assert!(!is_host_address(net, "10.200.0.0".parse().unwrap()));
        assert!(!is_host_address(net, "10.200.0.255".parse().unwrap()));
        assert!(is_host_address(net, "10.200.0.1".parse().unwrap()));
        let p2p: IpNetwork = "10.0.0.0/31".parse().unwrap();
        assert!(is_host_address(p2p, "10.0.0.0".parse().unwrap()));
    }
}
