//! Heal, scrub, garbage collection and status: the engine's maintenance calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::disks::{DiskState, ShardRead};
use crate::engine::Engine;
use crate::error::{Error, Result};
pub use crate::fsutil::fs_capacity;
use crate::kv::{Read, Table};
use crate::meta::{ChunkRecord, ChunkRef, ObjectMeta, ShardLoc};
use crate::shard::{ShardHeader, HEADER_LEN};

/// How thoroughly heal looks at shards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HealMode {
    /// Checks every shard exists with the right size (and fully verifies chunks queued for
    /// repair); rebuilds what is missing. Fast: reads no payload of healthy chunks.
    #[default]
    Heal,
    /// Reads and verifies every shard's hash; rebuilds what is missing or corrupt.
    Scrub,
}

/// Options of a heal or scrub pass.
#[derive(Clone, Default)]
pub struct HealOptions {
    /// Heal or scrub.
    pub mode: HealMode,
    /// Read at most this many bytes per second (`None`: unlimited).
    pub rate_limit: Option<u64>,
    /// Set to stop the pass; it saves where it got to.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Continue from where an interrupted pass stopped.
    pub resume: bool,
}

/// Progress of a running pass.
#[derive(Debug, Clone, Default)]
pub struct HealProgress {
    /// Chunks looked at so far.
    pub chunks_done: u64,
    /// Chunks in the store.
    pub chunks_total: u64,
    /// Bytes read so far.
    pub bytes_read: u64,
    /// Shards rewritten so far.
    pub shards_repaired: u64,
}

/// What a heal or scrub pass found and did.
#[derive(Debug, Clone, Default)]
pub struct HealReport {
    /// Chunks looked at.
    pub chunks_checked: u64,
    /// Shards looked at.
    pub shards_checked: u64,
    /// Shards found missing.
    pub shards_missing: u64,
    /// Shards found corrupt.
    pub shards_corrupt: u64,
    /// Shards rewritten.
    pub shards_repaired: u64,
    /// Bytes read from disks.
    pub bytes_read: u64,
    /// Bytes written to disks.
    pub bytes_written: u64,
    /// Chunks that could not be rebuilt (hex hashes).
    pub unrecoverable: Vec<String>,
    /// Disks formatted as replacements by this pass.
    pub disks_formatted: Vec<usize>,
    /// Disks that could not be used (index, reason).
    pub disks_refused: Vec<(usize, String)>,
    /// Wall time.
    pub elapsed: Duration,
    /// False when the pass was interrupted (resume it with `resume: true`).
    pub complete: bool,
}

/// What GC removed.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Unreferenced chunks removed.
    pub chunks_removed: u64,
    /// Bytes of volume space no record referred to (crashed or failed writes, moved shards,
    /// unused preallocation) given back to the file system.
    pub orphan_bytes_freed: u64,
    /// Volume files with nothing live left, deleted.
    pub volumes_removed: u64,
    /// Logical bytes of the chunks removed.
    pub bytes_freed: u64,
    /// Drafts of dead processes whose references were dropped.
    pub stale_drafts_released: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// The background GC of [`Engine::spawn_auto_gc`]; stops when dropped.
#[derive(Debug)]
pub struct AutoGc {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for AutoGc {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// State and capacity of one disk.
#[derive(Debug, Clone)]
pub struct DiskStatus {
    /// Position in the set.
    pub index: usize,
    /// Directory.
    pub path: std::path::PathBuf,
    /// State.
    pub state: DiskState,
    /// Capacity of its filesystem in bytes.
    pub total_bytes: u64,
    /// Free bytes on its filesystem.
    pub free_bytes: u64,
}

/// Overall state of the store.
#[derive(Debug, Clone, Default)]
pub struct StoreStatus {
    /// Every disk.
    pub disks: Vec<DiskStatus>,
    /// Buckets.
    pub buckets: u64,
    /// Objects.
    pub objects: u64,
    /// Sum of object sizes.
    pub logical_bytes: u64,
    /// Distinct chunks stored.
    pub chunks: u64,
    /// Sum of distinct chunk sizes (before erasure coding).
    pub chunk_bytes: u64,
    /// Bytes referenced by all manifests (counting repeats) over `chunk_bytes`.
    pub dedup_ratio: f64,
    /// Chunks queued for repair.
    pub repair_queue: u64,
    /// Unreferenced chunks awaiting GC.
    pub gc_candidates: u64,
    /// Store files and directories that other users may read or enter (at most 20).
    pub loose_modes: Vec<crate::private::LooseMode>,
}

const HEAL_BATCH: usize = 256;

/// How long a starved GC waits for the writers in flight (new ones held back) before it gives
/// up and lets writers in again.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

impl Engine {
    /// Runs a heal or scrub pass (see [`HealMode`]) with a progress callback.
    pub async fn heal(
        &self,
        opts: HealOptions,
        progress: Box<dyn FnMut(&HealProgress) + Send>,
    ) -> Result<HealReport> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.heal_blocking(&opts, progress)).await?
    }

    fn heal_blocking(
        &self,
        opts: &HealOptions,
        mut progress: Box<dyn FnMut(&HealProgress) + Send>,
    ) -> Result<HealReport> {
        let started = Instant::now();
        let mut rep = HealReport::default();
        let disks = &self.inner.disks;
        disks.refresh();
        for d in &disks.disks {
            match d.state() {
                DiskState::Online => {}
                DiskState::Foreign(why) => rep.disks_refused.push((d.index, why)),
                DiskState::Missing | DiskState::Unformatted => match disks.adopt(d.index) {
                    Ok(true) => rep.disks_formatted.push(d.index),
                    Ok(false) => {}
                    Err(e) => rep.disks_refused.push((d.index, e.to_string())),
                },
            }
        }
        let cursor_name = match opts.mode {
            HealMode::Heal => "heal.cursor",
            HealMode::Scrub => "scrub.cursor",
        };
        // Chunks queued for repair first, fully verified.
        let queued: Vec<([u8; 32], Option<ChunkRecord>)> = {
            let txn = self.read()?;
            let mut v = Vec::new();
            for r in txn.all(Table::Repair)? {
                let (k, _) = r?;
                if let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) {
                    let rec = match txn.get(Table::Chunks, &h)? {
                        Some(b) => Some(ChunkRecord::decode(&b)?),
                        None => None,
                    };
                    v.push((h, rec));
                }
            }
            v
        };
        for (h, rec) in queued {
            if let Some(rec) = rec {
                if rec.refs > 0 {
                    self.heal_chunk(&h, &rec, true, &mut rep);
                }
            }
            let unrecoverable = rep.unrecoverable.contains(&hex::encode(h));
            if !unrecoverable {
                self.inner.meta.committer().run_blocking(move |txn| {
                    txn.delete(Table::Repair, &h)?;
                    Ok(())
                })?;
            }
        }
        let mut cursor: Option<[u8; 32]> = None;
        if opts.resume {
            let txn = self.read()?;
            if let Some(b) = txn.get(Table::State, cursor_name.as_bytes())? {
                cursor = <[u8; 32]>::try_from(b.as_ref()).ok();
            }
        }
        let total = {
            let txn = self.read()?;
            txn.count(Table::Chunks)?
        };
        let mut prog = HealProgress {
            chunks_total: total,
            ..Default::default()
        };
        loop {
            let batch: Vec<([u8; 32], ChunkRecord)> = {
                let txn = self.read()?;
                let lower = match &cursor {
                    Some(c) => std::ops::Bound::Excluded(c.as_slice()),
                    None => std::ops::Bound::Unbounded,
                };
                let range = (lower, std::ops::Bound::Unbounded);
                let mut v = Vec::with_capacity(HEAL_BATCH);
                for r in txn.range(Table::Chunks, range.0, range.1)? {
                    let (k, b) = r?;
                    if let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) {
                        v.push((h, ChunkRecord::decode(&b)?));
                    }
                    if v.len() == HEAL_BATCH {
                        break;
                    }
                }
                v
            };
            if batch.is_empty() {
                break;
            }
            for (h, rec) in &batch {
                if rec.refs > 0 {
                    self.heal_chunk(h, rec, opts.mode == HealMode::Scrub, &mut rep);
                }
                prog.chunks_done += 1;
                prog.bytes_read = rep.bytes_read;
                prog.shards_repaired = rep.shards_repaired;
                if let Some(limit) = opts.rate_limit.filter(|l| *l > 0) {
                    let due = Duration::from_secs_f64(rep.bytes_read as f64 / limit as f64);
                    let spent = started.elapsed();
                    if due > spent {
                        std::thread::sleep(due - spent);
                    }
                }
                cursor = Some(*h);
                let cancelled = opts
                    .cancel
                    .as_ref()
                    .map(|c| c.load(Ordering::Relaxed))
                    .unwrap_or(false);
                if cancelled {
                    self.save_cursor(cursor_name, cursor)?;
                    progress(&prog);
                    rep.elapsed = started.elapsed();
                    rep.complete = false;
                    return Ok(rep);
                }
            }
            self.save_cursor(cursor_name, cursor)?;
            progress(&prog);
        }
        self.save_cursor(cursor_name, None)?;
        rep.elapsed = started.elapsed();
        rep.complete = true;
        Ok(rep)
    }

    fn save_cursor(&self, name: &'static str, c: Option<[u8; 32]>) -> Result<()> {
        self.inner.meta.committer().run_blocking(move |txn| {
            match c {
                Some(c) => txn.put(Table::State, name.as_bytes(), &c)?,
                None => {
                    txn.delete(Table::State, name.as_bytes())?;
                }
            }
            Ok(())
        })
    }

    /// Checks one chunk's shards and rewrites the missing or corrupt ones: a corrupt shard in
    /// place, a missing one appended to its disk's volume (and the record pointed at it).
    fn heal_chunk(&self, h: &[u8; 32], rec: &ChunkRecord, verify: bool, rep: &mut HealReport) {
        let codec = self.inner.codec;
        let disks = &self.inner.disks;
        let n = codec.n();
        let len = rec.len as usize;
        let s = codec.shard_len(len);
        let place = disks.placement(h, n);
        rep.chunks_checked += 1;
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
        // (shard, corrupt in place) of every shard to rewrite.
        let mut bad: Vec<(usize, bool)> = Vec::new();
        for i in 0..n {
            rep.shards_checked += 1;
            if verify || rec.missing & (1 << i) != 0 {
                match disks.read_shard(h, i, place[i], rec.loc(i), s) {
                    ShardRead::Ok(p) => {
                        rep.bytes_read += (HEADER_LEN + s) as u64;
                        shards[i] = Some(p.into());
                    }
                    ShardRead::Missing => {
                        rep.shards_missing += 1;
                        bad.push((i, false));
                    }
                    ShardRead::Corrupt => {
                        rep.bytes_read += (HEADER_LEN + s) as u64;
                        rep.shards_corrupt += 1;
                        bad.push((i, true));
                    }
                }
            } else if !disks.shard_present(place[i], rec.loc(i), s) {
                rep.shards_missing += 1;
                bad.push((i, false));
            }
        }
        if bad.is_empty() {
            return;
        }
        // Rewrites happen under the shared GC lock, on the record as it is now: GC neither
        // frees the chunk nor sweeps a region heal has written but not yet recorded.
        let _guard = match self.inner.gc_lock.shared_blocking() {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("heal cannot take the GC lock: {e}");
                return;
            }
        };
        let rec = match self.chunk_record(h) {
            Ok(r) if r.refs > 0 => r,
            _ => return,
        };
        // Gather k intact shards (heal mode has not read them yet).
        let mut intact = shards.iter().filter(|x| x.is_some()).count();
        for i in 0..n {
            if intact >= codec.k {
                break;
            }
            if shards[i].is_none() && !bad.iter().any(|(j, _)| *j == i) {
                match disks.read_shard(h, i, place[i], rec.loc(i), s) {
                    ShardRead::Ok(p) => {
                        rep.bytes_read += (HEADER_LEN + s) as u64;
                        shards[i] = Some(p.into());
                        intact += 1;
                    }
                    ShardRead::Missing => {
                        rep.shards_missing += 1;
                        bad.push((i, false));
                    }
                    ShardRead::Corrupt => {
                        rep.shards_corrupt += 1;
                        bad.push((i, true));
                    }
                }
            }
        }
        let rebuilt = codec.reconstruct(&mut shards).and_then(|_| {
            let data = codec.join(&shards, len)?;
            if blake3::hash(&data).as_bytes() != h {
                return Err(Error::Corrupt(hex::encode(h)));
            }
            Ok(())
        });
        if let Err(e) = rebuilt {
            tracing::error!(chunk = %hex::encode(h), "cannot rebuild chunk: {e}");
            rep.unrecoverable.push(hex::encode(h));
            return;
        }
        let mut still_missing = 0u64;
        let mut moved: Vec<(usize, ShardLoc)> = Vec::new();
        for &(i, corrupt) in &bad {
            let Some(payload) = shards[i].as_ref() else {
                still_missing |= 1 << i;
                continue;
            };
            let header = ShardHeader::new(h, i, codec.k, codec.m, rec.len, payload);
            if !disks.disks[place[i]].is_online() {
                still_missing |= 1 << i;
                continue;
            }
            let written = if corrupt && rec.loc(i).is_some() {
                disks.rewrite_shard_at(place[i], rec.loc(i), &header, payload)
            } else {
                disks.write_shard(place[i], &header, payload).map(|loc| {
                    moved.push((i, loc));
                })
            };
            match written {
                Ok(()) => {
                    rep.shards_repaired += 1;
                    rep.bytes_written += (HEADER_LEN + s) as u64;
                }
                Err(e) => {
                    tracing::warn!(chunk = %hex::encode(h), shard = i, "repair write failed: {e}");
                    still_missing |= 1 << i;
                }
            }
        }
        if still_missing != rec.missing || !moved.is_empty() {
            let h = *h;
            let res = self.inner.meta.committer().run_blocking(move |txn| {
                if let Some(b) = txn.get(Table::Chunks, &h)? {
                    let mut r = ChunkRecord::decode(&b)?;
                    r.missing = still_missing;
                    for (i, loc) in &moved {
                        if r.locs.len() <= *i {
                            r.locs.resize(*i + 1, ShardLoc::NONE);
                        }
                        r.locs[*i] = *loc;
                    }
                    txn.put(Table::Chunks, &h, &r.encode())?;
                }
                Ok(())
            });
            if let Err(e) = res {
                tracing::warn!("could not update chunk record: {e}");
            }
        }
    }

    /// Removes unreferenced chunks; with `sweep_orphans`, also shard and temporary files that no
    /// committed metadata refers to (left by crashed writes). Safe while other processes write.
    pub async fn gc(&self, sweep_orphans: bool) -> Result<GcReport> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.gc_blocking(sweep_orphans)).await?
    }

    fn gc_blocking(&self, sweep_orphans: bool) -> Result<GcReport> {
        let started = Instant::now();
        // Drafts of processes that died hold references nobody will drop otherwise.
        let mut rep = GcReport {
            stale_drafts_released: self.release_stale_drafts()?,
            ..Default::default()
        };
        self.collect_unreferenced(true, &mut rep)?;
        if sweep_orphans {
            self.sweep_orphans(&mut rep)?;
        }
        rep.elapsed = started.elapsed();
        Ok(rep)
    }

    /// Removes the chunks that lost their last reference, as [`Engine::gc`] does (without the
    /// orphan sweep), but only if no writer in any process holds the GC lock now: it never
    /// waits, and so never holds up a writer that comes next. Returns `None` when there was
    /// nothing to collect or the lock was busy (try again later). Blocking.
    pub fn try_collect(&self) -> Result<Option<GcReport>> {
        let started = Instant::now();
        let mut rep = GcReport {
            stale_drafts_released: self.release_stale_drafts()?,
            ..Default::default()
        };
        self.collect_unreferenced(false, &mut rep)?;
        rep.elapsed = started.elapsed();
        Ok((rep.chunks_removed + rep.stale_drafts_released > 0).then_some(rep))
    }

    /// Removes unreferenced chunks batch by batch, each under the exclusive GC lock. With
    /// `wait`, waits for the lock; without, stops as soon as there is nothing to collect or a
    /// writer holds the lock, unless writers have kept it out for `gc_starvation`: then it
    /// holds new writers back and waits (up to [`DRAIN_WAIT`]) for those in flight.
    fn collect_unreferenced(&self, wait: bool, rep: &mut GcReport) -> Result<()> {
        loop {
            let guard = if wait {
                self.inner.gc_lock.exclusive_blocking()?
            } else {
                let txn = self.read()?;
                if txn.count(Table::ZeroRefs).map(|n| n == 0)? {
                    return Ok(());
                }
                drop(txn);
                match self.try_exclusive_or_drain()? {
                    Some(g) => g,
                    None => return Ok(()),
                }
            };
            let more = self.collect_batch(rep)?;
            drop(guard);
            if !more {
                return Ok(());
            }
        }
    }

    /// The exclusive GC lock now, or after holding new writers back if writers have kept GC
    /// out for `gc_starvation` (see `lock.rs`); `None` when GC must try again later.
    fn try_exclusive_or_drain(&self) -> Result<Option<crate::lock::GcGuard>> {
        let kept_out = &self.inner.gc_kept_out_since;
        if let Some(g) = self.inner.gc_lock.try_exclusive()? {
            *kept_out.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return Ok(Some(g));
        }
        let since = *kept_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        if since.elapsed() < self.inner.cfg.gc_starvation {
            return Ok(None);
        }
        let g = self.inner.gc_lock.exclusive_draining(DRAIN_WAIT)?;
        if g.is_some() {
            *kept_out.lock().unwrap_or_else(|e| e.into_inner()) = None;
            tracing::info!(
                "gc: writers kept collection out for {:?}; new writers held back for one batch",
                since.elapsed()
            );
        }
        Ok(g)
    }

    /// Collects garbage in the background every `every` (see [`Engine::try_collect`]) until the
    /// returned handle is dropped: space of deleted and overwritten objects comes back without
    /// an `s3d gc`. Needs a tokio runtime. The task holds only a weak reference: it ends with
    /// the engine, too.
    pub fn spawn_auto_gc(&self, every: Duration) -> AutoGc {
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let engine = Engine { inner };
                match tokio::task::spawn_blocking(move || engine.try_collect()).await {
                    Ok(Ok(Some(r))) => tracing::info!(
                        "gc: {} chunks removed ({} bytes), {} stale drafts released",
                        r.chunks_removed,
                        r.bytes_freed,
                        r.stale_drafts_released
                    ),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::warn!("gc: {e}"),
                    Err(e) => tracing::warn!("gc task: {e}"),
                }
            }
        });
        AutoGc { task }
    }

    /// One batch of GC under the exclusive lock: removes up to 1024 chunks without references
    /// and frees their shards. Returns whether there may be more.
    fn collect_batch(&self, rep: &mut GcReport) -> Result<bool> {
        let candidates: Vec<[u8; 32]> = {
            let txn = self.read()?;
            let mut v = Vec::new();
            for r in txn.all(Table::ZeroRefs)? {
                let (k, _) = r?;
                if let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) {
                    v.push(h);
                }
                if v.len() == 1024 {
                    break;
                }
            }
            v
        };
        if candidates.is_empty() {
            return Ok(false);
        }
        let removed: Vec<([u8; 32], ChunkRecord)> =
            self.inner.meta.committer().run_blocking(move |txn| {
                let mut out = Vec::new();
                for h in candidates {
                    txn.delete(Table::ZeroRefs, &h)?;
                    if let Some(b) = txn.get(Table::Chunks, &h)? {
                        let r = ChunkRecord::decode(&b)?;
                        if r.refs == 0 {
                            txn.delete(Table::Chunks, &h)?;
                            txn.delete(Table::Repair, &h)?;
                            txn.delete(Table::ChunkMd5, &h)?;
                            out.push((h, r));
                        }
                    }
                }
                Ok(out)
            })?;
        for (h, r) in &removed {
            let s = self.inner.codec.shard_len(r.len as usize);
            self.inner.disks.release(h, s, &r.locs);
            rep.chunks_removed += 1;
            rep.bytes_freed += r.len as u64;
        }
        Ok(true)
    }

    /// Frees every volume region no chunk record refers to (shards of crashed or failed writes,
    /// the old place of a moved shard, unused preallocation) and deletes volumes with nothing
    /// live that no process is appending to. Holds the exclusive GC lock throughout, so no
    /// writer is between writing a shard and recording it.
    fn sweep_orphans(&self, rep: &mut GcReport) -> Result<()> {
        use std::collections::HashMap;
        let _g = self.inner.gc_lock.exclusive_blocking()?;
        let disks = &self.inner.disks;
        let n = self.inner.codec.n();
        // disk → volume → live regions (offset, len)
        let mut live: Vec<HashMap<u64, Vec<(u64, u64)>>> = vec![HashMap::new(); disks.disks.len()];
        {
            let txn = self.read()?;
            for r in txn.all(Table::Chunks)? {
                let (k, b) = r?;
                let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) else {
                    continue;
                };
                let rec = ChunkRecord::decode(&b)?;
                let region =
                    crate::volume::region_len(self.inner.codec.shard_len(rec.len as usize));
                let place = disks.placement(&h, n);
                for (i, loc) in rec.locs.iter().enumerate().take(n) {
                    if loc.is_some() {
                        live[place[i]]
                            .entry(loc.volume)
                            .or_default()
                            .push((loc.offset, region));
                    }
                }
            }
        }
        for d in &disks.disks {
            if !d.is_online() {
                continue;
            }
            for (id, path) in crate::volume::list_volumes(&d.path) {
                match live[d.index].get_mut(&id) {
                    Some(regions) => {
                        regions.sort_unstable();
                        rep.orphan_bytes_freed += crate::volume::punch_outside(&path, regions)?;
                    }
                    None => {
                        if crate::volume::remove_if_unused(&path)? {
                            rep.volumes_removed += 1;
                        } else {
                            rep.orphan_bytes_freed += crate::volume::punch_outside(&path, &[])?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Number of chunks queued for repair (cheap: one LMDB stat).
    pub fn repair_queue_len(&self) -> Result<u64> {
        let txn = self.read()?;
        txn.count(Table::Repair)
    }

    /// Disk states and capacity only (cheap, unlike [`Engine::status`]).
    pub fn disk_status(&self) -> Vec<DiskStatus> {
        self.inner.disks.refresh();
        self.inner
            .disks
            .disks
            .iter()
            .map(|d| {
                let (total_bytes, free_bytes) = fs_capacity(&d.path).unwrap_or((0, 0));
                DiskStatus {
                    index: d.index,
                    path: d.path.clone(),
                    state: d.state(),
                    total_bytes,
                    free_bytes,
                }
            })
            .collect()
    }

    /// Disk states and capacity, object and chunk counts, dedup ratio.
    pub fn status(&self) -> Result<StoreStatus> {
        let mut st = StoreStatus {
            disks: self.disk_status(),
            loose_modes: self.loose_modes(),
            ..Default::default()
        };
        let txn = self.read()?;
        st.buckets = txn.count(Table::Buckets)?;
        st.repair_queue = txn.count(Table::Repair)?;
        st.gc_candidates = txn.count(Table::ZeroRefs)?;
        let mut referenced = 0u64;
        for r in txn.all(Table::Chunks)? {
            let (_, b) = r?;
            let c = ChunkRecord::decode(&b)?;
            if c.refs > 0 {
                st.chunks += 1;
                st.chunk_bytes += c.len as u64;
                referenced += c.len as u64 * c.refs;
            }
        }
        for r in txn.all(Table::Objects)? {
            let (_, b) = r?;
            let m = ObjectMeta::decode("", &b)?;
            st.objects += 1;
            st.logical_bytes += m.size;
        }
        st.dedup_ratio = if st.chunk_bytes > 0 {
            referenced as f64 / st.chunk_bytes as f64
        } else {
            1.0
        };
        Ok(st)
    }

    /// The data dir and the disks (down to their volume files) with modes wider than
    /// 0700/0600.
    pub fn loose_modes(&self) -> Vec<crate::private::LooseMode> {
        let cfg = &self.inner.cfg;
        // data dir / disks / diskN / volumes / file: four levels below the data dir.
        let mut found = crate::private::loose_modes(std::slice::from_ref(&cfg.data_dir), 4, 20);
        // A disk outside the data dir is often a mount point that root made 0755: what the
        // store made inside it (identity, volumes) is what must be private.
        let outside: Vec<_> = cfg
            .disk_paths()
            .into_iter()
            .filter(|d| !d.starts_with(&cfg.data_dir))
            .filter_map(|d| std::fs::read_dir(d).ok())
            .flat_map(|rd| rd.flatten().map(|e| e.path()))
            .collect();
        found.extend(crate::private::loose_modes(
            &outside,
            1,
            20 - found.len().min(20),
        ));
        found
    }

    /// Reads a whole chunk by reference (for tests and tools).
    pub fn read_chunk_bytes(&self, hash: [u8; 32], len: u32) -> Result<Vec<u8>> {
        self.read_chunk(&ChunkRef { hash, len }, 0, len as usize)
            .map(|v| v.concat())
    }
}

/// What [`Engine::fsck`] found: metadata that does not add up.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Objects checked.
    pub objects: u64,
    /// Objects or parts whose manifest is missing.
    pub missing_manifests: Vec<String>,
    /// Chunks referenced by a manifest but unknown to the chunk table (hex).
    pub dangling_chunks: Vec<String>,
    /// Chunks whose stored reference count differs from the manifests' (hex, stored, counted).
    pub wrong_refcounts: Vec<(String, u64, u64)>,
    /// Manifests no object or part refers to.
    pub unreferenced_manifests: u64,
}

impl FsckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.missing_manifests.is_empty()
            && self.dangling_chunks.is_empty()
            && self.wrong_refcounts.is_empty()
            && self.unreferenced_manifests == 0
    }
}

impl Engine {
    /// Recounts every chunk reference from the manifests of objects and parts and compares with
    /// the stored counts, in one read transaction.
    pub fn fsck(&self) -> Result<FsckReport> {
        use std::collections::{BTreeMap, HashSet};
        let txn = self.read()?;
        let mut rep = FsckReport::default();
        let mut counted: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        let mut used_manifests = HashSet::new();
        let mut owners: Vec<(String, String)> = Vec::new();
        for r in txn.all(Table::Objects)? {
            let (k, b) = r?;
            let m = ObjectMeta::decode("", &b)?;
            rep.objects += 1;
            owners.push((String::from_utf8_lossy(&k).into_owned(), m.data_id));
        }
        for r in txn.all(Table::Parts)? {
            let (k, b) = r?;
            let p: crate::meta::PartRecord = rmp_serde::from_slice(&b)?;
            owners.push((String::from_utf8_lossy(&k).into_owned(), p.data_id));
        }
        // Open drafts pin chunks as manifests do.
        for r in txn.all(Table::Drafts)? {
            let (_, b) = r?;
            for c in crate::draft::pinned_chunks(&b)?
                .iter()
                .filter(|c| !c.is_hole())
            {
                *counted.entry(c.hash).or_default() += 1;
            }
        }
        for (name, data_id) in owners {
            match txn.get(Table::Manifests, data_id.as_bytes())? {
                Some(mb) => {
                    used_manifests.insert(data_id);
                    let m = crate::meta::Manifest::decode(&mb)?;
                    for c in m.chunks().iter().filter(|c| !c.is_hole()) {
                        *counted.entry(c.hash).or_default() += 1;
                    }
                }
                None => rep.missing_manifests.push(name),
            }
        }
        rep.unreferenced_manifests = txn.count(Table::Manifests)? - used_manifests.len() as u64;
        let mut stored: BTreeMap<[u8; 32], u64> = BTreeMap::new();
        for r in txn.all(Table::Chunks)? {
            let (k, b) = r?;
            if let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) {
                stored.insert(h, ChunkRecord::decode(&b)?.refs);
            }
        }
        for (h, n) in &counted {
            match stored.get(h) {
                None => rep.dangling_chunks.push(hex::encode(h)),
                Some(s) if s != n => rep.wrong_refcounts.push((hex::encode(h), *s, *n)),
                _ => {}
            }
        }
        for (h, s) in &stored {
            if *s > 0 && !counted.contains_key(h) {
                rep.wrong_refcounts.push((hex::encode(h), *s, 0));
            }
        }
        Ok(rep)
    }
}
