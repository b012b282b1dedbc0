//! # Predastore engine
//!
//! The storage engine shared by the S3 server (`s3d`) and the FUSE mount (`mountd`). It knows
//! nothing of HTTP or FUSE.
//!
//! - Objects are cut into chunks (default 4 MiB) named by their BLAKE3 hash; a chunk already stored
//!   is not written again (reference counts in LMDB). Small objects live inline in LMDB.
//! - Each chunk is Reed-Solomon coded into `k + m` shards (default 4 + 2) on distinct disks, placed
//!   by rendezvous hashing; every shard carries its own hash, verified on every read. Shards are
//!   appended to large volume files per disk; the chunk record says where each one is.
//! - All metadata is in LMDB; concurrent writers share commits (group commit). An object becomes
//!   visible only once its shards are fsync'd and its metadata transaction has committed.
//!
//! See `docs/format.md` for the on-disk format.

#![warn(missing_docs)]

pub mod background;
pub mod config;
mod disks;
pub mod draft;
mod engine;
mod erasure;
pub mod error;
mod format;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod kv;
mod lock;
pub mod maintenance;
pub mod meta;
pub mod multipart;
pub mod names;
pub mod posix;
pub mod private;
pub mod process;
mod shard;
mod volume;

/// What tests and tools outside the crate reach below the layers the doors use (volumes,
/// shards, the codec, the format version): not an interface of the engine.
#[doc(hidden)]
pub mod testing {
    pub use crate::erasure::Codec;
    pub use crate::format::FORMAT_VERSION;
    pub use crate::fsutil::fs_capacity;
    pub use crate::shard::{ShardHeader, HEADER_LEN};
    pub use crate::volume::{list_volumes, punch, scan_shards};
}

pub use config::{Durability, EngineConfig};
pub use disks::DiskState;
pub use draft::{Draft, DraftBase, DraftCommit, DraftContent, DraftData, WriteGuard};
pub use engine::{
    etag_matches, part_bounds, zero_runs, BucketInfo, ByteRange, CopyOptions, Engine, GetObject,
    LateChecksums, ListPage, ListQuery, ObjectBody, PutOptions, ShardPlace, StoredChunk, HOLE_PAGE,
    MIN_HOLE,
};
pub use error::{Error, Result};
pub use maintenance::{
    AutoGc, DiskStatus, FsckReport, GcReport, HealMode, HealOptions, HealProgress, HealReport,
    StoreStatus,
};
pub use meta::{ChunkRef, ObjectAttrs, ObjectMeta, PosixAttrs};
pub use multipart::{PartInfo, PartsPage, UploadInfo, UploadsPage, MIN_PART_SIZE};
