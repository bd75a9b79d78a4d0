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
