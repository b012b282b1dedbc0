//! Chunk GC: chunks that lost their last reference are removed batch by batch under the
//! exclusive GC lock, and volume space no record refers to is given back.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::shard_io::ShardIo;
use super::ChunkStore;
use crate::error::Result;
use crate::kv::{Read, Table};
use crate::meta::ChunkRecord;

/// What GC removed.
#[derive(Debug, Clone, Default)]
pub struct GcReport {
    /// Unreferenced chunks removed.
    pub chunks_removed: u64,
    /// Bytes of volume space no record referred to (crashed or failed writes, moved shards,
    /// unused preallocation) given back to the file system.
    pub orphan_bytes_freed: u64,
    /// In a cluster, bytes of shards no record names that the orphan sweep saw but leaves
    /// until they have gone unnamed for twice the write limit (a write elsewhere may still
    /// commit them).
    pub orphan_bytes_waiting: u64,
    /// Volume files with nothing live left, deleted.
    pub volumes_removed: u64,
    /// Logical bytes of the chunks removed.
    pub bytes_freed: u64,
    /// Drafts of dead processes whose references were dropped.
    pub stale_drafts_released: u64,
    /// Large manifests let go (deleted or replaced objects) whose references were dropped
    /// in pieces ([`crate::REFS_PER_COMMIT`]) before collecting.
    pub manifests_released: u64,
    /// Wall time.
    pub elapsed: Duration,
}

/// Of one disk: volume → the regions `(offset, len)` chunk records name, unsorted.
pub(crate) type NamedRegions = HashMap<u64, Vec<(u64, u64)>>;

/// How long a starved GC waits for the writers in flight (new ones held back) before it gives
/// up and lets writers in again.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

impl ChunkStore {
    /// Removes unreferenced chunks batch by batch, each under the exclusive GC lock. With
    /// `wait`, waits for the lock; without, stops as soon as there is nothing to collect or a
    /// writer holds the lock, unless writers have kept it out for `gc_starvation`: then it
    /// holds new writers back and waits (up to [`DRAIN_WAIT`]) for those in flight.
    pub(crate) fn collect_unreferenced(&self, wait: bool, rep: &mut GcReport) -> Result<()> {
        loop {
            // This process's queued changes hold the GC lock until they are committed.
            self.meta.committer().settle();
            let guard = if wait {
                self.gc_lock.exclusive_blocking()?
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
        let kept_out = &self.gc_kept_out_since;
        if let Some(g) = self.gc_lock.try_exclusive()? {
            *kept_out.lock().unwrap_or_else(|e| e.into_inner()) = None;
            return Ok(Some(g));
        }
        let since = *kept_out
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        if since.elapsed() < self.gc_starvation {
            return Ok(None);
        }
        let g = self.gc_lock.exclusive_draining(DRAIN_WAIT)?;
        if g.is_some() {
            *kept_out.lock().unwrap_or_else(|e| e.into_inner()) = None;
            tracing::info!(
                "gc: writers kept collection out for {:?}; new writers held back for one batch",
                since.elapsed()
            );
        }
        Ok(g)
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
            self.meta.committer().run_durable_blocking(move |txn| {
                let mut out = Vec::new();
                for &h in &candidates {
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
            let s = self.codec.shard_len(r.len as usize);
            self.disks.release(h, r.layout, s, &r.locs);
            rep.chunks_removed += 1;
            rep.bytes_freed += r.len as u64;
        }
        Ok(true)
    }

    /// Frees every volume region no chunk record refers to (shards of crashed or failed writes,
    /// the old place of a moved shard, unused preallocation) and deletes volumes with nothing
    /// live that no process is appending to. Holds the exclusive GC lock throughout, so no
    /// writer is between writing a shard and recording it. In a cluster, where other nodes
    /// write here out of reach of that lock, time keeps the sweep and the writers apart
    /// instead (see `orphans.rs`).
    pub(crate) fn sweep_orphans(&self, rep: &mut GcReport) -> Result<()> {
        if let Some(limit) = self.write_limit {
            return self.sweep_cluster_orphans(limit, rep);
        }
        self.meta.committer().settle();
        let _g = self.gc_lock.exclusive_blocking()?;
        let live = self.live_regions()?;
        for d in &self.disks.disks {
            if !d.is_online() {
                continue;
            }
            for (id, path) in super::volume::list_volumes(&d.path) {
                match live[d.index].get(&id) {
                    Some(regions) => {
                        let mut regions = regions.clone();
                        regions.sort_unstable();
                        rep.orphan_bytes_freed += super::volume::punch_outside(&path, &regions)?;
                    }
                    None => {
                        if super::volume::remove_if_unused(&path)? {
                            rep.volumes_removed += 1;
                        } else {
                            rep.orphan_bytes_freed += super::volume::punch_outside(&path, &[])?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// For each of this node's disks (by index), the regions the chunk records name.
    pub(crate) fn live_regions(&self) -> Result<Vec<NamedRegions>> {
        let disks = &self.disks;
        let n = self.codec.n();
        let mut live: Vec<NamedRegions> = vec![HashMap::new(); disks.disks.len()];
        let txn = self.read()?;
        for r in txn.all(Table::Chunks)? {
            let (k, b) = r?;
            let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) else {
                continue;
            };
            let rec = ChunkRecord::decode(&b)?;
            let region = super::volume::region_len(self.codec.shard_len(rec.len as usize));
            let place = disks.placement(&h, rec.layout, n)?;
            for (i, loc) in rec.locs.iter().enumerate().take(n) {
                if let (true, Some(d)) = (loc.is_some(), disks.local_index(place[i])) {
                    live[d]
                        .entry(loc.volume)
                        .or_default()
                        .push((loc.offset, region));
                }
            }
        }
        Ok(live)
    }
}
