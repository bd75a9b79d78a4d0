//! Addresses leased from a LAN's DHCP server: who an endpoint is to the server (the same
//! after every restart, so the server hands back the same lease and never a second one),
//! and the lease clocks carried across a restart. The clients themselves are
//! `netctl-dhcp`'s state machines, re-exported here for the daemon, which does their I/O.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use netctl_dhcp::{v4, v6, Lifetimes};

/// An endpoint's DUID: DUID-UUID (RFC 6355, type 4) from the first 16 bytes of its id. It
/// needs no MAC or clock, and the id never changes.
pub fn duid(endpoint_id: &str) -> Vec<u8> {
    let mut duid = vec![0x00, 0x04];
    duid.extend(id_bytes(endpoint_id, 0, 16));
    duid
}

/// The endpoint's IAID: bytes 16 to 19 of its id.
pub fn iaid(endpoint_id: &str) -> u32 {
    let bytes = id_bytes(endpoint_id, 16, 4);
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// DHCPv4's client identifier as RFC 4361 makes it: type 255, the IAID, the DUID. The same
/// identity for both families, so a dual-stack server can tie the two leases together.
pub fn client_id(endpoint_id: &str) -> Vec<u8> {
    let mut id = vec![0xff];
    id.extend(iaid(endpoint_id).to_be_bytes());
    id.extend(duid(endpoint_id));
    id
}

/// `count` bytes of a hex id from byte `from`; missing or non-hex digits count as zero.
fn id_bytes(id: &str, from: usize, count: usize) -> Vec<u8> {
    (from..from + count)
        .map(|i| {
            id.get(2 * i..2 * i + 2)
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .unwrap_or(0)
        })
        .collect()
}

/// A lease's clock as it can be stored: the wall time it was granted, and its durations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredLifetimes {
    /// Milliseconds since the Unix epoch.
    pub acquired_ms: u64,
    pub renew_after: Duration,
    pub rebind_after: Duration,
    pub valid: Duration,
}

impl StoredLifetimes {
    /// The monotonic clock's `times` in wall time (`now` being the same moment on both).
    pub fn store(times: &Lifetimes, now: (Instant, SystemTime)) -> Self {
        let age = now.0.saturating_duration_since(times.acquired);
        let acquired = now.1.checked_sub(age).unwrap_or(UNIX_EPOCH);
        Self {
            acquired_ms: acquired
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            renew_after: times.renew_after,
            rebind_after: times.rebind_after,
            valid: times.valid,
        }
    }

    /// Back on the monotonic clock. A lease older than the monotonic clock can say (granted
    /// before this boot) counts from the clock's earliest moment: long expired either way.
    pub fn load(&self, now: (Instant, SystemTime)) -> Lifetimes {
        let acquired = UNIX_EPOCH + Duration::from_millis(self.acquired_ms);
        let age = now.1.duration_since(acquired).unwrap_or_default();
        let acquired = now
            .0
            .checked_sub(age)
            .unwrap_or_else(|| now.0.checked_sub(self.valid).unwrap_or(now.0));
        Lifetimes {
            acquired,
            renew_after: self.renew_after,
            rebind_after: self.rebind_after,
            valid: self.valid,
        }
    }

    /// When the lease runs out, in wall time.
    pub fn expires(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.acquired_ms) + self.valid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "00112233445566778899aabbccddeeff0123456789abcdef0011223344556677";

    #[test]
    fn identities_come_from_the_endpoint_id() {
        assert_eq!(duid(ID)[..4], [0, 4, 0x00, 0x11]);
        assert_eq!(duid(ID).len(), 18);
        assert_eq!(iaid(ID), 0x01234567);
        let id = client_id(ID);
        assert_eq!(id[0], 0xff);
        assert_eq!(id[1..5], 0x01234567u32.to_be_bytes());
        assert_eq!(id[5..], duid(ID)[..]);
        assert_ne!(
            client_id(ID),
            client_id(&ID.replace("00112233", "00112234"))
        );
        assert_eq!(duid("short")[2..], [0; 16], "a short id still gives a DUID");
    }

    #[test]
    fn lifetimes_survive_a_restart() {
        let instant = Instant::now();
        let wall = SystemTime::now();
        let s = Duration::from_secs;
        let times = Lifetimes {
            acquired: instant.checked_sub(s(30)).unwrap_or(instant),
            renew_after: s(60),
            rebind_after: s(105),
            valid: s(120),
        };
        let stored = StoredLifetimes::store(&times, (instant, wall));
        // A restart 10 s later: the lease is 40 s old.
        let later = (instant + s(10), wall + s(10));
        let loaded = stored.load(later);
        let age = later.0 - loaded.acquired;
        assert!(age >= s(39) && age <= s(41), "{age:?}");
        assert_eq!(loaded.valid, s(120));
        assert!(stored.expires() > wall);
    }
}
