//! Files open for writing: the file as a list of chunk-sized slots over an engine draft.
//!
//! A slot is the chunk as stored (read from the engine on demand: one or more pieces, runs of
//! zeros among them stored as holes that take no space), a modified copy in memory, a copy being
//! stored in the background, or a hole. A write changes only the slots it touches (copy-on-write
//! at chunk granularity); a slot that a sequential writer fills is
//! stored at once in the background, so a large copy streams into the engine; modified slots
//! beyond the memory budget are stored early. `flush`, `fsync` and `close` store what is left and
//! commit the object in one metadata transaction; until then the previous version stays the
//! committed one, and a crash loses only what was not committed.
//!
//! The draft pins the chunks of the version the file started from (and, after each commit,
//! of the committed version), so unchanged slots stay readable however the object changes
//! meanwhile — also after the file has been unlinked while open. Chunks stored before the commit
//! are protected by the engine's write guard, held while there are any.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use engine::draft::multipart_etag;
use engine::{
    Draft, DraftCommit, DraftContent, DraftData, Engine, ObjectAttrs, PosixAttrs, StoredChunk,
    WriteGuard,
};
use fuser::Errno;
use md5::{Digest, Md5};

pub use crate::chunkbuf::buffered;
use crate::chunkbuf::Buf;
use crate::inodes::split;
use crate::seqmd5::SeqMd5;

/// Chunks one file may have in flight to the engine at a time. A sequential writer waits for
/// the oldest once this many are being stored; with two, the writer's FUSE requests stalled
/// while one core hashed MD5 and the other stored (fio, 1 GiB, 2 cores, 9 runs each: median
/// 281 MB/s at 2, 318 at 3, 311 at 4, 295 at 6; 4 was the steadiest). Stores of all files
/// together stay capped at [`STORES`].
const DEPTH: usize = 4;

/// Chunk stores running at once, all files together (each holds its chunk and its shards).
const STORES: usize = 4;

/// A counting semaphore for [`STORES`] (taken on blocking threads).
static STORE_PERMITS: (std::sync::Mutex<usize>, std::sync::Condvar) =
    (std::sync::Mutex::new(0), std::sync::Condvar::new());

/// Holds one of the [`STORES`] permits.
struct StorePermit;

impl StorePermit {
    fn take() -> StorePermit {
        let (m, cv) = &STORE_PERMITS;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        while *n >= STORES {
            n = cv.wait(n).unwrap_or_else(|e| e.into_inner());
        }
        *n += 1;
        StorePermit
    }
}

impl Drop for StorePermit {
    fn drop(&mut self) {
        let (m, cv) = &STORE_PERMITS;
        let mut n = m.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        cv.notify_one();
    }
}

/// Largest file: S3's largest object, 5 TiB.
pub const MAX_FILE_SIZE: u64 = 5 << 40;

/// One piece of a stored slot: a chunk or a hole, with its MD5 when known.
#[derive(Clone)]
struct Part {
    c: StoredChunk,
    md5: Option<[u8; 16]>,
    /// Since when a chunk stored for the next commit has waited for it; `None` once the draft
    /// pins it (committed, or pinned early: see [`OpenFile::pin_waiting`]) and for holes.
    waiting_since: Option<Instant>,
}

impl Part {
    fn len(&self) -> u64 {
        self.c.chunk_ref().len as u64
    }
}

/// One chunk of the file.
enum Slot {
    /// In the engine, as pieces in order (chunks, and holes for runs of zeros): committed (and
    /// pinned by the draft), or stored under the write guard for the next commit.
    Stored { parts: Vec<Part>, len: u64 },
    /// Modified, in memory.
    Mem(Buf),
    /// Being stored by a background task; `gen` tells its result from a stale one.
    Storing { data: Arc<Buf>, gen: u64 },
    /// Zeros (a hole) of this length.
    Hole(u64),
}

impl Slot {
    /// A slot of stored pieces; all holes make a [`Slot::Hole`].
    fn stored(parts: Vec<Part>) -> Slot {
        let len = parts.iter().map(Part::len).sum();
        if parts.iter().all(|p| p.c.is_hole()) {
            Slot::Hole(len)
        } else {
            Slot::Stored { parts, len }
        }
    }

    fn len(&self) -> u64 {
        match self {
            Slot::Stored { len, .. } => *len,
            Slot::Mem(b) => b.len() as u64,
            Slot::Storing { data, .. } => data.len() as u64,
            Slot::Hole(n) => *n,
        }
    }
}

type StoreResult = engine::Result<Vec<Part>>;

struct Inflight {
    slot: usize,
    gen: u64,
    task: tokio::task::JoinHandle<StoreResult>,
}

/// The state of a file while it is open for writing (shared by all its handles).
pub struct OpenFile {
    engine: Engine,
    rt: tokio::runtime::Handle,
    /// `bucket/key` it commits to (follows renames).
    pub path: String,
    /// Unlinked, or replaced by a rename, while open: never committed again.
    pub detached: bool,
    /// Handles open for writing.
    pub writers: usize,
    /// POSIX attributes as the file has them now (committed with the data).
    pub posix: PosixAttrs,
    /// Attributes the object had when opened (kept if it vanishes meanwhile).
    base_attrs: ObjectAttrs,
    /// When the object was first created (its crtime).
    pub created_ns: i64,
    draft: Option<Draft>,
    size: u64,
    slots: Vec<Slot>,
    starts: Vec<u64>,
    dirty: bool,
    /// MD5 of the file from its start, while no byte it has hashed has changed.
    seq: Option<SeqMd5>,
    /// Where the last write ended (the next write of a sequential writer starts there).
    write_end: u64,
    /// The end of the furthest write: past it the file holds zeros it was extended with, which
    /// a write may still fill (not hashed yet).
    written_to: u64,
    inflight: VecDeque<Inflight>,
    gen: u64,
    guard: Option<Arc<WriteGuard>>,
    chunk_size: usize,
    inline_threshold: usize,
    /// Why the last background store failed (reported by the next write, flush or fsync).
    failed: Option<Errno>,
    /// The version id of the empty version `create` made, in a versioned bucket: the first
    /// commit takes its place (a new file is one version, not an empty one and then its data).
    pub placeholder: Option<String>,
}

fn now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as i64
}

impl OpenFile {
    /// Opens `path` for writing: its current contents (none with `truncate`), pinned.
    pub fn open(
        engine: &Engine,
        rt: &tokio::runtime::Handle,
        path: &str,
        truncate: bool,
    ) -> Result<OpenFile, Errno> {
        let (b, k) = split(path);
        let (draft, base) = rt
            .block_on(engine.open_draft(b, k, !truncate))
            .map_err(|e| crate::errno::errno(&e))?;
        let cfg = engine.config();
        let now = now_ns();
        let posix = base
            .meta
            .as_ref()
            .map(|m| m.posix())
            .unwrap_or_else(|| PosixAttrs::new(engine::posix::S_IFREG | 0o644, 0, 0, now));
        let mut f = OpenFile {
            engine: engine.clone(),
            rt: rt.clone(),
            path: path.to_string(),
            detached: false,
            writers: 0,
            posix,
            base_attrs: base
                .meta
                .as_ref()
                .map(|m| m.attrs.clone())
                .unwrap_or_default(),
            created_ns: base
                .meta
                .as_ref()
                .map(|m| m.last_modified_ns)
                .unwrap_or(now),
            draft,
            size: 0,
            slots: Vec::new(),
            starts: Vec::new(),
            dirty: false,
            seq: None,
            write_end: 0,
            written_to: 0,
            inflight: VecDeque::new(),
            gen: 0,
            guard: None,
            chunk_size: cfg.chunk_size,
            inline_threshold: cfg.inline_threshold,
            failed: None,
            placeholder: None,
        };
        if !truncate {
            match base.content {
                DraftContent::Inline(d) => {
                    // Chunk-sized slots, so the file's chunks line up with an S3 put's.
                    for piece in d.chunks(f.chunk_size) {
                        f.starts.push(f.size);
                        f.size += piece.len() as u64;
                        f.slots.push(Slot::Mem(Buf::copy_of(piece)));
                    }
                }
                DraftContent::Chunks(chunks) => {
                    // Pieces are grouped into slots of at most a chunk: an object's chunks are
                    // one slot each, the pieces a slot was stored as (data and holes) one slot.
                    let mut parts: Vec<Part> = Vec::new();
                    let mut len = 0u64;
                    for r in chunks {
                        if !parts.is_empty() && len + r.len as u64 > f.chunk_size as u64 {
                            f.new_slot(Slot::stored(std::mem::take(&mut parts)));
                            f.size += len;
                            len = 0;
                        }
                        len += r.len as u64;
                        parts.push(Part {
                            c: StoredChunk::existing(r),
                            md5: None,
                            waiting_since: None,
                        });
                    }
                    if !parts.is_empty() {
                        f.new_slot(Slot::stored(parts));
                        f.size += len;
                    }
                }
            }
        } else if base.meta.as_ref().is_some_and(|m| m.size > 0) {
            f.dirty = true;
            f.touch();
        }
        if f.size == 0 {
            f.seq = Some(SeqMd5::new());
        }
        Ok(f)
    }

    /// Whether it has changes not committed yet.
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// Current size.
    pub fn size(&self) -> u64 {
        self.size
    }

    fn touch(&mut self) {
        let now = now_ns();
        self.posix.mtime_ns = now;
        self.posix.ctime_ns = now;
    }

    /// The slot holding byte `pos`, or (at the end) the last slot if it can still grow.
    fn slot_at(&self, pos: u64) -> Option<usize> {
        if pos < self.size {
            return Some(self.starts.partition_point(|s| *s <= pos) - 1);
        }
        let last = self.slots.len().checked_sub(1)?;
        (self.slots[last].len() < self.chunk_size as u64).then_some(last)
    }

    fn new_slot(&mut self, s: Slot) -> usize {
        self.starts.push(self.size);
        self.slots.push(s);
        self.slots.len() - 1
    }

    /// Frees the shards of pieces stored for this file that no commit will reference.
    fn abandon(&self, parts: Vec<Part>) {
        self.engine
            .abandon_chunks_now(parts.into_iter().map(|p| p.c).collect());
    }

    /// Bytes that take space: all but the holes (what `st_blocks` counts).
    pub fn allocated(&self) -> u64 {
        self.slots
            .iter()
            .map(|s| match s {
                Slot::Hole(_) => 0,
                Slot::Stored { parts, .. } => {
                    parts.iter().filter(|p| !p.c.is_hole()).map(Part::len).sum()
                }
                other => other.len(),
            })
            .sum()
    }

    /// The ranges `[start, end)` that hold data, in order: holes (stored ones and those not
    /// yet written) excluded, modified chunks in memory counted as data.
    pub fn data_extents(&self) -> Vec<(u64, u64)> {
        let mut out: Vec<(u64, u64)> = Vec::new();
        let mut add = |a: u64, b: u64| match out.last_mut() {
            Some((_, e)) if *e == a => *e = b,
            _ => out.push((a, b)),
        };
        for (s, start) in self.slots.iter().zip(&self.starts) {
            match s {
                Slot::Hole(_) => {}
                Slot::Stored { parts, .. } => {
                    let mut at = *start;
                    for p in parts {
                        if !p.c.is_hole() {
                            add(at, at + p.len());
                        }
                        at += p.len();
                    }
                }
                other => add(*start, start + other.len()),
            }
        }
        out
    }

    /// Makes slot `i` a modifiable copy in memory (reading it from the engine if need be).
    fn make_mem(&mut self, i: usize) -> Result<&mut Buf, Errno> {
        let replace = match &self.slots[i] {
            Slot::Mem(_) => None,
            Slot::Hole(n) => Some(Buf::zeroed(*n as usize)),
            Slot::Storing { data, .. } => Some(Buf::copy_of(data.bytes())),
            Slot::Stored { parts, len } => {
                let mut v = Buf::with_capacity(*len as usize);
                for part in parts {
                    if part.c.is_hole() {
                        v.resize(v.len() + part.len() as usize);
                        continue;
                    }
                    for p in self
                        .engine
                        .read_stored_chunk(&part.c, 0, part.len() as usize)
                        .map_err(|e| crate::errno::errno(&e))?
                    {
                        v.extend(&p);
                    }
                }
                Some(v)
            }
        };
        if let Some(b) = replace {
            if let Slot::Stored { parts, .. } = std::mem::replace(&mut self.slots[i], Slot::Mem(b))
            {
                self.abandon(parts);
            }
        }
        match &mut self.slots[i] {
            Slot::Mem(b) => Ok(b),
            _ => Err(Errno::EIO),
        }
    }

    /// Extends the file with zeros up to `new_size`.
    fn grow(&mut self, new_size: u64) -> Result<(), Errno> {
        let cs = self.chunk_size as u64;
        while self.size < new_size {
            let need = new_size - self.size;
            let last = self.slots.len().checked_sub(1);
            match last {
                Some(l) if self.slots[l].len() < cs => {
                    let ext = (cs - self.slots[l].len()).min(need);
                    if let Slot::Hole(n) = &mut self.slots[l] {
                        *n += ext;
                    } else {
                        let b = self.make_mem(l)?;
                        let n = b.len() + ext as usize;
                        b.resize(n);
                    }
                    self.size += ext;
                }
                _ => {
                    let ext = cs.min(need);
                    self.new_slot(Slot::Hole(ext));
                    self.size += ext;
                }
            }
        }
        Ok(())
    }

    /// Writes `data` at `off`.
    pub fn write(&mut self, off: u64, data: &[u8]) -> Result<(), Errno> {
        let end = off
            .checked_add(data.len() as u64)
            .filter(|e| *e <= MAX_FILE_SIZE)
            .ok_or(Errno::EFBIG)?;
        self.reap();
        if self.failed.is_some() {
            // A background store failed (a full disk, say): try again before taking more data,
            // and report the failure to this writer if it persists.
            self.failed = None;
            self.spill()?;
        }
        // A sequential writer (one that goes on where it stopped, or appends) has its chunks
        // stored as it fills them, in the background.
        let sequential = off == self.size || off == self.write_end;
        if self.seq.as_ref().is_some_and(|h| off < h.covered()) {
            // Changes bytes already hashed.
            self.seq = None;
        }
        self.written_to = self.written_to.max(end);
        if off > self.size {
            self.grow(off)?;
        }
        let cs = self.chunk_size;
        let mut pos = off;
        let mut rest = data;
        while !rest.is_empty() {
            let i = match self.slot_at(pos) {
                Some(i) => i,
                None => self.new_slot(Slot::Mem(Buf::with_capacity(cs))),
            };
            let start = self.starts[i];
            let within = (pos - start) as usize;
            let slot_len = self.slots[i].len() as usize;
            let cap = if i + 1 == self.slots.len() {
                slot_len.max(cs)
            } else {
                slot_len
            };
            let n = (cap - within).min(rest.len());
            let b = self.make_mem(i)?;
            b.write_at(within, &rest[..n]);
            let full = b.len() >= cs && within + n == b.len();
            pos += n as u64;
            rest = &rest[n..];
            if pos > self.size {
                self.size = pos;
            }
            if sequential && full {
                self.start_store(i)?;
            }
        }
        debug_assert_eq!(pos, end);
        self.write_end = end;
        self.dirty = true;
        self.touch();
        Ok(())
    }

    /// Truncates (or extends with zeros) to `new_size`.
    pub fn truncate(&mut self, new_size: u64) -> Result<(), Errno> {
        if new_size > MAX_FILE_SIZE {
            return Err(Errno::EFBIG);
        }
        self.reap();
        if new_size >= self.size {
            // Zeros past the end: hashed once written over, or the commit does without.
            self.grow(new_size)?;
        } else if new_size == 0 {
            for s in std::mem::take(&mut self.slots) {
                if let Slot::Stored { parts, .. } = s {
                    self.abandon(parts);
                }
            }
            self.starts.clear();
            self.size = 0;
            self.written_to = 0;
            self.seq = Some(SeqMd5::new());
        } else {
            let i = self.starts.partition_point(|s| *s < new_size) - 1;
            for s in self.slots.drain(i + 1..).collect::<Vec<_>>() {
                if let Slot::Stored { parts, .. } = s {
                    self.abandon(parts);
                }
            }
            self.starts.truncate(i + 1);
            let cut = new_size - self.starts[i];
            if cut < self.slots[i].len() {
                if let Slot::Hole(n) = &mut self.slots[i] {
                    *n = cut;
                } else {
                    self.make_mem(i)?.resize(cut as usize);
                }
            }
            self.size = new_size;
            self.written_to = self.written_to.min(new_size);
            if self.seq.as_ref().is_some_and(|h| new_size < h.covered()) {
                self.seq = None;
            }
        }
        self.dirty = true;
        self.touch();
        Ok(())
    }

    /// Reads up to `len` bytes at `off`.
    pub fn read(&self, off: u64, len: u32) -> Result<Vec<u8>, Errno> {
        let end = off.saturating_add(len as u64).min(self.size);
        if off >= end {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity((end - off) as usize);
        let mut i = self.starts.partition_point(|s| *s <= off) - 1;
        let mut pos = off;
        while pos < end {
            let start = self.starts[i];
            let a = (pos - start) as usize;
            let b = ((end - start).min(self.slots[i].len())) as usize;
            match &self.slots[i] {
                Slot::Mem(buf) => out.extend_from_slice(&buf.bytes()[a..b]),
                Slot::Storing { data, .. } => out.extend_from_slice(&data.bytes()[a..b]),
                Slot::Hole(_) => out.resize(out.len() + (b - a), 0),
                Slot::Stored { parts, .. } => {
                    let mut at = 0usize;
                    for part in parts {
                        let n = part.len() as usize;
                        let (lo, hi) = (a.max(at), b.min(at + n));
                        if lo < hi {
                            if part.c.is_hole() {
                                out.resize(out.len() + (hi - lo), 0);
                            } else {
                                let got = self
                                    .engine
                                    .read_stored_chunk(&part.c, lo - at, hi - at)
                                    .map_err(|e| crate::errno::errno(&e))?;
                                for p in got {
                                    out.extend_from_slice(&p);
                                }
                            }
                        }
                        at += n;
                    }
                }
            }
            pos = start + b as u64;
            i += 1;
        }
        Ok(out)
    }

    fn ensure_guard(&mut self) -> Result<Arc<WriteGuard>, Errno> {
        if let Some(g) = &self.guard {
            return Ok(g.clone());
        }
        let g = Arc::new(
            self.rt
                .block_on(self.engine.write_guard())
                .map_err(|e| crate::errno::errno(&e))?,
        );
        self.guard = Some(g.clone());
        Ok(g)
    }

    /// Starts storing slot `i` (if it is in memory) in the background.
    fn start_store(&mut self, i: usize) -> Result<(), Errno> {
        let guard = self.ensure_guard()?;
        while self.inflight.len() >= DEPTH {
            self.wait_one();
        }
        let data = match std::mem::replace(&mut self.slots[i], Slot::Hole(0)) {
            Slot::Mem(b) => Arc::new(b),
            other => {
                self.slots[i] = other;
                return Ok(());
            }
        };
        self.gen += 1;
        let gen = self.gen;
        self.slots[i] = Slot::Storing {
            data: data.clone(),
            gen,
        };
        // The file's MD5 hashes the slot beside the store if it has got into the slot (up to
        // the furthest write). Slots it does not hash whole get an MD5 of their own, for a
        // multipart-style ETag.
        let (start, end) = (self.starts[i], self.starts[i] + data.len() as u64);
        let mut want_md5 = true;
        if let Some(h) = &mut self.seq {
            let (c, upto) = (h.covered(), end.min(self.written_to));
            if start <= c && c < upto {
                let range = (c - start) as usize..(upto - start) as usize;
                if !h.push(data.clone(), range) {
                    self.seq = None;
                }
            }
            want_md5 = self.seq.as_ref().is_none_or(|h| h.covered() < end);
        }
        let engine = self.engine.clone();
        // The bucket's setting now (a bucket gone meanwhile fails the commit anyway).
        let compression = engine
            .compression_of(split(&self.path).0)
            .unwrap_or(engine.config().compression);
        let task = self.rt.spawn_blocking(move || {
            let _permit = StorePermit::take();
            let started = Instant::now();
            let pieces = engine.store_draft_data(&guard, compression, data.bytes())?;
            let mut at = 0usize;
            Ok(pieces
                .into_iter()
                .map(|c| {
                    let n = c.chunk_ref().len as usize;
                    let md5 = want_md5.then(|| match c.is_hole() {
                        true => engine::draft::zeros_md5(n as u32),
                        false => Md5::digest(&data.bytes()[at..at + n]).into(),
                    });
                    at += n;
                    let waiting_since = (!c.is_hole()).then_some(started);
                    Part {
                        c,
                        md5,
                        waiting_since,
                    }
                })
                .collect())
        });
        self.inflight.push_back(Inflight { slot: i, gen, task });
        Ok(())
    }

    fn apply(&mut self, slot: usize, gen: u64, r: Result<StoreResult, tokio::task::JoinError>) {
        let current =
            matches!(self.slots.get(slot), Some(Slot::Storing { gen: g, .. }) if *g == gen);
        let failure = match r {
            Ok(Ok(parts)) if current => {
                self.slots[slot] = Slot::stored(parts);
                return;
            }
            Ok(Ok(parts)) => {
                self.abandon(parts);
                return;
            }
            Ok(Err(e)) => {
                self.failed = Some(crate::errno::errno(&e));
                e.to_string()
            }
            Err(e) => {
                self.failed = Some(Errno::EIO);
                e.to_string()
            }
        };
        tracing::warn!(
            "storing a chunk of {} failed (retried at commit): {failure}",
            self.path
        );
        // The data goes back to memory; the commit tries again and reports a second failure.
        if current {
            if let Slot::Storing { data, .. } = &self.slots[slot] {
                let b = Buf::copy_of(data.bytes());
                self.slots[slot] = Slot::Mem(b);
            }
        }
    }

    fn wait_one(&mut self) {
        if let Some(f) = self.inflight.pop_front() {
            let r = self.rt.block_on(f.task);
            self.apply(f.slot, f.gen, r);
        }
    }

    /// Applies the results of background stores that have finished.
    fn reap(&mut self) {
        let mut i = 0;
        while i < self.inflight.len() {
            if self.inflight[i].task.is_finished() {
                if let Some(f) = self.inflight.remove(i) {
                    let r = self.rt.block_on(f.task);
                    self.apply(f.slot, f.gen, r);
                }
            } else {
                i += 1;
            }
        }
    }

    /// Stores every modified slot held in memory and waits until they are stored (under memory
    /// pressure: the writer that finds the budget exceeded pays for it). Still committed only
    /// on flush, fsync or close. Fails with the errno of a store that failed (its data stays in
    /// memory, to be stored again).
    pub fn spill(&mut self) -> Result<(), Errno> {
        self.reap();
        for i in 0..self.slots.len() {
            if let Slot::Mem(_) = &self.slots[i] {
                self.start_store(i)?;
            }
        }
        while !self.inflight.is_empty() {
            self.wait_one();
        }
        match self.failed {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Makes bytes `[off, off + len)` (within the file) zeros, as `fallocate`'s
    /// `PUNCH_HOLE` and `ZERO_RANGE` do: slots wholly inside become holes (their space is
    /// freed once committed), partly covered ones are zeroed in memory (their runs of zeros
    /// become holes when stored).
    pub fn zero_range(&mut self, off: u64, len: u64) -> Result<(), Errno> {
        self.reap();
        let end = off.saturating_add(len).min(self.size);
        if off >= end {
            return Ok(());
        }
        let mut i = self.starts.partition_point(|s| *s <= off) - 1;
        while i < self.slots.len() && self.starts[i] < end {
            let start = self.starts[i];
            let slen = self.slots[i].len();
            let (a, b) = (off.max(start) - start, end.min(start + slen) - start);
            if a == 0 && b == slen {
                // A store in flight for the slot finds it changed and abandons its result.
                if let Slot::Stored { parts, .. } =
                    std::mem::replace(&mut self.slots[i], Slot::Hole(slen))
                {
                    self.abandon(parts);
                }
            } else if !matches!(self.slots[i], Slot::Hole(_)) {
                self.make_mem(i)?.bytes_mut()[a as usize..b as usize].fill(0);
            }
            i += 1;
        }
        if self.seq.as_ref().is_some_and(|h| off < h.covered()) {
            self.seq = None;
        }
        self.dirty = true;
        self.touch();
        Ok(())
    }

    /// Commits the file as its object if it changed (unless detached). With `keep`, the file
    /// stays open for more changes.
    pub fn commit(&mut self, keep: bool) -> Result<(), Errno> {
        self.reap();
        if !self.dirty || self.detached {
            return Ok(());
        }
        // Pieces per slot, to give each slot its committed pieces back.
        let mut counts: Vec<usize> = Vec::new();
        let (etag, data, part_sizes) = if self.size as usize <= self.inline_threshold {
            let bytes = self.read(0, self.size as u32)?;
            let etag = hex::encode(Md5::digest(&bytes));
            // Everything in one slot in memory: nothing of it needs a pin any more.
            while let Some(f) = self.inflight.pop_front() {
                let r = self.rt.block_on(f.task);
                if let Ok(Ok(parts)) = r {
                    self.abandon(parts);
                }
            }
            for s in std::mem::take(&mut self.slots) {
                if let Slot::Stored { parts, .. } = s {
                    self.abandon(parts);
                }
            }
            self.starts.clear();
            if !bytes.is_empty() {
                self.starts.push(0);
                self.slots.push(Slot::Mem(Buf::copy_of(&bytes)));
            }
            (etag, DraftData::Inline(bytes), Vec::new())
        } else {
            self.failed = None;
            for i in 0..self.slots.len() {
                if matches!(self.slots[i], Slot::Mem(_)) {
                    self.start_store(i)?;
                }
            }
            while !self.inflight.is_empty() {
                self.wait_one();
            }
            let mut chunks: Vec<(StoredChunk, Option<[u8; 16]>)> = Vec::new();
            for s in &self.slots {
                match s {
                    Slot::Stored { parts, .. } => {
                        counts.push(parts.len());
                        chunks.extend(parts.iter().map(|p| (p.c.clone(), p.md5)));
                    }
                    // Holes take no space: `truncate -s 100G` stores nothing.
                    Slot::Hole(n) => {
                        counts.push(1);
                        chunks.push((StoredChunk::hole(*n as u32), None));
                    }
                    // A store failed: its data is back in memory; report the error.
                    _ => return Err(self.failed.unwrap_or(Errno::EIO)),
                }
            }
            // The file's MD5 if it has hashed the whole file (not when part of it was written
            // out of order, or is zeros never written).
            let whole = match &self.seq {
                Some(h) if h.covered() == self.size => h.snapshot(),
                _ => None,
            };
            let (etag, part_sizes) = match whole {
                Some(h) => (hex::encode(h.finalize()), Vec::new()),
                None => {
                    let missing: Vec<StoredChunk> = chunks
                        .iter()
                        .filter(|(_, m)| m.is_none())
                        .map(|(c, _)| c.clone())
                        .collect();
                    let mut found = self
                        .engine
                        .chunk_md5s(&missing)
                        .map_err(|e| crate::errno::errno(&e))?
                        .into_iter();
                    for (_, m) in chunks.iter_mut() {
                        if m.is_none() {
                            *m = found.next();
                        }
                    }
                    let md5s: Vec<[u8; 16]> = chunks.iter().filter_map(|(_, m)| *m).collect();
                    if md5s.len() == 1 {
                        // One chunk: its MD5 is the body's.
                        (hex::encode(md5s[0]), Vec::new())
                    } else {
                        let sizes = chunks
                            .iter()
                            .map(|(c, _)| c.chunk_ref().len as u64)
                            .collect();
                        (multipart_etag(&md5s), sizes)
                    }
                }
            };
            (etag, DraftData::Chunks(chunks), part_sizes)
        };
        // What the slots hold once the commit is through (nothing, for an inline commit).
        let committed: Vec<(StoredChunk, Option<[u8; 16]>)> = match &data {
            DraftData::Chunks(c) => c.clone(),
            DraftData::Inline(_) => Vec::new(),
        };
        let (b, k) = split(&self.path);
        let posix = self.posix;
        let base_attrs = self.base_attrs.clone();
        let key = k.to_string();
        let attrs = Box::new(move |old: Option<&engine::ObjectMeta>| {
            let mut a = old
                .map(|m| m.attrs.clone())
                .unwrap_or_else(|| base_attrs.clone());
            a.posix = Some(posix);
            // New contents: what described the old ones goes.
            a.checksums.clear();
            engine::posix::contents_changed(&mut a.user_metadata);
            if a.content_type.is_none() {
                a.content_type = Some(
                    mime_guess::from_path(&key)
                        .first_or_octet_stream()
                        .essence_str()
                        .to_string(),
                );
            }
            a
        });
        let (b, k) = (b.to_string(), k.to_string());
        let mut draft = self.draft.take();
        let res = self.rt.block_on(self.engine.commit_draft(
            &mut draft,
            &b,
            &k,
            data,
            DraftCommit {
                etag,
                part_sizes,
                attrs,
                replaces: self.placeholder.clone(),
            },
            keep,
        ));
        self.draft = draft;
        match res {
            Ok(_) => {
                self.placeholder = None;
                let mut pieces = committed.into_iter();
                for (s, n) in self.slots.iter_mut().zip(counts) {
                    let parts = pieces
                        .by_ref()
                        .take(n)
                        .map(|(c, md5)| Part {
                            c: StoredChunk::existing(c.chunk_ref()),
                            md5,
                            waiting_since: None,
                        })
                        .collect();
                    *s = Slot::stored(parts);
                }
                self.dirty = false;
                if self.inflight.is_empty() {
                    self.guard = None;
                }
                Ok(())
            }
            Err(e) => Err(crate::errno::errno(&e)),
        }
    }

    /// Makes the draft pin every chunk stored for the next commit once one of them has waited
    /// `longer_than` (a cluster bounds how long a write may hold shards before a commit names
    /// them: [`engine::EngineConfig::write_limit`]). The file's contents do not change; a
    /// failure is logged and tried again at the next call, the commit still to come.
    pub fn pin_waiting(&mut self, longer_than: Duration) {
        self.reap();
        let due = self.slots.iter().any(|s| match s {
            Slot::Stored { parts, .. } => parts
                .iter()
                .any(|p| p.waiting_since.is_some_and(|t| t.elapsed() >= longer_than)),
            _ => false,
        });
        if !due || self.detached {
            return;
        }
        let waiting: Vec<StoredChunk> = self
            .slots
            .iter()
            .filter_map(|s| match s {
                Slot::Stored { parts, .. } => Some(parts),
                _ => None,
            })
            .flatten()
            .filter(|p| p.waiting_since.is_some())
            .map(|p| p.c.clone())
            .collect();
        let n = waiting.len();
        let mut draft = self.draft.take();
        let res = self
            .rt
            .block_on(self.engine.pin_draft_chunks(&mut draft, waiting));
        self.draft = draft;
        match res {
            Ok(pinned) => {
                let mut pinned = pinned.into_iter();
                for s in self.slots.iter_mut() {
                    if let Slot::Stored { parts, .. } = s {
                        for p in parts.iter_mut().filter(|p| p.waiting_since.is_some()) {
                            if let Some(c) = pinned.next() {
                                p.c = c;
                                p.waiting_since = None;
                            }
                        }
                    }
                }
                if self.inflight.is_empty() {
                    self.guard = None;
                }
                tracing::debug!(
                    "{}: {n} chunks stored for the next commit pinned",
                    self.path
                );
            }
            Err(e) => tracing::warn!(
                "{}: chunks stored for the next commit not pinned (tried again later): {e}",
                self.path
            ),
        }
    }

    /// Gives up everything not committed and releases the draft (the last writer is gone, or
    /// the file was detached).
    pub fn close(&mut self) {
        while let Some(f) = self.inflight.pop_front() {
            if let Ok(Ok(parts)) = self.rt.block_on(f.task) {
                self.abandon(parts);
            }
        }
        for s in std::mem::take(&mut self.slots) {
            if let Slot::Stored { parts, .. } = s {
                self.abandon(parts);
            }
        }
        self.starts.clear();
        if let Some(d) = self.draft.take() {
            self.engine.close_draft(d);
        }
        self.guard = None;
    }
}

impl Drop for OpenFile {
    fn drop(&mut self) {
        self.close();
    }
}
