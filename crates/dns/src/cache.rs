//! Answers from upstreams, kept as long as their TTLs allow.
//!
//! An entry is the upstream's message as it came, with the offsets of its TTLs. A hit copies
//! it, gives it the client's ID and question (letter case included) and lowers each TTL by
//! the time spent in the cache: no decoding on the hot path.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::locks::Lock;
use crate::wire;

/// Kept at most; beyond it, expired entries go first, then arbitrary ones.
const CAPACITY: usize = 10_000;
/// No answer is kept longer than this, whatever its TTL says.
const MAX_LIFETIME: u32 = 86_400;

/// A cached answer is shared only by queries that would get the same one from upstream: the
/// same servers, question, and EDNS flags that change the answer.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    pub upstreams: u64,
    /// The question's wire bytes, lower-cased.
    pub question: Vec<u8>,
    /// EDNS present, DNSSEC OK, checking disabled.
    pub flags: u8,
}

impl Key {
    /// `None` for a query whose question cannot be read.
    pub fn of(query: &[u8], upstreams: u64, edns: bool, dnssec_ok: bool) -> Option<Self> {
        let question = wire::question(query)?.to_ascii_lowercase();
        let cd = query[3] & 0x10 != 0;
        Some(Self {
            upstreams,
            question,
            flags: u8::from(edns) | u8::from(dnssec_ok) << 1 | u8::from(cd) << 2,
        })
    }
}

struct Entry {
    message: Vec<u8>,
    ttl_offsets: Vec<usize>,
    stored: Instant,
    lifetime: Duration,
}

#[derive(Default)]
pub struct Cache {
    entries: Mutex<HashMap<Key, Entry>>,
}

impl Cache {
    /// The cached answer for `query`, ready to send, if one is still valid and fits `limit`.
    pub fn get(&self, key: &Key, query: &[u8], limit: usize) -> Option<Vec<u8>> {
        let mut entries = self.entries.locked();
        let entry = entries.get(key)?;
        let age = entry.stored.elapsed();
        if age >= entry.lifetime {
            entries.remove(key);
            return None;
        }
        if entry.message.len() > limit {
            return None;
        }
        let mut answer = entry.message.clone();
        wire::age(&mut answer, &entry.ttl_offsets, age.as_secs() as u32);
        drop(entries);
        wire::set_id(&mut answer, wire::id(query));
        let question = wire::question(query)?;
        let end = wire::HEADER_LEN + question.len();
        answer
            .get_mut(wire::HEADER_LEN..end)?
            .copy_from_slice(question);
        Some(answer)
    }

    /// Keeps `answer` if it says how long it may be kept (and is not truncated or a failure).
    pub fn put(&self, key: Key, answer: &[u8]) {
        if wire::is_truncated(answer) {
            return;
        }
        let Some(map) = wire::ttl_map(answer) else {
            return;
        };
        let Some(lifetime) = map.lifetime.filter(|&l| l > 0) else {
            return;
        };
        let entry = Entry {
            message: answer.to_vec(),
            ttl_offsets: map.offsets,
            stored: Instant::now(),
            lifetime: Duration::from_secs(lifetime.min(MAX_LIFETIME).into()),
        };
        let mut entries = self.entries.locked();
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.stored.elapsed() < e.lifetime);
            if entries.len() >= CAPACITY {
                let victim = entries.keys().next().cloned();
                if let Some(victim) = victim {
                    entries.remove(&victim);
                }
            }
        }
        entries.insert(key, entry);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &[u8], id: u16) -> Vec<u8> {
        let mut q = id.to_be_bytes().to_vec();
        q.extend_from_slice(&[1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        q.extend_from_slice(name);
        q.extend_from_slice(&[0, 1, 0, 1]);
        q
    }

    fn answer(ttl: u32) -> Vec<u8> {
        let mut a = query(b"\x03www\x04test\x00", 7);
        a[2] = 0x81;
        a[3] = 0x80;
        a[7] = 1;
        a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        a.extend_from_slice(&ttl.to_be_bytes());
        a.extend_from_slice(&[0, 4, 203, 0, 113, 80]);
        a
    }

    #[test]
    fn a_hit_carries_the_clients_id_and_letter_case() {
        let cache = Cache::default();
        let q = query(b"\x03WwW\x04test\x00", 0x4242);
        let key = Key::of(&q, 1, false, false).unwrap();
        cache.put(key.clone(), &answer(300));
        let hit = cache.get(&key, &q, 512).unwrap();
        assert_eq!(wire::id(&hit), 0x4242);
        assert_eq!(&hit[13..16], b"WwW");
        assert_eq!(&hit[hit.len() - 4..], &[203, 0, 113, 80]);
        // Another upstream list, or too big for the client: no hit.
        assert!(cache
            .get(
                &Key {
                    upstreams: 2,
                    ..key.clone()
                },
                &q,
                512
            )
            .is_none());
        assert!(cache.get(&key, &q, 20).is_none());
    }

    #[test]
    fn zero_ttl_truncated_and_failed_answers_are_not_kept() {
        let cache = Cache::default();
        let q = query(b"\x03www\x04test\x00", 1);
        let key = Key::of(&q, 1, false, false).unwrap();
        cache.put(key.clone(), &answer(0));
        let mut truncated = answer(300);
        truncated[2] |= 0x02;
        cache.put(key.clone(), &truncated);
        let mut servfail = answer(300);
        servfail[3] = 0x82;
        cache.put(key.clone(), &servfail);
        assert!(cache.get(&key, &q, 512).is_none());
    }
}
