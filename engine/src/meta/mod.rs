//! Metadata records and their encodings, kept in the tables of the metadata seam
//! ([`crate::kv`]).
//!
//! Databases (all keys are raw bytes, ordered bytewise):
//! - `buckets`: bucket name → [`BucketRecord`]
//! - `objects`: `bucket \0 key` → [`ObjectMeta`] (MessagePack, named fields) of the latest
//!   version or delete marker
//! - `versions`: `bucket \0 key \0 inverted sort id` → [`ObjectMeta`] of every other version
//!   (see [`crate::object::version`])
//! - `manifests`: data id → [`Manifest`] (compact binary)
//! - `chunks`: BLAKE3 hash → [`ChunkRecord`] (reference count, length, missing shards, where
//!   each shard lives)
//! - `zero_refs`: hash → () for chunks whose count dropped to zero (GC candidates)
//! - `repair`: hash → () for chunks with a missing or corrupt shard
//! - `uploads`: `bucket \0 key \0 upload-id` → [`UploadRecord`]
//! - `parts`: `upload-id part-number(be u32)` → [`PartRecord`]
//! - `state`: name → bytes (heal/scrub cursors)
//! - `drafts`: draft id → owner and the chunks the draft pins (see [`crate::object::draft`])
//! - `chunk_md5`: BLAKE3 hash → MD5 of the chunk, where known (for multipart-style ETags)
//! - `keys`: access key id → [`crate::access::KeyRecord`] (secret, name, grants)
//! - `policies`: bucket name → its bucket policy as given (JSON text)

use std::collections::BTreeMap;

pub mod access;
pub mod notify;

use crate::kv::{Read, Table, Write};
use serde::{Deserialize, Serialize};

use crate::compression::{Compression, Encoding};
use crate::error::{Error, Result};

/// Nanoseconds since the Unix epoch, now.
pub fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

/// A bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Creation time, ns since the epoch.
    pub created_ns: i64,
    /// The bucket's tags (PutBucketTagging); absent in records written before them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// Versioning (PutBucketVersioning); absent in a bucket that never had it turned on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub versioning: Option<Versioning>,
    /// Lifecycle rules (PutBucketLifecycleConfiguration); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::lifecycle::LifecycleConfig>,
    /// Object lock, once enabled (for good).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object_lock: Option<LockConfig>,
    /// The key that created the bucket (access key id); absent: the administrators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The bucket policy's id (PutBucketPolicy); the document is in the `policies` table, so
    /// a request that only needs the parsed (cached) policy does not decode it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<access::PolicyId>,
    /// CORS rules (PutBucketCors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cors: Option<access::CorsConfig>,
    /// The bucket's ACL beyond its owner's full control (absent: private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<access::Acl>,
    /// Whether an object of the bucket has ever been given an ACL (only then do reads look
    /// at objects' ACLs).
    #[serde(default, skip_serializing_if = "is_false")]
    pub object_acls: bool,
    /// PublicAccessBlock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_access_block: Option<access::PublicAccessBlock>,
    /// OwnershipControls' setting, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership: Option<String>,
    /// Compression of new data (`s3d bucket compression`); absent: the store's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// Event notifications (PutBucketNotificationConfiguration); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notifications: Option<notify::NotificationConfig>,
}

/// A bucket's versioning state once it has been set (a bucket that never had it is
/// unversioned, and can never return to that).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Versioning {
    /// Every write makes a new version with its own id.
    Enabled,
    /// Writes replace the `null` version; the versions made while enabled stay.
    Suspended,
}

pub use crate::posix::PosixAttrs;

/// Attributes a client sets on an object (S3 headers, user metadata, checksums, tags, POSIX).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectAttrs {
    /// `Content-Type`.
    pub content_type: Option<String>,
    /// `Content-Encoding`.
    pub content_encoding: Option<String>,
    /// `Content-Disposition`.
    pub content_disposition: Option<String>,
    /// `Content-Language`.
    pub content_language: Option<String>,
    /// `Cache-Control`.
    pub cache_control: Option<String>,
    /// `Expires` (as the client sent it).
    pub expires: Option<String>,
    /// `x-amz-meta-*` user metadata (names lowercased, without the prefix).
    pub user_metadata: BTreeMap<String, String>,
    /// Checksums the client sent: algorithm (`CRC32`, `CRC32C`, `CRC64NVME`, `SHA1`, `SHA256`) →
    /// base64 value.
    pub checksums: BTreeMap<String, String>,
    /// Object tags.
    pub tags: BTreeMap<String, String>,
    /// POSIX attributes; `None` means defaults derived from the object.
    pub posix: Option<PosixAttrs>,
    /// The algorithm a multipart upload's checksum is kept with (`CRC32`, …), named when the
    /// upload was created; its value is in `checksums` once the upload is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_algorithm: Option<String>,
    /// What that checksum covers: `COMPOSITE` (a checksum of the parts' checksums) or
    /// `FULL_OBJECT` (the whole object's bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum_type: Option<String>,
    /// Object lock asked for by the write (retention, legal hold): taken out into the
    /// version's own fields when it is installed, never kept here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock: Option<LockRequest>,
    /// The version's ACL beyond its owner's full control (absent: private).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acl: Option<access::Acl>,
}

// Object lock records (the rules that use them: `crate::object::retention`).

/// A retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// May be shortened or removed by a request that asks to bypass it.
    Governance,
    /// Nobody may shorten or remove it before it ends; it can only be extended.
    Compliance,
}

/// A version's retention: its mode and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: LockMode,
    /// Retained until this time (ns since the epoch).
    pub until_ns: i64,
}

/// A bucket's default retention for new versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// The mode.
    pub mode: LockMode,
    /// Days (a year counts 365).
    pub days: u32,
}

/// A bucket's object lock configuration (present once object lock is enabled, which is for
/// good).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockConfig {
    /// Retention given to new versions that ask for none.
    #[serde(default)]
    pub default_retention: Option<DefaultRetention>,
}

/// What a write asks for a new version (object lock headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    /// Retention for the version (none: the bucket's default, if any).
    #[serde(default)]
    pub retention: Option<Retention>,
    /// Legal hold on the version.
    #[serde(default)]
    pub legal_hold: bool,
}

/// Everything known about a stored object version (or delete marker) except its data.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Object key (not stored in the record: it is the LMDB key).
    #[serde(skip)]
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes: MD5 hex, or MD5-of-MD5s `-N` for multipart.
    pub etag: String,
    /// Last modification, ns since the epoch.
    pub last_modified_ns: i64,
    /// Number of parts for a multipart object, 0 otherwise.
    pub parts_count: u32,
    /// Client-set attributes.
    pub attrs: ObjectAttrs,
    /// Id of the manifest holding the object's data layout.
    pub(crate) data_id: String,
    /// Bytes of the object in holes: zeros that take no space (a sparse file's holes, runs of
    /// zeros in a body). `size - hole_bytes` is what the object occupies before coding.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hole_bytes: u64,
    /// The multipart upload this object is the completion of (a retried completion of it is
    /// answered with this object); absent for anything else.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload_id: Option<String>,
    /// The version's id, 32 hex digits (8 bytes of time, 8 random: see
    /// [`crate::object::version`]); empty for a `null` version written in a bucket that never
    /// had versioning (and in every record written before versioning existed).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub(crate) vid: String,
    /// Whether the version has its own id (written while versioning was enabled); `false`:
    /// the `null` version.
    #[serde(default, skip_serializing_if = "is_false")]
    pub versioned: bool,
    /// Whether this is a delete marker (no data, no manifest).
    #[serde(default, skip_serializing_if = "is_false")]
    pub delete_marker: bool,
    /// Object lock retention of this version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
    /// Object lock legal hold on this version.
    #[serde(default, skip_serializing_if = "is_false")]
    pub legal_hold: bool,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl ObjectMeta {
    /// POSIX attributes, with defaults ([`PosixAttrs::default_for`]: a regular file 0644 or,
    /// for a `dir/` marker, a directory 0755; root's; times = last modified).
    pub fn posix(&self) -> PosixAttrs {
        self.attrs
            .posix
            .unwrap_or_else(|| PosixAttrs::default_for(&self.key, self.last_modified_ns))
    }

    /// The version id S3 shows: its own id, `null` for the null version of a bucket that has
    /// had versioning, `None` in a bucket that never had it.
    pub fn version_id(&self) -> Option<&str> {
        match (self.versioned, self.vid.is_empty()) {
            (true, _) => Some(&self.vid),
            (false, false) => Some("null"),
            (false, true) => None,
        }
    }

    pub(crate) fn decode(key: &str, bytes: &[u8]) -> Result<ObjectMeta> {
        let mut m: ObjectMeta = rmp_serde::from_slice(bytes)?;
        m.key = key.to_string();
        Ok(m)
    }

    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        Ok(rmp_serde::to_vec_named(self)?)
    }
}

/// A reference to one chunk in a manifest, or a hole: `len` zero bytes that are not stored
/// (the hash is [`ChunkRef::HOLE`]; no chunk record, no reference count, nothing on disk).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkRef {
    /// BLAKE3 hash of the chunk ([`ChunkRef::HOLE`] for a hole).
    pub hash: [u8; 32],
    /// Length of the chunk.
    pub len: u32,
}

impl ChunkRef {
    /// The hash that marks a hole (no BLAKE3 output is all zeros in practice: 2^-256).
    pub const HOLE: [u8; 32] = [0; 32];

    /// A hole of `len` zero bytes.
    pub fn hole(len: u32) -> ChunkRef {
        ChunkRef {
            hash: Self::HOLE,
            len,
        }
    }

    /// Whether this is a hole (zeros, nothing stored).
    pub fn is_hole(&self) -> bool {
        self.hash == Self::HOLE
    }
}

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    /// Small object stored in the metadata record itself.
    Inline(Vec<u8>),
    /// Chunks in order, and the part sizes for a multipart object.
    Chunks {
        /// The chunks.
        chunks: Vec<ChunkRef>,
        /// Sizes of the parts (empty for a single put).
        part_sizes: Vec<u64>,
    },
}

impl Manifest {
    /// Largest plain length a compressed inline manifest may claim (inline objects are at
    /// most 1 MiB): a damaged length never makes a large allocation.
    const MAX_INLINE: usize = 1 << 20;

    /// [`Manifest::encode`], with an inline object's bytes compressed when `c` asks for it and
    /// it saves enough (variant 2).
    pub fn encode_compressed(&self, c: Compression) -> Vec<u8> {
        if let Manifest::Inline(d) = self {
            if let Some(z) = crate::compression::compress(d, c) {
                let mut out = Vec::with_capacity(10 + z.len());
                out.extend_from_slice(&[1, 2]);
                out.extend_from_slice(&(d.len() as u32).to_le_bytes());
                out.extend_from_slice(&(z.len() as u32).to_le_bytes());
                out.extend_from_slice(&z);
                return out;
            }
        }
        self.encode()
    }

    /// Bytes an encoded manifest saves by compression (its plain length less its stored one),
    /// read from its head without decompressing.
    pub fn saved_bytes(b: &[u8]) -> u64 {
        if b.len() < 10 || b[0] != 1 || b[1] != 2 {
            return 0;
        }
        let plain = u32::from_le_bytes([b[2], b[3], b[4], b[5]]) as u64;
        let stored = u32::from_le_bytes([b[6], b[7], b[8], b[9]]) as u64;
        plain.saturating_sub(stored)
    }

    /// Compact binary encoding (see docs/format.md).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        match self {
            Manifest::Inline(d) => {
                out.push(0);
                out.extend_from_slice(&(d.len() as u32).to_le_bytes());
                out.extend_from_slice(d);
            }
            Manifest::Chunks { chunks, part_sizes } => {
                out.push(1);
                out.reserve(8 + chunks.len() * 36 + part_sizes.len() * 8);
                out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
                for c in chunks {
                    out.extend_from_slice(&c.hash);
                    out.extend_from_slice(&c.len.to_le_bytes());
                }
                out.extend_from_slice(&(part_sizes.len() as u32).to_le_bytes());
                for p in part_sizes {
                    out.extend_from_slice(&p.to_le_bytes());
                }
            }
        }
        out
    }

    /// Decodes [`Manifest::encode`]'s output.
    pub fn decode(b: &[u8]) -> Result<Manifest> {
        let bad = || Error::Decode("manifest".into());
        let mut r = Reader { b, pos: 0 };
        if r.u8().ok_or_else(bad)? != 1 {
            return Err(bad());
        }
        match r.u8().ok_or_else(bad)? {
            0 => {
                let n = r.u32().ok_or_else(bad)? as usize;
                Ok(Manifest::Inline(r.take(n).ok_or_else(bad)?.to_vec()))
            }
            1 => {
                let n = r.u32().ok_or_else(bad)? as usize;
                let mut chunks = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    let mut hash = [0u8; 32];
                    hash.copy_from_slice(r.take(32).ok_or_else(bad)?);
                    chunks.push(ChunkRef {
                        hash,
                        len: r.u32().ok_or_else(bad)?,
                    });
                }
                let p = r.u32().ok_or_else(bad)? as usize;
                let mut part_sizes = Vec::with_capacity(p.min(10_000));
                for _ in 0..p {
                    part_sizes.push(r.u64().ok_or_else(bad)?);
                }
                Ok(Manifest::Chunks { chunks, part_sizes })
            }
            2 => {
                let plain = r.u32().ok_or_else(bad)? as usize;
                let n = r.u32().ok_or_else(bad)? as usize;
                if plain > Self::MAX_INLINE {
                    return Err(bad());
                }
                let z = r.take(n).ok_or_else(bad)?;
                let d = crate::compression::decompress(z, Encoding::Zstd, plain)
                    .map_err(|e| Error::Decode(format!("manifest: {e}")))?;
                Ok(Manifest::Inline(d))
            }
            _ => Err(bad()),
        }
    }

    /// The chunks referenced, holes included (none when inline).
    pub fn chunks(&self) -> &[ChunkRef] {
        match self {
            Manifest::Inline(_) => &[],
            Manifest::Chunks { chunks, .. } => chunks,
        }
    }

    /// Bytes of the object in holes (stored nowhere).
    pub fn hole_bytes(&self) -> u64 {
        self.chunks()
            .iter()
            .filter(|c| c.is_hole())
            .map(|c| c.len as u64)
            .sum()
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.b.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|s| s[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let s = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Some(u64::from_le_bytes(a))
    }
}

/// Where one shard of a chunk lives: a volume file on the shard's disk and an offset in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, PartialOrd, Ord)]
pub struct ShardLoc {
    /// Volume id (the file `volumes/<id as 16 hex>.vol` on the disk); 0 when the shard was never
    /// written.
    pub volume: u64,
    /// Byte offset of the shard's header in the volume (a multiple of 4096).
    pub offset: u64,
}

impl ShardLoc {
    /// No shard stored.
    pub const NONE: ShardLoc = ShardLoc {
        volume: 0,
        offset: 0,
    };

    /// Whether a shard was stored.
    pub fn is_some(&self) -> bool {
        self.volume != 0
    }
}

/// Per-chunk bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkRecord {
    /// How many manifest entries refer to the chunk.
    pub refs: u64,
    /// Length of the chunk as stored (erasure-coded): the plain length, or the compressed one.
    pub len: u32,
    /// Bit `i` set: shard `i` is known to be missing.
    pub missing: u64,
    /// Location of shard `i` (on the disk placement gives it), for every shard.
    pub locs: Vec<ShardLoc>,
    /// How the stored bytes encode the chunk.
    pub encoding: Encoding,
    /// Length of the plain chunk (`len` when stored plain).
    pub plain_len: u32,
    /// The cluster layout generation that placed the shards (always 0 on one machine).
    pub layout: u32,
}

impl ChunkRecord {
    /// Location of shard `i` ([`ShardLoc::NONE`] when unknown).
    pub fn loc(&self, i: usize) -> ShardLoc {
        self.locs.get(i).copied().unwrap_or(ShardLoc::NONE)
    }

    /// Encoding: refs u64le, len u32le, missing u64le, u8 n, n × (volume u64le, offset u64le);
    /// then, for a chunk not stored plain or placed by a cluster layout other than 0 only,
    /// encoding u8 and plain length u32le, and then for the latter the layout u32le (a plain
    /// chunk's record on one machine is as before compression and clusters existed).
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(26 + 16 * self.locs.len());
        b.extend_from_slice(&self.refs.to_le_bytes());
        b.extend_from_slice(&self.len.to_le_bytes());
        b.extend_from_slice(&self.missing.to_le_bytes());
        b.push(self.locs.len() as u8);
        for l in &self.locs {
            b.extend_from_slice(&l.volume.to_le_bytes());
            b.extend_from_slice(&l.offset.to_le_bytes());
        }
        if self.encoding != Encoding::Plain || self.layout != 0 {
            b.push(self.encoding as u8);
            b.extend_from_slice(&self.plain_len.to_le_bytes());
        }
        if self.layout != 0 {
            b.extend_from_slice(&self.layout.to_le_bytes());
        }
        b
    }

    /// Decodes [`ChunkRecord::encode`]'s output.
    pub fn decode(b: &[u8]) -> Result<ChunkRecord> {
        let mut r = Reader { b, pos: 0 };
        let bad = || Error::Decode("chunk record".into());
        let refs = r.u64().ok_or_else(bad)?;
        let len = r.u32().ok_or_else(bad)?;
        let missing = r.u64().ok_or_else(bad)?;
        let n = r.u8().ok_or_else(bad)?;
        let mut locs = Vec::with_capacity(n as usize);
        for _ in 0..n {
            locs.push(ShardLoc {
                volume: r.u64().ok_or_else(bad)?,
                offset: r.u64().ok_or_else(bad)?,
            });
        }
        let (encoding, plain_len) = match r.u8() {
            None => (Encoding::Plain, len),
            Some(e) => (
                Encoding::from_u8(e).ok_or_else(bad)?,
                r.u32().ok_or_else(bad)?,
            ),
        };
        let layout = r.u32().unwrap_or(0);
        if r.pos != b.len() {
            return Err(bad());
        }
        Ok(ChunkRecord {
            refs,
            len,
            missing,
            locs,
            encoding,
            plain_len,
            layout,
        })
    }
}

/// The shards a writer stored for a chunk it found unknown: where they are and which are
/// missing. Recorded by the commit that first references the chunk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FreshShards {
    /// Bit `i` set: shard `i` could not be written.
    pub missing: u64,
    /// Location of every shard.
    pub locs: Vec<ShardLoc>,
    /// Length of the stored (erasure-coded) bytes.
    pub stored_len: u32,
    /// How the stored bytes encode the chunk.
    pub encoding: Encoding,
    /// The cluster layout generation that placed them (0 on one machine).
    pub layout: u32,
    /// In a cluster, the latest a commit may first reference them (see
    /// [`crate::EngineConfig::write_limit`]); `None` on one machine.
    pub deadline: Option<WriteDeadline>,
}

/// When a write began storing shards, and how long it may take to its commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteDeadline {
    /// Before the first shard was written.
    pub started: std::time::Instant,
    /// The write limit.
    pub limit: std::time::Duration,
}

impl WriteDeadline {
    /// Starts now.
    pub fn start(limit: std::time::Duration) -> WriteDeadline {
        WriteDeadline {
            started: std::time::Instant::now(),
            limit,
        }
    }

    /// Fails with [`Error::WriteTooSlow`] once the limit has passed.
    pub fn check(&self) -> Result<()> {
        let held = self.started.elapsed();
        if held > self.limit {
            return Err(Error::WriteTooSlow {
                held,
                limit: self.limit,
            });
        }
        Ok(())
    }
}

impl FreshShards {
    /// The record these shards get for a chunk of `plain_len` bytes with `refs` references.
    pub fn record(&self, refs: u64, plain_len: u32) -> ChunkRecord {
        ChunkRecord {
            refs,
            len: self.stored_len,
            missing: self.missing,
            locs: self.locs.clone(),
            encoding: self.encoding,
            plain_len,
            layout: self.layout,
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UploadRecord {
    /// Attributes the object will get.
    pub attrs: ObjectAttrs,
    /// When the upload was created, ns since the epoch.
    pub initiated_ns: i64,
}

/// An uploaded part.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PartRecord {
    /// MD5 hex of the part.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, ns since the epoch.
    pub last_modified_ns: i64,
    /// Checksums sent with the part.
    pub checksums: BTreeMap<String, String>,
    /// Manifest id of the part's chunks.
    pub data_id: String,
}

/// LMDB key of an object.
pub(crate) fn object_key(bucket: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(bucket.len() + 1 + key.len());
    k.extend_from_slice(bucket.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

/// The object currently stored under an LMDB object key, if any.
pub(crate) fn current_object(txn: &dyn Read, okey: &[u8]) -> Result<Option<ObjectMeta>> {
    match txn.get(Table::Objects, okey)? {
        Some(b) => Ok(Some(ObjectMeta::decode("", &b)?)),
        None => Ok(None),
    }
}

/// Fails with `NoSuchBucket` unless every named bucket exists.
pub(crate) fn require_buckets(txn: &dyn Read, buckets: &[&String]) -> Result<()> {
    for b in buckets {
        require_bucket(txn, b)?;
    }
    Ok(())
}

/// `NoSuchBucket` unless `bucket` exists.
pub(crate) fn require_bucket(txn: &dyn Read, bucket: &str) -> Result<()> {
    if txn.get(Table::Buckets, bucket.as_bytes())?.is_none() {
        return Err(Error::NoSuchBucket(bucket.to_string()));
    }
    Ok(())
}

/// LMDB key of a multipart upload.
pub(crate) fn upload_key(bucket: &str, key: &str, upload_id: &str) -> Vec<u8> {
    let mut k = object_key(bucket, key);
    k.push(0);
    k.extend_from_slice(upload_id.as_bytes());
    k
}

/// LMDB key of a part.
pub(crate) fn part_key(upload_id: &str, part: u32) -> Vec<u8> {
    let mut k = upload_id.as_bytes().to_vec();
    k.extend_from_slice(&part.to_be_bytes());
    k
}

/// Whether a commit may refer to `c` without shards of its own: a hole, or a chunk with a record.
pub(crate) fn chunk_known(txn: &dyn Read, c: &ChunkRef) -> Result<bool> {
    Ok(c.is_hole() || txn.get(Table::Chunks, &c.hash)?.is_some())
}

/// Adds `n` references to a chunk (nothing for a hole), creating its record when new. `fresh` is what the caller
/// wrote for the chunk, if it wrote it. Returns the shards that turned out not to be needed
/// (another writer's record was there first): the caller frees them after its commit.
pub(crate) fn incref(
    txn: &mut dyn Write,
    hash: &[u8; 32],
    len: u32,
    fresh: Option<&FreshShards>,
    n: u64,
) -> Result<Option<FreshShards>> {
    if *hash == ChunkRef::HOLE {
        return Ok(None);
    }
    let mut surplus = None;
    let rec = match txn.get(Table::Chunks, hash)? {
        Some(b) => {
            let mut r = ChunkRecord::decode(&b)?;
            if r.refs == 0 {
                txn.delete(Table::ZeroRefs, hash)?;
            }
            r.refs += n;
            surplus = fresh.cloned();
            r
        }
        None => {
            let fresh = fresh.ok_or_else(|| {
                Error::Decode(format!(
                    "reference to unknown chunk {} without its shards",
                    hex::encode(hash)
                ))
            })?;
            // Checked at every run of the commit: a run that lands later than this could
            // refer to shards the orphan sweep has taken.
            if let Some(d) = &fresh.deadline {
                d.check()?;
            }
            if fresh.missing != 0 {
                txn.put(Table::Repair, hash, &[])?;
            }
            fresh.record(n, len)
        }
    };
    if rec.refs == 0 {
        txn.put(Table::ZeroRefs, hash, &[])?;
    }
    txn.put(Table::Chunks, hash, &rec.encode())?;
    Ok(surplus)
}

/// Drops one reference to a chunk (nothing for a hole); at zero it becomes a GC candidate.
pub(crate) fn decref(txn: &mut dyn Write, hash: &[u8; 32]) -> Result<()> {
    if *hash == ChunkRef::HOLE {
        return Ok(());
    }
    let Some(b) = txn.get(Table::Chunks, hash)? else {
        return Err(Error::Decode(format!(
            "reference to unknown chunk {}",
            hex::encode(hash)
        )));
    };
    let mut r = ChunkRecord::decode(&b)?;
    r.refs = r.refs.saturating_sub(1);
    if r.refs == 0 {
        txn.put(Table::ZeroRefs, hash, &[])?;
    }
    txn.put(Table::Chunks, hash, &r.encode())?;
    Ok(())
}

/// Takes references on every chunk of a manifest (counting repeats).
pub(crate) fn ref_manifest(txn: &mut dyn Write, m: &Manifest) -> Result<()> {
    for c in m.chunks() {
        incref(txn, &c.hash, c.len, None, 1)?;
    }
    Ok(())
}

/// The most chunk references one transaction takes or drops for one object or one draft
/// record. A manifest with more is let go in its transaction but its references are dropped in
/// pieces of this many afterwards ([`release_piece`]); a draft pins in records of at most this
/// many, and a large commit takes its references in such pieces first and hands them over.
/// etcd caps the operations of a transaction (`--max-txn-ops`, 10,000 in a deployment: a
/// piece costs about three per chunk); LMDB does not, and goes the same way, so that both run
/// one code path.
pub const REFS_PER_COMMIT: usize = 1000;

/// Deletes a manifest and drops the references it held: at once for one of at most
/// [`REFS_PER_COMMIT`] chunks, else by queueing it in [`Table::Releases`] (its references
/// stay until [`release_piece`] drops them, which only delays their chunks' collection).
pub(crate) fn release_manifest(txn: &mut dyn Write, data_id: &str) -> Result<()> {
    if data_id.is_empty() {
        return Ok(()); // a delete marker: no data
    }
    let Some(b) = txn.get(Table::Manifests, data_id.as_bytes())? else {
        return Ok(());
    };
    let m = Manifest::decode(&b)?;
    if m.chunks().len() > REFS_PER_COMMIT {
        return txn.put(Table::Releases, data_id.as_bytes(), &0u64.to_be_bytes());
    }
    for c in m.chunks() {
        decref(txn, &c.hash)?;
    }
    txn.delete(Table::Manifests, data_id.as_bytes())?;
    Ok(())
}

/// How many references of the manifest queued under `data_id` are dropped already (0 for a
/// malformed entry: dropping is then restarted, which an entry can only be by corruption).
pub(crate) fn released_so_far(v: &[u8]) -> usize {
    <[u8; 8]>::try_from(v).map_or(0, |b| u64::from_be_bytes(b) as usize)
}

/// Drops the next [`REFS_PER_COMMIT`] references of the manifest queued under `data_id` in
/// [`Table::Releases`], whose chunks are `chunks` (read once by the caller: a manifest never
/// changes, so each piece reads only where the queue stands); with the last, deletes the
/// manifest and the entry. Returns whether it is done (also when there was nothing queued).
pub(crate) fn release_piece(
    txn: &mut dyn Write,
    data_id: &[u8],
    chunks: &[ChunkRef],
) -> Result<bool> {
    let Some(v) = txn.get(Table::Releases, data_id)? else {
        return Ok(true);
    };
    let done = released_so_far(&v);
    let end = (done + REFS_PER_COMMIT).min(chunks.len());
    for c in chunks.get(done..end).unwrap_or_default() {
        decref(txn, &c.hash)?;
    }
    if end >= chunks.len() {
        txn.delete(Table::Manifests, data_id)?;
        txn.delete(Table::Releases, data_id)?;
        return Ok(true);
    }
    txn.put(Table::Releases, data_id, &(end as u64).to_be_bytes())?;
    Ok(false)
}

/// The manifest `data_id` names (`Decode` when it is missing: `what` says whose).
pub(crate) fn read_manifest(txn: &dyn Read, data_id: &str, what: &str) -> Result<Manifest> {
    let b = txn
        .get(Table::Manifests, data_id.as_bytes())?
        .ok_or_else(|| Error::Decode(format!("the manifest of {what} is missing")))?;
    Manifest::decode(&b)
}

/// A fresh random id (manifests, uploads).
pub(crate) fn new_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Decoders of on-disk records never panic on arbitrary (corrupt) bytes.
        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..400)) {
            crate::fuzzing::decode_records(&b);
        }

        #[test]
        fn manifest_roundtrips(
            chunks in proptest::collection::vec((any::<[u8; 32]>(), any::<u32>()), 0..50),
            parts in proptest::collection::vec(any::<u64>(), 0..20),
            inline in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let m = Manifest::Chunks {
                chunks: chunks.into_iter().map(|(hash, len)| ChunkRef { hash, len }).collect(),
                part_sizes: parts,
            };
            prop_assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
            let i = Manifest::Inline(inline);
            prop_assert_eq!(Manifest::decode(&i.encode()).unwrap(), i.clone());
            let z = i.encode_compressed(Compression::Zstd(3));
            prop_assert_eq!(Manifest::decode(&z).unwrap(), i);
        }

        #[test]
        fn chunk_record_roundtrips(
            refs in any::<u64>(),
            len in any::<u32>(),
            missing in any::<u64>(),
            locs in proptest::collection::vec((any::<u64>(), any::<u64>()), 0..12),
            zstd in any::<bool>(),
            plain_len in any::<u32>(),
            layout in prop_oneof![Just(0u32), any::<u32>()],
        ) {
            let (encoding, plain_len) = if zstd { (Encoding::Zstd, plain_len) } else { (Encoding::Plain, len) };
            let r = ChunkRecord {
                refs,
                len,
                missing,
                locs: locs.into_iter().map(|(volume, offset)| ShardLoc { volume, offset }).collect(),
                encoding,
                plain_len,
                layout,
            };
            prop_assert_eq!(ChunkRecord::decode(&r.encode()).unwrap(), r);
        }
    }

    /// A bucket record written before bucket tags reads as a bucket without tags, and one
    /// without tags is written as before (older builds read it).
    #[test]
    fn bucket_records_before_and_without_tags() {
        #[derive(Serialize, Deserialize)]
        struct Before {
            created_ns: i64,
        }
        let old = rmp_serde::to_vec_named(&Before { created_ns: 42 }).unwrap();
        let rec: BucketRecord = rmp_serde::from_slice(&old).unwrap();
        assert_eq!((rec.created_ns, rec.tags.len()), (42, 0));
        assert_eq!(rmp_serde::to_vec_named(&rec).unwrap(), old);
        let tagged = BucketRecord {
            versioning: Some(Versioning::Enabled),
            owner: Some("PKOWNER".into()),
            created_ns: 7,
            tags: [("team".to_string(), "edge".to_string())].into(),
            ..Default::default()
        };
        let back: Before =
            rmp_serde::from_slice(&rmp_serde::to_vec_named(&tagged).unwrap()).unwrap();
        assert_eq!(back.created_ns, 7);
    }

    #[test]
    fn manifest_roundtrip() {
        let m = Manifest::Chunks {
            chunks: vec![
                ChunkRef {
                    hash: [3; 32],
                    len: 7,
                },
                ChunkRef {
                    hash: [9; 32],
                    len: 4 << 20,
                },
            ],
            part_sizes: vec![1, 2, 3],
        };
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let i = Manifest::Inline(b"hello".to_vec());
        assert_eq!(Manifest::decode(&i.encode()).unwrap(), i);
        assert!(Manifest::decode(&[1, 1, 255, 255, 255, 255]).is_err());
        assert!(Manifest::decode(&[]).is_err());
        // Inline text compressed: smaller, the same object back, the saving readable.
        let text = Manifest::Inline(b"key=value status=ok\n".repeat(200));
        let z = text.encode_compressed(Compression::Zstd(3));
        assert!(z.len() * 10 < text.encode().len());
        assert_eq!(Manifest::decode(&z).unwrap(), text);
        assert_eq!(Manifest::saved_bytes(&z), 4000 - (z.len() as u64 - 10));
        assert_eq!(Manifest::saved_bytes(&text.encode()), 0);
        assert_eq!(text.encode_compressed(Compression::Off), text.encode());
        // A damaged frame or a lying length is an error, not other bytes or a huge buffer.
        let mut bad = z.clone();
        let at = bad.len() - 6;
        bad[at] ^= 0x40;
        assert!(Manifest::decode(&bad).is_err());
        let mut huge = z.clone();
        huge[2..6].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(Manifest::decode(&huge).is_err());
    }
}
