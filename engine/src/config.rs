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
    /// Write-back window (`None`: every commit is durable before it returns, as S3 needs).
    /// With a window, a commit is visible to this engine at once and becomes durable, and
    /// visible to other processes, within the window, which many commits share (one fsync);
    /// [`crate::Engine::flush`] makes everything durable at once. The mount's `close`.
    pub writeback: Option<std::time::Duration>,
    /// Chunks processed concurrently by one put or get (bounds memory: about
    /// `3.5 × pipeline_depth × chunk_size` for a put: the chunks being stored with their
    /// shards, and up to as many again queued for the MD5 thread so that it never waits).
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
    /// How long writers that overlap without pause may keep background GC out before it
    /// holds new writers back (for at most one batch, or 2 s while the writers in flight
    /// finish) so that deleted data's space still comes back under constant load. Default 30 s.
    pub gc_starvation: std::time::Duration,
    /// How long a "day" of lifecycle rules is (`Days`, `NoncurrentDays`,
    /// `DaysAfterInitiation`): a real day, unless shortened so tests run rules in seconds (as
    /// other S3 servers allow for their test suites). Default 1 day.
    pub lifecycle_day: std::time::Duration,
    /// Compression of new data in buckets without a setting of their own (`storage.compression`:
    /// `off`, `zstd`, `zstd:LEVEL`). Default off.
    pub compression: crate::compression::Compression,
    /// Where the metadata lives: LMDB in the data directory (one machine, the default) or an
    /// etcd cluster (cluster mode).
    pub metadata: Metadata,
    /// In cluster mode, the nodes whose disks hold the shards and how to reach each
    /// (`None`: one machine, shards over this data directory's disks).
    pub cluster: Option<ClusterShards>,
    /// In cluster mode, how long a write may hold shards it stored before its commit refers to
    /// them: a PUT, an upload's part, a mounted file's data between its pins (the mount pins
    /// an open file's stored chunks long before this). A later commit fails (S3's
    /// `RequestTimeout`), and the orphan sweep frees a shard no record has named for twice
    /// this — the bound lets each node sweep its own disks while other nodes write to them.
    /// Default one hour. Unused on one machine, where the GC lock keeps the sweep and the
    /// writers apart.
    pub write_limit: std::time::Duration,
}

/// The default [`EngineConfig::write_limit`].
pub const DEFAULT_WRITE_LIMIT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Where shards go in cluster mode: over the disks of the members of the cluster's layouts,
/// this node's own (member `me`, whose disk count must be this data directory's) and, through
/// `transports`, the others'. The metadata must be shared by them all (etcd).
///
/// A chunk's record names the layout generation that placed its shards; new chunks go by the
/// newest, and rebalance moves chunks of older generations to it. Every generation some
/// chunk may still name is here, so that its shards are found.
#[derive(Clone)]
pub struct ClusterShards {
    /// The layouts by generation; the highest places new chunks.
    pub layouts: std::collections::BTreeMap<u32, crate::Layout>,
    /// This node's member id.
    pub me: String,
    /// How to reach each other member's disks, by member id. A member of an older layout
    /// without one (a lost node, removed) holds no shard that can be read.
    pub transports: std::collections::BTreeMap<String, std::sync::Arc<dyn crate::ShardTransport>>,
}

impl ClusterShards {
    /// The generation new chunks are placed by, and its layout.
    pub fn current(&self) -> Option<(u32, &crate::Layout)> {
        self.layouts.iter().next_back().map(|(g, l)| (*g, l))
    }
}

impl std::fmt::Debug for ClusterShards {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterShards")
            .field("generations", &self.layouts.keys().collect::<Vec<_>>())
            .field("members", &self.current().map(|(_, l)| l.members()))
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

/// Where an engine keeps its metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Metadata {
    /// LMDB in `data_dir/meta`: one machine, no network.
    #[default]
    Local,
    /// An etcd cluster: its client endpoints (`http://host:port`) and the key prefix under which
    /// this store's keys live (`/predastore/<cluster id>/`). Needs the engine's `etcd` feature.
    Etcd {
        /// Client URLs of the etcd members.
        endpoints: Vec<String>,
        /// Prefix of every key of this store.
        prefix: String,
    },
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
            writeback: None,
            map_size: 1 << 40,
            pipeline_depth: 2,
            direct_io: false,
            cache_writes: true,
            gc_interval: std::time::Duration::from_secs(5),
            gc_starvation: std::time::Duration::from_secs(30),
            lifecycle_day: std::time::Duration::from_secs(86_400),
            compression: crate::compression::Compression::Off,
            metadata: Metadata::Local,
            cluster: None,
            write_limit: DEFAULT_WRITE_LIMIT,
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
        // In a cluster the shards go over every member's disks (the layout checks them).
        if self.cluster.is_none() && self.disk_paths().len() < n {
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
        if let Some(w) = self.writeback {
            if w.is_zero() || w > std::time::Duration::from_secs(60) {
                return Err(Error::Config(
                    "the write-back window must be between 1 ms and 60 s".into(),
                ));
            }
        }
        if let Some(c) = &self.cluster {
            self.validate_cluster(c)?;
        }
        if let Metadata::Etcd { endpoints, prefix } = &self.metadata {
            if endpoints.is_empty() {
                return Err(Error::Config(
                    "metadata on etcd needs at least one endpoint".into(),
                ));
            }
            if prefix.is_empty() {
                return Err(Error::Config("metadata on etcd needs a key prefix".into()));
            }
            if self.writeback.is_some() {
                return Err(Error::Config(
                    "the write-back window is for metadata on this machine only (LMDB), \
                     not on etcd"
                        .into(),
                ));
            }
            if !cfg!(feature = "etcd") {
                return Err(Error::Config(
                    "metadata on etcd: this build has no etcd support \
                     (the engine's `etcd` feature)"
                        .into(),
                ));
            }
        }
        Ok(())
    }
}

impl EngineConfig {
    /// Checks a cluster's shards against this node's configuration.
    pub(crate) fn validate_cluster(&self, c: &ClusterShards) -> Result<()> {
        let Some((_, current)) = c.current() else {
            return Err(Error::Config("a cluster without a layout".into()));
        };
        for (g, layout) in &c.layouts {
            if layout.data_shards() != self.data_shards
                || layout.parity_shards() != self.parity_shards
            {
                return Err(Error::Config(format!(
                    "layout {g} is for {}+{} shards, this node for {}+{}",
                    layout.data_shards(),
                    layout.parity_shards(),
                    self.data_shards,
                    self.parity_shards
                )));
            }
            for m in layout.members() {
                if m.id == c.me && m.disks as usize != self.disk_paths().len() {
                    return Err(Error::Config(format!(
                        "member {} has {} disks in layout {g}, {} configured here",
                        m.id,
                        m.disks,
                        self.disk_paths().len()
                    )));
                }
            }
        }
        if let Some(m) = current
            .members()
            .iter()
            .find(|m| m.id != c.me && !c.transports.contains_key(&m.id))
        {
            return Err(Error::Config(format!("no way to reach member {}", m.id)));
        }
        if self.metadata == Metadata::Local {
            return Err(Error::Config(
                "cluster mode needs the metadata on etcd, shared by every node".into(),
            ));
        }
        Ok(())
    }
}

/// Parses a size: a number of bytes (`4194304`) or a number with a unit, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB` (case-insensitive, spaces allowed), all binary: `4MB` and
/// `4MiB` are both 4,194,304 bytes, as storage sizes are usually meant.
pub fn parse_size(s: &str) -> std::result::Result<usize, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = (t[..split].trim(), t[split..].trim());
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => {
            return Err(format!(
                "{s:?} is not a size: use bytes or a number with K, M or G"
            ))
        }
    };
    let bytes = if num.contains('.') {
        let v: f64 = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
        let b = v * (1u64 << shift) as f64;
        if !b.is_finite() || b < 0.0 || b.fract() != 0.0 || b > usize::MAX as f64 {
            return Err(format!("{s:?} is not a whole number of bytes"));
        }
        b as usize
    } else {
        let v: usize = num.parse().map_err(|_| format!("{s:?} is not a size"))?;
        v.checked_mul(1usize << shift)
            .ok_or_else(|| format!("{s:?} is too large"))?
    };
    Ok(bytes)
}

/// A size in `config.yaml`: a number of bytes or a string with a unit (see [`parse_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub usize);

impl<'de> Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Bytes(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Bytes(n) => usize::try_from(n)
                .map(Size)
                .map_err(|_| serde::de::Error::custom("size too large")),
            Raw::Text(s) => parse_size(&s).map(Size).map_err(serde::de::Error::custom),
        }
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
    /// Chunk size: bytes, or with a unit (`4MB`, `4MiB`).
    pub chunk_size: Option<Size>,
    /// Storage backend: `file` (local directories), the only one.
    pub backend: Option<String>,
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
    /// `off`, `zstd` or `zstd:LEVEL`: compression of new data in buckets without their own
    /// setting (see [`EngineConfig::compression`]).
    pub compression: Option<crate::compression::Compression>,
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
        if let Some(b) = self.backend.as_deref().filter(|b| *b != "file") {
            return Err(Error::Config(format!(
                "storage.backend {b:?} is not known: the only backend is \"file\" (local disk directories)"
            )));
        }
        let mut c = EngineConfig::new(dir);
        if let Some(cs) = chunk_size.or(self.chunk_size.map(|s| s.0)) {
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
        if let Some(z) = self.compression {
            c.compression = z;
        }
        c.validate()?;
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_with_units() {
        for (s, want) in [
            ("4194304", 4 << 20),
            ("4MB", 4 << 20),
            ("4MiB", 4 << 20),
            ("4 mb", 4 << 20),
            ("4m", 4 << 20),
            ("512KiB", 512 << 10),
            ("1.5MB", 3 << 19),
            ("1G", 1 << 30),
            ("100b", 100),
        ] {
            assert_eq!(parse_size(s), Ok(want), "{s}");
        }
        for bad in [
            "",
            "MB",
            "4TB",
            "-4MB",
            "4.5",
            "x4",
            "99999999999999999999G",
            "0.1KB",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        let y: StorageSection =
            serde_yaml_ng::from_str("chunk_size: \"4MB\"\nbackend: \"file\"\n").unwrap();
        assert_eq!(y.engine_config(None, None).unwrap().chunk_size, 4 << 20);
        let y: StorageSection = serde_yaml_ng::from_str("chunk_size: 1048576").unwrap();
        assert_eq!(y.engine_config(None, None).unwrap().chunk_size, 1 << 20);
        let s3: StorageSection = serde_yaml_ng::from_str("backend: s3").unwrap();
        let e = s3.engine_config(None, None).unwrap_err().to_string();
        assert!(e.contains("\"file\""), "{e}");
        assert!(serde_yaml_ng::from_str::<StorageSection>("chunk_size: 4XB").is_err());
    }

    #[test]
    fn compression_off_by_default_and_from_the_file() {
        use crate::compression::Compression;
        let none = StorageSection::default();
        assert_eq!(
            none.engine_config(None, None).unwrap().compression,
            Compression::Off
        );
        for (yaml, want) in [
            ("compression: zstd", Compression::Zstd(3)),
            ("compression: \"zstd:12\"", Compression::Zstd(12)),
            ("compression: \"off\"", Compression::Off),
            ("compression: off", Compression::Off),
        ] {
            let y: StorageSection = serde_yaml_ng::from_str(yaml).unwrap();
            assert_eq!(
                y.engine_config(None, None).unwrap().compression,
                want,
                "{yaml}"
            );
        }
        let e = serde_yaml_ng::from_str::<StorageSection>("compression: brotli").unwrap_err();
        assert!(e.to_string().contains("zstd:LEVEL"), "{e}");
    }

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

    #[test]
    fn metadata_on_etcd_needs_endpoints_a_prefix_and_no_writeback() {
        let etcd = |eps: &[&str], prefix: &str| {
            let mut c = EngineConfig::new("/tmp/x");
            c.metadata = Metadata::Etcd {
                endpoints: eps.iter().map(|s| s.to_string()).collect(),
                prefix: prefix.into(),
            };
            c
        };
        let msg = |c: EngineConfig| c.validate().unwrap_err().to_string();
        assert!(msg(etcd(&[], "/p/")).contains("endpoint"));
        assert!(msg(etcd(&["http://127.0.0.1:2379"], "")).contains("prefix"));
        let mut wb = etcd(&["http://127.0.0.1:2379"], "/p/");
        wb.writeback = Some(std::time::Duration::from_millis(5));
        assert!(msg(wb).contains("write-back"));
        let ok = etcd(&["http://127.0.0.1:2379"], "/p/");
        if cfg!(feature = "etcd") {
            ok.validate().unwrap();
        } else {
            assert!(msg(ok).contains("no etcd support"));
        }
        assert_eq!(EngineConfig::new("/tmp/x").metadata, Metadata::Local);
    }
}
