//! Write-back: commits that are visible to this process at once and durable within a window
//! that many of them share (the mount's `close`; see docs/semantics.md).
//!
//! A job runs at once against a [`LocalSnapshot`] (LMDB's committed state under this process's
//! pending changes) through a [`Recorder`], which keeps what the job read and what it wrote.
//! Its writes join the overlay that every read of this process sees; the job waits in a queue.
//! Every window (or when asked to flush) one LMDB write transaction takes the queue: each job's
//! reads are checked against the store as it is now (another process, or GC, may have changed
//! what the job saw: then the job is dropped and the next flush reports it), its writes are
//! applied, and one fully synced commit makes the whole window durable. LMDB itself is never
//! run without sync, so its integrity on power loss is what it always is.
//!
//! Readers must not see an overlay entry that a commit has already superseded: a flush names
//! its transaction id before it commits, and a snapshot that includes that transaction skips
//! the entries the flush carried.

use std::any::Any;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::ops::Bound;
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use heed::{Env, WithoutTls};

use super::lmdb::{LmdbRead, LmdbWrite, Tables};
use super::{Read, Scan, Table, Write};
use crate::error::{Error, Result};

/// Jobs queued before a flush starts without waiting for the window.
const EARLY_FLUSH: usize = 16 * 1024;
/// Jobs queued before new jobs wait for a flush (bounds the overlay's memory).
const MAX_PENDING: usize = 64 * 1024;

/// A key of the overlay: the table's index byte, then the key.
fn okey(t: Table, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(t as u8);
    k.extend_from_slice(key);
    k
}

fn table_bounds(
    t: Table,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    let lo = match from {
        Bound::Included(k) => Bound::Included(okey(t, k)),
        Bound::Excluded(k) => Bound::Excluded(okey(t, k)),
        Bound::Unbounded => Bound::Included(vec![t as u8]),
    };
    let hi = match to {
        Bound::Included(k) => Bound::Included(okey(t, k)),
        Bound::Excluded(k) => Bound::Excluded(okey(t, k)),
        Bound::Unbounded => Bound::Excluded(vec![t as u8 + 1]),
    };
    (lo, hi)
}

/// A value the overlay holds for a key (`None`: deleted), and the job that wrote it last.
#[derive(Clone, Debug)]
struct Slot {
    value: Option<Arc<[u8]>>,
    seq: u64,
}

type Map = BTreeMap<Vec<u8>, Slot>;

/// The overlay and the flush in progress.
#[derive(Default)]
struct Overlay {
    map: Arc<Map>,
    /// A flush carrying the jobs up to `.0` commits as LMDB transaction `.1`.
    inflight: Option<(u64, usize)>,
}

/// A consistent view: an LMDB snapshot, under this process's pending writes in write-back mode.
pub struct LocalSnapshot<'e> {
    base: LmdbRead<'e>,
    over: Option<Arc<Map>>,
    /// Entries of jobs up to this one are in `base` already.
    skip_upto: u64,
}

impl<'e> LocalSnapshot<'e> {
    pub(crate) fn plain(base: LmdbRead<'e>) -> LocalSnapshot<'e> {
        LocalSnapshot {
            base,
            over: None,
            skip_upto: 0,
        }
    }

    fn slot(&self, k: &[u8]) -> Option<&Slot> {
        self.over
            .as_ref()?
            .get(k)
            .filter(|s| s.seq > self.skip_upto)
    }

    fn over_range(&self, t: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Vec<(Vec<u8>, Slot)> {
        let Some(m) = &self.over else {
            return Vec::new();
        };
        if m.is_empty() {
            return Vec::new();
        }
        if let (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) =
            (from, to)
        {
            if a > b {
                return Vec::new();
            }
        }
        m.range(table_bounds(t, from, to))
            .filter(|(_, s)| s.seq > self.skip_upto)
            .map(|(k, s)| (k[1..].to_vec(), s.clone()))
            .collect()
    }
}

impl Read for LocalSnapshot<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        if self.over.is_some() {
            if let Some(s) = self.slot(&okey(table, key)) {
                return Ok(s.value.as_ref().map(|v| Cow::Owned(v.to_vec())));
            }
        }
        self.base.get(table, key)
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        let over = self.over_range(table, from, to);
        let base = self.base.range(table, from, to)?;
        if over.is_empty() {
            return Ok(base);
        }
        Ok(Box::new(Merge::new(
            base,
            over.into_iter()
                .map(|(k, s)| (k, s.value.map(|v| v.to_vec()))),
        )))
    }

    fn count(&self, table: Table) -> Result<u64> {
        let mut n = self.base.count(table)? as i64;
        for (k, s) in self.over_range(table, Bound::Unbounded, Bound::Unbounded) {
            let there = self.base.get(table, &k)?.is_some();
            match (there, s.value.is_some()) {
                (false, true) => n += 1,
                (true, false) => n -= 1,
                _ => {}
            }
        }
        Ok(n.max(0) as u64)
    }
}

/// Entries of `base` with `over`'s changes applied (both ascending; `over` wins on a tie, and
/// its `None` hides the key).
struct Merge<'t, O: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>> {
    base: std::iter::Peekable<Scan<'t>>,
    over: std::iter::Peekable<O>,
}

impl<'t, O: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>> Merge<'t, O> {
    fn new(base: Scan<'t>, over: O) -> Self {
        Merge {
            base: base.peekable(),
            over: over.peekable(),
        }
    }
}

impl<'t, O: Iterator<Item = (Vec<u8>, Option<Vec<u8>>)>> Iterator for Merge<'t, O> {
    type Item = Result<super::Pair<'t>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.base.peek(), self.over.peek()) {
                (None, None) => return None,
                (Some(Err(_)), _) => return self.base.next(),
                (Some(Ok((bk, _))), Some((ok, _))) => bk.as_ref().cmp(ok.as_slice()),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
            };
            match order {
                std::cmp::Ordering::Less => return self.base.next(),
                std::cmp::Ordering::Equal => {
                    self.base.next();
                }
                std::cmp::Ordering::Greater => {}
            }
            if let Some((k, Some(v))) = self.over.next() {
                return Some(Ok((Cow::Owned(k), Cow::Owned(v))));
            }
        }
    }
}

/// What a deferred job read, to be checked again when it commits.
#[derive(Debug)]
enum Seen {
    Get(Vec<u8>, Option<blake3::Hash>),
    Range(Rc<RefCell<SeenRange>>),
    Count(Table, u64),
}

#[derive(Debug)]
struct SeenRange {
    table: Table,
    from: Bound<Vec<u8>>,
    to: Bound<Vec<u8>>,
    /// The entries handed out, in order.
    entries: Vec<(Vec<u8>, blake3::Hash)>,
    /// The scan reached its end.
    exhausted: bool,
}

fn own(b: Bound<&[u8]>) -> Bound<Vec<u8>> {
    match b {
        Bound::Included(k) => Bound::Included(k.to_vec()),
        Bound::Excluded(k) => Bound::Excluded(k.to_vec()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

fn borrow(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}

/// Runs a deferred job over a snapshot: its reads are recorded, its writes kept aside.
struct Recorder<'s, 'e> {
    snap: &'s LocalSnapshot<'e>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    seen: RefCell<Vec<Seen>>,
}

impl<'s, 'e> Recorder<'s, 'e> {
    fn new(snap: &'s LocalSnapshot<'e>) -> Self {
        Recorder {
            snap,
            writes: BTreeMap::new(),
            seen: RefCell::new(Vec::new()),
        }
    }

    /// A read of the snapshot (not of the job's own writes), recorded.
    fn base_get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'s, [u8]>>> {
        let v = self.snap.get(table, key)?;
        self.seen
            .borrow_mut()
            .push(Seen::Get(okey(table, key), v.as_deref().map(blake3::hash)));
        Ok(v)
    }
}

/// Hands out a snapshot scan's entries and notes each one.
struct Noting<'t> {
    inner: Scan<'t>,
    note: Rc<RefCell<SeenRange>>,
}

impl<'t> Iterator for Noting<'t> {
    type Item = Result<super::Pair<'t>>;

    fn next(&mut self) -> Option<Self::Item> {
        let r = self.inner.next();
        let mut n = self.note.borrow_mut();
        match &r {
            Some(Ok((k, v))) => n.entries.push((k.to_vec(), blake3::hash(v))),
            None => n.exhausted = true,
            Some(Err(_)) => {}
        }
        r
    }
}

impl Read for Recorder<'_, '_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        if let Some(v) = self.writes.get(&okey(table, key)) {
            return Ok(v.as_deref().map(Cow::Borrowed));
        }
        self.base_get(table, key)
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        let note = Rc::new(RefCell::new(SeenRange {
            table,
            from: own(from),
            to: own(to),
            entries: Vec::new(),
            exhausted: false,
        }));
        self.seen.borrow_mut().push(Seen::Range(note.clone()));
        let base: Scan<'_> = Box::new(Noting {
            inner: self.snap.range(table, from, to)?,
            note,
        });
        let mine: Vec<(Vec<u8>, Option<Vec<u8>>)> = if self.writes.is_empty() {
            Vec::new()
        } else {
            self.writes
                .range(table_bounds(table, from, to))
                .map(|(k, v)| (k[1..].to_vec(), v.clone()))
                .collect()
        };
        if mine.is_empty() {
            return Ok(base);
        }
        Ok(Box::new(Merge::new(base, mine.into_iter())))
    }

    /// A scan bounded above, so that what it records (and is checked at the commit) ends
    /// where the prefix does.
    fn prefix(&self, table: Table, prefix: &[u8]) -> Result<Scan<'_>> {
        match super::prefix_end(prefix) {
            Some(end) => self.range(table, Bound::Included(prefix), Bound::Excluded(&end)),
            None => self.range(table, Bound::Included(prefix), Bound::Unbounded),
        }
    }

    fn count(&self, table: Table) -> Result<u64> {
        let base = self.snap.count(table)?;
        self.seen.borrow_mut().push(Seen::Count(table, base));
        let mut n = base as i64;
        let lo = vec![table as u8];
        let hi = vec![table as u8 + 1];
        for (k, v) in self.writes.range(lo..hi) {
            let there = self.base_get(table, &k[1..])?.is_some();
            match (there, v.is_some()) {
                (false, true) => n += 1,
                (true, false) => n -= 1,
                _ => {}
            }
        }
        Ok(n.max(0) as u64)
    }
}

impl Write for Recorder<'_, '_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        if key.is_empty() {
            return Err(Error::Decode("empty metadata key".into()));
        }
        self.writes.insert(okey(table, key), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let there = self.get(table, key)?.is_some();
        self.writes.insert(okey(table, key), None);
        Ok(there)
    }
}

/// What a finished job read, as it is checked at its commit.
#[derive(Debug)]
enum Check {
    Get(Vec<u8>, Option<blake3::Hash>),
    Range(SeenRange),
    Count(Table, u64),
}

impl From<Seen> for Check {
    fn from(s: Seen) -> Check {
        match s {
            Seen::Get(k, h) => Check::Get(k, h),
            Seen::Count(t, n) => Check::Count(t, n),
            // The job's scans are gone once it returned: the note has one owner left.
            Seen::Range(r) => Check::Range(match Rc::try_unwrap(r) {
                Ok(c) => c.into_inner(),
                Err(r) => {
                    let r = r.borrow();
                    SeenRange {
                        table: r.table,
                        from: r.from.clone(),
                        to: r.to.clone(),
                        entries: r.entries.clone(),
                        exhausted: r.exhausted,
                    }
                }
            }),
        }
    }
}

/// A job that ran against the overlay and waits for its commit.
struct Deferred {
    seq: u64,
    seen: Vec<Check>,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

fn table_of(b: u8) -> Option<Table> {
    Table::ALL.get(b as usize).copied()
}

impl Deferred {
    /// Whether everything the job read is still what it saw, in `w` (the store with the jobs
    /// before it applied).
    fn still_holds(&self, w: &LmdbWrite<'_, '_>) -> Result<bool> {
        for s in &self.seen {
            match s {
                Check::Get(k, h) => {
                    let Some(t) = table_of(k[0]) else {
                        return Ok(false);
                    };
                    let now = w.get(t, &k[1..])?.as_deref().map(blake3::hash);
                    if now != *h {
                        return Ok(false);
                    }
                }
                Check::Count(t, n) => {
                    if w.count(*t)? != *n {
                        return Ok(false);
                    }
                }
                Check::Range(r) => {
                    let mut it = w.range(r.table, borrow(&r.from), borrow(&r.to))?;
                    for (k, h) in &r.entries {
                        match it.next() {
                            Some(Ok((k2, v2))) if k2.as_ref() == k && blake3::hash(&v2) == *h => {}
                            Some(Err(e)) => return Err(e),
                            _ => return Ok(false),
                        }
                    }
                    if r.exhausted && it.next().is_some() {
                        return Ok(false);
                    }
                }
            }
        }
        Ok(true)
    }

    fn apply(&self, w: &mut LmdbWrite<'_, '_>) -> Result<()> {
        for (k, v) in &self.writes {
            let Some(t) = table_of(k[0]) else { continue };
            match v {
                Some(v) => w.put(t, &k[1..], v)?,
                None => {
                    w.delete(t, &k[1..])?;
                }
            }
        }
        Ok(())
    }
}

/// Takes what keeps the chunks of pending jobs safe from GC until they commit (the GC lock).
pub type HoldSource = Box<dyn Fn() -> Result<Box<dyn Any + Send>> + Send + Sync>;

#[derive(Default)]
struct Queue {
    pending: Vec<Deferred>,
    next_seq: u64,
    /// When the oldest pending job was queued.
    since: Option<Instant>,
    /// Held while jobs are pending (see [`HoldSource`]).
    hold: Option<Box<dyn Any + Send>>,
    /// Flush everything up to this job now.
    flush_to: u64,
    /// Every job up to this one has been through a commit.
    flushed_to: u64,
    /// Failures not reported by a flush yet.
    unreported: Option<String>,
    /// Jobs dropped because what they read had changed, since start.
    conflicts: u64,
    stop: bool,
}

/// The write-back state of one store.
pub(crate) struct Writeback {
    env: Env<WithoutTls>,
    tables: Tables,
    window: Duration,
    overlay: RwLock<Overlay>,
    /// Serialises the running of jobs (each sees the ones before it).
    apply: Mutex<()>,
    queue: Mutex<Queue>,
    wake: Condvar,
    done: Condvar,
    hold_source: RwLock<Option<HoldSource>>,
    flusher: Mutex<Option<JoinHandle<()>>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Writeback {
    pub(crate) fn start(env: Env<WithoutTls>, tables: Tables, window: Duration) -> Arc<Writeback> {
        let wb = Arc::new(Writeback {
            env,
            tables,
            window,
            overlay: RwLock::new(Overlay::default()),
            apply: Mutex::new(()),
            queue: Mutex::new(Queue {
                next_seq: 1,
                ..Default::default()
            }),
            wake: Condvar::new(),
            done: Condvar::new(),
            hold_source: RwLock::new(None),
            flusher: Mutex::new(None),
        });
        let me = wb.clone();
        let h = std::thread::Builder::new()
            .name("predastore-writeback".into())
            .spawn(move || me.run())
            .ok();
        *lock(&wb.flusher) = h;
        wb
    }

    pub(crate) fn set_hold_source(&self, f: HoldSource) {
        if let Ok(mut g) = self.hold_source.write() {
            *g = Some(f);
        }
    }

    /// A snapshot: LMDB now, under the overlay.
    pub(crate) fn snapshot(&self) -> Result<LocalSnapshot<'_>> {
        let ov = self.overlay.read().unwrap_or_else(|e| e.into_inner());
        let base = LmdbRead::begin(&self.env, self.tables)?;
        let skip_upto = match ov.inflight {
            Some((upto, txn)) if base.txn_id() >= txn => upto,
            _ => 0,
        };
        Ok(LocalSnapshot {
            base,
            over: Some(ov.map.clone()),
            skip_upto,
        })
    }

    /// Runs `f` now, visible to this process at once, durable with the next flush. With
    /// `hold`, the GC hold is taken for the window (the caller may have stored chunks).
    pub(crate) fn defer<R, F>(&self, mut f: F, hold: bool) -> Result<R>
    where
        F: FnMut(&mut dyn Write) -> Result<R>,
    {
        {
            let mut q = lock(&self.queue);
            while q.pending.len() >= MAX_PENDING && !q.stop {
                q.flush_to = q.next_seq;
                self.wake.notify_all();
                q = self.done.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        }
        let _a = lock(&self.apply);
        let snap = self.snapshot()?;
        let mut rec = Recorder::new(&snap);
        let r = f(&mut rec)?;
        let Recorder { writes, seen, .. } = rec;
        let seen: Vec<Check> = seen.into_inner().into_iter().map(Check::from).collect();
        drop(snap);
        if writes.is_empty() {
            return Ok(r);
        }
        // The window's GC hold is in place before the job is queued, and stays until its
        // commit: taken outside the queue's lock (it may wait for a GC), checked again under it
        // (the flusher may have taken the window, and its hold, meanwhile).
        let mut taken: Option<Box<dyn Any + Send>> = None;
        let mut q = loop {
            let q = lock(&self.queue);
            if !hold || q.hold.is_some() || taken.is_some() {
                break q;
            }
            drop(q);
            let src = self.hold_source.read().unwrap_or_else(|e| e.into_inner());
            match src.as_ref() {
                Some(src) => taken = Some(src()?),
                None => break lock(&self.queue),
            }
        };
        let seq = q.next_seq;
        q.next_seq += 1;
        {
            let mut ov = self.overlay.write().unwrap_or_else(|e| e.into_inner());
            let map = Arc::make_mut(&mut ov.map);
            for (k, v) in &writes {
                map.insert(
                    k.clone(),
                    Slot {
                        value: v.as_deref().map(Arc::from),
                        seq,
                    },
                );
            }
        }
        if q.hold.is_none() {
            q.hold = taken;
        }
        q.pending.push(Deferred { seq, seen, writes });
        q.since.get_or_insert_with(Instant::now);
        if q.pending.len() == 1 || q.pending.len() >= EARLY_FLUSH {
            self.wake.notify_all();
        }
        Ok(r)
    }

    /// Waits until every job queued so far has been through a commit; an error if a commit
    /// failed or a job was dropped since the last flush.
    pub(crate) fn flush(&self) -> Result<()> {
        self.settle();
        match lock(&self.queue).unreported.take() {
            Some(msg) => Err(Error::Io(std::io::Error::other(msg))),
            None => Ok(()),
        }
    }

    /// Waits until every job queued so far has been through a commit, leaving any failure to
    /// be reported by the next [`Writeback::flush`].
    pub(crate) fn settle(&self) {
        let mut q = lock(&self.queue);
        let target = q.next_seq - 1;
        if q.flushed_to < target {
            q.flush_to = q.flush_to.max(target);
            self.wake.notify_all();
            while q.flushed_to < target {
                q = self.done.wait(q).unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// Jobs dropped at commit because what they read had changed.
    pub(crate) fn conflicts(&self) -> u64 {
        lock(&self.queue).conflicts
    }

    /// Commits what is queued and stops the flusher.
    pub(crate) fn shutdown(&self) {
        lock(&self.queue).stop = true;
        self.wake.notify_all();
        if let Some(h) = lock(&self.flusher).take() {
            let _ = h.join();
        }
    }

    fn run(&self) {
        loop {
            let (batch, hold) = {
                let mut q = lock(&self.queue);
                loop {
                    if !q.pending.is_empty() {
                        let due = q.since.map(|t| t.elapsed() >= self.window).unwrap_or(true);
                        if q.stop
                            || due
                            || q.flush_to >= q.pending[0].seq
                            || q.pending.len() >= EARLY_FLUSH
                        {
                            break;
                        }
                        let left = self
                            .window
                            .saturating_sub(q.since.map(|t| t.elapsed()).unwrap_or_default());
                        q = self
                            .wake
                            .wait_timeout(q, left)
                            .map(|(g, _)| g)
                            .unwrap_or_else(|e| e.into_inner().0);
                    } else if q.stop {
                        return;
                    } else {
                        q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner());
                    }
                }
                q.since = None;
                (std::mem::take(&mut q.pending), q.hold.take())
            };
            let upto = batch.last().map(|d| d.seq).unwrap_or(0);
            let (dropped, outcome) = self.commit(&batch, upto);
            {
                let mut ov = self.overlay.write().unwrap_or_else(|e| e.into_inner());
                Arc::make_mut(&mut ov.map).retain(|_, s| s.seq > upto);
                ov.inflight = None;
            }
            drop(hold);
            let mut q = lock(&self.queue);
            q.flushed_to = upto;
            q.conflicts += dropped as u64;
            if let Err(msg) = outcome {
                tracing::error!("write-back commit failed: {msg}");
                q.unreported = Some(format!("write-back commit failed: {msg}"));
            } else if dropped > 0 {
                q.unreported.get_or_insert_with(|| {
                    format!(
                        "{dropped} change(s) made here were dropped: another writer changed \
                         what they were based on before they were committed"
                    )
                });
            }
            self.done.notify_all();
        }
    }

    /// One synced LMDB commit of `batch`; how many jobs were dropped.
    fn commit(&self, batch: &[Deferred], upto: u64) -> (usize, std::result::Result<(), String>) {
        let mut dropped = 0;
        let mut txn = match self.env.write_txn() {
            Ok(t) => t,
            Err(e) => return (0, Err(e.to_string())),
        };
        {
            let mut ov = self.overlay.write().unwrap_or_else(|e| e.into_inner());
            ov.inflight = Some((upto, txn.id()));
        }
        for d in batch {
            let mut w = LmdbWrite::new(&mut txn, self.tables);
            let res = match d.still_holds(&w) {
                Ok(true) => d.apply(&mut w).map(|_| true),
                Ok(false) => Ok(false),
                Err(e) => Err(e),
            };
            match res {
                Ok(true) => {}
                Ok(false) => {
                    dropped += 1;
                    tracing::warn!(
                        "write-back: a change was dropped, another writer changed what it read"
                    );
                }
                Err(e) => {
                    // Partly applied writes cannot stay: give up the whole window.
                    return (dropped, Err(e.to_string()));
                }
            }
        }
        (dropped, txn.commit().map_err(|e| e.to_string()))
    }
}
