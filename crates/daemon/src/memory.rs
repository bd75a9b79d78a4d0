//! What the daemon's memory is made of: the kernel's count (RSS) beside the allocator's.
//!
//! A soak that sees the resident set grow must tell a leak from an allocator that keeps what
//! was freed; only the allocator can say which, so `system info` reports both.

use std::time::Duration;

use netctl_plugin_api::MemoryUse;

/// How often the allocator is looked at.
const LOOK_EVERY: Duration = Duration::from_secs(30);
/// Memory resident but not in use, gained since the last trim, that is worth a trim.
const TRIM_AFTER: u64 = 8 << 20;

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

/// Gives the kernel back the memory glibc keeps after a burst.
///
/// glibc returns freed memory to the kernel only from the top of each arena; what is freed in
/// the middle stays resident. After a thousand sandboxes are made and taken down, the daemon
/// would keep their peak in its resident set for good (measured by `scripts/soak`: 5 MiB in
/// use, 51 MiB resident). `malloc_trim` releases every free page of every arena (a few
/// milliseconds for tens of MiB, under the arenas' locks); it runs when the memory resident
/// but not in use has grown by [`TRIM_AFTER`] since the last trim. The allocator's count of
/// free memory alone cannot tell: pages given back stay counted as free.
pub async fn give_back_freed() {
    let mut every = tokio::time::interval(LOOK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut unused_after_trim = 0;
    loop {
        every.tick().await;
        // mallinfo2 and malloc_trim walk every arena under its lock: off the runtime.
        let looked = tokio::task::spawn_blocking(move || trim_if_grown(unused_after_trim)).await;
        match looked {
            Ok(Some(unused)) => unused_after_trim = unused,
            Ok(None) => return,
            Err(_) => {}
        }
    }
}

/// Trims when the memory resident but not in use has grown by [`TRIM_AFTER`] since it was
/// `unused_after_trim`; hands back that amount as it is now, `None` where it cannot be told.
fn trim_if_grown(unused_after_trim: u64) -> Option<u64> {
    let unused = |rss: u64, in_use: u64| rss.saturating_sub(in_use);
    let (in_use, _) = heap()?;
    let before = unused(resident_set()?, in_use);
    if before < unused_after_trim + TRIM_AFTER {
        // Also when it shrank: measured from there.
        return Some(unused_after_trim.min(before));
    }
    trim();
    let after = unused(resident_set()?, heap()?.0);
    tracing::debug!(before, after, "freed heap given back to the kernel");
    Some(after)
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
/// bytes in free chunks. No crate reports glibc's allocator, so this calls `mallinfo2`
/// itself — looked up when called, not linked: it came with glibc 2.33, and the daemon
/// must still start on an older one (where it reports no heap).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<(u64, u64)> {
    type Mallinfo2 = unsafe extern "C" fn() -> libc::mallinfo2;
    // SAFETY: dlsym with a NUL-terminated name only looks the symbol up.
    let found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"mallinfo2".as_ptr()) };
    if found.is_null() {
        return None;
    }
    // SAFETY: glibc's mallinfo2 has exactly this signature; it only reads the allocator's
    // counters.
    let info = unsafe { std::mem::transmute::<*mut libc::c_void, Mallinfo2>(found)() };
    Some(((info.uordblks + info.hblkhd) as u64, info.fordblks as u64))
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<(u64, u64)> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_heap_in_use_counts_what_is_held() {
        let held = vec![1u8; 8 << 20];
        let during = super::current().expect("glibc on Linux reports its heap");
        // The counters are the whole process's (other tests run meanwhile): a floor only.
        assert!(during.heap_in_use >= 8 << 20);
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
