//! The retransmission clock of an exchange: the first delay, doubling up to a ceiling.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default)]
pub(crate) struct Retry {
    at: Option<Instant>,
    delay: Duration,
    max: Duration,
}

impl Retry {
    /// An exchange begins: the first retransmission after `first`, then doubling to `max`.
    pub fn start(now: Instant, first: Duration, max: Duration) -> Self {
        Self {
            at: Some(now + first),
            delay: (first * 2).min(max),
            max,
        }
    }

    /// Renewing or rebinding a lease that holds until `deadline` (the next step, T2 or
    /// expiry): the first retransmission after half the time left, but within `first` and
    /// no sooner than a second; then doubling to `max`. The RFCs' fixed timeouts (60 s for
    /// DHCPv4, 10 s for DHCPv6) alone would let a short lease run out unasked.
    pub fn before(now: Instant, deadline: Instant, first: Duration, max: Duration) -> Self {
        let half = deadline.saturating_duration_since(now) / 2;
        Self::start(now, half.clamp(Duration::from_secs(1), first), max)
    }

    /// No exchange going on.
    pub fn stopped() -> Self {
        Self::default()
    }

    /// Whether to send again at `now`; if so, the clock moves on to the next time.
    pub fn due(&mut self, now: Instant) -> bool {
        if self.at.is_none_or(|at| now < at) {
            return false;
        }
        self.at = Some(now + self.delay);
        self.delay = (self.delay * 2).min(self.max);
        true
    }

    pub fn at(&self) -> Option<Instant> {
        self.at
    }
}

/// The sooner of two wake-ups.
pub(crate) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_doubles_to_its_ceiling() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut retry = Retry::start(t0, s(1), s(4));
        assert!(!retry.due(t0));
        assert!(retry.due(t0 + s(1)));
        assert_eq!(retry.at(), Some(t0 + s(3)));
        assert!(retry.due(t0 + s(3)));
        assert_eq!(retry.at(), Some(t0 + s(7)));
        assert!(retry.due(t0 + s(7)));
        assert_eq!(retry.at(), Some(t0 + s(11)), "capped at 4 s");
        assert!(!Retry::stopped().due(t0));
    }

    #[test]
    fn a_short_lease_is_asked_for_before_it_runs_out() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let retry = Retry::before(t0, t0 + s(6), s(60), s(60));
        assert_eq!(retry.at(), Some(t0 + s(3)));
        let retry = Retry::before(t0, t0 + s(3600), s(60), s(60));
        assert_eq!(retry.at(), Some(t0 + s(60)), "a long one as the RFC says");
        let retry = Retry::before(t0, t0, s(10), s(60));
        assert_eq!(retry.at(), Some(t0 + s(1)), "never sooner than a second");
    }
}
