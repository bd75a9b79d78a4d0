//! A DHCPv6 lease: the IA_NA's address, its lifetimes and times, and the server's DNS.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use dhcproto::v6::{DhcpOption, Message, OptionCode, Status, IANA};

use crate::Lifetimes;

/// What the server leased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub address: Ipv6Addr,
    /// The server's DUID (Server Identifier): renewals and the release name it.
    pub server_id: Vec<u8>,
    pub dns_servers: Vec<Ipv6Addr>,
    pub search: Vec<String>,
    pub preferred: Duration,
    /// The valid lifetime, and T1 and T2.
    pub times: Lifetimes,
}

/// Why a reply carries no lease: the server's status, and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: Status,
    pub message: String,
}

impl Lease {
    /// The lease a Reply (or an Advertise) carries for IA `iaid`.
    pub fn from_reply(msg: &Message, iaid: u32, now: Instant) -> Result<Self, Refusal> {
        let opts = msg.opts();
        if let Some(refusal) = refusal(opts.get(OptionCode::StatusCode)) {
            return Err(refusal);
        }
        let server_id = match opts.get(OptionCode::ServerId) {
            Some(DhcpOption::ServerId(id)) => id.clone(),
            _ => return Err(unspecified("no server identifier")),
        };
        let ia = opts
            .get_all(OptionCode::IANA)
            .unwrap_or_default()
            .iter()
            .find_map(|o| match o {
                DhcpOption::IANA(ia) if ia.id == iaid => Some(ia),
                _ => None,
            })
            .ok_or_else(|| unspecified("no IA_NA for this client"))?;
        if let Some(refusal) = refusal(ia.opts.get(OptionCode::StatusCode)) {
            return Err(refusal);
        }
        let addr = match ia.opts.get(OptionCode::IAAddr) {
            Some(DhcpOption::IAAddr(addr)) => addr,
            _ => return Err(unspecified("no address in the IA_NA")),
        };
        let preferred = Duration::from_secs(u64::from(addr.preferred_life));
        let valid = Duration::from_secs(u64::from(addr.valid_life));
        let (renew_after, rebind_after) = times(ia, preferred);
        let dns_servers = match opts.get(OptionCode::DomainNameServers) {
            Some(DhcpOption::DomainNameServers(ips)) => ips.clone(),
            _ => Vec::new(),
        };
        let search = match opts.get(OptionCode::DomainSearchList) {
            Some(DhcpOption::DomainSearchList(names)) => names
                .iter()
                .map(|n| n.to_utf8().trim_end_matches('.').to_string())
                .collect(),
            _ => Vec::new(),
        };
        Ok(Self {
            address: addr.addr,
            server_id,
            dns_servers,
            search,
            preferred,
            times: Lifetimes {
                acquired: now,
                renew_after,
                rebind_after,
                valid,
            },
        })
    }
}

/// T1 and T2 as the IA gives them; 0 leaves them to the client (RFC 8415 21.4: 0.5 and 0.8
/// of the preferred lifetime).
fn times(ia: &IANA, preferred: Duration) -> (Duration, Duration) {
    let given = |secs: u32, share: f64| match secs {
        0 => preferred.mul_f64(share),
        s => Duration::from_secs(u64::from(s)),
    };
    (given(ia.t1, 0.5), given(ia.t2, 0.8))
}

fn refusal(status: Option<&DhcpOption>) -> Option<Refusal> {
    match status {
        Some(DhcpOption::StatusCode(code)) if code.status != Status::Success => Some(Refusal {
            status: code.status,
            message: code.msg.clone(),
        }),
        _ => None,
    }
}

fn unspecified(why: &str) -> Refusal {
    Refusal {
        status: Status::UnspecFail,
        message: why.to_string(),
    }
}
