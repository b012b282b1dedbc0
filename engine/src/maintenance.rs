//! Heal, scrub, garbage collection, status and fsck: the engine's maintenance calls. The
//! chunk work itself is the chunk layer's ([`crate::chunk`]); this adds what needs objects
//! and drafts (stale drafts released before GC, reference counts recounted from manifests).

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use crate::chunk::gc::GcReport;
pub use crate::chunk::rebalance::{RebalanceOptions, RebalanceReport};
pub use crate::chunk::repair::{HealMode, HealOptions, HealProgress, HealReport};
pub use crate::chunk::shard_io::DiskState;
use crate::error::Result;
pub use crate::fsutil::fs_capacity;
use crate::kv::{Read, Table};
use crate::meta::{ChunkRecord, ChunkRef, ObjectMeta};
use crate::object::Engine;

/// Background GC ([`Engine::spawn_auto_gc`]) or orphan sweeps
/// ([`Engine::spawn_orphan_sweeps`]); stops when dropped.
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
    /// Objects (latest versions that are not delete markers).
    pub objects: u64,
    /// Sum of object sizes.
    pub logical_bytes: u64,
    /// Non-current versions (kept by versioning), delete markers not counted.
    pub noncurrent_versions: u64,
    /// Sum of the sizes of non-current versions (data they share with other versions counted
    /// once per version, as `logical_bytes` does).
    pub noncurrent_bytes: u64,
    /// Delete markers, latest or not.
    pub delete_markers: u64,
    /// Distinct chunks stored.
    pub chunks: u64,
    /// Sum of distinct chunk sizes as stored (compressed or not; before erasure coding).
    pub chunk_bytes: u64,
    /// Bytes referenced by all manifests (counting repeats) over the distinct chunks' plain
    /// bytes.
    pub dedup_ratio: f64,
    /// Distinct chunks stored compressed.
    pub compressed_chunks: u64,
    /// Bytes compression saves: of the distinct chunks, and of inline objects.
    pub compression_saved_bytes: u64,
    /// Chunks queued for repair.
    pub repair_queue: u64,
    /// Unreferenced chunks awaiting GC.
    pub gc_candidates: u64,
    /// Store files and directories that other users may read or enter (at most 20).
    pub loose_modes: Vec<crate::private::LooseMode>,
}

impl Engine {
    /// Runs a heal or scrub pass (see [`HealMode`]) with a progress callback.
    pub async fn heal(
        &self,
        opts: HealOptions,
        progress: Box<dyn FnMut(&HealProgress) + Send>,
    ) -> Result<HealReport> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.inner.chunks.heal(&opts, progress)).await?
    }

    /// Moves the chunks an older cluster layout generation placed to where the newest places
    /// them (cluster mode; nothing to do on one machine).
    pub async fn rebalance(&self, opts: RebalanceOptions) -> Result<RebalanceReport> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.inner.chunks.rebalance(&opts)).await?
    }

    /// How many chunks each layout generation placed (all generation 0 on one machine).
    pub async fn chunks_by_layout(&self) -> Result<std::collections::BTreeMap<u32, u64>> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.inner.chunks.chunks_by_layout()).await?
    }

    /// Places shards by the cluster `c` describes from now on (a member joined, is draining or
    /// was removed): new chunks by its newest layout generation. Refused when `c` does not fit
    /// this node (its disks, its codec).
    pub fn set_cluster(&self, c: &crate::ClusterShards) -> Result<()> {
        self.inner.cfg.validate_cluster(c)?;
        self.inner.chunks.disks.set_cluster(c);
        Ok(())
    }

    /// The layout generation new chunks are placed by (0 on one machine).
    pub fn current_layout(&self) -> u32 {
        self.inner.chunks.disks.current_layout()
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
            manifests_released: self.drain_releases()?,
            ..Default::default()
        };
        self.inner.chunks.collect_unreferenced(true, &mut rep)?;
        if sweep_orphans {
            self.inner.chunks.sweep_orphans(&mut rep)?;
        }
        rep.elapsed = started.elapsed();
        Ok(rep)
    }

    /// The orphan sweep of [`Engine::gc`] alone, over this node's disks. Blocking. In a
    /// cluster every node runs it on its own disks (its follower does, every half write
    /// limit): a shard is freed once it has gone unnamed for twice the write limit, so the
    /// report also says how much is waiting.
    pub fn sweep_orphans(&self) -> Result<GcReport> {
        let started = Instant::now();
        let mut rep = GcReport::default();
        self.inner.chunks.sweep_orphans(&mut rep)?;
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
            manifests_released: self.drain_releases()?,
            ..Default::default()
        };
        self.inner.chunks.collect_unreferenced(false, &mut rep)?;
        rep.elapsed = started.elapsed();
        let done = rep.chunks_removed + rep.stale_drafts_released + rep.manifests_released;
        Ok((done > 0).then_some(rep))
    }

    /// Drops the references of every large manifest let go ([`crate::REFS_PER_COMMIT`]), a
    /// transaction per piece; returns how many manifests were finished. Run by GC before it
    /// collects; safe side by side with another node's (each piece re-reads where it stands).
    /// Blocking.
    pub fn drain_releases(&self) -> Result<u64> {
        let queued: Vec<Vec<u8>> = {
            let txn = self.read()?;
            let mut v = Vec::new();
            for r in txn.all(Table::Releases)? {
                v.push(r?.0.to_vec());
            }
            v
        };
        let mut n = 0;
        for id in queued {
            // Read once (it may be large, and never changes); gone: another node finished it,
            // and an empty list just clears the entry.
            let chunks: std::sync::Arc<Vec<crate::meta::ChunkRef>> = {
                let txn = self.read()?;
                match txn.get(Table::Manifests, &id)? {
                    Some(b) => crate::meta::Manifest::decode(&b)?.chunks().to_vec(),
                    None => Vec::new(),
                }
                .into()
            };
            loop {
                let (key, chunks) = (id.clone(), chunks.clone());
                let piece = move |txn: &mut dyn crate::kv::Write| {
                    crate::meta::release_piece(txn, &key, &chunks)
                };
                if self.commit_blocking(piece)? {
                    break;
                }
            }
            n += 1;
        }
        Ok(n)
    }

    /// Collects garbage in the background every `every` (see [`Engine::try_collect`]) until the
    /// returned handle is dropped: space of deleted and overwritten objects comes back without
    /// an `s3d gc`. Needs a tokio runtime. The task holds only a weak reference: it ends with
    /// the engine, too.
    pub fn spawn_auto_gc(&self, every: Duration) -> AutoGc {
        self.spawn_every(every, Engine::try_collect, |r| {
            tracing::info!(
                "gc: {} chunks removed ({} bytes), {} stale drafts and {} large manifests released",
                r.chunks_removed,
                r.bytes_freed,
                r.stale_drafts_released,
                r.manifests_released
            )
        })
    }

    /// Sweeps this node's disks for orphaned shards every `every` (see
    /// [`Engine::sweep_orphans`]; in a cluster, every node for itself, every half write
    /// limit) until the returned handle is dropped. Needs a tokio runtime.
    pub fn spawn_orphan_sweeps(&self, every: Duration) -> AutoGc {
        let sweep = |e: &Engine| {
            let r = e.sweep_orphans()?;
            Ok((r.orphan_bytes_freed + r.volumes_removed > 0).then_some(r))
        };
        self.spawn_every(every, sweep, |r| {
            tracing::info!(
                "orphan sweep: {} bytes freed, {} volumes removed, {} bytes waiting",
                r.orphan_bytes_freed,
                r.volumes_removed,
                r.orphan_bytes_waiting
            )
        })
    }

    /// Runs `job` on a blocking thread every `every` until the handle is dropped (or the
    /// engine is gone: the task holds only a weak reference), logging what it did with `log`.
    fn spawn_every(
        &self,
        every: Duration,
        job: fn(&Engine) -> Result<Option<GcReport>>,
        log: fn(&GcReport),
    ) -> AutoGc {
        let weak = Arc::downgrade(&self.inner);
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { break };
                let engine = Engine { inner };
                match tokio::task::spawn_blocking(move || job(&engine)).await {
                    Ok(Ok(Some(r))) => log(&r),
                    Ok(Ok(None)) => {}
                    Ok(Err(e)) => tracing::warn!("background maintenance: {e}"),
                    Err(e) => tracing::warn!("background maintenance task: {e}"),
                }
            }
        });
        AutoGc { task }
    }

    /// Number of chunks queued for repair (cheap: one LMDB stat).
    pub fn repair_queue_len(&self) -> Result<u64> {
        let txn = self.read()?;
        txn.count(Table::Repair)
    }

    /// Disk states and capacity only (cheap, unlike [`Engine::status`]).
    pub fn disk_status(&self) -> Vec<DiskStatus> {
        self.inner.chunks.disks.refresh();
        self.inner
            .chunks
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
        let (mut referenced, mut plain) = (0u64, 0u64);
        for r in txn.all(Table::Chunks)? {
            let (_, b) = r?;
            let c = ChunkRecord::decode(&b)?;
            if c.refs > 0 {
                st.chunks += 1;
                st.chunk_bytes += c.len as u64;
                plain += c.plain_len as u64;
                referenced += c.plain_len as u64 * c.refs;
                if c.encoding != crate::compression::Encoding::Plain {
                    st.compressed_chunks += 1;
                    st.compression_saved_bytes += (c.plain_len as u64).saturating_sub(c.len as u64);
                }
            }
        }
        for r in txn.all(Table::Manifests)? {
            let (_, b) = r?;
            st.compression_saved_bytes += crate::meta::Manifest::saved_bytes(&b);
        }
        for r in txn.all(Table::Objects)? {
            let (_, b) = r?;
            let m = ObjectMeta::decode("", &b)?;
            if m.delete_marker {
                st.delete_markers += 1;
            } else {
                st.objects += 1;
                st.logical_bytes += m.size;
            }
        }
        for r in txn.all(Table::Versions)? {
            let (_, b) = r?;
            let m = ObjectMeta::decode("", &b)?;
            if m.delete_marker {
                st.delete_markers += 1;
            } else {
                st.noncurrent_versions += 1;
                st.noncurrent_bytes += m.size;
            }
        }
        st.dedup_ratio = if plain > 0 {
            referenced as f64 / plain as f64
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
        self.inner
            .chunks
            .read_chunk(&ChunkRef { hash, len }, 0, len as usize)
            .map(|v| v.concat())
    }
}

/// What [`Engine::fsck`] found: metadata that does not add up.
#[derive(Debug, Clone, Default)]
pub struct FsckReport {
    /// Object versions and delete markers checked.
    pub objects: u64,
    /// Objects or parts whose manifest is missing.
    pub missing_manifests: Vec<String>,
    /// Chunks referenced by a manifest but unknown to the chunk table (hex).
    pub dangling_chunks: Vec<String>,
    /// Chunks whose stored reference count differs from the manifests' (hex, stored, counted).
    pub wrong_refcounts: Vec<(String, u64, u64)>,
    /// Manifests no object or part refers to.
    pub unreferenced_manifests: u64,
    /// Non-current versions whose key has no latest version (keys).
    pub orphan_versions: Vec<String>,
}

impl FsckReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.missing_manifests.is_empty()
            && self.dangling_chunks.is_empty()
            && self.wrong_refcounts.is_empty()
            && self.unreferenced_manifests == 0
            && self.orphan_versions.is_empty()
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
        for table in [Table::Objects, Table::Versions] {
            for r in txn.all(table)? {
                let (k, b) = r?;
                let m = ObjectMeta::decode("", &b)?;
                let name = String::from_utf8_lossy(&k).into_owned();
                if table == Table::Versions {
                    // `bucket \0 key \0 sort id`: its key must have a latest version.
                    let okey = &k[..k.len().saturating_sub(17)];
                    if !txn.contains(Table::Objects, okey)? {
                        rep.orphan_versions.push(name.clone());
                    }
                }
                rep.objects += 1;
                if !m.delete_marker {
                    owners.push((name, m.data_id));
                }
            }
        }
        for r in txn.all(Table::Parts)? {
            let (k, b) = r?;
            let p: crate::meta::PartRecord = rmp_serde::from_slice(&b)?;
            owners.push((String::from_utf8_lossy(&k).into_owned(), p.data_id));
        }
        // Open drafts pin chunks as manifests do.
        for r in txn.all(Table::Drafts)? {
            let (_, b) = r?;
            for c in crate::object::draft::pinned_chunks(&b)?
                .iter()
                .filter(|c| !c.is_hole())
            {
                *counted.entry(c.hash).or_default() += 1;
            }
        }
        // A large manifest let go holds the references not dropped yet.
        let mut releasing = Vec::new();
        for r in txn.all(Table::Releases)? {
            let (k, v) = r?;
            releasing.push((k.to_vec(), crate::meta::released_so_far(&v)));
        }
        for (id, done) in releasing {
            if let Some(mb) = txn.get(Table::Manifests, &id)? {
                used_manifests.insert(String::from_utf8_lossy(&id).into_owned());
                let m = crate::meta::Manifest::decode(&mb)?;
                for c in m.chunks().iter().skip(done).filter(|c| !c.is_hole()) {
                    *counted.entry(c.hash).or_default() += 1;
                }
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
