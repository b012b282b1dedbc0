//! Read-ahead for files nobody is writing: FUSE reads arrive in requests of at most 1 MiB, so a
//! sequential reader is served from chunk-sized windows read from the engine in one go (its
//! shards in parallel), and while it consumes one window the next is already being read in the
//! background. Random readers get just the range they ask for.
//!
//! Windows hold the engine's buffers as they are (no copy into one block); a request that falls
//! inside one buffer is answered with a slice of it. The window before the current one is kept
//! for requests that arrive late (several threads serve the kernel's requests), so that one
//! straggler does not make the reader look new and throw away what was read ahead.

use bytes::{Bytes, BytesMut};
use engine::{ByteRange, Engine, ObjectMeta};
use fuser::Errno;
use futures::StreamExt;

use crate::errno::errno;

/// Bytes `[start, end)` of one version of an object, as the engine's buffers.
struct Window {
    start: u64,
    end: u64,
    /// The version read (its last-modified time).
    version: i64,
    pieces: Vec<(u64, Bytes)>,
}

impl Window {
    fn covers(&self, a: u64, b: u64) -> bool {
        a >= self.start && b <= self.end
    }

    /// Bytes `[a, b)`, which the window covers: a slice when they lie in one buffer.
    fn slice(&self, a: u64, b: u64) -> Bytes {
        let mut parts = self
            .pieces
            .iter()
            .filter(|(s, p)| *s < b && s + p.len() as u64 > a)
            .map(|(s, p)| {
                let lo = a.saturating_sub(*s) as usize;
                let hi = ((b - s) as usize).min(p.len());
                p.slice(lo..hi)
            });
        let first = parts.next().unwrap_or_default();
        match parts.next() {
            None => first,
            Some(second) => {
                let mut out = BytesMut::with_capacity((b - a) as usize);
                out.extend_from_slice(&first);
                out.extend_from_slice(&second);
                for p in parts {
                    out.extend_from_slice(&p);
                }
                out.freeze()
            }
        }
    }
}

/// A window being read in the background.
struct Pending {
    start: u64,
    version: i64,
    task: tokio::task::JoinHandle<Result<Window, Errno>>,
}

/// Windows read ahead of a sequential reader.
const AHEAD: usize = 2;

/// The read-ahead state of one open handle.
#[derive(Default)]
pub struct ReadAhead {
    window: Option<Window>,
    /// The window before `window`: several threads serve the kernel's requests, so one for
    /// the end of the previous window may arrive after the reader has moved on.
    behind: Option<Window>,
    /// Windows being read in the background, in order.
    next: std::collections::VecDeque<Pending>,
    /// The furthest end of the requests so far: where a sequential reader goes on.
    seq_next: u64,
    /// Whether the previous request landed near `seq_next`.
    near_before: bool,
}

/// How far from where a sequential reader is a request may land and still be one of its: the
/// kernel reads ahead asynchronously and several threads serve the requests, so they arrive
/// slightly out of order (twice the kernel's 1 MiB read-ahead).
const NEAR: u64 = 2 << 20;

/// Reads bytes `[start, end)` of `bucket/key` into a window.
async fn fetch(
    engine: Engine,
    bucket: String,
    key: String,
    start: u64,
    end: u64,
) -> Result<Window, Errno> {
    let g = engine
        .get_object(&bucket, &key, Some(ByteRange::FromTo(start, end - 1)))
        .await
        .map_err(|e| errno(&e))?;
    let (start, end) = g.range;
    let version = g.meta.last_modified_ns;
    let mut body = g.body;
    let mut pieces = Vec::new();
    let mut at = start;
    while let Some(c) = body.next().await {
        let c = c.map_err(|e| errno(&e))?;
        let n = c.len() as u64;
        pieces.push((at, c));
        at += n;
    }
    Ok(Window {
        start,
        end,
        version,
        pieces,
    })
}

impl ReadAhead {
    /// Forgets the windows (the file is being written through another handle).
    pub fn clear(&mut self) {
        self.window = None;
        self.behind = None;
        for p in self.next.drain(..) {
            p.task.abort();
        }
    }

    /// Serves a read of `size` bytes at `offset` of the object `meta` (its current version).
    #[allow(clippy::too_many_arguments)]
    pub fn read(
        &mut self,
        engine: &Engine,
        rt: &tokio::runtime::Handle,
        bucket: &str,
        key: &str,
        meta: &ObjectMeta,
        offset: u64,
        size: u32,
    ) -> Result<Bytes, Errno> {
        if offset >= meta.size || size == 0 {
            return Ok(Bytes::new());
        }
        let end = (offset + size as u64).min(meta.size);
        let version = meta.last_modified_ns;
        if self.window.as_ref().is_some_and(|w| w.version != version) {
            self.window = None;
        }
        if self.behind.as_ref().is_some_and(|w| w.version != version) {
            self.behind = None;
        }
        if self.next.iter().any(|p| p.version != version) {
            self.clear();
        }
        let cs = engine.config().chunk_size as u64;
        let in_window = self
            .window
            .as_ref()
            .is_some_and(|w| offset >= w.start && offset < w.end)
            || self
                .next
                .iter()
                .any(|p| p.start <= offset && offset < p.start + cs);
        // Sequential: right where the reader is, inside what is read for it, or near it twice
        // in a row (one request out of order). A random reader rarely lands near twice.
        let near = offset.abs_diff(self.seq_next) <= NEAR;
        let sequential = offset == self.seq_next || in_window || (near && self.near_before);
        tracing::debug!(offset, seq_next = self.seq_next, sequential, "read");
        self.near_before = near;
        self.seq_next = if near { self.seq_next.max(end) } else { end };
        let fetch_now = |a: u64, b: u64| {
            rt.block_on(fetch(
                engine.clone(),
                bucket.to_string(),
                key.to_string(),
                a,
                b,
            ))
        };
        if !self.window.as_ref().is_some_and(|w| w.covers(offset, end)) {
            if let Some(b) = self.behind.as_ref().filter(|b| b.covers(offset, end)) {
                // A straggler of the sequential reader: served, and nothing read ahead dropped.
                return Ok(b.slice(offset, end));
            }
            // Windows behind the reader are of no use any more.
            while self.next.front().is_some_and(|p| p.start + cs <= offset) {
                if let Some(p) = self.next.pop_front() {
                    p.task.abort();
                }
            }
            let next_has_it = self
                .next
                .front()
                .is_some_and(|p| p.start <= offset && offset < p.start + cs);
            if next_has_it {
                let p = self.next.pop_front().ok_or(Errno::EIO)?;
                let w = rt.block_on(p.task).map_err(|_| Errno::EIO)??;
                self.behind = self.window.replace(w);
            } else if sequential {
                self.clear();
                let start = offset / cs * cs;
                self.window = Some(fetch_now(start, (start + cs).max(end).min(meta.size))?);
            } else {
                // A random reader: just its range, and no window.
                return Ok(fetch_now(offset, end)?.slice(offset, end));
            }
            // A request across the end of the window: take the rest now.
            let w = self.window.as_mut().ok_or(Errno::EIO)?;
            if w.end < end || w.start > offset {
                *w = fetch_now(offset, end.max(w.end).min(meta.size))?;
            }
        }
        let w = self.window.as_ref().ok_or(Errno::EIO)?;
        let out = w.slice(offset, end);
        // Keep the next windows coming.
        if sequential {
            let mut from = self.next.back().map(|p| p.start + cs).unwrap_or(w.end);
            while self.next.len() < AHEAD && from < meta.size {
                let (a, b) = (from, (from + cs).min(meta.size));
                self.next.push_back(Pending {
                    start: a,
                    version,
                    task: rt.spawn(fetch(
                        engine.clone(),
                        bucket.to_string(),
                        key.to_string(),
                        a,
                        b,
                    )),
                });
                from = b;
            }
        }
        Ok(out)
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use engine::{EngineConfig, PutOptions};

    /// A sequential reader whose requests arrive slightly out of order is served from the
    /// window behind, without the windows read ahead being dropped and read again.
    #[test]
    fn stragglers_keep_the_windows_read_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EngineConfig::new(dir.path());
        cfg.chunk_size = 256 << 10;
        let e = Engine::open(cfg).unwrap();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let data: Vec<u8> = (0..(2u32 << 20)).map(|i| (i % 253) as u8).collect();
        rt.block_on(async {
            e.create_bucket("bkt").await.unwrap();
            e.put_object("bkt", "k", &data[..], PutOptions::default())
                .await
                .unwrap();
        });
        let meta = e.head_object("bkt", "k").unwrap();
        let mut ra = ReadAhead::default();
        let h = rt.handle();
        let read = |ra: &mut ReadAhead, off: u64, n: u32| {
            let got = ra.read(&e, h, "bkt", "k", &meta, off, n).unwrap();
            assert_eq!(
                &got[..],
                &data[off as usize..off as usize + n as usize],
                "at {off}"
            );
        };
        const R: u32 = 128 << 10;
        // Windows of 256 KiB; 128 KiB requests. The reader moves into the second window...
        read(&mut ra, 0, R);
        read(&mut ra, R as u64, R);
        read(&mut ra, 3 * R as u64, R);
        let ahead: Vec<u64> = ra.next.iter().map(|p| p.start).collect();
        assert_eq!(ra.window.as_ref().map(|w| w.start), Some(2 * R as u64));
        assert!(!ahead.is_empty());
        // ... and a request for the end of the first arrives late.
        read(&mut ra, R as u64, R);
        assert_eq!(ra.window.as_ref().map(|w| w.start), Some(2 * R as u64));
        let still: Vec<u64> = ra.next.iter().map(|p| p.start).collect();
        assert_eq!(still, ahead, "the windows read ahead are kept");
        // The reader goes on to the end, in order.
        let mut off = 2 * R as u64;
        while off < data.len() as u64 {
            read(&mut ra, off, R);
            off += R as u64;
        }
    }
}
