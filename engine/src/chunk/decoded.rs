//! The last few compressed chunks read, decompressed: a reader going through a compressed
//! chunk in small pieces (the mount reads 128 KiB at a time) decompresses it once, not once
//! per piece. Chunks are immutable under their name, so an entry is never stale.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;

/// Chunks kept (at the default 4 MiB chunk size, 16 MiB of memory at most).
const ENTRIES: usize = 4;

/// Most recently used first.
#[derive(Default)]
pub(crate) struct DecodedCache {
    entries: Mutex<VecDeque<([u8; 32], Bytes)>>,
}

impl DecodedCache {
    /// The plain bytes of chunk `hash`, if kept.
    pub(crate) fn get(&self, hash: &[u8; 32]) -> Option<Bytes> {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        let i = e.iter().position(|(h, _)| h == hash)?;
        let hit = e.remove(i)?;
        let bytes = hit.1.clone();
        e.push_front(hit);
        Some(bytes)
    }

    /// Keeps the plain bytes of chunk `hash`, dropping the least recently used beyond
    /// [`ENTRIES`].
    pub(crate) fn put(&self, hash: [u8; 32], plain: Bytes) {
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if e.iter().any(|(h, _)| *h == hash) {
            return;
        }
        e.push_front((hash, plain));
        e.truncate(ENTRIES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recently_used() {
        let c = DecodedCache::default();
        for i in 0..ENTRIES as u8 {
            c.put([i; 32], Bytes::from(vec![i]));
        }
        assert_eq!(c.get(&[0; 32]).unwrap()[0], 0);
        c.put([9; 32], Bytes::from_static(b"x"));
        // 1 was the least recently used.
        assert!(c.get(&[1; 32]).is_none());
        assert!(c.get(&[0; 32]).is_some() && c.get(&[9; 32]).is_some());
    }
}
