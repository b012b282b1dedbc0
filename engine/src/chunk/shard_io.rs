//! Shard I/O on one disk, behind a small trait: what the chunk layer asks of a disk (append a
//! shard, read part of one back verified, check, overwrite or free one). The one
//! implementation today is a local directory of volume files ([`super::local::LocalDisk`]); a
//! disk on another machine would be one more implementation of the same trait.

use super::volume::ShardBuf;

/// The contract every implementation meets, as functions the test suites (also of other
/// crates, through [`crate::testing`]) run.
pub(crate) mod contract;
use crate::error::Result;
use crate::meta::{ChunkRecord, ShardLoc};

/// One shard of one chunk at a known place, as a read names it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShardAt<'a> {
    /// The chunk's hash.
    pub chunk: &'a [u8; 32],
    /// The shard's index among the chunk's `k + m`.
    pub index: usize,
    /// Where the chunk record says it is.
    pub loc: ShardLoc,
    /// Payload length of each of the chunk's shards.
    pub len: usize,
}

impl<'a> ShardAt<'a> {
    /// Shard `index` of chunk `chunk`, where its record says it is.
    pub fn of(chunk: &'a [u8; 32], index: usize, rec: &ChunkRecord, len: usize) -> Self {
        ShardAt {
            chunk,
            index,
            loc: rec.loc(index),
            len,
        }
    }
}

/// Shard I/O on one disk.
pub(crate) trait ShardIo: Send + Sync {
    /// A write that is not durable yet (see [`Pending`]).
    type Pending: Pending;

    /// Whether shards may be written to and read from this disk now.
    fn is_online(&self) -> bool;

    /// Appends one shard (its header filled in); returns where it went and what makes it
    /// durable. `data`: a data shard, not parity (which is read only when a disk fails and so
    /// is never worth caching).
    fn append(&self, shard: &ShardBuf, data: bool) -> Result<(ShardLoc, Self::Pending)>;

    /// Overwrites the shard at `loc` where it is, durably (heal of a corrupt shard).
    fn rewrite(&self, loc: ShardLoc, shard: &ShardBuf) -> Result<()>;

    /// Reads bytes `[lo, hi)` of the payload of shard `at`: only the blocks holding them are
    /// read, each checked against its hash in the shard's header.
    fn read(&self, at: ShardAt<'_>, lo: usize, hi: usize) -> ShardRead;

    /// Whether a shard of `shard_len` bytes is present at `loc`, without reading it.
    fn present(&self, loc: ShardLoc, shard_len: usize) -> bool;

    /// Frees the space of the shard at `loc`.
    fn release(&self, loc: ShardLoc, shard_len: usize);

    /// Gives back space held ahead of future appends; returns the bytes given back.
    fn trim_preallocation(&self) -> u64;
}

/// A shard write not yet durable. Writes with the same [`Pending::key`] are made durable
/// together: one [`Pending::make_durable`] of the latest covers all the earlier ones.
pub(crate) trait Pending: Clone + Send + Sync {
    /// Which writes one flush covers (locally: one volume file).
    fn key(&self) -> u64;
    /// The write's place in the order of its key's writes.
    fn seq(&self) -> u64;
    /// Makes this write and every earlier one with the same key durable.
    fn make_durable(&self) -> Result<()>;
}

/// State of one disk as last probed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiskState {
    /// Present, with the right identity.
    Online,
    /// The directory is missing or unreadable.
    Missing,
    /// The directory exists but has no identity (new or replaced disk): heal formats it.
    Unformatted,
    /// The directory belongs to another set or position; it is never used.
    Foreign(String),
}

/// Result of reading one shard.
#[derive(Debug)]
pub enum ShardRead {
    /// The verified payload.
    Ok(bytes::Bytes),
    /// Absent (or its disk is offline).
    Missing,
    /// Present but failing verification.
    Corrupt,
}
