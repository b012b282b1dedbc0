//! The engine handle: opening a data directory, buckets and objects.

use std::collections::BTreeMap;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures::stream::{self, Stream, StreamExt};
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::config::{Durability, EngineConfig};
use crate::disks::{DiskSet, ShardRead};
use crate::erasure::Codec;
use crate::error::{Error, Result};
use crate::format::{FormatInfo, FORMAT_VERSION};
use crate::kv::{Read, Table, Write};
use crate::lock::GcLock;
use crate::meta::{
    current_object, incref, new_id, now_ns, object_key, ref_manifest, release_manifest,
    BucketRecord, ChunkRecord, ChunkRef, FreshShards, Manifest, ObjectAttrs, ObjectMeta,
};
use crate::names::{validate_bucket_name, validate_key};
use crate::volume::ShardBuf;

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
    pub(crate) meta: crate::kv::Store,
    pub(crate) disks: DiskSet,
    pub(crate) codec: Codec,
    pub(crate) gc_lock: GcLock,
    /// Since when background GC has found the GC lock taken by writers, try after try.
    pub(crate) gc_kept_out_since: std::sync::Mutex<Option<std::time::Instant>>,
    /// This instance's owner lock, taken with its first draft.
    pub(crate) owner: std::sync::OnceLock<crate::draft::Owner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.meta.committer().shutdown();
    }
}

/// A bucket and its creation time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Creation time, ns since the epoch.
    pub created_ns: i64,
}

/// Options of a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Attributes to store with the object.
    pub attrs: ObjectAttrs,
    /// Fail with `PreconditionFailed` if the key exists (`If-None-Match: *`).
    pub if_none_match: bool,
    /// Fail with `PreconditionFailed` unless the current ETag is this one (`If-Match`).
    pub if_match: Option<String>,
    /// Checksums learnt only once the body has been read (e.g. from HTTP trailers): merged into
    /// `attrs.checksums` at commit time.
    pub late_checksums: Option<LateChecksums>,
}

/// Checksums filled in by the body reader while the put runs.
pub type LateChecksums = Arc<std::sync::Mutex<BTreeMap<String, String>>>;

/// How a copy treats attributes.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `Some`: replace the attributes (`x-amz-metadata-directive: REPLACE`); `None`: copy them.
    pub replace_attrs: Option<ObjectAttrs>,
    /// Fail with `PreconditionFailed` unless the source's ETag is this one.
    pub source_if_match: Option<String>,
    /// Fail with `PreconditionFailed` if the destination exists.
    pub if_none_match: bool,
}

/// A requested byte range, as in an HTTP `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=first-last` (inclusive; `last` is clamped to the object).
    FromTo(u64, u64),
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// Resolves the range against an object of `size` bytes into `[start, end)`.
    pub fn resolve(&self, size: u64) -> Result<(u64, u64)> {
        let bad = Err(Error::InvalidRange { size });
        match *self {
            ByteRange::FromTo(a, b) => {
                if a >= size || b < a {
                    return bad;
                }
                Ok((a, b.min(size - 1) + 1))
            }
            ByteRange::From(a) => {
                if a >= size {
                    return bad;
                }
                Ok((a, size))
            }
            ByteRange::Suffix(n) => {
                if n == 0 || size == 0 {
                    return bad;
                }
                Ok((size.saturating_sub(n), size))
            }
        }
    }
}

/// The answer to a get: metadata, the byte range served, and the bytes.
pub struct GetObject {
    /// The object's metadata.
    pub meta: ObjectMeta,
    /// `[start, end)` of the bytes in `body`.
    pub range: (u64, u64),
    /// The bytes.
    pub body: ObjectBody,
}

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Only keys (and prefixes) after this one.
    pub start_after: Option<String>,
    /// At most this many keys plus common prefixes.
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last key or prefix returned: pass it as `start_after` to continue.
    pub next_marker: Option<String>,
}

/// Where one shard is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardPlace {
    /// Disk index.
    pub disk: usize,
    /// Volume file.
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
    /// Writes of those shards not yet made durable ([`Engine::sync_chunks`]).
    pub(crate) unsynced: Vec<(usize, crate::volume::PendingSync)>,
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
/// writer's shards are surplus, returned for [`Engine::release_surplus`] after the commit.
pub(crate) fn reference<'a>(
    txn: &mut dyn Write,
    chunks: impl IntoIterator<Item = &'a StoredChunk>,
) -> Result<Vec<(ChunkRef, FreshShards)>> {
    let mut surplus = Vec::new();
    for c in chunks {
        if c.fresh.is_none() && !crate::meta::chunk_known(txn, &c.r)? {
            return Err(Error::Corrupt(hex::encode(c.r.hash)));
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

impl Engine {
    /// Opens (creating on first use) the data directory described by `cfg`.
    pub fn open(cfg: EngineConfig) -> Result<Engine> {
        cfg.validate()?;
        let fsync = cfg.durability == Durability::Fsync;
        let policy = crate::volume::WritePolicy {
            fsync,
            direct: cfg.direct_io,
            cache_writes: cfg.cache_writes,
        };
        crate::private::create_dir_all(&cfg.data_dir)?;
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
        let meta_dir = cfg.data_dir.join("meta");
        crate::private::create_dir_all(&meta_dir)?;
        let meta = crate::kv::Store::open(&meta_dir, cfg.map_size, fsync)?;
        let codec = Codec {
            k: cfg.data_shards,
            m: cfg.parity_shards,
        };
        let gc_lock = GcLock::new(&cfg.data_dir);
        Ok(Engine {
            inner: Arc::new(Inner {
                cfg,
                meta,
                disks,
                codec,
                gc_lock,
                gc_kept_out_since: std::sync::Mutex::new(None),
                owner: std::sync::OnceLock::new(),
            }),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    /// A read transaction: a consistent snapshot of the metadata.
    pub(crate) fn read(&self) -> Result<crate::kv::lmdb::LmdbRead<'_>> {
        self.inner.meta.read()
    }

    /// Re-probes the disks (identity files), e.g. after one was replaced.
    pub fn refresh_disks(&self) {
        self.inner.disks.refresh();
    }

    // ---------------------------------------------------------------- buckets

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        validate_bucket_name(name)?;
        let name = name.to_string();
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                if txn.get(Table::Buckets, name.as_bytes())?.is_some() {
                    return Err(Error::BucketAlreadyExists(name));
                }
                let rec = rmp_serde::to_vec_named(&BucketRecord {
                    created_ns: now_ns(),
                })?;
                txn.put(Table::Buckets, name.as_bytes(), &rec)?;
                Ok(())
            })
            .await
    }

    /// Deletes an empty bucket (`BucketNotEmpty` otherwise); aborts its unfinished uploads.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_bucket(txn, &name)?;
                let prefix = object_key(&name, "");
                if txn.prefix(Table::Objects, &prefix)?.next().is_some() {
                    return Err(Error::BucketNotEmpty(name));
                }
                let uploads: Vec<Vec<u8>> = txn
                    .prefix(Table::Uploads, &prefix)?
                    .map(|r| r.map(|(k, _)| k.to_vec()))
                    .collect::<Result<_, _>>()?;
                for uk in uploads {
                    let upload_id =
                        String::from_utf8_lossy(uk.rsplit(|b| *b == 0).next().unwrap_or_default())
                            .into_owned();
                    crate::multipart::drop_upload(txn, &uk, &upload_id)?;
                }
                txn.delete(Table::Buckets, name.as_bytes())?;
                Ok(())
            })
            .await
    }

    /// Lists all buckets in name order.
    pub fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let txn = self.read()?;
        let mut out = Vec::new();
        for r in txn.all(Table::Buckets)? {
            let (name, v) = r?;
            let rec: BucketRecord = rmp_serde::from_slice(&v)?;
            out.push(BucketInfo {
                name: String::from_utf8_lossy(&name).into_owned(),
                created_ns: rec.created_ns,
            });
        }
        Ok(out)
    }

    /// A bucket's info, or `NoSuchBucket`.
    pub fn head_bucket(&self, name: &str) -> Result<BucketInfo> {
        let txn = self.read()?;
        let v = txn
            .get(Table::Buckets, name.as_bytes())?
            .ok_or_else(|| Error::NoSuchBucket(name.to_string()))?;
        let rec: BucketRecord = rmp_serde::from_slice(&v)?;
        Ok(BucketInfo {
            name: name.to_string(),
            created_ns: rec.created_ns,
        })
    }

    // ---------------------------------------------------------------- objects

    /// Stores an object read from `body` (of any length), replacing any object under `key`.
    /// The object becomes visible only once all its data and metadata are durable.
    pub async fn put_object<R>(
        &self,
        bucket: &str,
        key: &str,
        mut body: R,
        opts: PutOptions,
    ) -> Result<ObjectMeta>
    where
        R: AsyncRead + Unpin + Send,
    {
        validate_key(key)?;
        self.head_bucket(bucket)?;
        let cs = self.inner.cfg.chunk_size;
        let first = read_up_to(&mut body, cs).await?;
        if first.len() < cs && first.len() <= self.inner.cfg.inline_threshold {
            let md5: [u8; 16] = Md5::digest(&first).into();
            let size = first.len() as u64;
            return self
                .commit_object(
                    bucket,
                    key,
                    Manifest::Inline(first),
                    hex::encode(md5),
                    size,
                    0,
                    opts,
                    Vec::new(),
                )
                .await;
        }
        let guard = self.inner.gc_lock.shared().await?;
        let stored = self.store_stream(first, &mut body).await?;
        let chunks = stored.chunks;
        let manifest = Manifest::Chunks {
            chunks: chunks.iter().map(|c| c.r).collect(),
            part_sizes: Vec::new(),
        };
        let res = self
            .commit_object(
                bucket,
                key,
                manifest,
                hex::encode(stored.md5),
                stored.size,
                0,
                opts,
                chunks.clone(),
            )
            .await;
        if res.is_err() {
            self.abandon_chunks(&chunks).await;
        }
        drop(guard);
        res
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        manifest: Manifest,
        etag: String,
        size: u64,
        parts_count: u32,
        opts: PutOptions,
        stored: Vec<StoredChunk>,
    ) -> Result<ObjectMeta> {
        let mut attrs = opts.attrs;
        if let Some(late) = &opts.late_checksums {
            if let Ok(late) = late.lock() {
                attrs
                    .checksums
                    .extend(late.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            etag,
            last_modified_ns: now_ns(),
            parts_count,
            attrs,
            data_id: new_id(),
            hole_bytes: manifest.hole_bytes(),
        };
        let okey = object_key(bucket, key);
        let bucket = bucket.to_string();
        let if_none_match = opts.if_none_match;
        let if_match = opts.if_match;
        let ret = meta.clone();
        let surplus = self
            .inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_bucket(txn, &bucket)?;
                let old = current_object(txn, &okey)?;
                check_preconditions(old.as_ref(), if_none_match, if_match.as_deref())?;
                let surplus = reference(txn, &stored)?;
                crate::meta::install_object(txn, &okey, &meta, &manifest, old)?;
                Ok(surplus)
            })
            .await?;
        self.release_surplus(surplus).await;
        Ok(ret)
    }

    /// Frees shards a writer stored for chunks another writer's record claimed first (what
    /// [`reference`] returned, once its commit is durable).
    pub(crate) async fn release_surplus(&self, surplus: Vec<(ChunkRef, FreshShards)>) {
        if surplus.is_empty() {
            return;
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (r, f) in surplus {
                let s = me.inner.codec.shard_len(r.len as usize);
                me.inner.disks.release(&r.hash, s, &f.locs);
            }
        })
        .await;
    }

    /// Cuts `first` + the rest of `body` into chunks and stores each chunk's shards, hashing,
    /// encoding and writing up to `pipeline_depth` chunks at a time while the next is read.
    /// The caller must hold a shared GC lock until it commits or abandons the chunks.
    pub(crate) async fn store_stream<R>(&self, first: Vec<u8>, body: &mut R) -> Result<StoredStream>
    where
        R: AsyncRead + Unpin + Send,
    {
        let cs = self.inner.cfg.chunk_size;
        let depth = self.inner.cfg.pipeline_depth;
        let mut inflight = futures::stream::FuturesOrdered::new();
        let mut done: Vec<StoredChunk> = Vec::new();
        let mut md5_task: Option<tokio::task::JoinHandle<Md5>> = None;
        let mut md5 = Some(Md5::new());
        let mut size = 0u64;
        let mut buf = first;
        let mut failure: Option<Error> = None;
        loop {
            if buf.is_empty() && size > 0 {
                break;
            }
            let last = buf.len() < cs;
            let bytes = Bytes::from(buf);
            size += bytes.len() as u64;
            let mut h = match md5_task.take() {
                Some(t) => t.await?,
                None => md5.take().unwrap_or_default(),
            };
            let b2 = bytes.clone();
            md5_task = Some(tokio::task::spawn_blocking(move || {
                h.update(&b2);
                h
            }));
            let me = self.clone();
            inflight.push_back(tokio::task::spawn_blocking(move || me.store_data(&bytes)));
            while inflight.len() >= depth {
                match inflight.next().await {
                    Some(Ok(Ok(c))) => done.extend(c),
                    Some(Ok(Err(e))) => failure = failure.or(Some(e)),
                    Some(Err(e)) => failure = failure.or(Some(e.into())),
                    None => break,
                }
            }
            if failure.is_some() || last {
                break;
            }
            buf = match read_up_to(body, cs).await {
                Ok(b) => b,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            };
        }
        while let Some(r) = inflight.next().await {
            match r {
                Ok(Ok(c)) => done.extend(c),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(e) => failure = failure.or(Some(e.into())),
            }
        }
        let md5 = match md5_task {
            Some(t) => t.await?.finalize().into(),
            None => [0u8; 16],
        };
        if failure.is_none() {
            // Durable before any commit refers to them.
            let me = self.clone();
            let (d, r) = tokio::task::spawn_blocking(move || {
                let mut d = done;
                let r = me.sync_chunks(&mut d);
                (d, r)
            })
            .await?;
            done = d;
            failure = r.err();
        }
        if let Some(e) = failure {
            self.abandon_chunks(&done).await;
            return Err(e);
        }
        Ok(StoredStream {
            chunks: done,
            size,
            md5,
        })
    }

    /// Stores the bytes of one chunk: runs of zeros (see [`zero_runs`]) become holes, which
    /// take no space, and every other run a chunk ([`Engine::store_chunk`]). Blocking. On error
    /// nothing it stored is left behind.
    pub(crate) fn store_data(&self, data: &[u8]) -> Result<Vec<StoredChunk>> {
        let mut out = Vec::new();
        let mut at = 0usize;
        for (len, hole) in zero_runs(data) {
            if hole {
                out.push(StoredChunk::hole(len as u32));
            } else {
                match self.store_chunk(&data[at..at + len]) {
                    Ok(c) => out.push(c),
                    Err(e) => {
                        self.abandon_chunks_now(out);
                        return Err(e);
                    }
                }
            }
            at += len;
        }
        Ok(out)
    }

    /// Hashes one chunk and, unless it is already stored, erasure-codes it and writes its shards.
    pub(crate) fn store_chunk(&self, data: &[u8]) -> Result<StoredChunk> {
        let hash = *blake3::hash(data).as_bytes();
        let r = ChunkRef {
            hash,
            len: data.len() as u32,
        };
        {
            let txn = self.read()?;
            if txn.get(Table::Chunks, &hash)?.is_some() {
                return Ok(StoredChunk::existing(r));
            }
        }
        let codec = self.inner.codec;
        let s = codec.shard_len(data.len());
        let mut shards: Vec<ShardBuf> = (0..codec.n()).map(|_| ShardBuf::new(s)).collect();
        {
            let mut out: Vec<&mut [u8]> = shards.iter_mut().map(|b| b.payload_mut()).collect();
            codec.encode_into(data, &mut out)?;
        }
        let out = self
            .inner
            .disks
            .write_shards(&hash, data.len(), codec.k, codec.m, &mut shards);
        if out.written < codec.k {
            self.inner
                .disks
                .release(&hash, codec.shard_len(data.len()), &out.locs);
            self.inner.disks.refresh();
            if out.written + out.full >= codec.k {
                // Full disks, not failing ones, stand between this write and its quorum.
                return Err(Error::NoSpace {
                    written: out.written,
                    needed: codec.k,
                    full: out.full,
                });
            }
            return Err(Error::WriteQuorum {
                written: out.written,
                needed: codec.k,
            });
        }
        if out.missing != 0 {
            self.inner.disks.refresh();
        }
        Ok(StoredChunk {
            r,
            fresh: Some(FreshShards {
                missing: out.missing,
                locs: out.locs,
            }),
            unsynced: out.unsynced,
        })
    }

    /// Makes the shards of freshly stored chunks durable before a commit refers to them: one
    /// `fdatasync` per volume touched, shared with any other writer of that volume, all
    /// volumes in parallel. A shard whose sync fails counts as missing (heal rebuilds it);
    /// a chunk left with fewer than `data_shards` durable shards fails the write. Blocking.
    pub(crate) fn sync_chunks(&self, chunks: &mut [StoredChunk]) -> Result<()> {
        use std::collections::HashMap;
        let mut by_volume: HashMap<u64, crate::volume::PendingSync> = HashMap::new();
        for c in chunks.iter() {
            for (_, p) in &c.unsynced {
                let e = by_volume.entry(p.volume.id).or_insert_with(|| p.clone());
                e.seq = e.seq.max(p.seq);
            }
        }
        if by_volume.is_empty() {
            return Ok(());
        }
        let mut full = 0usize;
        let failed: std::collections::HashSet<u64> = std::thread::scope(|sc| {
            let handles: Vec<_> = by_volume
                .values()
                .map(|p| sc.spawn(move || (p.volume.id, p.volume.make_durable(p.seq))))
                .collect();
            handles
                .into_iter()
                .filter_map(|h| match h.join() {
                    Ok((_, Ok(()))) => None,
                    Ok((id, Err(e))) => {
                        tracing::warn!("volume {id:016x}: {e}");
                        full += e.is_no_space() as usize;
                        Some(id)
                    }
                    Err(_) => None,
                })
                .collect()
        });
        let k = self.inner.codec.k;
        let mut short = None;
        for c in chunks.iter_mut() {
            let unsynced = std::mem::take(&mut c.unsynced);
            if failed.is_empty() {
                continue;
            }
            if let Some(f) = &mut c.fresh {
                for (i, p) in unsynced {
                    if failed.contains(&p.volume.id) {
                        f.missing |= 1 << i;
                        f.locs[i] = crate::meta::ShardLoc::NONE;
                    }
                }
                let written = f.locs.iter().filter(|l| l.is_some()).count();
                if written < k {
                    short = Some(written);
                }
            }
        }
        if !failed.is_empty() {
            self.inner.disks.refresh();
        }
        match short {
            // Some of the syncs failed for lack of space (thin or network storage reports it late).
            Some(written) if full > 0 => Err(Error::NoSpace {
                written,
                needed: k,
                full,
            }),
            Some(written) => Err(Error::WriteQuorum { written, needed: k }),
            None => Ok(()),
        }
    }

    /// Frees the shards a failed writer stored: no record refers to them (records only ever
    /// take the locations of the writer that commits them).
    pub(crate) async fn abandon_chunks(&self, chunks: &[StoredChunk]) {
        let fresh: Vec<(ChunkRef, FreshShards)> = chunks
            .iter()
            .filter_map(|c| c.fresh.clone().map(|f| (c.r, f)))
            .collect();
        self.release_surplus(fresh).await;
    }

    /// An object's metadata, or `NoSuchKey`.
    pub fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectMeta> {
        let txn = self.read()?;
        self.head_in(&txn, bucket, key)
    }

    fn head_in(&self, txn: &dyn Read, bucket: &str, key: &str) -> Result<ObjectMeta> {
        match txn.get(Table::Objects, &object_key(bucket, key))? {
            Some(b) => ObjectMeta::decode(key, &b),
            None => {
                crate::meta::require_bucket(txn, bucket)?;
                Err(Error::NoSuchKey {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
        }
    }

    /// An object's metadata and manifest, read in one transaction.
    pub(crate) fn object_with_manifest(
        &self,
        bucket: &str,
        key: &str,
    ) -> Result<(ObjectMeta, Manifest)> {
        let txn = self.read()?;
        let meta = self.head_in(&txn, bucket, key)?;
        let m = crate::meta::read_manifest(&txn, &meta.data_id, key)?;
        Ok((meta, m))
    }

    /// Byte offsets of part `n` (1-based) of a multipart object, as `[start, end)`.
    pub fn part_range(&self, bucket: &str, key: &str, part: u32) -> Result<(u64, u64)> {
        let (meta, m) = self.object_with_manifest(bucket, key)?;
        let parts: &[u64] = match &m {
            Manifest::Chunks { part_sizes, .. } => part_sizes,
            Manifest::Inline(_) => &[],
        };
        part_bounds(meta.size, parts, part)
    }

    /// The byte ranges `[start, end)` of an object that hold data, in order and merged (holes
    /// left out; an inline object is all data), with the metadata of the version they describe.
    pub fn object_extents(&self, bucket: &str, key: &str) -> Result<(ObjectMeta, Vec<(u64, u64)>)> {
        let (meta, m) = self.object_with_manifest(bucket, key)?;
        let mut out: Vec<(u64, u64)> = Vec::new();
        match &m {
            Manifest::Inline(d) if !d.is_empty() => out.push((0, d.len() as u64)),
            Manifest::Inline(_) => {}
            Manifest::Chunks { chunks, .. } => {
                let mut at = 0u64;
                for c in chunks {
                    let end = at + c.len as u64;
                    if !c.is_hole() {
                        match out.last_mut() {
                            Some((_, e)) if *e == at => *e = end,
                            _ => out.push((at, end)),
                        }
                    }
                    at = end;
                }
            }
        }
        Ok((meta, out))
    }

    /// Streams an object, or the byte range of it. Only the chunks (and, within a chunk, the data
    /// shards) the range touches are read.
    pub async fn get_object(
        &self,
        bucket: &str,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<GetObject> {
        self.get_object_with(bucket, key, |_, _| Ok::<_, Error>(range))
            .await?
    }

    /// A get whose preconditions and range are decided on the very version it serves: `decide`
    /// sees the object's metadata and part sizes (empty unless multipart) as read in the same
    /// transaction as the data layout, and returns the range to serve or its own error (e.g. a
    /// failed `If-Match`). So an overwrite between the check and the read cannot serve the new
    /// version under a condition checked against the old one.
    pub async fn get_object_with<F, E>(
        &self,
        bucket: &str,
        key: &str,
        decide: F,
    ) -> Result<std::result::Result<GetObject, E>>
    where
        F: FnOnce(&ObjectMeta, &[u64]) -> std::result::Result<Option<ByteRange>, E>,
    {
        let (meta, manifest) = self.object_with_manifest(bucket, key)?;
        let parts: &[u64] = match &manifest {
            Manifest::Chunks { part_sizes, .. } => part_sizes,
            Manifest::Inline(_) => &[],
        };
        let range = match decide(&meta, parts) {
            Ok(r) => r,
            Err(e) => return Ok(Err(e)),
        };
        let (start, end) = match range {
            Some(r) => r.resolve(meta.size)?,
            None => (0, meta.size),
        };
        let body: ObjectBody = match manifest {
            Manifest::Inline(data) => {
                let b = Bytes::from(data).slice(start as usize..end as usize);
                Box::pin(stream::once(async move { Ok(b) }))
            }
            Manifest::Chunks { chunks, .. } => {
                let mut pieces = Vec::new();
                let mut off = 0u64;
                for c in chunks {
                    let (cs, ce) = (off, off + c.len as u64);
                    off = ce;
                    if ce <= start || cs >= end {
                        continue;
                    }
                    let a = start.max(cs) - cs;
                    let b = end.min(ce) - cs;
                    pieces.push((c, a as usize, b as usize));
                }
                let me = self.clone();
                let depth = self.inner.cfg.pipeline_depth;
                Box::pin(
                    stream::iter(pieces)
                        .map(move |(c, a, b)| {
                            let me = me.clone();
                            async move {
                                tokio::task::spawn_blocking(move || me.read_chunk(&c, a, b)).await?
                            }
                        })
                        .buffered(depth)
                        .flat_map(|r| {
                            stream::iter(match r {
                                Ok(v) => v.into_iter().map(Ok).collect::<Vec<_>>(),
                                Err(e) => vec![Err(e)],
                            })
                        }),
                )
            }
        };
        Ok(Ok(GetObject {
            meta,
            range: (start, end),
            body,
        }))
    }

    /// Reads bytes `[a, b)` of a chunk, verifying every shard it reads; rebuilds from parity when
    /// a shard is missing or corrupt, and queues the chunk for repair.
    pub(crate) fn read_chunk(&self, c: &ChunkRef, a: usize, b: usize) -> Result<Vec<Bytes>> {
        if c.is_hole() {
            return Ok(zeros(b.saturating_sub(a)));
        }
        let rec = self.chunk_record(&c.hash)?;
        self.read_chunk_at(c, &rec, a, b)
    }

    /// [`Engine::read_chunk`] with the shard locations given.
    pub(crate) fn read_chunk_at(
        &self,
        c: &ChunkRef,
        rec: &ChunkRecord,
        a: usize,
        b: usize,
    ) -> Result<Vec<Bytes>> {
        let codec = self.inner.codec;
        let s = codec.shard_len(c.len as usize);
        let place = self.inner.disks.placement(&c.hash, codec.n());
        let (first, last) = (a / s, (b.max(a + 1) - 1) / s);
        let disks = &self.inner.disks;
        // Only the blocks of each shard the range touches are read (and verified).
        let read = |j: usize| {
            let lo = a.max(j * s) - j * s;
            let hi = b.min((j + 1) * s) - j * s;
            disks.read_shard_range(&c.hash, j, place[j], rec.loc(j), s, lo, hi)
        };
        // The shards a range needs are on different disks: read them at the same time.
        let reads: Vec<ShardRead> = if first == last {
            vec![read(first)]
        } else {
            std::thread::scope(|sc| {
                let handles: Vec<_> = (first..=last).map(|j| sc.spawn(move || read(j))).collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(ShardRead::Missing))
                    .collect()
            })
        };
        let mut pieces = Vec::with_capacity(reads.len());
        for r in reads {
            match r {
                ShardRead::Ok(p) => pieces.push(p),
                _ => {
                    pieces.clear();
                    break;
                }
            }
        }
        if pieces.is_empty() {
            let data = self.read_chunk_degraded(c, rec)?;
            pieces.push(Bytes::from(data).slice(a..b));
        }
        // Slices of the shards as read: no copy.
        Ok(pieces)
    }

    /// The chunk record of `hash`; a chunk a manifest refers to always has one.
    pub(crate) fn chunk_record(&self, hash: &[u8; 32]) -> Result<ChunkRecord> {
        let txn = self.read()?;
        match txn.get(Table::Chunks, hash)? {
            Some(b) => ChunkRecord::decode(&b),
            None => Err(Error::Corrupt(format!(
                "chunk {} has no record (removed while being read?)",
                hex::encode(hash)
            ))),
        }
    }

    /// Reads a whole chunk from any `k` intact shards and checks it against its hash.
    pub(crate) fn read_chunk_degraded(&self, c: &ChunkRef, rec: &ChunkRecord) -> Result<Vec<u8>> {
        let codec = self.inner.codec;
        let len = c.len as usize;
        let s = codec.shard_len(len);
        let place = self.inner.disks.placement(&c.hash, codec.n());
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; codec.n()];
        let mut intact = 0;
        for (i, slot) in shards.iter_mut().enumerate() {
            if intact == codec.k {
                break;
            }
            if let ShardRead::Ok(p) =
                self.inner
                    .disks
                    .read_shard(&c.hash, i, place[i], rec.loc(i), s)
            {
                *slot = Some(p.into());
                intact += 1;
            }
        }
        self.queue_repair(c.hash);
        if intact < codec.k {
            return Err(Error::ReadQuorum {
                chunk: hex::encode(c.hash),
                intact,
                needed: codec.k,
            });
        }
        codec.reconstruct(&mut shards)?;
        let data = codec.join(&shards, len)?;
        if blake3::hash(&data).as_bytes() != &c.hash {
            return Err(Error::Corrupt(hex::encode(c.hash)));
        }
        Ok(data)
    }

    /// Notes a chunk for the next repair pass.
    pub(crate) fn queue_repair(&self, hash: [u8; 32]) {
        tracing::warn!(chunk = %hex::encode(hash), "degraded read; chunk queued for repair");
        self.inner.meta.committer().spawn(move |txn| {
            txn.put(Table::Repair, &hash, &[])?;
            Ok(())
        });
    }

    /// Deletes an object; returns whether it existed.
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool> {
        let okey = object_key(bucket, key);
        let bucket = bucket.to_string();
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_bucket(txn, &bucket)?;
                let Some(b) = txn.get(Table::Objects, &okey)? else {
                    return Ok(false);
                };
                let old = ObjectMeta::decode("", &b)?;
                txn.delete(Table::Objects, &okey)?;
                release_manifest(txn, &old.data_id)?;
                Ok(true)
            })
            .await
    }

    /// Copies an object without copying data: the new object refers to the same chunks.
    /// Copying an object onto itself with new attributes changes its metadata.
    pub async fn copy_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        opts: CopyOptions,
    ) -> Result<ObjectMeta> {
        validate_key(dst_key)?;
        let src = object_key(src_bucket, src_key);
        let dst = object_key(dst_bucket, dst_key);
        let (sb, sk, db, dk) = (
            src_bucket.to_string(),
            src_key.to_string(),
            dst_bucket.to_string(),
            dst_key.to_string(),
        );
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_buckets(txn, &[&sb, &db])?;
                let Some(sbytes) = txn.get(Table::Objects, &src)? else {
                    return Err(Error::NoSuchKey {
                        bucket: sb,
                        key: sk,
                    });
                };
                let smeta = ObjectMeta::decode(&sk, &sbytes)?;
                if let Some(want) = &opts.source_if_match {
                    if !etag_matches(want, &smeta.etag) {
                        return Err(Error::PreconditionFailed("source ETag does not match"));
                    }
                }
                let old = current_object(txn, &dst)?;
                check_preconditions(old.as_ref(), opts.if_none_match, None)?;
                let manifest = crate::meta::read_manifest(txn, &smeta.data_id, &sk)?;
                let meta = ObjectMeta {
                    key: dk,
                    size: smeta.size,
                    etag: smeta.etag.clone(),
                    last_modified_ns: now_ns(),
                    parts_count: smeta.parts_count,
                    attrs: opts.replace_attrs.unwrap_or(smeta.attrs),
                    data_id: new_id(),
                    hole_bytes: manifest.hole_bytes(),
                };
                ref_manifest(txn, &manifest)?;
                crate::meta::install_object(txn, &dst, &meta, &manifest, old)?;
                Ok(meta)
            })
            .await
    }

    /// Renames an object atomically (one metadata transaction, no data touched), replacing
    /// any object under the new key, as POSIX `rename` does.
    pub async fn rename_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<ObjectMeta> {
        validate_key(dst_key)?;
        let src = object_key(src_bucket, src_key);
        let dst = object_key(dst_bucket, dst_key);
        let (sb, sk, db, dk) = (
            src_bucket.to_string(),
            src_key.to_string(),
            dst_bucket.to_string(),
            dst_key.to_string(),
        );
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_buckets(txn, &[&sb, &db])?;
                let Some(mut meta) = current_object(txn, &src)? else {
                    return Err(Error::NoSuchKey {
                        bucket: sb,
                        key: sk,
                    });
                };
                if src == dst {
                    meta.key = dk;
                    return Ok(meta);
                }
                if let Some(old) = current_object(txn, &dst)? {
                    release_manifest(txn, &old.data_id)?;
                }
                txn.delete(Table::Objects, &src)?;
                txn.put(Table::Objects, &dst, &meta.encode()?)?;
                meta.key = dk;
                Ok(meta)
            })
            .await
    }

    /// `chmod`, `chown`, `utimensat` of an object: applies `change` to its POSIX attributes (its
    /// defaults when it has none, so an object put over S3 keeps its times) and sets ctime to now.
    pub async fn update_posix(
        &self,
        bucket: &str,
        key: &str,
        change: crate::posix::Change,
    ) -> Result<ObjectMeta> {
        let now = crate::meta::now_ns();
        let default_key = key.to_string();
        self.update_object_attrs_with(bucket, key, move |attrs, last_modified_ns| {
            let mut p = attrs.posix.unwrap_or_else(|| {
                crate::posix::PosixAttrs::default_for(&default_key, last_modified_ns)
            });
            p.apply(&change, now);
            attrs.posix = Some(p);
        })
        .await
    }

    /// Changes an object's attributes (tags, POSIX attributes, …) atomically, keeping its data,
    /// ETag and modification time.
    pub async fn update_object_attrs<F>(&self, bucket: &str, key: &str, f: F) -> Result<ObjectMeta>
    where
        F: FnOnce(&mut ObjectAttrs) + Send + 'static,
    {
        self.update_object_attrs_with(bucket, key, move |a, _| f(a))
            .await
    }

    /// [`Engine::update_object_attrs`], with the object's modification time given to `f`.
    async fn update_object_attrs_with<F>(&self, bucket: &str, key: &str, f: F) -> Result<ObjectMeta>
    where
        F: FnOnce(&mut ObjectAttrs, i64) + Send + 'static,
    {
        let okey = object_key(bucket, key);
        let (b, k) = (bucket.to_string(), key.to_string());
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_bucket(txn, &b)?;
                let Some(mut meta) = current_object(txn, &okey)? else {
                    return Err(Error::NoSuchKey { bucket: b, key: k });
                };
                f(&mut meta.attrs, meta.last_modified_ns);
                txn.put(Table::Objects, &okey, &meta.encode()?)?;
                meta.key = k;
                Ok(meta)
            })
            .await
    }

    /// Lists a bucket's objects in byte order of their keys (an LMDB range scan).
    pub fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<ListPage> {
        let txn = self.read()?;
        crate::meta::require_bucket(&txn, bucket)?;
        let base = object_key(bucket, "");
        let mut page = ListPage::default();
        if q.max_keys == 0 {
            return Ok(page);
        }
        let delim = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut seek = object_key(bucket, &q.prefix);
        let mut skip_equal: Option<Vec<u8>> = None;
        if let Some(sa) = &q.start_after {
            let sk = object_key(bucket, sa);
            if sk >= seek {
                // A marker that is a common prefix of this listing (the prefix, then a first
                // delimiter that ends it) skips the whole group. Any other marker, such as a
                // `dir/` object equal to the prefix itself, is a key to list after.
                let is_group = |d: &str| {
                    sa.strip_prefix(q.prefix.as_str())
                        .and_then(|rest| rest.find(d).map(|p| p + d.len() == rest.len()))
                        .unwrap_or(false)
                };
                match delim {
                    Some(d) if is_group(d) => match successor(&sk) {
                        Some(s) => seek = s,
                        None => return Ok(page),
                    },
                    _ => {
                        seek = sk.clone();
                        skip_equal = Some(sk);
                    }
                }
            }
        }
        let mut count = 0usize;
        'outer: loop {
            let range = (
                std::ops::Bound::Included(seek.as_slice()),
                std::ops::Bound::Unbounded,
            );
            let iter = txn.range(Table::Objects, range.0, range.1)?;
            for r in iter {
                let (k, v) = r?;
                if !k.starts_with(&base) {
                    break 'outer;
                }
                if skip_equal.as_deref() == Some(&k) {
                    continue;
                }
                let key_bytes = &k[base.len()..];
                let key = std::str::from_utf8(key_bytes)
                    .map_err(|_| Error::Decode("key is not UTF-8".into()))?;
                if !key.starts_with(&q.prefix) {
                    break 'outer;
                }
                if count == q.max_keys {
                    page.is_truncated = true;
                    break 'outer;
                }
                if let Some(d) = delim {
                    if let Some(pos) = key[q.prefix.len()..].find(d) {
                        let cp = &key[..q.prefix.len() + pos + d.len()];
                        page.common_prefixes.push(cp.to_string());
                        page.next_marker = Some(cp.to_string());
                        count += 1;
                        match successor(&object_key(bucket, cp)) {
                            Some(s) => {
                                seek = s;
                                skip_equal = None;
                                continue 'outer;
                            }
                            None => break 'outer,
                        }
                    }
                }
                page.objects.push(ObjectMeta::decode(key, &v)?);
                page.next_marker = Some(key.to_string());
                count += 1;
            }
            break;
        }
        if !page.is_truncated {
            page.next_marker = None;
        }
        Ok(page)
    }

    /// How many distinct `prefix X /` groups (subdirectories, to a filesystem) there are
    /// among the keys under `prefix`: one seek per group, keys alone (no records decoded).
    pub fn count_subprefixes(&self, bucket: &str, prefix: &str) -> Result<u64> {
        let txn = self.read()?;
        let base = object_key(bucket, prefix);
        let mut seek = base.clone();
        let mut n = 0u64;
        'outer: loop {
            let range = (
                std::ops::Bound::Included(seek.as_slice()),
                std::ops::Bound::Unbounded,
            );
            for r in txn.range(Table::Objects, range.0, range.1)? {
                let (k, _) = r?;
                if !k.starts_with(&base) {
                    break 'outer;
                }
                if let Some(pos) = k[base.len()..].iter().position(|b| *b == b'/') {
                    n += 1;
                    match successor(&k[..base.len() + pos + 1]) {
                        Some(s) => {
                            seek = s;
                            continue 'outer;
                        }
                        None => break 'outer,
                    }
                }
            }
            break;
        }
        Ok(n)
    }

    /// Chunk records (for tests and tools): hash → record.
    pub fn chunk_records(&self) -> Result<BTreeMap<[u8; 32], ChunkRecord>> {
        let txn = self.read()?;
        let mut out = BTreeMap::new();
        for r in txn.all(Table::Chunks)? {
            let (k, v) = r?;
            let mut h = [0u8; 32];
            if k.len() == 32 {
                h.copy_from_slice(&k);
                out.insert(h, ChunkRecord::decode(&v)?);
            }
        }
        Ok(out)
    }

    /// Where each shard of a chunk is, or `None` for a shard known to be missing. For tests and
    /// tools.
    pub fn shard_locations(&self, hash: &[u8; 32]) -> Result<Vec<Option<ShardPlace>>> {
        let rec = self.chunk_record(hash)?;
        let s = self.inner.codec.shard_len(rec.len as usize);
        let place = self.inner.disks.placement(hash, self.inner.codec.n());
        Ok((0..self.inner.codec.n())
            .map(|i| {
                let loc = rec.loc(i);
                loc.is_some().then(|| ShardPlace {
                    disk: place[i],
                    volume: self.inner.disks.disks[place[i]].volume_path(loc.volume),
                    offset: loc.offset,
                    len: crate::volume::region_len(s),
                })
            })
            .collect())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.inner.cfg.data_dir
    }
}

/// Granularity of hole detection: runs of zeros are found in whole pages.
pub const HOLE_PAGE: usize = 4096;

/// The shortest run of zeros stored as a hole within data: shorter runs are not worth the
/// extra chunk they split the data into.
pub const MIN_HOLE: usize = 64 << 10;

/// Cuts `data` into runs, each `(length, is_hole)`, in order and covering it: a hole is a run
/// of zero pages (4 KiB, counted from the start of `data`; the last page may be short) at
/// least [`MIN_HOLE`] long, or all of `data` when it is all zeros; everything else is data.
pub fn zero_runs(data: &[u8]) -> Vec<(usize, bool)> {
    let zero_page = |p: &[u8]| p.chunks(64).all(|c| c.iter().fold(0u8, |a, b| a | b) == 0);
    let mut runs: Vec<(usize, bool)> = Vec::new();
    let push = |len: usize, hole: bool, runs: &mut Vec<(usize, bool)>| match runs.last_mut() {
        Some((n, h)) if *h == hole => *n += len,
        _ => runs.push((len, hole)),
    };
    let mut zeros = 0usize;
    for page in data.chunks(HOLE_PAGE) {
        if zero_page(page) {
            zeros += page.len();
            continue;
        }
        if zeros > 0 {
            push(zeros, zeros >= MIN_HOLE, &mut runs);
            zeros = 0;
        }
        push(page.len(), false, &mut runs);
    }
    if zeros > 0 {
        push(zeros, zeros >= MIN_HOLE || zeros == data.len(), &mut runs);
    }
    runs
}

/// Size of the shared buffer of zeros holes are read from.
const ZEROS_LEN: usize = 1 << 20;

/// `n` zero bytes as slices of one shared buffer (a hole's bytes: nothing is read or allocated).
pub(crate) fn zeros(n: usize) -> Vec<Bytes> {
    static ZEROS: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    let z = ZEROS.get_or_init(|| Bytes::from(vec![0u8; ZEROS_LEN]));
    let mut out = Vec::with_capacity(n.div_ceil(ZEROS_LEN));
    let mut left = n;
    while left > 0 {
        let k = left.min(ZEROS_LEN);
        out.push(z.slice(..k));
        left -= k;
    }
    out
}

/// The smallest byte string greater than every string starting with `p`.
fn successor(p: &[u8]) -> Option<Vec<u8>> {
    let mut s = p.to_vec();
    while let Some(last) = s.pop() {
        if last < 0xff {
            s.push(last + 1);
            return Some(s);
        }
    }
    None
}

/// Byte offsets `[start, end)` of part `part` (1-based) of an object of `size` bytes with
/// these part sizes (none: a single put, whose only part is the whole object).
pub fn part_bounds(size: u64, part_sizes: &[u64], part: u32) -> Result<(u64, u64)> {
    if part_sizes.is_empty() {
        return match part {
            1 => Ok((0, size)),
            _ => Err(Error::InvalidPart(format!("part {part} does not exist"))),
        };
    }
    if part == 0 || part as usize > part_sizes.len() {
        return Err(Error::InvalidPart(format!("part {part} does not exist")));
    }
    let start: u64 = part_sizes[..part as usize - 1].iter().sum();
    Ok((start, start + part_sizes[part as usize - 1]))
}

/// Whether an ETag condition (quoted or not, or `*`) matches `etag`.
pub fn etag_matches(cond: &str, etag: &str) -> bool {
    cond.split(',')
        .map(|c| c.trim().trim_start_matches("W/").trim_matches('"'))
        .any(|c| c == "*" || c == etag)
}

fn check_preconditions(
    old: Option<&ObjectMeta>,
    if_none_match: bool,
    if_match: Option<&str>,
) -> Result<()> {
    if if_none_match && old.is_some() {
        return Err(Error::PreconditionFailed("the object exists"));
    }
    if let Some(want) = if_match {
        match old {
            Some(o) if etag_matches(want, &o.etag) => {}
            _ => return Err(Error::PreconditionFailed("ETag does not match")),
        }
    }
    Ok(())
}

/// Reads until `max` bytes or end of stream.
pub(crate) async fn read_up_to<R: AsyncRead + Unpin>(r: &mut R, max: usize) -> Result<Vec<u8>> {
    let mut buf: Vec<u8> = Vec::with_capacity(max.min(64 * 1024));
    let mut limited = r.take(max as u64);
    loop {
        if buf.len() == buf.capacity() {
            let extra = buf.capacity().min(max - buf.len()).max(1);
            buf.reserve_exact(extra);
        }
        let n = limited.read_buf(&mut buf).await?;
        if n == 0 || buf.len() >= max {
            break;
        }
    }
    Ok(buf)
}
