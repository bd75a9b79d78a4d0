//! A DHCPv4 lease, as an ACK gives it.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use dhcproto::v4::{DhcpOption, Message, OptionCode};

use crate::Lifetimes;

/// What the server leased: the address and the settings that come with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv4Addr,
    /// From the subnet mask (option 1); 24 when the server sends none.
    pub prefix: u8,
    /// The server identifier (option 54): where renewals and the release go.
    pub server: Ipv4Addr,
    pub routers: Vec<Ipv4Addr>,
    pub dns_servers: Vec<Ipv4Addr>,
    pub search: Vec<String>,
    pub mtu: Option<u16>,
    /// The lease time, and T1 and T2 from the ACK or RFC 2131's defaults (1/2 and 7/8).
    pub times: Lifetimes,
}

impl Lease {
    /// The lease an ACK carries; `None` without an address, a server id or a lease time.
    pub fn from_ack(ack: &Message, now: Instant) -> Option<Self> {
        let opts = ack.opts();
        let server = match opts.get(OptionCode::ServerIdentifier) {
            Some(DhcpOption::ServerIdentifier(ip)) => *ip,
            _ => return None,
        };
        let lease_time = match opts.get(OptionCode::AddressLeaseTime) {
            Some(DhcpOption::AddressLeaseTime(secs)) => Duration::from_secs(u64::from(*secs)),
            _ => return None,
        };
        let seconds = |code| match opts.get(code) {
            Some(DhcpOption::Renewal(s)) | Some(DhcpOption::Rebinding(s)) => {
                Some(Duration::from_secs(u64::from(*s)))
            }
            _ => None,
        };
        let prefix = match opts.get(OptionCode::SubnetMask) {
            Some(DhcpOption::SubnetMask(mask)) => u32::from(*mask).count_ones() as u8,
            _ => 24,
        };
        let ips = |code| match opts.get(code) {
            Some(DhcpOption::Router(ips)) | Some(DhcpOption::DomainNameServer(ips)) => ips.clone(),
            _ => Vec::new(),
        };
        let search = match opts.get(OptionCode::DomainSearch) {
            Some(DhcpOption::DomainSearch(names)) => names
                .iter()
                .map(|n| n.to_utf8().trim_end_matches('.').to_string())
                .collect(),
            _ => Vec::new(),
        };
        let mtu = match opts.get(OptionCode::InterfaceMtu) {
            Some(DhcpOption::InterfaceMtu(mtu)) => Some(*mtu),
            _ => None,
        };
        let address = ack.yiaddr();
        if address.is_unspecified() {
            return None;
        }
        Some(Self {
            address,
            prefix,
            server,
            routers: ips(OptionCode::Router),
            dns_servers: ips(OptionCode::DomainNameServer),
            search,
            mtu,
            times: Lifetimes {
                acquired: now,
                renew_after: seconds(OptionCode::Renewal).unwrap_or(lease_time / 2),
                rebind_after: seconds(OptionCode::Rebinding).unwrap_or(lease_time * 7 / 8),
                valid: lease_time,
            },
        })
    }
}
