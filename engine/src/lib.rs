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

pub mod access;
pub mod background;
pub mod blocking;
mod chunk;
pub mod compression;
pub mod config;
pub mod error;
pub mod events;
mod format;
mod fsutil;
#[doc(hidden)]
pub mod fuzzing;
pub mod kv;
pub mod lifecycle;
mod lock;
pub mod maintenance;
pub mod meta;
pub mod names;
mod object;
pub mod posix;
pub mod private;
pub mod process;

#[doc(hidden)]
pub mod testing;

pub use access::Principal;
pub use chunk::placement::{Layout, LayoutError, Member, Place};
pub use chunk::rebalance::chunks_by_layout;
pub use chunk::remote::{LocalShards, RemoteDisk, ShardRange, ShardTransport};
pub use chunk::shard::HEADER_LEN as SHARD_HEADER_LEN;
pub use chunk::shard_io::ShardRead;
pub use chunk::{zero_runs, ShardPlace, StoredChunk, HOLE_PAGE, MIN_HOLE};
pub use compression::Compression;
pub use config::{ClusterShards, Durability, EngineConfig, Metadata, DEFAULT_WRITE_LIMIT};
pub use error::{Error, Result};
pub use maintenance::{
    AutoGc, DiskState, DiskStatus, FsckReport, GcReport, HealMode, HealOptions, HealProgress,
    HealReport, RebalanceOptions, RebalanceReport, StoreStatus,
};
pub use meta::{
    ChunkRef, DefaultRetention, LockConfig, LockMode, LockRequest, ObjectAttrs, ObjectMeta,
    PosixAttrs, Retention, ShardLoc, Versioning, REFS_PER_COMMIT,
};
pub use object::bucket::BucketInfo;
pub use object::copy::CopyOptions;
pub use object::draft::{self, Draft, DraftBase, DraftCommit, DraftContent, DraftData, WriteGuard};
pub use object::list::{ListPage, ListQuery};
pub use object::list_versions::{VersionEntry, VersionPage, VersionQuery};
pub use object::multipart::{self, PartInfo, PartsPage, UploadInfo, UploadsPage, MIN_PART_SIZE};
pub use object::read::{etag_matches, part_bounds, ByteRange, GetObject};
pub use object::version::{DeleteOutcome, VersionSel};
pub use object::write::{LateChecksums, PutOptions};
pub use object::{Engine, ObjectBody};
