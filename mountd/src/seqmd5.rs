//! The MD5 of a file written from its start (its ETag), computed beside the writer.
//!
//! MD5 is the slowest step of a sequential write, about one core's worth: hashed in the FUSE
//! request it holds up every `write`. Whole chunks are therefore hashed in order on a thread of
//! their own as they are stored, through a bounded queue (a writer faster than MD5 waits for
//! it); the rest of the file, past the last chunk queued, is hashed when the file is committed.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use md5::{Digest, Md5};

use crate::chunkbuf::Buf;

/// Chunks waiting to be hashed at most.
const QUEUE: usize = 4;

enum Msg {
    /// The next bytes of the file: a range of a buffer.
    Data(Arc<Buf>, std::ops::Range<usize>),
    /// The state after everything sent before, for a commit.
    Snapshot(SyncSender<Md5>),
}

/// The MD5 of the file's bytes `[0, covered)`, the last of them perhaps still in the queue.
pub struct SeqMd5 {
    covered: u64,
    queue: Option<SyncSender<Msg>>,
}

impl SeqMd5 {
    /// The MD5 of nothing so far.
    pub fn new() -> SeqMd5 {
        SeqMd5 {
            covered: 0,
            queue: None,
        }
    }

    /// Bytes from the start of the file hashed or queued.
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// Hashes `data[range]`, the file's bytes from [`covered`](Self::covered) on, on the
    /// hashing thread (started with the first chunk). Waits while the queue is full. `false`
    /// when the thread could not be started or has died: the hash is lost.
    pub fn push(&mut self, data: Arc<Buf>, range: std::ops::Range<usize>) -> bool {
        let n = range.len() as u64;
        if self.queue.is_none() {
            let (tx, rx) = sync_channel(QUEUE);
            let spawned = std::thread::Builder::new()
                .name("md5".into())
                .spawn(move || hash_loop(rx));
            if spawned.is_err() {
                return false;
            }
            self.queue = Some(tx);
        }
        let sent = self
            .queue
            .as_ref()
            .is_some_and(|q| q.send(Msg::Data(data, range)).is_ok());
        self.covered += n;
        sent
    }

    /// The hash so far, once every queued chunk is hashed (`None` if the thread died).
    pub fn snapshot(&self) -> Option<Md5> {
        let Some(q) = &self.queue else {
            return Some(Md5::new());
        };
        let (tx, rx) = sync_channel(1);
        q.send(Msg::Snapshot(tx)).ok()?;
        rx.recv().ok()
    }
}

impl Default for SeqMd5 {
    fn default() -> Self {
        SeqMd5::new()
    }
}

/// The hashing thread: ends when its [`SeqMd5`] is dropped.
fn hash_loop(rx: Receiver<Msg>) {
    let mut h = Md5::new();
    while let Ok(m) = rx.recv() {
        match m {
            Msg::Data(b, r) => h.update(b.bytes().get(r).unwrap_or_default()),
            Msg::Snapshot(reply) => {
                let _ = reply.send(h.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_chunks_and_a_snapshot_hash_like_one_pass() {
        let a: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let mut s = SeqMd5::new();
        assert_eq!(
            s.snapshot().map(|h| h.finalize()),
            Some(Md5::digest(b"")),
            "nothing hashed yet"
        );
        for piece in a.chunks(1 << 20) {
            assert!(s.push(Arc::new(Buf::copy_of(piece)), 0..piece.len()));
        }
        assert_eq!(s.covered(), a.len() as u64);
        let mut h = s.snapshot().expect("the thread runs");
        assert_eq!(h.clone().finalize(), Md5::digest(&a));
        h.update(b"tail");
        let mut all = a.clone();
        all.extend_from_slice(b"tail");
        assert_eq!(h.finalize(), Md5::digest(&all));
        // The thread goes on after a snapshot.
        assert!(s.push(Arc::new(Buf::copy_of(b"..more..")), 2..6));
        all.truncate(a.len());
        all.extend_from_slice(b"more");
        assert_eq!(s.snapshot().map(|h| h.finalize()), Some(Md5::digest(&all)));
    }
}
