//! Manifests from memory (cluster mode). A manifest is written once, under a data id made
//! fresh for it, and afterwards only deleted: a copy read once is that manifest for as long as
//! anything reaches it — through an object, version or part record, which is read from etcd
//! first. So read transactions take manifests from memory when they are there, and a GET of an
//! object read lately costs one etcd read (its record) instead of two. Write transactions
//! still read manifests from etcd: their commit must compare them (a manifest released twice
//! would drop its chunks' references twice). A manifest deleted stays here until pushed out,
//! unreachable: no record names its data id again.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Bytes of manifests kept (small objects' manifests hold their data).
const MAX_BYTES: usize = 32 << 20;

/// Manifests read lately, by full key; the oldest go first.
#[derive(Default)]
pub(crate) struct Manifests {
    inner: Mutex<Kept>,
    /// Reads answered from memory.
    pub(crate) hits: AtomicU64,
}

#[derive(Default)]
struct Kept {
    by_key: HashMap<Vec<u8>, Vec<u8>>,
    order: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Manifests {
    /// The manifest under `key`, when it is here.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        let kept = self.inner.lock().ok()?;
        let v = kept.by_key.get(key).cloned();
        if v.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        v
    }

    /// Keeps the manifest `value` read under `key`.
    pub(crate) fn keep(&self, key: &[u8], value: &[u8]) {
        let size = key.len() + value.len();
        if size > MAX_BYTES / 16 {
            return;
        }
        let Ok(mut kept) = self.inner.lock() else {
            return;
        };
        if kept.by_key.contains_key(key) {
            return;
        }
        while kept.bytes + size > MAX_BYTES {
            let Some(old) = kept.order.pop_front() else {
                break;
            };
            if let Some(v) = kept.by_key.remove(&old) {
                kept.bytes -= old.len() + v.len();
            }
        }
        kept.by_key.insert(key.to_vec(), value.to_vec());
        kept.order.push_back(key.to_vec());
        kept.bytes += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_until_the_oldest_are_pushed_out_by_size() {
        let m = Manifests::default();
        let big = vec![7u8; MAX_BYTES / 16 - 16];
        for i in 0..20u32 {
            m.keep(&i.to_be_bytes(), &big);
        }
        assert_eq!(m.get(&0u32.to_be_bytes()), None, "pushed out");
        assert_eq!(m.get(&19u32.to_be_bytes()).as_deref(), Some(&big[..]));
        let kept = m.inner.lock().unwrap();
        assert!(kept.bytes <= MAX_BYTES && kept.by_key.len() == kept.order.len());
        drop(kept);
        m.keep(b"huge", &vec![0u8; MAX_BYTES]);
        assert_eq!(m.get(b"huge"), None, "too large to keep");
    }
}
