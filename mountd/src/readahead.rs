//! Read-ahead for files nobody is writing: FUSE reads arrive in requests of at most 1 MiB, so a
//! sequential reader is served from chunk-sized windows read from the engine in one go (its
//! shards in parallel), and while it consumes one window the next is already being read in the
//! background. Random readers get just the range they ask for.
//!
//! Windows hold the engine's buffers as they are (no copy into one block); a request that falls
//! inside one buffer is answered with a slice of it.

use bytes::{Bytes, BytesMut};
use engine::{ByteRange, Engine, ObjectMeta};
use fuser::Errno;
use futures::StreamExt;

use crate::fs::errno;

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
                self.window = Some(w);
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
