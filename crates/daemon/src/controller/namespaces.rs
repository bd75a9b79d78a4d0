//! The sandboxes' network namespaces, open for as long as the daemon serves them: a
//! namespace's netlink connection is opened once, when it is made or found again at start.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use netctl_kernel::Netns;

#[derive(Default)]
pub(super) struct Namespaces {
    open: Mutex<HashMap<String, Arc<Netns>>>,
}

impl Namespaces {
    pub fn get(&self, sandbox_id: &str) -> Option<Arc<Netns>> {
        self.open
            .lock()
            .expect("namespaces")
            .get(sandbox_id)
            .cloned()
    }

    pub fn insert(&self, sandbox_id: &str, netns: Netns) {
        self.open
            .lock()
            .expect("namespaces")
            .insert(sandbox_id.to_string(), Arc::new(netns));
    }

    /// Forgets the namespace; dropping the last handle closes its file and netlink socket.
    pub fn remove(&self, sandbox_id: &str) {
        self.open.lock().expect("namespaces").remove(sandbox_id);
    }
}
