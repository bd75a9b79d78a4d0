//! Watching a store: the batches applied after a revision, in order, each once.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::{broadcast, mpsc};

use crate::{Entry, Key, Prefix, Revision, StoreError};

/// One change to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Put(Entry),
    Delete { key: Key, revision: Revision },
}

impl Event {
    pub fn key(&self) -> &Key {
        match self {
            Self::Put(entry) => &entry.key,
            Self::Delete { key, .. } => key,
        }
    }
}

/// What one applied batch changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub revision: Revision,
    pub events: Vec<Event>,
}

impl Changes {
    /// Roughly what it holds in memory: its keys' ids and its values.
    fn weight(&self) -> usize {
        self.events
            .iter()
            .map(|e| match e {
                Event::Put(entry) => entry.key.id.len() + entry.value.len(),
                Event::Delete { key, .. } => key.id.len(),
            })
            .sum()
    }
}

/// Recent batches, and the channel new ones are announced on. A backend keeps one; watches
/// start from its history and continue on the channel, with no gap between the two because
/// both are taken under the history's lock.
pub(crate) struct Feed {
    inner: Mutex<FeedInner>,
    capacity: usize,
    /// The most the kept batches' values may weigh: a few big records (an endpoint with
    /// thousands of published ports) must not hold megabytes for watches that never come.
    capacity_bytes: usize,
}

struct FeedInner {
    recent: VecDeque<Arc<Changes>>,
    /// What the kept batches' keys and values weigh.
    recent_bytes: usize,
    /// The revision before the oldest kept batch: watches from here on can be served.
    floor: Revision,
    sender: broadcast::Sender<Arc<Changes>>,
}

impl Feed {
    pub(crate) fn new(current: Revision, capacity: usize, capacity_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(FeedInner {
                recent: VecDeque::new(),
                recent_bytes: 0,
                floor: current,
                sender: broadcast::channel(capacity).0,
            }),
            capacity,
            capacity_bytes,
        }
    }

    /// Records an applied batch and announces it. The oldest kept batches go when there are
    /// too many, or they weigh too much (the newest always stays).
    pub(crate) fn publish(&self, changes: Changes) {
        let mut inner = self.inner.lock();
        let changes = Arc::new(changes);
        inner.recent_bytes += changes.weight();
        inner.recent.push_back(changes.clone());
        while inner.recent.len() > self.capacity
            || (inner.recent_bytes > self.capacity_bytes && inner.recent.len() > 1)
        {
            if let Some(old) = inner.recent.pop_front() {
                inner.recent_bytes -= old.weight();
                inner.floor = old.revision;
            }
        }
        // Nobody listening is fine.
        let _ = inner.sender.send(changes);
    }

    pub(crate) fn watch(&self, prefix: &Prefix, from: Revision) -> Result<Watch, StoreError> {
        let inner = self.inner.lock();
        if from < inner.floor {
            return Err(StoreError::Compacted {
                from,
                oldest: inner.floor,
            });
        }
        let pending = inner
            .recent
            .iter()
            .filter(|c| c.revision > from)
            .cloned()
            .collect();
        Ok(Watch {
            prefix: prefix.clone(),
            last: from,
            source: Source::Feed {
                pending,
                receiver: inner.sender.subscribe(),
            },
        })
    }
}

/// A stream of the changes under a prefix. Dropping it stops the watch.
pub struct Watch {
    prefix: Prefix,
    last: Revision,
    source: Source,
}

/// Where a watch's batches come from.
enum Source {
    /// A local backend's feed: its history, then its announcements.
    Feed {
        pending: VecDeque<Arc<Changes>>,
        receiver: broadcast::Receiver<Arc<Changes>>,
    },
    /// A task that forwards a remote store's watch; an error is the last item.
    Channel(mpsc::Receiver<Result<Changes, StoreError>>),
}

impl Source {
    async fn next(&mut self, last: Revision) -> Result<Arc<Changes>, StoreError> {
        match self {
            Self::Feed { pending, receiver } => {
                if let Some(changes) = pending.pop_front() {
                    return Ok(changes);
                }
                match receiver.recv().await {
                    Ok(changes) => Ok(changes),
                    Err(broadcast::error::RecvError::Lagged(_)) => Err(StoreError::Compacted {
                        from: last,
                        oldest: last + 1,
                    }),
                    Err(broadcast::error::RecvError::Closed) => Err(closed()),
                }
            }
            Self::Channel(receiver) => match receiver.recv().await {
                Some(changes) => changes.map(Arc::new),
                None => Err(closed()),
            },
        }
    }
}

fn closed() -> StoreError {
    StoreError::Backend {
        what: "watch".into(),
        message: "the store was closed".into(),
    }
}

impl Watch {
    /// A watch fed by a task (a remote backend's), from the revision after `from`.
    pub(crate) fn from_channel(
        prefix: Prefix,
        from: Revision,
        receiver: mpsc::Receiver<Result<Changes, StoreError>>,
    ) -> Self {
        Self {
            prefix,
            last: from,
            source: Source::Channel(receiver),
        }
    }

    /// The next batch that changed something under the prefix, with only those events.
    /// [`StoreError::Compacted`] when this watch fell too far behind.
    pub async fn next(&mut self) -> Result<Changes, StoreError> {
        loop {
            let changes = self.source.next(self.last).await?;
            if changes.revision <= self.last {
                continue;
            }
            self.last = changes.revision;
            let events: Vec<Event> = changes
                .events
                .iter()
                .filter(|e| self.prefix.contains(e.key()))
                .cloned()
                .collect();
            if !events.is_empty() {
                return Ok(Changes {
                    revision: changes.revision,
                    events,
                });
            }
        }
    }
}
