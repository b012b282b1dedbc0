//! Repair: heal and scrub passes over every chunk, and the queue of chunks that degraded
//! reads found damaged. Missing shards are rebuilt from the others and appended to their
//! disk; corrupt ones are rewritten in place.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shard::{ShardHeader, HEADER_LEN};
use super::shard_io::{DiskState, ShardAt, ShardRead};
use super::ChunkStore;
use crate::error::Result;
use crate::kv::{Read, Table};
use crate::meta::{ChunkRecord, ShardLoc};

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

const HEAL_BATCH: usize = 256;

impl ChunkStore {
    /// Runs a heal or scrub pass (see [`HealMode`]) with a progress callback. Blocking.
    pub(crate) fn heal(
        &self,
        opts: &HealOptions,
        mut progress: Box<dyn FnMut(&HealProgress) + Send>,
    ) -> Result<HealReport> {
        let started = Instant::now();
        let mut rep = HealReport::default();
        let disks = &self.disks;
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
                self.meta.committer().run_durable_blocking(move |txn| {
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
        self.meta.committer().run_durable_blocking(move |txn| {
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
        let codec = self.codec;
        let disks = &self.disks;
        let n = codec.n();
        let len = rec.len as usize;
        let s = codec.shard_len(len);
        let place = match disks.placement(h, rec.layout, n) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(chunk = %hex::encode(h), "not healed: {e}");
                return;
            }
        };
        rep.chunks_checked += 1;
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
        // (shard, corrupt in place) of every shard to rewrite.
        let mut bad: Vec<(usize, bool)> = Vec::new();
        for i in 0..n {
            rep.shards_checked += 1;
            if verify || rec.missing & (1 << i) != 0 {
                match disks.read_shard(place[i], ShardAt::of(h, i, rec, s), 0, s) {
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
        let _guard = match self.gc_lock.shared_blocking() {
            Ok(g) => g,
            Err(e) => {
                tracing::warn!("heal cannot take the GC lock: {e}");
                return;
            }
        };
        let placed_by = rec.layout;
        let rec = match self.chunk_record(h) {
            Ok(r) if r.refs > 0 && r.layout == placed_by => r,
            _ => return,
        };
        // Gather k intact shards (heal mode has not read them yet).
        let mut intact = shards.iter().filter(|x| x.is_some()).count();
        for i in 0..n {
            if intact >= codec.k {
                break;
            }
            if shards[i].is_none() && !bad.iter().any(|(j, _)| *j == i) {
                match disks.read_shard(place[i], ShardAt::of(h, i, &rec, s), 0, s) {
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
        if let Err(e) = self.rebuild(h, &rec, &mut shards) {
            tracing::error!(chunk = %hex::encode(h), "cannot rebuild chunk: {e}");
            rep.unrecoverable.push(hex::encode(h));
            return;
        }
        let mut still_missing = 0u64;
        let mut moved: Vec<(usize, ShardLoc)> = Vec::new();
        // In a cluster the other nodes' orphan sweeps leave new shards alone only so long.
        let deadline = self.write_limit.map(crate::meta::WriteDeadline::start);
        for &(i, corrupt) in &bad {
            let Some(payload) = shards[i].as_ref() else {
                still_missing |= 1 << i;
                continue;
            };
            let header =
                ShardHeader::new(h, i, codec.k, codec.m, rec.len, payload).encoded(rec.encoding);
            if !disks.slot_online(place[i]) {
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
            let layout = rec.layout;
            let res = self.meta.committer().run_durable_blocking(move |txn| {
                if let Some(d) = &deadline {
                    d.check()?;
                }
                if let Some(b) = txn.get(Table::Chunks, &h)? {
                    let mut r = ChunkRecord::decode(&b)?;
                    if r.layout != layout {
                        // Rebalance moved the chunk meanwhile: what was rewritten is surplus.
                        return Ok(());
                    }
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
}
