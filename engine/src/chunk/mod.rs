//! The chunk layer: content-addressed chunks, erasure-coded into shards over the disks.
//!
//! [`ChunkStore`] is everything below objects: the codec ([`erasure`]), placement and the disk
//! set ([`disks`]), shard I/O for one disk behind the [`shard_io::ShardIo`] trait (the local
//! implementation is [`local`], over the volume files of [`volume`]), verification ([`shard`]
//! headers), degraded reads and the repair queue ([`read`], [`repair`]), chunk GC ([`gc`]),
//! and in a cluster the moves between layout generations ([`rebalance`]).
//! Chunk records live in the metadata store ([`crate::kv`]); the object layer takes references
//! to chunks in its own transactions through [`reference`].

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::{Durability, EngineConfig};
use crate::error::{Error, Result};
use crate::format::{FormatInfo, FORMAT_VERSION};
use crate::kv::{Read, Table, Write};
use crate::lock::GcLock;
use crate::meta::{chunk_known, incref, new_id, ChunkRecord, ChunkRef, FreshShards};

pub(crate) mod decoded;
pub(crate) mod disks;
pub(crate) mod erasure;
pub(crate) mod gc;
pub(crate) mod hedge;
pub(crate) mod hole;
pub(crate) mod local;
pub(crate) mod orphans;
pub mod placement;
pub(crate) mod read;
pub(crate) mod rebalance;
pub mod remote;
pub(crate) mod repair;
pub(crate) mod shard;
pub(crate) mod shard_io;
pub(crate) mod volume;
pub(crate) mod write;

use disks::DiskSet;
use erasure::Codec;

pub use hole::{zero_runs, HOLE_PAGE, MIN_HOLE};

/// The chunks of one data directory: its disks, its codec, and the chunk records in the
/// metadata store. Shared (behind an `Arc`) by every engine handle.
pub(crate) struct ChunkStore {
    pub(crate) disks: DiskSet,
    pub(crate) codec: Codec,
    meta: Arc<crate::kv::Store>,
    /// Writers hold it shared from storing a chunk until their commit references it; GC
    /// holds it exclusive (see `lock.rs`).
    pub(crate) gc_lock: GcLock,
    /// Since when background GC has found the GC lock taken by writers, try after try.
    gc_kept_out_since: std::sync::Mutex<Option<Instant>>,
    chunk_size: usize,
    pipeline_depth: usize,
    gc_starvation: Duration,
    /// Compressed chunks read lately, decompressed.
    decoded: decoded::DecodedCache,
    /// Which remote disks reads pass over for being slow, and when to hedge a read.
    pub(crate) hedge: hedge::Hedge,
    /// In a cluster, how long a write may hold shards before its commit names them
    /// ([`EngineConfig::write_limit`]); `None` on one machine.
    pub(crate) write_limit: Option<Duration>,
}

impl ChunkStore {
    /// Opens the disks of the data directory `cfg` describes, formatting a new set (identity
    /// files, `format.json`) on first use and refusing a set formatted for another layout.
    pub(crate) fn open(cfg: &EngineConfig, meta: Arc<crate::kv::Store>) -> Result<ChunkStore> {
        let fsync = cfg.durability == Durability::Fsync;
        let policy = volume::WritePolicy {
            fsync,
            direct: cfg.direct_io,
            cache_writes: cfg.cache_writes,
        };
        let disk_paths = cfg.disk_paths();
        let info = match FormatInfo::load(&cfg.data_dir)? {
            Some(info) => {
                if info.data_shards != cfg.data_shards
                    || info.parity_shards != cfg.parity_shards
                    || info.disks != disk_paths.len()
                {
                    return Err(Error::Config(format!(
                        "data directory was formatted for {}+{} shards over {} disks, \
                         configuration asks for {}+{} over {}",
                        info.data_shards,
                        info.parity_shards,
                        info.disks,
                        cfg.data_shards,
                        cfg.parity_shards,
                        disk_paths.len()
                    )));
                }
                if info.format_version < FORMAT_VERSION {
                    // Every older version this build reads is a subset of the current one.
                    let info = FormatInfo {
                        format_version: FORMAT_VERSION,
                        ..info
                    };
                    info.store(&cfg.data_dir, fsync)?;
                    tracing::info!("data directory upgraded to format version {FORMAT_VERSION}");
                    info
                } else {
                    info
                }
            }
            None => {
                let info = FormatInfo {
                    format_version: FORMAT_VERSION,
                    set_id: new_id(),
                    data_shards: cfg.data_shards,
                    parity_shards: cfg.parity_shards,
                    disks: disk_paths.len(),
                };
                let set = DiskSet::open(&disk_paths, &info.set_id, policy);
                set.format_all()?;
                info.store(&cfg.data_dir, fsync)?;
                info
            }
        };
        let disks = DiskSet::open(&disk_paths, &info.set_id, policy);
        if let Some(c) = &cfg.cluster {
            disks.set_cluster(c);
        }
        Ok(ChunkStore {
            disks,
            codec: Codec {
                k: cfg.data_shards,
                m: cfg.parity_shards,
            },
            meta,
            gc_lock: GcLock::new(&cfg.data_dir),
            gc_kept_out_since: std::sync::Mutex::new(None),
            chunk_size: cfg.chunk_size,
            pipeline_depth: cfg.pipeline_depth,
            gc_starvation: cfg.gc_starvation,
            decoded: decoded::DecodedCache::default(),
            hedge: hedge::Hedge::default(),
            write_limit: cfg.cluster.as_ref().map(|_| cfg.write_limit),
        })
    }

    /// A read transaction on the metadata store (for the chunk records).
    fn read(&self) -> Result<crate::kv::Snapshot<'_>> {
        self.meta.read()
    }

    /// Every chunk record (for tests and tools): hash → record.
    pub(crate) fn records(&self) -> Result<BTreeMap<[u8; 32], ChunkRecord>> {
        let txn = self.read()?;
        let mut out = BTreeMap::new();
        for r in txn.all(Table::Chunks)? {
            let (k, v) = r?;
            if let Ok(h) = <[u8; 32]>::try_from(k.as_ref()) {
                out.insert(h, ChunkRecord::decode(&v)?);
            }
        }
        Ok(out)
    }

    /// Where each shard of a chunk is, or `None` for a shard known to be missing.
    pub(crate) fn shard_locations(&self, hash: &[u8; 32]) -> Result<Vec<Option<ShardPlace>>> {
        let rec = self.chunk_record(hash)?;
        let s = self.codec.shard_len(rec.len as usize);
        let place = self.disks.placement(hash, rec.layout, self.codec.n())?;
        Ok((0..self.codec.n())
            .map(|i| {
                let loc = rec.loc(i);
                loc.is_some().then(|| ShardPlace {
                    disk: place[i],
                    // A shard on another node: its volume's name, on that node.
                    volume: match self.disks.local_index(place[i]) {
                        Some(d) => self.disks.disks[d].volume_path(loc.volume),
                        None => volume::volume_path(std::path::Path::new(""), loc.volume),
                    },
                    offset: loc.offset,
                    len: volume::region_len(s),
                })
            })
            .collect())
    }
}

/// Where one shard is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlace {
    /// Disk index (in a cluster, the slot: a (member, disk) of the layouts, numbered as this
    /// process first met it).
    pub disk: usize,
    /// Volume file (of a shard on another node: its path relative to that node's disk).
    pub volume: std::path::PathBuf,
    /// Offset of the shard's region in the volume.
    pub offset: u64,
    /// Length of the region.
    pub len: u64,
}

/// A chunk stored (or found already stored) by a writer, not yet referenced by a commit.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    pub(crate) r: ChunkRef,
    /// The shards this writer wrote, when the chunk was not known.
    pub(crate) fresh: Option<FreshShards>,
    /// Writes of those shards not yet made durable ([`ChunkStore::sync_chunks`]).
    pub(crate) unsynced: Vec<(usize, crate::chunk::volume::PendingSync)>,
}

impl StoredChunk {
    /// A chunk that is already recorded (e.g. pinned by a draft): a commit only counts a
    /// reference to it.
    pub fn existing(r: ChunkRef) -> StoredChunk {
        StoredChunk {
            r,
            fresh: None,
            unsynced: Vec::new(),
        }
    }

    /// A hole of `len` zero bytes: nothing stored, nothing to commit but the manifest entry.
    pub fn hole(len: u32) -> StoredChunk {
        StoredChunk::existing(ChunkRef::hole(len))
    }

    /// The chunk's name and length.
    pub fn chunk_ref(&self) -> ChunkRef {
        self.r
    }

    /// When the shards this writer stored for the chunk began to be written, in a cluster
    /// (`None` for a chunk stored before, or on one machine): a commit must name them within
    /// [`EngineConfig::write_limit`] of it ([`crate::Engine::pin_draft_chunks`] does so for
    /// a file kept open).
    pub fn stored_at(&self) -> Option<Instant> {
        self.fresh
            .as_ref()
            .and_then(|f| f.deadline)
            .map(|d| d.started)
    }

    /// Whether this is a hole.
    pub fn is_hole(&self) -> bool {
        self.r.is_hole()
    }
}

/// Takes one reference to each chunk a commit's manifest uses, in the commit's transaction:
/// the one place that decides whether a commit may refer to a chunk. A chunk found by dedup
/// (no fresh shards) must still be recorded: the writer's shared GC lock kept it from
/// collection since the dedup check, so a missing record means the metadata is corrupt. A
/// chunk this writer stored gets its record, unless another writer's came first: then this
/// writer's shards are surplus, returned for [`ChunkStore::release_surplus`] after the commit.
pub(crate) fn reference<'a>(
    txn: &mut dyn Write,
    chunks: impl IntoIterator<Item = &'a StoredChunk>,
) -> Result<Vec<(ChunkRef, FreshShards)>> {
    let mut surplus = Vec::new();
    for c in chunks {
        if c.fresh.is_none() && !chunk_known(txn, &c.r)? {
            return Err(Error::ChunkCollected(hex::encode(c.r.hash)));
        }
        if let Some(f) = incref(txn, &c.r.hash, c.r.len, c.fresh.as_ref(), 1)? {
            surplus.push((c.r, f));
        }
    }
    Ok(surplus)
}

/// The result of streaming a body into chunks.
pub(crate) struct StoredStream {
    pub(crate) chunks: Vec<StoredChunk>,
    pub(crate) size: u64,
    pub(crate) md5: [u8; 16],
}
