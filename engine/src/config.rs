//! Engine configuration: where data lives, chunking, erasure coding and durability.

use std::path::PathBuf;

use serde::Deserialize;

use crate::error::{Error, Result};

/// Default chunk size: 4 MiB.
pub const DEFAULT_CHUNK_SIZE: usize = 4 * 1024 * 1024;
/// Objects up to this size are stored inline in LMDB instead of as erasure-coded shards.
/// Chosen from `make bench` (see BENCHMARKS.md): below it a put costs one shared LMDB commit
/// instead of six shard files, each with a file and a directory fsync.
pub const DEFAULT_INLINE_THRESHOLD: usize = 64 * 1024;

/// When writes are acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Shards and metadata are fsync'd before a write is acknowledged (the default).
    #[default]
    Fsync,
    /// Nothing is fsync'd: fast, but a power loss can lose acknowledged writes. For tests and
    /// scratch data only.
    None,
}

/// Configuration of one engine instance.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Root of the data directory (LMDB metadata, format file, default disks).
    pub data_dir: PathBuf,
    /// Disk directories; empty means `data_shards + parity_shards` directories under
    /// `data_dir/disks`.
    pub disks: Vec<PathBuf>,
    /// Size objects are cut into.
    pub chunk_size: usize,
    /// Data shards per chunk.
    pub data_shards: usize,
    /// Parity shards per chunk.
    pub parity_shards: usize,
    /// Largest object stored inline in the metadata store.
    pub inline_threshold: usize,
    /// Durability policy.
    pub durability: Durability,
    /// LMDB map size (virtual address space reserved for metadata).
    pub map_size: usize,
    /// Chunks processed concurrently by one put or get (bounds memory: about
    /// `2.5 × pipeline_depth × chunk_size`).
    pub pipeline_depth: usize,
    /// Write shards with `O_DIRECT` (no copy through the page cache) instead of buffered
    /// writes whose writeback starts at once. Off by default: on the development machine
    /// buffered writes with immediate writeback put 25 % faster (BENCHMARKS.md); which of
    /// their pages stay cached is [`EngineConfig::cache_writes`]'s.
    pub direct_io: bool,
    /// Keep data shards just written in the page cache, so that a get right after a put is
    /// served from memory (on by default). Parity shards, read only when a disk fails, always
    /// leave the cache once a sync has made them durable (drop-behind): a third of what a put
    /// writes no longer pushes out what readers use. Off: data shards leave it too, for
    /// write-mostly stores (backups, footage); on the development machine back-to-back
    /// 256 MiB puts then ran ~10 % faster, and a get right after its put read the disks
    /// (BENCHMARKS.md).
    pub cache_writes: bool,
    /// How often the front doors (s3d, mountd) collect chunks that lost their last reference
    /// ([`crate::Engine::spawn_auto_gc`]), so that deleting frees space by itself; zero: never
    /// (only `s3d gc`). Default 5 s: a look at an empty table when there is nothing to do.
    pub gc_interval: std::time::Duration,
}

impl EngineConfig {
    /// A configuration with the defaults (4 MiB chunks, 4 + 2 shards) for `data_dir`.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            data_dir: data_dir.into(),
            disks: Vec::new(),
            chunk_size: DEFAULT_CHUNK_SIZE,
            data_shards: 4,
            parity_shards: 2,
            inline_threshold: DEFAULT_INLINE_THRESHOLD,
            durability: Durability::Fsync,
            map_size: 1 << 40,
            pipeline_depth: 2,
            direct_io: false,
            cache_writes: true,
            gc_interval: std::time::Duration::from_secs(5),
        }
    }

    /// The disk directories this configuration uses.
    pub fn disk_paths(&self) -> Vec<PathBuf> {
        if self.disks.is_empty() {
            (0..self.data_shards + self.parity_shards)
                .map(|i| self.data_dir.join("disks").join(format!("disk{i}")))
                .collect()
        } else {
            self.disks.clone()
        }
    }

    /// Checks the values for consistency.
    pub fn validate(&self) -> Result<()> {
        let n = self.data_shards + self.parity_shards;
        if self.data_shards == 0 {
            return Err(Error::Config("data_shards must be at least 1".into()));
        }
        if n > 64 {
            return Err(Error::Config("at most 64 shards per chunk".into()));
        }
        if self.disk_paths().len() < n {
            return Err(Error::Config(format!(
                "{} disks configured, data_shards + parity_shards = {n} needed",
                self.disks.len()
            )));
        }
        if self.chunk_size < 4096 || self.chunk_size > 256 * 1024 * 1024 {
            return Err(Error::Config(
                "chunk_size must be between 4 KiB and 256 MiB".into(),
            ));
        }
        if self.inline_threshold > 1024 * 1024 {
            return Err(Error::Config(
                "inline_threshold must be at most 1 MiB".into(),
            ));
        }
        if self.pipeline_depth == 0 {
            return Err(Error::Config("pipeline_depth must be at least 1".into()));
        }
        Ok(())
    }
}

/// `storage.erasure` in `config.yaml`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ErasureSection {
    /// Data shards.
    pub data_shards: Option<usize>,
    /// Parity shards.
    pub parity_shards: Option<usize>,
}

/// The `storage` section of `config.yaml`, read by both front doors (s3d and mountd).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Chunk size in bytes.
    pub chunk_size: Option<usize>,
    /// Erasure layout.
    pub erasure: ErasureSection,
    /// Disk directories.
    pub disks: Vec<PathBuf>,
    /// Write shards with O_DIRECT (see [`EngineConfig::direct_io`]).
    pub direct_io: Option<bool>,
    /// Keep data shards just written in the page cache (see [`EngineConfig::cache_writes`]).
    pub cache_writes: Option<bool>,
    /// Seconds between background collections of unreferenced chunks; 0 turns them off (see
    /// [`EngineConfig::gc_interval`]).
    pub gc_interval: Option<f64>,
}

impl StorageSection {
    /// The engine configuration this section describes, with the data directory and chunk size
    /// given on the command line or in `PREDASTORE_*` variables taking precedence. Defaults:
    /// `./data`, 4 MiB, 4 + 2.
    pub fn engine_config(
        &self,
        data_dir: Option<PathBuf>,
        chunk_size: Option<usize>,
    ) -> Result<EngineConfig> {
        let dir = data_dir
            .or_else(|| self.data_dir.clone())
            .unwrap_or_else(|| PathBuf::from("./data"));
        let mut c = EngineConfig::new(dir);
        if let Some(cs) = chunk_size.or(self.chunk_size) {
            c.chunk_size = cs;
        }
        if let Some(k) = self.erasure.data_shards {
            c.data_shards = k;
        }
        if let Some(m) = self.erasure.parity_shards {
            c.parity_shards = m;
        }
        c.disks = self.disks.clone();
        if let Some(d) = self.direct_io {
            c.direct_io = d;
        }
        if let Some(w) = self.cache_writes {
            c.cache_writes = w;
        }
        if let Some(g) = self.gc_interval {
            c.gc_interval = std::time::Duration::try_from_secs_f64(g).map_err(|_| {
                Error::Config("gc_interval must be a number of seconds, 0 or more".into())
            })?;
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gc_interval_in_seconds_zero_or_more() {
        let s = |g: f64| StorageSection {
            gc_interval: Some(g),
            ..Default::default()
        };
        let c = s(0.5).engine_config(None, None).unwrap();
        assert_eq!(c.gc_interval, std::time::Duration::from_millis(500));
        assert!(s(0.0)
            .engine_config(None, None)
            .unwrap()
            .gc_interval
            .is_zero());
        assert!(s(-1.0).engine_config(None, None).is_err());
        assert!(s(f64::NAN).engine_config(None, None).is_err());
        let d = StorageSection::default().engine_config(None, None).unwrap();
        assert_eq!(d.gc_interval, std::time::Duration::from_secs(5));
    }
}
