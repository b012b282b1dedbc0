//! Disks of other machines (cluster mode, step 4 of `docs/cluster-plan.md`): the shard seam
//! opened to a transport the engine does not implement itself, so that the storage layer never
//! sees the network.
//!
//! [`ShardTransport`] is what the chunk layer needs from a node that owns disks: the
//! operations of [`ShardIo`], addressed by the node's disk number, synchronous (the chunk layer
//! calls them from its own threads), an append durable before it returns. [`RemoteDisk`] is one
//! disk of such a node as a [`ShardIo`]. [`LocalShards`] is the other end: a node's own disks
//! serving those operations, which a shard service hands its requests to — and which is itself
//! a [`ShardTransport`], so the contract tests run through it without a network.

use std::sync::Arc;

use super::shard::{ShardHeader, HEADER_LEN};
use super::shard_io::{Pending, ShardAt, ShardIo, ShardRead};
use super::volume::ShardBuf;
use super::ChunkStore;
use crate::error::{Error, Result};
use crate::meta::ShardLoc;

/// Largest shard payload a node takes or reads for another: a 256 MiB chunk (the largest
/// chunk size) on one data shard.
const MAX_SHARD_LEN: usize = 256 << 20;

/// Which part of which shard a read asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardRange {
    /// The chunk's hash (the shard's header must name it).
    pub chunk: [u8; 32],
    /// The shard's index among the chunk's shards (the header must name it).
    pub index: u32,
    /// Where the shard is on its disk.
    pub loc: ShardLoc,
    /// Payload length of each of the chunk's shards.
    pub shard_len: u32,
    /// First payload byte wanted.
    pub lo: u32,
    /// One past the last payload byte wanted (at most `shard_len`).
    pub hi: u32,
}

/// The shard operations of a node's disks, as another node reaches them.
pub trait ShardTransport: Send + Sync {
    /// Whether the node answers and its disk `disk` takes reads and writes.
    fn is_online(&self, disk: u32) -> bool;

    /// Stores a shard — its encoded header (`HEADER_LEN` bytes) and payload — on disk `disk`;
    /// durable when it returns. `data`: a data shard (worth keeping cached), not parity.
    fn append(&self, disk: u32, header: &[u8], payload: &[u8], data: bool) -> Result<ShardLoc>;

    /// Overwrites the shard at `loc` on disk `disk` where it is, durably (heal).
    fn rewrite(&self, disk: u32, loc: ShardLoc, header: &[u8], payload: &[u8]) -> Result<()>;

    /// Reads part of a shard, verified by its owner against the shard's header.
    fn read(&self, disk: u32, range: &ShardRange) -> ShardRead;

    /// Whether a shard of `shard_len` bytes is present at `loc` on disk `disk`.
    fn present(&self, disk: u32, loc: ShardLoc, shard_len: u32) -> bool;

    /// Frees the space of the shard at `loc` on disk `disk`.
    fn release(&self, disk: u32, loc: ShardLoc, shard_len: u32);
}

/// A remote append is durable before it is acknowledged: nothing is left to flush.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Durable;

impl Pending for Durable {
    fn key(&self) -> u64 {
        0
    }

    fn seq(&self) -> u64 {
        0
    }

    fn make_durable(&self) -> Result<()> {
        Ok(())
    }
}

/// Disk `disk` of another node, reached through `transport`.
#[derive(Clone)]
pub struct RemoteDisk {
    transport: Arc<dyn ShardTransport>,
    disk: u32,
}

impl std::fmt::Debug for RemoteDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteDisk")
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

impl RemoteDisk {
    /// Disk `disk` of the node `transport` reaches.
    pub fn new(transport: Arc<dyn ShardTransport>, disk: u32) -> RemoteDisk {
        RemoteDisk { transport, disk }
    }
}

/// The header bytes of a shard buffer whose header is filled in.
fn header_of(shard: &ShardBuf) -> &[u8] {
    &shard.region()[..HEADER_LEN]
}

impl ShardIo for RemoteDisk {
    type Pending = Durable;

    fn is_online(&self) -> bool {
        self.transport.is_online(self.disk)
    }

    fn append(&self, shard: &ShardBuf, data: bool) -> Result<(ShardLoc, Durable)> {
        let loc = self
            .transport
            .append(self.disk, header_of(shard), shard.payload(), data)?;
        Ok((loc, Durable))
    }

    fn rewrite(&self, loc: ShardLoc, shard: &ShardBuf) -> Result<()> {
        self.transport
            .rewrite(self.disk, loc, header_of(shard), shard.payload())
    }

    fn read(&self, at: ShardAt<'_>, lo: usize, hi: usize) -> ShardRead {
        let (Ok(index), Ok(shard_len), Ok(lo), Ok(hi)) = (
            u32::try_from(at.index),
            u32::try_from(at.len),
            u32::try_from(lo),
            u32::try_from(hi),
        ) else {
            return ShardRead::Missing;
        };
        let range = ShardRange {
            chunk: *at.chunk,
            index,
            loc: at.loc,
            shard_len,
            lo,
            hi,
        };
        match self.transport.read(self.disk, &range) {
            // What came back must be what was asked for, whoever answered.
            ShardRead::Ok(b) if b.len() != (hi - lo) as usize => ShardRead::Corrupt,
            r => r,
        }
    }

    fn present(&self, loc: ShardLoc, shard_len: usize) -> bool {
        u32::try_from(shard_len).is_ok_and(|l| self.transport.present(self.disk, loc, l))
    }

    fn release(&self, loc: ShardLoc, shard_len: usize) {
        if let Ok(l) = u32::try_from(shard_len) {
            self.transport.release(self.disk, loc, l);
        }
    }

    fn trim_preallocation(&self) -> u64 {
        // The owner gives its preallocation back when its own disk fills up.
        0
    }
}

/// A node's own disks, serving the shard operations other nodes ask for (through a shard
/// service). Requests come from the network: every field is checked, nothing panics.
#[derive(Clone)]
pub struct LocalShards {
    pub(crate) chunks: Arc<ChunkStore>,
}

impl LocalShards {
    /// The disk numbered `disk`, when there is one.
    fn disk(&self, disk: u32) -> Result<&super::local::LocalDisk> {
        self.chunks
            .disks
            .disks
            .get(disk as usize)
            .ok_or_else(|| Error::Corrupt(format!("no disk {disk} on this node")))
    }

    /// A shard buffer from a header and payload sent by another node: the header must decode,
    /// describe a payload of this length and verify it (a shard is stored only as it was
    /// made).
    fn shard(header: &[u8], payload: &[u8]) -> Result<ShardBuf> {
        if header.len() != HEADER_LEN || payload.len() > MAX_SHARD_LEN {
            return Err(Error::Corrupt(format!(
                "a shard is a {HEADER_LEN}-byte header and at most {MAX_SHARD_LEN} payload \
                 bytes, not {} and {}",
                header.len(),
                payload.len()
            )));
        }
        let h = ShardHeader::decode(header)?;
        let codec = super::erasure::Codec {
            k: h.k.max(1) as usize,
            m: h.m as usize,
        };
        if codec.shard_len(h.chunk_len as usize) != payload.len()
            || !h.verify_blocks(payload.len(), 0, payload)
        {
            return Err(Error::Corrupt(format!(
                "shard {} of chunk {} does not match its header ({} payload bytes)",
                h.index,
                hex::encode(h.chunk),
                payload.len()
            )));
        }
        let mut b = ShardBuf::from_payload(payload);
        b.set_header(&h);
        Ok(b)
    }

    /// How many disks this node has.
    pub fn disks(&self) -> u32 {
        self.chunks.disks.disks.len() as u32
    }
}

impl ShardTransport for LocalShards {
    fn is_online(&self, disk: u32) -> bool {
        self.disk(disk).is_ok_and(|d| d.is_online())
    }

    fn append(&self, disk: u32, header: &[u8], payload: &[u8], data: bool) -> Result<ShardLoc> {
        let d = self.disk(disk)?;
        if !d.is_online() {
            return Err(Error::Io(std::io::Error::other(format!(
                "disk {disk} is offline"
            ))));
        }
        let buf = Self::shard(header, payload)?;
        let (loc, pending) = match d.append(&buf, data) {
            Err(e) if e.is_no_space() && self.chunks.disks.trim_preallocation() > 0 => {
                d.append(&buf, data)?
            }
            r => r?,
        };
        pending.make_durable()?;
        Ok(loc)
    }

    fn rewrite(&self, disk: u32, loc: ShardLoc, header: &[u8], payload: &[u8]) -> Result<()> {
        let d = self.disk(disk)?;
        d.rewrite(loc, &Self::shard(header, payload)?)
    }

    fn read(&self, disk: u32, range: &ShardRange) -> ShardRead {
        let Ok(d) = self.disk(disk) else {
            return ShardRead::Missing;
        };
        if range.shard_len as usize > MAX_SHARD_LEN {
            return ShardRead::Missing;
        }
        let at = ShardAt {
            chunk: &range.chunk,
            index: range.index as usize,
            loc: range.loc,
            len: range.shard_len as usize,
        };
        d.read(at, range.lo as usize, range.hi as usize)
    }

    fn present(&self, disk: u32, loc: ShardLoc, shard_len: u32) -> bool {
        self.disk(disk)
            .is_ok_and(|d| d.present(loc, shard_len as usize))
    }

    fn release(&self, disk: u32, loc: ShardLoc, shard_len: u32) {
        if let Ok(d) = self.disk(disk) {
            d.release(loc, shard_len as usize);
        }
    }
}

#[cfg(test)]
mod tests;
