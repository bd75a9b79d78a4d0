//! Crash injection, for the tests that show a crash at any step loses nothing and leaks
//! nothing. The daemon counts the steps that change the kernel or a store (a netlink
//! request or batch, an nft transaction, a namespace made or removed, a store write) and,
//! when armed with `NETCTL_CRASH_AT_STEP=N`, is killed (SIGKILL) just before the Nth of them — as
//! `kill -9` or a power cut would leave it.
//!
//! The variable is read in debug builds only (the tests run those); in a release build
//! [`step`] is empty and nothing reads the environment.

#[cfg(debug_assertions)]
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable that arms the counter.
pub const ENV: &str = "NETCTL_CRASH_AT_STEP";

/// Steps left before the kill; 0 when disarmed.
#[cfg(debug_assertions)]
static LEFT: AtomicU64 = AtomicU64::new(0);

/// The step the counter was armed for, for the last words.
#[cfg(debug_assertions)]
static ARMED_AT: AtomicU64 = AtomicU64::new(0);

/// Set (to anything): the counter is armed by the daemon's SIGUSR2, not as it starts to
/// serve — for a node whose start goes on in the background (a cluster node plugging its
/// endpoints in again), which a test lets finish first.
pub const ARM_ON_SIGNAL: &str = "NETCTL_CRASH_ARM_ON_SIGNAL";

/// Arms the counter from [`ENV`]: the daemon calls it once it is serving, so that only the
/// steps of the requests it serves count, not those of its start.
pub fn arm_from_env() {
    #[cfg(debug_assertions)]
    if let Some(n) = std::env::var(ENV).ok().and_then(|v| v.parse::<u64>().ok()) {
        ARMED_AT.store(n, Ordering::SeqCst);
        LEFT.store(n, Ordering::SeqCst);
        eprintln!("netctl: crash injection armed for step {n}");
    }
}

/// Whether [`arm_from_env`] is to wait for SIGUSR2 ([`ARM_ON_SIGNAL`]); never in a release
/// build.
pub fn arms_on_signal() -> bool {
    cfg!(debug_assertions) && std::env::var_os(ARM_ON_SIGNAL).is_some()
}

/// A step that changes the kernel or a store is about to be taken; `what` names it in the
/// last words of an injected crash.
#[inline]
pub fn step(what: &dyn std::fmt::Display) {
    #[cfg(debug_assertions)]
    {
        let counted = LEFT.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if counted == Ok(1) {
            let n = ARMED_AT.load(Ordering::SeqCst);
            eprintln!("netctl: crash injected before step {n}: {what}");
            // SIGKILL, as `kill -9` would: no unwinding, no destructors, no core dump.
            // SAFETY: kill(2) on this very process.
            unsafe { libc::kill(libc::getpid(), libc::SIGKILL) };
            unreachable!("SIGKILL is not caught");
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = what;
}

/// The variable that slows named steps down: `NETCTL_DELAY=POINT=MS[,POINT=MS…]`. A race
/// that needs a slow kernel to show (a background removal still running when the next
/// request comes) is made to show every time. Debug builds only, as [`ENV`].
pub const DELAY_ENV: &str = "NETCTL_DELAY";

/// How long the step `point` is to wait first, if [`DELAY_ENV`] says so; never in a
/// release build.
pub fn delay_of(point: &str) -> Option<std::time::Duration> {
    if !cfg!(debug_assertions) {
        return None;
    }
    let spec = std::env::var(DELAY_ENV).ok()?;
    spec.split(',').find_map(|item| {
        let (name, ms) = item.rsplit_once('=')?;
        (name.trim() == point)
            .then(|| ms.trim().parse().ok())
            .flatten()
            .map(std::time::Duration::from_millis)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delay_is_read_for_its_point_only() {
        std::env::set_var(DELAY_ENV, "background leave=300, other=5");
        assert_eq!(
            delay_of("background leave"),
            Some(std::time::Duration::from_millis(300))
        );
        assert_eq!(delay_of("other"), Some(std::time::Duration::from_millis(5)));
        assert_eq!(delay_of("none"), None);
        std::env::remove_var(DELAY_ENV);
    }
}
