//! A lease's clock, the same for both families: when it was granted, when to renew (T1), to
//! rebind (T2) and to give it up; and what that clock asks of a held lease.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetimes {
    /// When the server's answer came: the times below count from here.
    pub acquired: Instant,
    pub renew_after: Duration,
    pub rebind_after: Duration,
    /// How long the address may be used at all.
    pub valid: Duration,
}

impl Lifetimes {
    pub fn renew_at(&self) -> Instant {
        self.acquired + self.renew_after
    }

    pub fn rebind_at(&self) -> Instant {
        self.acquired + self.rebind_after
    }

    pub fn expires_at(&self) -> Instant {
        self.acquired + self.valid
    }
}

/// Where a held lease stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holding {
    Bound,
    Renewing,
    Rebinding,
}

/// What the clock asks of a held lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    Renew,
    Rebind,
    Expire,
}

impl Holding {
    /// What is due at `now`, if anything.
    pub fn due(self, times: &Lifetimes, now: Instant) -> Option<Due> {
        match self {
            Self::Bound if now >= times.rebind_at() => Some(Due::Rebind),
            Self::Bound if now >= times.renew_at() => Some(Due::Renew),
            Self::Renewing if now >= times.rebind_at() => Some(Due::Rebind),
            Self::Rebinding if now >= times.expires_at() => Some(Due::Expire),
            _ => None,
        }
    }

    /// When a client holding a lease this way next has something to do: its clock's next
    /// step, or (renewing, rebinding) an earlier retransmission.
    pub fn wake(self, times: &Lifetimes, retry_at: Option<Instant>) -> Option<Instant> {
        match self {
            Self::Bound => Some(times.renew_at()),
            _ => crate::retry::earliest(retry_at, Some(self.next(times))),
        }
    }

    /// When the clock next asks something of a lease held this way.
    pub fn next(self, times: &Lifetimes) -> Instant {
        match self {
            Self::Bound => times.renew_at(),
            Self::Renewing => times.rebind_at(),
            Self::Rebinding => times.expires_at(),
        }
    }
}
