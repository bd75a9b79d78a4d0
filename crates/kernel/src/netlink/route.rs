//! Routes.

use std::net::IpAddr;

use futures::TryStreamExt;
use ipnetwork::IpNetwork;
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::RouteMessageBuilder;

use super::Netlink;
use crate::KernelError;

impl Netlink {
    /// `ip route replace default via GATEWAY dev INDEX metric METRIC` — idempotent.
    pub async fn replace_default_route(
        &self,
        gateway: IpAddr,
        index: u32,
        metric: u32,
    ) -> Result<(), KernelError> {
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
        self.handle
            .route()
            .add(msg)
            .replace()
            .execute()
            .await
            .map_err(KernelError::netlink(format!(
                "add default route via {gateway}"
            )))
    }

    /// `ip route show table main; ip -6 route show table main`: destination prefixes.
    pub async fn route_destinations(&self) -> Result<Vec<IpNetwork>, KernelError> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut query = RouteMessage::default();
            query.header.address_family = family;
            let routes: Vec<RouteMessage> = self
                .handle
                .route()
                .get(query)
                .execute()
                .try_collect()
                .await
                .map_err(KernelError::netlink("list routes"))?;
            out.extend(routes.into_iter().filter_map(destination));
        }
        Ok(out)
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
