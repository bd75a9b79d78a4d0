//! Routes.

use std::net::IpAddr;

use ipnetwork::IpNetwork;
use rtnetlink::packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::RouteMessageBuilder;

use super::{Netlink, Request};
use crate::KernelError;

impl Request {
    /// `ip route replace default via GATEWAY dev INDEX metric METRIC` — idempotent.
    pub fn replace_default_route(gateway: IpAddr, index: u32, metric: u32) -> Self {
        let msg = match gateway {
            IpAddr::V4(gw) => RouteMessageBuilder::<std::net::Ipv4Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .priority(metric)
                .build(),
            IpAddr::V6(gw) => RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                .gateway(gw)
                .output_interface(index)
                .priority(metric)
                .build(),
        };
        Request::change(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            format!("add default route via {gateway}"),
        )
    }
}

impl Netlink {
    /// See [`Request::replace_default_route`].
    pub async fn replace_default_route(
        &self,
        gateway: IpAddr,
        index: u32,
        metric: u32,
    ) -> Result<(), KernelError> {
        self.run(Request::replace_default_route(gateway, index, metric))
            .await
            .map(drop)
    }

    /// `ip route show table main; ip -6 route show table main`: destination prefixes.
    pub async fn route_destinations(&self) -> Result<Vec<IpNetwork>, KernelError> {
        let routes = self
            .routes(&[AddressFamily::Inet, AddressFamily::Inet6])
            .await?;
        Ok(routes.into_iter().filter_map(destination).collect())
    }

    /// Every route of `families`, as the kernel lists them (all tables).
    async fn routes(&self, families: &[AddressFamily]) -> Result<Vec<RouteMessage>, KernelError> {
        let mut out = Vec::new();
        for family in families {
            let mut query = RouteMessage::default();
            query.header.address_family = *family;
            let routes = self
                .dump(RouteNetlinkMessage::GetRoute(query), "list routes")
                .await?;
            out.extend(routes.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(route) => Some(route),
                _ => None,
            }));
        }
        Ok(out)
    }
}

impl Netlink {
    /// `ip [-6] route show default`: whether the main table has a default route.
    pub async fn has_default_route(&self, v6: bool) -> Result<bool, KernelError> {
        let family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let routes = self.routes(&[family]).await?;
        Ok(routes.iter().any(|route| {
            route.header.destination_prefix_length == 0 && route.header.table == MAIN_TABLE
        }))
    }
}

fn destination(route: RouteMessage) -> Option<IpNetwork> {
    let prefix = route.header.destination_prefix_length;
    route.attributes.into_iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(ip)) => {
            IpNetwork::new(ip.into(), prefix).ok()
        }
        RouteAttribute::Destination(RouteAddress::Inet6(ip)) => {
            IpNetwork::new(ip.into(), prefix).ok()
        }
        _ => None,
    })
}

/// A route of the main table as the kernel holds it, to be moved to another link as it is.
#[derive(Debug, Clone)]
pub struct RouteEntry(RouteMessage);

impl RouteEntry {
    pub fn destination(&self) -> Option<IpNetwork> {
        destination(self.0.clone()).or_else(|| {
            let v6 = self.0.header.address_family == AddressFamily::Inet6;
            let any: std::net::IpAddr = if v6 {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            };
            (self.0.header.destination_prefix_length == 0)
                .then(|| IpNetwork::new(any, 0).ok())
                .flatten()
        })
    }

    fn output_interface(&self) -> Option<u32> {
        self.0.attributes.iter().find_map(|a| match a {
            RouteAttribute::Oif(index) => Some(*index),
            _ => None,
        })
    }

    /// Made by someone (the administrator, a DHCP client, boot scripts), not by the kernel
    /// for an address or from a router advertisement: those follow their address or router.
    fn is_configured(&self) -> bool {
        use rtnetlink::packet_route::route::RouteProtocol;
        self.0.header.table == MAIN_TABLE
            && !matches!(
                self.0.header.protocol,
                RouteProtocol::Kernel | RouteProtocol::Ra
            )
            && !self.destination().is_some_and(|d| match d.ip() {
                std::net::IpAddr::V6(ip) => ip.segments()[0] & 0xffc0 == 0xfe80,
                std::net::IpAddr::V4(_) => false,
            })
    }
}

/// The main routing table's id.
const MAIN_TABLE: u8 = 254;

impl Request {
    /// `ip route add … dev INDEX`: the entry, leading out of another link.
    pub fn add_route_entry(entry: &RouteEntry, index: u32) -> Self {
        let mut msg = entry.0.clone();
        for attribute in &mut msg.attributes {
            if let RouteAttribute::Oif(oif) = attribute {
                *oif = index;
            }
        }
        let what = format!("add route {:?} via {index}", entry.destination());
        Request::change(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
            what,
        )
    }

    /// `ip route del …` for an entry as listed.
    pub fn delete_route_entry(entry: &RouteEntry) -> Self {
        let what = format!("delete route {:?}", entry.destination());
        Request::change(RouteNetlinkMessage::DelRoute(entry.0.clone()), 0, what)
    }
}

impl Netlink {
    /// `ip route show dev INDEX; ip -6 route show dev INDEX`, leaving out the routes the
    /// kernel made (for the link's addresses, from router advertisements).
    pub async fn configured_routes_of(&self, index: u32) -> Result<Vec<RouteEntry>, KernelError> {
        let routes = self
            .routes(&[AddressFamily::Inet, AddressFamily::Inet6])
            .await?;
        Ok(routes
            .into_iter()
            .map(RouteEntry)
            .filter(|r| r.output_interface() == Some(index) && r.is_configured())
            .collect())
    }
}
