//! Rebalance (cluster mode): moving chunks placed by an older layout generation to where the
//! newest places them, after a member joined, is draining or was removed.
//!
//! Chunk by chunk: the shards whose (member, disk) differs between the two generations, and
//! any the record knows to be missing, are copied to their new disks — read from the old
//! place, or rebuilt from any `k` others when that place is gone (a lost member) — and made
//! durable; one transaction then points the record at the new generation, provided nobody
//! changed it meanwhile; only then are the old copies freed. A chunk whose move fails stays
//! where it was, readable, for the next pass.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::shard::{ShardHeader, HEADER_LEN};
use super::shard_io::{ShardAt, ShardRead};
use super::ChunkStore;
use crate::error::{Error, Result};
use crate::kv::{Read, Table};
use crate::meta::{ChunkRecord, ShardLoc};

/// Options of a rebalance pass.
#[derive(Clone, Default)]
pub struct RebalanceOptions {
    /// Write at most this many bytes per second (`None`: unlimited).
    pub rate_limit: Option<u64>,
    /// Set to stop the pass after the chunk being moved.
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a rebalance pass did.
#[derive(Debug, Clone, Default)]
pub struct RebalanceReport {
    /// The generation chunks were moved to.
    pub to_layout: u32,
    /// Chunk records looked at.
    pub chunks_checked: u64,
    /// Chunks moved to the newest generation.
    pub chunks_moved: u64,
    /// Shards copied to a new disk.
    pub shards_moved: u64,
    /// Of those, shards rebuilt from the others (their old place could not be read).
    pub shards_rebuilt: u64,
    /// Bytes written to the new places.
    pub bytes_written: u64,
    /// Chunks that could not be moved this time (the last reason in `last_error`).
    pub chunks_failed: u64,
    /// Why the last failed chunk could not be moved.
    pub last_error: Option<String>,
    /// Chunks left on older generations (failed, unreferenced ones GC will take, or written
    /// by an older layout during the pass).
    pub chunks_left: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// False when the pass was cancelled.
    pub complete: bool,
}

const BATCH: usize = 256;

/// How one chunk's move ended.
enum Moved {
    /// Moved: shards copied, of which rebuilt, bytes written.
    Yes(u64, u64, u64),
    /// The record changed meanwhile (another move, heal, GC): left for the next pass.
    Raced,
}

impl ChunkStore {
    /// Moves every chunk placed by an older layout generation to the newest. Blocking.
    pub(crate) fn rebalance(&self, opts: &RebalanceOptions) -> Result<RebalanceReport> {
        let started = Instant::now();
        let to = self.disks.current_layout();
        let mut rep = RebalanceReport {
            to_layout: to,
            complete: true,
            ..Default::default()
        };
        let mut cursor: Option<[u8; 32]> = None;
        loop {
            let batch = self.chunk_batch(cursor)?;
            let Some((last, _)) = batch.last() else {
                break;
            };
            cursor = Some(*last);
            for (h, rec) in batch {
                rep.chunks_checked += 1;
                if rec.layout == to {
                    continue;
                }
                if rec.refs == 0 {
                    rep.chunks_left += 1;
                    continue;
                }
                match self.move_chunk(&h, &rec, to) {
                    Ok(Moved::Yes(shards, rebuilt, bytes)) => {
                        rep.chunks_moved += 1;
                        rep.shards_moved += shards;
                        rep.shards_rebuilt += rebuilt;
                        rep.bytes_written += bytes;
                    }
                    Ok(Moved::Raced) => rep.chunks_left += 1,
                    Err(e) => {
                        // The pass's report says how many and why; a member down would
                        // otherwise log every chunk it holds at every pass.
                        tracing::debug!(chunk = %hex::encode(h), "not moved to layout {to}: {e}");
                        rep.chunks_failed += 1;
                        rep.chunks_left += 1;
                        rep.last_error = Some(e.to_string());
                    }
                }
                if let Some(limit) = opts.rate_limit.filter(|l| *l > 0) {
                    let due = Duration::from_secs_f64(rep.bytes_written as f64 / limit as f64);
                    let spent = started.elapsed();
                    if due > spent {
                        std::thread::sleep(due - spent);
                    }
                }
                if opts
                    .cancel
                    .as_ref()
                    .is_some_and(|c| c.load(Ordering::Relaxed))
                {
                    rep.complete = false;
                    rep.elapsed = started.elapsed();
                    return Ok(rep);
                }
            }
        }
        rep.elapsed = started.elapsed();
        Ok(rep)
    }

    /// Chunk records after `cursor`, at most [`BATCH`].
    fn chunk_batch(&self, cursor: Option<[u8; 32]>) -> Result<Vec<([u8; 32], ChunkRecord)>> {
        chunk_batch(&self.meta, cursor)
    }

    /// How many chunk records each layout generation placed (for status and drains).
    pub(crate) fn chunks_by_layout(&self) -> Result<std::collections::BTreeMap<u32, u64>> {
        chunks_by_layout(&self.meta)
    }

    /// Moves one chunk from the generation its record names to generation `to`.
    fn move_chunk(&self, h: &[u8; 32], rec: &ChunkRecord, to: u32) -> Result<Moved> {
        let codec = self.codec;
        let n = codec.n();
        let s = codec.shard_len(rec.len as usize);
        let from = self.disks.placement(h, rec.layout, n)?;
        let dest = self.disks.placement(h, to, n)?;
        let moving: Vec<usize> = (0..n)
            .filter(|&i| from[i] != dest[i] || rec.missing & (1 << i) != 0 || !rec.loc(i).is_some())
            .collect();
        // Like heal: under the shared GC lock, so that this node's GC neither frees the chunk
        // nor sweeps the new copies before the record points at them.
        let _guard = self.gc_lock.shared_blocking()?;
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; n];
        let mut unreadable = Vec::new();
        for &i in &moving {
            match self
                .disks
                .read_shard(from[i], ShardAt::of(h, i, rec, s), 0, s)
            {
                ShardRead::Ok(p) => shards[i] = Some(p.into()),
                _ => unreadable.push(i),
            }
        }
        if !unreadable.is_empty() {
            self.rebuild_shards(h, rec, &from, &mut shards)?;
        }
        // In a cluster the other nodes' orphan sweeps leave the new copies alone only so long.
        let deadline = self.write_limit.map(crate::meta::WriteDeadline::start);
        let mut written: Vec<(usize, ShardLoc)> = Vec::with_capacity(moving.len());
        let mut bytes = 0u64;
        for &i in &moving {
            let Some(payload) = shards[i].as_deref() else {
                continue;
            };
            let header =
                ShardHeader::new(h, i, codec.k, codec.m, rec.len, payload).encoded(rec.encoding);
            match self.disks.write_shard(dest[i], &header, payload) {
                Ok(loc) => {
                    written.push((i, loc));
                    bytes += (HEADER_LEN + s) as u64;
                }
                Err(e) => {
                    self.release_written(&dest, &written, s);
                    return Err(e);
                }
            }
        }
        let (was_layout, was_locs) = (rec.layout, rec.locs.clone());
        let new = written.clone();
        let key = *h;
        let committed = self.meta.committer().run_durable_blocking(move |txn| {
            if let Some(d) = &deadline {
                d.check()?;
            }
            let Some(b) = txn.get(Table::Chunks, &key)? else {
                return Ok(false);
            };
            let mut r = ChunkRecord::decode(&b)?;
            if r.layout != was_layout || r.locs != was_locs {
                return Ok(false);
            }
            r.layout = to;
            r.locs.resize(n, ShardLoc::NONE);
            r.missing = 0;
            for (i, loc) in &new {
                r.locs[*i] = *loc;
            }
            txn.put(Table::Chunks, &key, &r.encode())?;
            Ok(true)
        });
        let committed = match committed {
            Ok(c) => c,
            Err(e) => {
                self.release_written(&dest, &written, s);
                return Err(e);
            }
        };
        if !committed {
            self.release_written(&dest, &written, s);
            return Ok(Moved::Raced);
        }
        // The record points at the new copies: the old ones are free (an unreachable member's
        // are freed by nobody: that machine is gone).
        for &i in &moving {
            if rec.loc(i).is_some() {
                self.disks.release_shard(from[i], rec.loc(i), s);
            }
        }
        let rebuilt = unreadable.len() as u64;
        Ok(Moved::Yes(written.len() as u64, rebuilt, bytes))
    }

    /// Fills every empty entry of `shards` from any `k` intact shards at their places `from`,
    /// checking the chunk against its name.
    fn rebuild_shards(
        &self,
        h: &[u8; 32],
        rec: &ChunkRecord,
        from: &[usize],
        shards: &mut [Option<Vec<u8>>],
    ) -> Result<()> {
        let codec = self.codec;
        let s = codec.shard_len(rec.len as usize);
        let mut intact = shards.iter().filter(|x| x.is_some()).count();
        for i in 0..codec.n() {
            if intact >= codec.k {
                break;
            }
            if shards[i].is_some() || rec.missing & (1 << i) != 0 {
                continue;
            }
            if let ShardRead::Ok(p) =
                self.disks
                    .read_shard(from[i], ShardAt::of(h, i, rec, s), 0, s)
            {
                shards[i] = Some(p.into());
                intact += 1;
            }
        }
        if intact < codec.k {
            return Err(Error::ReadQuorum {
                chunk: hex::encode(h),
                intact,
                needed: codec.k,
            });
        }
        self.rebuild(h, rec, shards).map(|_| ())
    }

    /// Frees copies written by a move that will not be recorded.
    fn release_written(&self, dest: &[usize], written: &[(usize, ShardLoc)], s: usize) {
        for (i, loc) in written {
            self.disks.release_shard(dest[*i], *loc, s);
        }
    }
}

/// Chunk records of `meta` after `cursor`, at most [`BATCH`].
fn chunk_batch(
    meta: &crate::kv::Store,
    cursor: Option<[u8; 32]>,
) -> Result<Vec<([u8; 32], ChunkRecord)>> {
    let txn = meta.read()?;
    let lower = match &cursor {
        Some(c) => std::ops::Bound::Excluded(c.as_slice()),
        None => std::ops::Bound::Unbounded,
    };
    let mut v = Vec::with_capacity(BATCH);
    for r in txn.range(Table::Chunks, lower, std::ops::Bound::Unbounded)? {
        let (k, b) = r?;
        if let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) {
            v.push((h, ChunkRecord::decode(&b)?));
        }
        if v.len() == BATCH {
            break;
        }
    }
    Ok(v)
}

/// How many chunk records of `meta` each layout generation placed, read in pages (for
/// `s3d cluster status` and drains, without opening an engine).
pub fn chunks_by_layout(meta: &crate::kv::Store) -> Result<std::collections::BTreeMap<u32, u64>> {
    let mut out = std::collections::BTreeMap::new();
    let mut cursor = None;
    loop {
        let batch = chunk_batch(meta, cursor)?;
        let Some((last, _)) = batch.last() else {
            return Ok(out);
        };
        cursor = Some(*last);
        for (_, rec) in batch {
            *out.entry(rec.layout).or_insert(0) += 1;
        }
    }
}
