//! `-o parent=eth1`: the bridge takes a host interface as a port, so its endpoints sit on
//! that interface's LAN. The interface's addresses and routes move to the bridge (a bridge
//! port's own addresses no longer receive: the bridge does), and move back when the network
//! goes. What moves is read from the kernel each time, so a restart in between loses
//! nothing: the bridge's global addresses that are not the network's gateways, and the
//! routes through it that someone configured.

use ipnetwork::IpNetwork;
use netctl_kernel::netlink::{AddressEntry, Link, Request, RouteEntry};
use netctl_kernel::Netlink;

use crate::DriverError;

/// The parent as found, checked: present, not loopback, not another bridge's port.
pub(super) async fn check(
    host: &Netlink,
    parent: &str,
    bridge: &str,
    bridge_index: Option<u32>,
) -> Result<Link, DriverError> {
    let link = host.link_by_name(parent).await?.ok_or_else(|| {
        DriverError::InvalidOption(format!("parent interface {parent} does not exist"))
    })?;
    if link.loopback {
        return Err(DriverError::InvalidOption(format!(
            "parent interface {parent} is the loopback device"
        )));
    }
    if link.kind.as_deref() == Some("bridge") {
        return Err(DriverError::InvalidOption(format!(
            "parent interface {parent} is a bridge; give the interface it bridges instead"
        )));
    }
    if let Some(controller) = link.controller.filter(|c| Some(*c) != bridge_index) {
        return Err(DriverError::InvalidOption(format!(
            "parent interface {parent} is already a port of another bridge (index \
             {controller}), not of {bridge}"
        )));
    }
    Ok(link)
}

/// `ip link set PARENT master BRIDGE up`, then each of the parent's addresses and routes
/// re-made on the bridge and removed from the parent. Idempotent: a parent already taken has
/// nothing left to move.
pub(super) async fn take_over(
    host: &Netlink,
    parent: &Link,
    bridge_index: u32,
) -> Result<(), DriverError> {
    let addresses = host.global_addresses_of(parent.index).await?;
    let routes = host.configured_routes_of(parent.index).await?;
    if parent.controller != Some(bridge_index) {
        host.set_controller(parent.index, bridge_index).await?;
    }
    move_config(host, &addresses, &routes, bridge_index, &[]).await?;
    if !addresses.is_empty() || !routes.is_empty() {
        tracing::info!(
            parent = %parent.name,
            addresses = ?addresses.iter().filter_map(AddressEntry::address).collect::<Vec<_>>(),
            routes = routes.len(),
            "the bridge took over its parent's addresses and routes"
        );
    }
    Ok(())
}

/// The reverse of [`take_over`]: the bridge's addresses other than `gateways`, and its
/// configured routes, back on the parent, and the parent out of the bridge. Keeps going
/// past failures and reports all of them.
pub(super) async fn give_back(
    host: &Netlink,
    parent: &str,
    bridge: &str,
    gateways: &[IpNetwork],
) -> Result<(), DriverError> {
    let (Some(parent), Some(bridge)) = (
        host.link_by_name(parent).await?,
        host.link_by_name(bridge).await?,
    ) else {
        return Ok(());
    };
    if parent.controller != Some(bridge.index) {
        return Ok(());
    }
    let addresses = host.global_addresses_of(bridge.index).await?;
    let routes = host.configured_routes_of(bridge.index).await?;
    let moved = move_config(host, &addresses, &routes, parent.index, gateways).await;
    let released = host
        .release_from_controller(parent.index)
        .await
        .map_err(DriverError::from);
    DriverError::collect(
        [moved.err(), released.err()]
            .into_iter()
            .flatten()
            .collect(),
    )
}

/// Addresses first (a route's gateway must be reachable), then routes; the copies made
/// before the originals go, so the host is never without them.
async fn move_config(
    host: &Netlink,
    addresses: &[AddressEntry],
    routes: &[RouteEntry],
    to: u32,
    except: &[IpNetwork],
) -> Result<(), DriverError> {
    let addresses: Vec<&AddressEntry> = addresses
        .iter()
        .filter(|a| !a.address().is_some_and(|a| except.contains(&a)))
        .collect();
    let mut add: Vec<Request> = addresses
        .iter()
        .map(|a| Request::add_address_entry(a, to))
        .collect();
    add.extend(routes.iter().map(|r| Request::add_route_entry(r, to)));
    host.run_all(add).await?;
    let mut errors = Vec::new();
    // One by one: a route the kernel dropped with its address is no error.
    for request in routes
        .iter()
        .map(Request::delete_route_entry)
        .chain(addresses.iter().map(|a| Request::delete_address_entry(a)))
    {
        if let Err(e) = host.run(request).await {
            if !e.not_found() {
                errors.push(e.into());
            }
        }
    }
    DriverError::collect(errors)
}
