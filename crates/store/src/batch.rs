//! What one atomic change consists of.

use crate::Key;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Sets the key, whether it exists or not.
    Put { key: Key, value: Vec<u8> },
    /// Sets a key that must not exist yet (a name or address that must stay unique).
    Create { key: Key, value: Vec<u8> },
    /// Removes the key; removing a missing key is not an error.
    Delete { key: Key },
}

impl Op {
    pub fn key(&self) -> &Key {
        match self {
            Self::Put { key, .. } | Self::Create { key, .. } | Self::Delete { key } => key,
        }
    }
}

/// Operations applied together or not at all, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub ops: Vec<Op>,
}

impl Batch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn put(mut self, key: Key, value: Vec<u8>) -> Self {
        self.ops.push(Op::Put { key, value });
        self
    }

    pub fn create(mut self, key: Key, value: Vec<u8>) -> Self {
        self.ops.push(Op::Create { key, value });
        self
    }

    pub fn delete(mut self, key: Key) -> Self {
        self.ops.push(Op::Delete { key });
        self
    }

    /// Appends `other`'s operations after this one's.
    pub fn and(mut self, other: Batch) -> Self {
        self.ops.extend(other.ops);
        self
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}
