//! A service balancer's datapath in its sandbox: the virtual IPs on its interface,
//! forwarding, its nft table ([`crate::firewall::balancer`]), and the UDP flows to replicas
//! that left forgotten. The daemon says what each balancer should be; this makes it so.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnetwork::IpNetwork;
use netctl_kernel::conntrack::UdpFlows;
use netctl_kernel::netlink::Request;

use crate::firewall::balancer::{apply_here, Balancing};
use crate::DriverError;

/// One balancer sandbox as it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balancer {
    pub netns: PathBuf,
    /// Its interface on the network whose virtual IPs it holds.
    pub ifname: String,
    pub balancing: Balancing,
}

/// Sets a balancer's virtual IPs, forwarding and table (`ip -n SBX addr add VIP/32 dev IF;
/// ip netns exec SBX sysctl net.ipv4.ip_forward=1; ip netns exec SBX nft -f -`); returns the
/// UDP flows to forget, those to replicas that left.
pub async fn apply(
    before: Option<&Balancer>,
    after: &Balancer,
) -> Result<Vec<UdpFlows>, DriverError> {
    let held_before: Vec<Ipv4Addr> = before
        .map(|b| b.balancing.vips.iter().map(|v| v.vip).collect())
        .unwrap_or_default();
    let held_after: Vec<Ipv4Addr> = after.balancing.vips.iter().map(|v| v.vip).collect();
    if before.is_none() || held_before != held_after {
        hold_virtual_ips(after, &held_after).await?;
    }
    let first = before.is_none();
    let known = before.map(|b| b.balancing.clone());
    let balancing = after.balancing.clone();
    netctl_kernel::netns::run_in(&after.netns, move || {
        if first {
            forward_here()?;
        }
        apply_here(known.as_ref(), &balancing)
            .map_err(|e| netctl_kernel::KernelError::Nft(e.to_string()))
    })
    .await?;
    Ok(before.map_or_else(Vec::new, |b| {
        flows_to_forget(&b.balancing, &after.balancing)
    }))
}

/// `ip netns exec SBX conntrack -D …` for each of `flows`, in the background: a table that
/// has just changed sends no new flow to a replica that left, and nothing waits on this.
pub fn forget_flows(netns: PathBuf, flows: Vec<UdpFlows>) {
    if flows.is_empty() {
        return;
    }
    tokio::spawn(async move {
        let forgotten = netctl_kernel::netns::run_in(&netns, move || {
            for flows in flows {
                netctl_kernel::conntrack::forget_udp_here(flows);
            }
            Ok(())
        })
        .await;
        if let Err(e) = forgotten {
            tracing::warn!(error = %e, "cannot forget UDP flows to replicas that left");
        }
    });
}

/// A balancer routes what it DNATs back out of the interface it came in on: forwarding on,
/// and no redirects telling clients to go to the replica themselves.
fn forward_here() -> Result<(), netctl_kernel::KernelError> {
    netctl_kernel::sysctl::ensure("net.ipv4.ip_forward", "1")?;
    netctl_kernel::sysctl::ensure("net.ipv4.conf.all.send_redirects", "0")?;
    netctl_kernel::sysctl::ensure("net.ipv4.conf.default.send_redirects", "0")
}

/// The virtual IPs as /32 addresses on the balancer's interface (so that it answers ARP for
/// them on the network), and no other /32.
async fn hold_virtual_ips(
    balancer: &Balancer,
    vips: &[Ipv4Addr],
) -> Result<(), netctl_kernel::KernelError> {
    let ns = netctl_kernel::Netns::open(&balancer.netns).await?;
    let netlink = ns.netlink();
    let Some(link) = netlink.link_by_name(&balancer.ifname).await? else {
        return Ok(());
    };
    let wanted: Vec<IpNetwork> = vips
        .iter()
        .map(|ip| IpNetwork::new(IpAddr::V4(*ip), 32).expect("32 is a valid IPv4 prefix length"))
        .collect();
    let mut requests: Vec<Request> = netlink
        .addresses_of(link.index)
        .await?
        .into_iter()
        .filter(|a| a.is_ipv4() && a.prefix() == 32 && !wanted.contains(a))
        .map(|a| Request::delete_address(link.index, a))
        .collect();
    requests.extend(
        wanted
            .iter()
            .map(|a| Request::replace_address(link.index, *a)),
    );
    netlink.run_all(requests).await
}

/// Past this many replicas leaving one virtual IP or port at once, its UDP flows are
/// forgotten wholesale (one `conntrack` run instead of one per replica; flows to the
/// replicas that stay are balanced again).
const FORGET_ONE_BY_ONE: usize = 4;

/// The UDP flows to forget when a balancer goes from `before` to `after`: those to replicas
/// that left a virtual IP or port, or all of a virtual IP's or port's when it went or many
/// left.
fn flows_to_forget(before: &Balancing, after: &Balancing) -> Vec<UdpFlows> {
    let mut flows = Vec::new();
    let mut forget = |old: &[Ipv4Addr], now: Option<&[Ipv4Addr]>, all: UdpFlows| {
        let staying: HashSet<&Ipv4Addr> = now.into_iter().flatten().collect();
        let left: Vec<Ipv4Addr> = old
            .iter()
            .filter(|r| !staying.contains(r))
            .copied()
            .collect();
        if now.is_none() || left.len() > FORGET_ONE_BY_ONE {
            if !left.is_empty() || now.is_none() {
                flows.push(all);
            }
        } else {
            flows.extend(left.into_iter().map(|r| UdpFlows::To(IpAddr::V4(r))));
        }
    };
    for old in &before.vips {
        let now = after.vips.iter().find(|v| v.vip == old.vip);
        forget(
            &old.replicas,
            now.map(|v| v.replicas.as_slice()),
            UdpFlows::AddressedTo(IpAddr::V4(old.vip)),
        );
    }
    for old in before.ports.iter().filter(|p| p.proto == "udp") {
        let now = after
            .ports
            .iter()
            .find(|p| p.proto == old.proto && p.published == old.published);
        forget(
            &old.replicas,
            now.map(|p| p.replicas.as_slice()),
            UdpFlows::ToPort(old.published),
        );
    }
    flows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::firewall::balancer::tests::{vip, vips};
    use crate::firewall::balancer::MeshPort;

    #[test]
    fn flows_to_replicas_that_left_are_forgotten_or_all_of_a_vip_that_went() {
        let before = vips(&[
            vip("10.0.0.100", &["10.0.0.2", "10.0.0.3"]),
            vip("10.0.0.101", &["10.0.0.4"]),
        ]);
        let after = vips(&[vip("10.0.0.100", &["10.0.0.3", "10.0.0.5"])]);
        let ip = |a: &str| a.parse::<IpAddr>().unwrap();
        assert_eq!(
            flows_to_forget(&before, &after),
            [
                UdpFlows::To(ip("10.0.0.2")),
                UdpFlows::AddressedTo(ip("10.0.0.101"))
            ]
        );
        assert!(flows_to_forget(&after, &after).is_empty());
        let many: Vec<String> = (2..10).map(|i| format!("10.0.0.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let shrunk = vips(&[vip("10.0.0.100", &["10.0.0.2"])]);
        assert_eq!(
            flows_to_forget(&vips(&[vip("10.0.0.100", &many)]), &shrunk),
            [UdpFlows::AddressedTo(ip("10.0.0.100"))]
        );
    }

    #[test]
    fn flows_through_a_udp_port_follow_its_replicas() {
        let port = |replicas: &[&str]| Balancing {
            entry: Some("172.18.0.2".parse().unwrap()),
            ports: vec![MeshPort {
                proto: "udp",
                published: 5353,
                target: 53,
                replicas: replicas.iter().map(|r| r.parse().unwrap()).collect(),
            }],
            ..Default::default()
        };
        assert_eq!(
            flows_to_forget(&port(&["10.0.0.5", "10.0.0.6"]), &port(&["10.0.0.6"])),
            [UdpFlows::To("10.0.0.5".parse().unwrap())]
        );
        assert_eq!(
            flows_to_forget(&port(&["10.0.0.5"]), &Balancing::default()),
            [UdpFlows::ToPort(5353)]
        );
    }
}
