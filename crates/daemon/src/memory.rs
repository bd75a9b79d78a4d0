//! What the daemon's memory is made of: the kernel's count (RSS) beside the allocator's.
//!
//! A soak that sees the resident set grow must tell a leak from an allocator that keeps what
//! was freed; only the allocator can say which, so `system info` reports both.

use std::time::Duration;

use netctl_plugin_api::MemoryUse;

/// How often the allocator is asked to give freed memory back.
const TRIM_EVERY: Duration = Duration::from_secs(30);
/// Free heap below this is left alone: trimming it would only be taken again.
const TRIM_ABOVE: u64 = 16 << 20;

/// The daemon's memory now; `None` where the platform cannot say.
pub fn current() -> Option<MemoryUse> {
    let rss = resident_set()?;
    let (heap_in_use, heap_free) = heap()?;
    Some(MemoryUse {
        rss,
        heap_in_use,
        heap_free,
    })
}

/// Gives the kernel back the memory glibc keeps after a burst, every [`TRIM_EVERY`].
///
/// glibc returns freed memory to the kernel only from the top of each arena; what is freed in
/// the middle stays resident. After a thousand sandboxes are made and taken down, the daemon
/// would keep their peak in its resident set for good (measured by `scripts/soak`: 5 MiB in use,
/// 72 MiB held free). `malloc_trim` releases every free page of every arena.
pub async fn give_back_freed() {
    let mut every = tokio::time::interval(TRIM_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some((in_use, free)) = heap() else { return };
        if free > TRIM_ABOVE.max(in_use) {
            // It walks every arena under its lock: off the runtime's threads.
            let _ = tokio::task::spawn_blocking(trim).await;
            tracing::debug!(in_use, free, "freed heap given back to the kernel");
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only returns free pages of the allocator's own arenas.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// `VmRSS` of `/proc/self/status`, in bytes.
fn resident_set() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// glibc's totals over every arena: bytes handed out (small blocks and mmapped ones) and
/// bytes held free. No crate reports glibc's allocator, so this calls `mallinfo2` itself.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<(u64, u64)> {
    // SAFETY: mallinfo2 takes no arguments and only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    Some(((info.uordblks + info.hblkhd) as u64, info.fordblks as u64))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_heap_in_use_grows_with_what_is_held() {
        let before = super::current().expect("glibc on Linux reports its heap");
        let held = vec![1u8; 8 << 20];
        let during = super::current().unwrap();
        assert!(during.heap_in_use >= before.heap_in_use + (8 << 20) - 4096);
        assert!(during.rss > 0);
        drop(held);
    }

    #[test]
    fn trimming_gives_freed_pages_back() {
        // Small blocks (not mmapped ones, which go back at once), the last kept so the
        // arena's top cannot shrink: only a trim returns the rest.
        let mut blocks: Vec<Vec<u8>> = (0..64 * 1024).map(|_| vec![1u8; 1000]).collect();
        let kept = blocks.pop();
        drop(blocks);
        let before = super::resident_set().unwrap();
        super::trim();
        let after = super::resident_set().unwrap();
        assert!(
            after + (16 << 20) < before,
            "RSS {before} before the trim, {after} after"
        );
        drop(kept);
    }
}
