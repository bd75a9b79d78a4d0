//! Endpoints' interfaces being removed in the background ([`Effect::LeaveLater`]): a
//! runtime waiting for DeleteEndpoint's answer has no use for the kernel's unregistering
//! of links. An endpoint made again with the same id (dockerd retrying, a crash walk)
//! gets interfaces with the same names, so putting it in place first waits for the
//! earlier removal, which would otherwise delete the new interfaces.
//!
//! [`Effect::LeaveLater`]: super::effects::Effect::LeaveLater

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::task::JoinHandle;

#[derive(Default)]
pub(super) struct BackgroundLeaves {
    running: Arc<Mutex<HashMap<String, Running>>>,
    next_ticket: AtomicU64,
}

struct Running {
    /// Tells this removal from a later one of the same endpoint, whose entry a finished
    /// earlier one must not take away.
    ticket: u64,
    task: JoinHandle<()>,
}

impl BackgroundLeaves {
    /// Runs `leave` (the removal of `endpoint`'s interfaces) in the background. Its entry
    /// goes when it ends, so nothing is kept for endpoints never made again.
    pub fn start(&self, endpoint: &str, leave: impl Future<Output = ()> + Send + 'static) {
        let ticket = self.next_ticket.fetch_add(1, Ordering::Relaxed);
        let running = Arc::clone(&self.running);
        let key = endpoint.to_string();
        // Held across the spawn, so the task's own removal of its entry comes after the
        // entry is in.
        let mut map = self.running.lock();
        let task = tokio::spawn(async move {
            leave.await;
            let mut map = running.lock();
            if map.get(&key).is_some_and(|r| r.ticket == ticket) {
                map.remove(&key);
            }
        });
        map.insert(endpoint.to_string(), Running { ticket, task });
    }

    /// Waits until no removal of `endpoint`'s interfaces is running.
    pub async fn wait_for(&self, endpoint: &str) {
        let running = self.running.lock().remove(endpoint);
        if let Some(running) = running {
            // A removal that panicked is over all the same.
            let _ = running.task.await;
        }
    }

    #[cfg(test)]
    fn running(&self) -> usize {
        self.running.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn waiting_for_an_endpoint_waits_for_its_removal_to_end() {
        let leaves = BackgroundLeaves::default();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let done = Arc::new(AtomicU64::new(0));
        let marks = Arc::clone(&done);
        leaves.start("e1", async move {
            let _ = released.await;
            marks.store(1, Ordering::SeqCst);
        });
        let waiter = leaves.wait_for("e1");
        tokio::pin!(waiter);
        tokio::select! {
            _ = &mut waiter => panic!("the wait ended before the removal"),
            _ = tokio::time::sleep(Duration::from_millis(50)) => {}
        }
        release.send(()).unwrap();
        waiter.await;
        assert_eq!(done.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_finished_removal_leaves_nothing_behind() {
        let leaves = BackgroundLeaves::default();
        leaves.start("e1", async {});
        for _ in 0..100 {
            if leaves.running() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the finished removal's entry stayed");
    }

    #[tokio::test]
    async fn other_endpoints_do_not_wait() {
        let leaves = BackgroundLeaves::default();
        leaves.start("e1", std::future::pending());
        tokio::time::timeout(Duration::from_secs(5), leaves.wait_for("e2"))
            .await
            .expect("no wait for another endpoint");
    }
}
