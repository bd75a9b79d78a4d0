//! Leases as the store keeps them ([`LeaseRecord`]) and as the clients hold them.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

use ipnetwork::IpNetwork;
use netctl_ipam::dhcp::{v4, v6, StoredLifetimes};

use super::Lease;
use crate::model::LeaseRecord;

/// The record of a lease granted on the monotonic clock.
pub(crate) fn lease_record(lease: &Lease) -> LeaseRecord {
    let now = (Instant::now(), SystemTime::now());
    let (times, mut record) = match lease {
        Lease::V4(l) => (
            l.times,
            LeaseRecord {
                address: IpNetwork::new(l.address.into(), l.prefix).expect("a mask's prefix"),
                server: l.server.to_string(),
                routers: l.routers.iter().map(|&r| IpAddr::V4(r)).collect(),
                dns_servers: l.dns_servers.iter().map(|&r| IpAddr::V4(r)).collect(),
                search: l.search.clone(),
                mtu: l.mtu,
                acquired_ms: 0,
                renew_after_s: 0,
                rebind_after_s: 0,
                valid_s: 0,
                preferred_s: None,
            },
        ),
        Lease::V6(l) => (
            l.times,
            LeaseRecord {
                address: IpNetwork::new(l.address.into(), 128).expect("a host prefix"),
                server: hex(&l.server_id),
                routers: Vec::new(),
                dns_servers: l.dns_servers.iter().map(|&r| IpAddr::V6(r)).collect(),
                search: l.search.clone(),
                mtu: None,
                acquired_ms: 0,
                renew_after_s: 0,
                rebind_after_s: 0,
                valid_s: 0,
                preferred_s: Some(l.preferred.as_secs()),
            },
        ),
    };
    let clock = StoredLifetimes::store(&times, now);
    record.acquired_ms = clock.acquired_ms;
    record.renew_after_s = clock.renew_after.as_secs();
    record.rebind_after_s = clock.rebind_after.as_secs();
    record.valid_s = clock.valid.as_secs();
    record
}

/// The lease a record remembers, on the monotonic clock again; `None` for a record that
/// does not make sense (a server that is no address, say).
pub(crate) fn lease_from_record(record: &LeaseRecord) -> Option<Lease> {
    let clock = StoredLifetimes {
        acquired_ms: record.acquired_ms,
        renew_after: Duration::from_secs(record.renew_after_s),
        rebind_after: Duration::from_secs(record.rebind_after_s),
        valid: Duration::from_secs(record.valid_s),
    };
    let times = clock.load((Instant::now(), SystemTime::now()));
    match record.address.ip() {
        IpAddr::V4(address) => Some(Lease::V4(v4::Lease {
            address,
            prefix: record.address.prefix(),
            server: record.server.parse().ok()?,
            routers: v4_only(&record.routers),
            dns_servers: v4_only(&record.dns_servers),
            search: record.search.clone(),
            mtu: record.mtu,
            times,
        })),
        IpAddr::V6(address) => Some(Lease::V6(v6::Lease {
            address,
            server_id: unhex(&record.server)?,
            dns_servers: v6_only(&record.dns_servers),
            search: record.search.clone(),
            preferred: Duration::from_secs(record.preferred_s.unwrap_or(record.valid_s)),
            times,
        })),
    }
}

fn v4_only(ips: &[IpAddr]) -> Vec<Ipv4Addr> {
    ips.iter()
        .filter_map(|ip| match ip {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect()
}

fn v6_only(ips: &[IpAddr]) -> Vec<Ipv6Addr> {
    ips.iter()
        .filter_map(|ip| match ip {
            IpAddr::V6(v6) => Some(*v6),
            IpAddr::V4(_) => None,
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_round_trip_through_their_records() {
        let s = Duration::from_secs;
        let times = netctl_ipam::dhcp::Lifetimes {
            acquired: Instant::now(),
            renew_after: s(60),
            rebind_after: s(105),
            valid: s(120),
        };
        let v4 = Lease::V4(v4::Lease {
            address: "192.0.2.100".parse().unwrap(),
            prefix: 24,
            server: "192.0.2.1".parse().unwrap(),
            routers: vec!["192.0.2.1".parse().unwrap()],
            dns_servers: vec!["192.0.2.53".parse().unwrap()],
            search: vec!["lan.example".into()],
            mtu: Some(1400),
            times,
        });
        let record = lease_record(&v4);
        assert_eq!(record.address.to_string(), "192.0.2.100/24");
        let Some(Lease::V4(back)) = lease_from_record(&record) else {
            panic!("a v4 lease");
        };
        let Lease::V4(original) = &v4 else {
            unreachable!()
        };
        assert_eq!(back.address, original.address);
        assert_eq!(back.routers, original.routers);
        assert_eq!(back.times.valid, s(120));
        let v6 = Lease::V6(v6::Lease {
            address: "2001:db8::100".parse().unwrap(),
            server_id: vec![0, 1, 2, 0xab],
            dns_servers: vec!["2001:db8::53".parse().unwrap()],
            search: Vec::new(),
            preferred: s(90),
            times,
        });
        let record = lease_record(&v6);
        assert_eq!(record.server, "000102ab");
        assert_eq!(
            lease_from_record(&record).map(|l| matches!(l, Lease::V6(_))),
            Some(true)
        );
    }
}
