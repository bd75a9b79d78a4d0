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
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut query = RouteMessage::default();
            query.header.address_family = family;
            let routes = self
                .dump(RouteNetlinkMessage::GetRoute(query), "list routes")
                .await?;
            out.extend(routes.into_iter().filter_map(|m| match m {
                RouteNetlinkMessage::NewRoute(route) => destination(route),
                _ => None,
            }));
        }
        Ok(out)
    }
}

impl Netlink {
    /// `ip [-6] route show default`: whether the main table has a default route.
    pub async fn has_default_route(&self, v6: bool) -> Result<bool, KernelError> {
        let mut query = RouteMessage::default();
        query.header.address_family = if v6 {
            AddressFamily::Inet6
        } else {
            AddressFamily::Inet
        };
        let routes = self
            .dump(RouteNetlinkMessage::GetRoute(query), "list routes")
            .await?;
        Ok(routes.into_iter().any(|m| match m {
            RouteNetlinkMessage::NewRoute(route) => {
                route.header.destination_prefix_length == 0 && route.header.table == 254
                // main
            }
            _ => false,
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
