//! The object layer: buckets, objects, listing, copy and rename, multipart uploads and drafts,
//! over the chunk layer ([`crate::chunk`]) and the metadata store ([`crate::kv`]). [`Engine`]
//! is the handle the doors hold; its operations live in one module each.

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::Stream;

use crate::chunk::{ChunkStore, ShardPlace};
use crate::config::{Durability, EngineConfig};
use crate::error::Result;
use crate::kv::Write;
use crate::lock::OwnerLock;
use crate::meta::ChunkRecord;

pub(crate) mod bucket;
pub(crate) mod copy;
pub mod draft;
pub(crate) mod list;
pub(crate) mod list_versions;
pub mod multipart;
pub(crate) mod object_lock;
pub(crate) mod outbox;
pub(crate) mod pieces;
pub(crate) mod read;
pub mod retention;
pub mod version;
pub(crate) mod write;

/// A stream of object bytes.
pub type ObjectBody = Pin<Box<dyn Stream<Item = Result<Bytes>> + Send>>;

/// A handle on an open data directory. Cheap to clone; all clones share one engine.
#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: EngineConfig,
    /// The metadata store (through the seam of [`crate::kv`]).
    pub(crate) meta: Arc<crate::kv::Store>,
    /// The chunks, their shards and disks.
    pub(crate) chunks: Arc<ChunkStore>,
    /// This instance's owner lock, taken with its first draft.
    pub(crate) owner: std::sync::OnceLock<OwnerLock>,
    /// What this instance's lifecycle passes did (for metrics).
    pub(crate) lifecycle: crate::lifecycle::Counters,
    /// What a layer above keeps per engine (the access layer: its parsed bucket policies),
    /// made by that layer on first use; the object layer does not know its type.
    pub(crate) above: std::sync::OnceLock<Arc<dyn std::any::Any + Send + Sync>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.meta.committer().shutdown();
    }
}

/// The metadata store `cfg` names.
fn open_metadata(cfg: &EngineConfig, fsync: bool) -> Result<crate::kv::Store> {
    match &cfg.metadata {
        crate::config::Metadata::Local => {
            let meta_dir = cfg.data_dir.join("meta");
            crate::private::create_dir_all(&meta_dir)?;
            crate::kv::Store::open(&meta_dir, cfg.map_size, fsync, cfg.writeback)
        }
        #[cfg(feature = "etcd")]
        crate::config::Metadata::Etcd { endpoints, prefix } => {
            crate::kv::Store::connect_etcd(endpoints, prefix.as_bytes())
        }
        // `validate` refuses etcd in a build without it.
        #[cfg(not(feature = "etcd"))]
        crate::config::Metadata::Etcd { .. } => Err(crate::error::Error::Config(
            "metadata on etcd: this build has no etcd support".into(),
        )),
    }
}

impl Engine {
    /// Opens (creating on first use) the data directory described by `cfg`.
    pub fn open(cfg: EngineConfig) -> Result<Engine> {
        cfg.validate()?;
        let fsync = cfg.durability == Durability::Fsync;
        crate::private::create_dir_all(&cfg.data_dir)?;
        let meta = Arc::new(open_metadata(&cfg, fsync)?);
        let chunks = Arc::new(ChunkStore::open(&cfg, meta.clone())?);
        if let Some(wb) = meta.committer().writeback() {
            // Chunks a pending change refers to stay safe from GC (in any process) until
            // the change is committed: the window holds the GC lock as a writer does.
            let gc = chunks.gc_lock.clone();
            wb.set_hold_source(Box::new(move || {
                Ok(Box::new(gc.shared_blocking()?) as Box<dyn std::any::Any + Send>)
            }));
        }
        Ok(Engine {
            inner: Arc::new(Inner {
                cfg,
                meta,
                chunks,
                owner: std::sync::OnceLock::new(),
                lifecycle: Default::default(),
                above: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.cfg.data_dir
    }

    /// A read transaction: a consistent snapshot of the metadata.
    pub(crate) fn read(&self) -> Result<crate::kv::Snapshot<'_>> {
        self.inner.meta.read()
    }

    /// A read transaction for settings: buckets' and access keys' records may come from a
    /// cache kept current by a watch in a cluster ([`crate::kv::Store::read_settings`]). For
    /// decisions taken before a request does anything (authorization, response headers), never
    /// inside a transaction that changes something.
    pub(crate) fn read_settings(&self) -> Result<crate::kv::Snapshot<'_>> {
        self.inner.meta.read_settings()
    }

    /// Applies `f` in a write transaction of the next group commit and waits until it is
    /// durable.
    pub(crate) async fn commit<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        self.inner.meta.committer().run(f).await
    }

    /// [`Engine::commit`] from a blocking thread.
    pub(crate) fn commit_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        self.inner.meta.committer().run_blocking(f)
    }

    /// Waits until every change this engine made is durable. In write-back mode
    /// ([`EngineConfig::writeback`]) changes become durable within the window, and this is
    /// how `fsync` makes them so at once; an error if a write-back commit failed or dropped a
    /// change since the last flush. At once otherwise.
    pub async fn flush(&self) -> Result<()> {
        let meta = self.inner.meta.clone();
        tokio::task::spawn_blocking(move || meta.committer().flush_blocking()).await?
    }

    /// [`Engine::flush`] from a blocking thread.
    pub fn flush_blocking(&self) -> Result<()> {
        self.inner.meta.committer().flush_blocking()
    }

    /// Changes dropped at a write-back commit since this engine opened, because another
    /// writer had changed what they were based on.
    pub fn writeback_conflicts(&self) -> u64 {
        self.inner
            .meta
            .committer()
            .writeback()
            .map(|w| w.conflicts())
            .unwrap_or(0)
    }

    /// This node's disks, serving the shard operations of other nodes (cluster mode: a shard
    /// service hands its requests to it).
    pub fn local_shards(&self) -> crate::LocalShards {
        crate::LocalShards {
            chunks: self.inner.chunks.clone(),
        }
    }

    /// Re-probes the disks (identity files), e.g. after one was replaced.
    pub fn refresh_disks(&self) {
        self.inner.chunks.disks.refresh();
    }

    /// Chunk records (for tests and tools): hash → record.
    pub fn chunk_records(&self) -> Result<BTreeMap<[u8; 32], ChunkRecord>> {
        self.inner.chunks.records()
    }

    /// Where each shard of a chunk is, or `None` for a shard known to be missing. For tests and
    /// tools.
    pub fn shard_locations(&self, hash: &[u8; 32]) -> Result<Vec<Option<ShardPlace>>> {
        self.inner.chunks.shard_locations(hash)
    }
}
