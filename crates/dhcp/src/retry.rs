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
}
