//! The metadata seam: a transactional, ordered key-value store in tables. Everything above it
//! (the records of `meta` and the layers that use them) reads and writes through [`Read`]
//! and [`Write`]; nothing above it names the store underneath.
//!
//! The operations are the ones a distributed store offers as well (etcd, TiKV, FoundationDB):
//! point reads, ordered range scans, puts and deletes inside a transaction, and a group commit
//! of many writers' jobs, each of which succeeds or leaves no trace ([`Store::commit`] via the
//! committer). JuiceFS's transactional-KV metadata engine is the model.
//!
//! [`lmdb`] (heed over LMDB) is the store of one machine, the default; `etcd` (feature `etcd`),
//! for cluster mode, passes the same conformance suite (`tests.rs`), and the engine's
//! integration tests run on it too (`scripts/engine-tests-on-etcd.sh`). [`Store`] is the choice
//! of one ([`crate::Metadata`]).

use std::borrow::Cow;
use std::ops::Bound;

use crate::error::Result;

pub mod commit;
#[cfg(feature = "etcd")]
pub mod etcd;
pub mod lmdb;
pub mod store;
pub mod writeback;

pub use commit::Committer;
pub use store::Snapshot;
pub use store::Store;

pub use crate::error::StoreError;

#[cfg(test)]
mod tests;

/// One ordered key space (keys compare bytewise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// Bucket name → bucket record.
    Buckets,
    /// `bucket \0 key` → object record.
    Objects,
    /// Data id → manifest.
    Manifests,
    /// Chunk hash → chunk record.
    Chunks,
    /// Chunk hash → () for chunks without references (GC candidates).
    ZeroRefs,
    /// Chunk hash → () for chunks with a missing or corrupt shard.
    Repair,
    /// `bucket \0 key \0 upload-id` → upload record.
    Uploads,
    /// `upload-id part-number` → part record.
    Parts,
    /// Name → bytes (cursors of long operations).
    State,
    /// Draft id → owner and pinned chunks.
    Drafts,
    /// Chunk hash → MD5 of the chunk.
    ChunkMd5,
    /// `bucket \0 key \0 inverted sort id` → record of a non-current object version.
    Versions,
    /// Access key id → key record (secret, name, grants).
    Keys,
    /// Bucket name → its policy document (the bucket record holds only its id).
    Policies,
    /// `time ns (u64 big-endian) ‖ u32 count ‖ 4 random bytes` → an event notification waiting to be
    /// published (the outbox: written in the transaction of the change it reports).
    Events,
    /// Cluster mode: member id → the member (its shard service's address, disks, state).
    Members,
    /// Data id → how many of its manifest's references have been dropped (u64 big-endian): a
    /// manifest let go with more chunks than one transaction may touch
    /// ([`crate::REFS_PER_COMMIT`]), its references dropped in pieces afterwards.
    Releases,
}

impl Table {
    /// Every table, in a fixed order.
    pub const ALL: [Table; 17] = [
        Table::Buckets,
        Table::Objects,
        Table::Manifests,
        Table::Chunks,
        Table::ZeroRefs,
        Table::Repair,
        Table::Uploads,
        Table::Parts,
        Table::State,
        Table::Drafts,
        Table::ChunkMd5,
        Table::Versions,
        Table::Keys,
        Table::Policies,
        Table::Events,
        Table::Members,
        Table::Releases,
    ];

    /// The table's name in the store.
    pub fn name(self) -> &'static str {
        match self {
            Table::Buckets => "buckets",
            Table::Objects => "objects",
            Table::Manifests => "manifests",
            Table::Chunks => "chunks",
            Table::ZeroRefs => "zero_refs",
            Table::Repair => "repair",
            Table::Uploads => "uploads",
            Table::Parts => "parts",
            Table::State => "state",
            Table::Drafts => "drafts",
            Table::ChunkMd5 => "chunk_md5",
            Table::Versions => "versions",
            Table::Keys => "keys",
            Table::Policies => "policies",
            Table::Events => "events",
            Table::Members => "members",
            Table::Releases => "releases",
        }
    }
}

/// A key and value read from a store: borrowed from the transaction where the store can (LMDB
/// maps its pages), owned where it cannot.
pub type Pair<'t> = (Cow<'t, [u8]>, Cow<'t, [u8]>);

/// Entries in ascending key order.
pub type Scan<'t> = Box<dyn Iterator<Item = Result<Pair<'t>>> + 't>;

/// A consistent view of the store (a snapshot): what a read transaction sees, or a write
/// transaction including its own changes. The snapshot is taken when the transaction begins
/// or, at the latest, at its first read; every read of it sees the same state.
pub trait Read {
    /// The value under `key`.
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>>;

    /// Entries with keys in `(from, to)`, ascending.
    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>>;

    /// Number of entries in `table`.
    fn count(&self, table: Table) -> Result<u64>;

    /// Entries whose keys start with `prefix`, ascending.
    fn prefix(&self, table: Table, prefix: &[u8]) -> Result<Scan<'_>> {
        match prefix_end(prefix) {
            Some(end) => {
                let it = self.range(table, Bound::Included(prefix), Bound::Unbounded)?;
                Ok(Box::new(it.take_while(move |r| match r {
                    Ok((k, _)) => k.as_ref() < end.as_slice(),
                    Err(_) => true,
                })))
            }
            None => self.range(table, Bound::Included(prefix), Bound::Unbounded),
        }
    }

    /// Every entry of `table`, ascending.
    fn all(&self, table: Table) -> Result<Scan<'_>> {
        self.range(table, Bound::Unbounded, Bound::Unbounded)
    }

    /// Whether `table` holds `key`.
    fn contains(&self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self.get(table, key)?.is_some())
    }
}

/// A write transaction: reads see its own writes; nothing is visible to others, or durable,
/// before its commit.
pub trait Write: Read {
    /// Sets `key` to `value`.
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()>;

    /// Removes `key`; whether it was there.
    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool>;
}

/// The smallest key greater than every key that starts with `prefix` (`None`: no such key,
/// the prefix is all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}
