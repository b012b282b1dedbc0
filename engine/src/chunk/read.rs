//! Reading chunks: verified shard reads, degraded reads from parity, the repair queue.

use bytes::Bytes;

use super::hedge::{Gather, Job, Next};
use super::hole::zeros;
use super::shard_io::ShardRead;
use crate::compression::{decompress, Encoding};
use crate::error::{Error, Result};
use crate::kv::{Read, Table};
use crate::meta::{ChunkRecord, ChunkRef};

use super::ChunkStore;

impl ChunkStore {
    /// Reads bytes `[a, b)` of a chunk, verifying every shard it reads; rebuilds from parity when
    /// a shard is missing or corrupt, and queues the chunk for repair.
    pub(crate) fn read_chunk(&self, c: &ChunkRef, a: usize, b: usize) -> Result<Vec<Bytes>> {
        if c.is_hole() {
            return Ok(zeros(b.saturating_sub(a)));
        }
        let rec = self.chunk_record(&c.hash)?;
        self.read_chunk_at(c, &rec, a, b)
    }

    /// [`ChunkStore::read_chunk`] with the shard locations given. A compressed chunk is read
    /// whole (its blocks verified) and decompressed once for the readers of the next moments
    /// ([`super::decoded`]); a plain one only in the blocks the range touches.
    pub(crate) fn read_chunk_at(
        &self,
        c: &ChunkRef,
        rec: &ChunkRecord,
        a: usize,
        b: usize,
    ) -> Result<Vec<Bytes>> {
        if rec.encoding == Encoding::Plain {
            if let Some(pieces) = self.read_stored(&c.hash, rec, a, b) {
                return Ok(pieces);
            }
            let data = self.read_chunk_degraded(c, rec)?;
            return Ok(vec![Bytes::from(data).slice(a..b)]);
        }
        if let Some(plain) = self.decoded.get(&c.hash) {
            return Ok(vec![plain.slice(a..b)]);
        }
        let stored = self.read_stored(&c.hash, rec, 0, rec.len as usize);
        let plain =
            match stored.map(|pieces| decompress(&pieces.concat(), rec.encoding, c.len as usize)) {
                Some(Ok(plain)) => plain,
                // Verified blocks that do not decompress: rebuilt from parity (and repaired) too.
                Some(Err(_)) | None => self.read_chunk_degraded(c, rec)?,
            };
        let plain = Bytes::from(plain);
        self.decoded.put(c.hash, plain.clone());
        Ok(vec![plain.slice(a..b)])
    }

    /// Bytes `[a, b)` of a chunk's stored form, from its data shards, every block read
    /// verified; `None` when a shard the range needs is missing or corrupt (or, on another
    /// node, slow: see [`super::hedge`]).
    fn read_stored(
        &self,
        hash: &[u8; 32],
        rec: &ChunkRecord,
        a: usize,
        b: usize,
    ) -> Option<Vec<Bytes>> {
        let codec = self.codec;
        let s = codec.shard_len(rec.len as usize);
        let place = self.disks.placement(hash, rec.layout, codec.n()).ok()?;
        let (first, last) = (a / s, (b.max(a + 1) - 1) / s);
        // Only the blocks of each shard the range touches are read (and verified).
        let jobs: Vec<Job> = (first..=last)
            .map(|j| Job {
                index: j,
                slot: place[j],
                lo: a.max(j * s) - j * s,
                hi: b.min((j + 1) * s) - j * s,
            })
            .collect();
        if jobs.iter().any(|j| self.hedge.is_slow(j.slot)) {
            return None;
        }
        let mut reads = Gather::new(self, *hash, rec, s);
        let mut got: Vec<Option<Bytes>> = vec![None; jobs.len()];
        let mut take = |index: usize, r: ShardRead| match r {
            ShardRead::Ok(p) => {
                got[index - first] = Some(p);
                true
            }
            _ => false,
        };
        // The shards a range needs are on different disks: read them at the same time.
        for (index, r) in reads.launch(&jobs) {
            if !take(index, r) {
                return None;
            }
        }
        loop {
            match reads.next() {
                Next::Read(index, r) => {
                    if !take(index, r) {
                        return None;
                    }
                }
                Next::Hedged => return None,
                Next::Done => break,
            }
        }
        // Slices of the shards as read: no copy.
        got.into_iter().collect()
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

    /// Reads a whole chunk from any `k` intact shards, decompresses it if it is stored
    /// compressed, and checks the plain bytes against the chunk's name.
    pub(crate) fn read_chunk_degraded(&self, c: &ChunkRef, rec: &ChunkRecord) -> Result<Vec<u8>> {
        let codec = self.codec;
        let len = rec.len as usize;
        let s = codec.shard_len(len);
        let place = self.disks.placement(&c.hash, rec.layout, codec.n())?;
        let mut shards: Vec<Option<Vec<u8>>> = vec![None; codec.n()];
        let mut intact = 0;
        // Shards on slow disks after the others, those known to be missing last; as many read
        // at once as are still needed, so that a gone disk (or node) costs one wait per round,
        // not one per shard, and a slow one no more than the hedge delay.
        let known_missing = |i: usize| rec.missing & (1 << i) != 0;
        let rank = |i: &usize| (known_missing(*i), self.hedge.is_slow(place[*i]));
        let mut order: Vec<usize> = (0..codec.n()).collect();
        order.sort_by_key(rank);
        let mut damaged = rec.missing != 0;
        let mut reads = Gather::new(self, c.hash, rec, s);
        let mut next = 0;
        loop {
            while intact + reads.counted() < codec.k && next < order.len() {
                let want = codec.k - intact - reads.counted();
                let round: Vec<Job> = order[next..(next + want).min(order.len())]
                    .iter()
                    .map(|&i| Job {
                        index: i,
                        slot: place[i],
                        lo: 0,
                        hi: s,
                    })
                    .collect();
                next += round.len();
                for (i, r) in reads.launch(&round) {
                    match r {
                        ShardRead::Ok(p) => {
                            shards[i] = Some(p.into());
                            intact += 1;
                        }
                        _ => damaged = true,
                    }
                }
            }
            if intact >= codec.k {
                break;
            }
            match reads.next() {
                Next::Read(i, ShardRead::Ok(p)) => {
                    shards[i] = Some(p.into());
                    intact += 1;
                }
                Next::Read(..) => damaged = true,
                Next::Hedged => {}
                Next::Done => break,
            }
        }
        // A chunk read around a slow node only is not damaged: nothing to repair.
        if damaged || intact < codec.k {
            self.queue_repair(c.hash);
        }
        if intact < codec.k {
            return Err(Error::ReadQuorum {
                chunk: hex::encode(c.hash),
                intact,
                needed: codec.k,
            });
        }
        self.rebuild(&c.hash, rec, &mut shards)
    }

    /// Fills the empty entries of `shards` (at least `k` of them intact) from the others, and
    /// returns the plain chunk they make, checked against its name `hash`.
    pub(crate) fn rebuild(
        &self,
        hash: &[u8; 32],
        rec: &ChunkRecord,
        shards: &mut [Option<Vec<u8>>],
    ) -> Result<Vec<u8>> {
        self.codec.reconstruct(shards)?;
        let stored = self.codec.join(shards, rec.len as usize)?;
        let data = match rec.encoding {
            Encoding::Plain => stored,
            e => decompress(&stored, e, rec.plain_len as usize)
                .map_err(|_| Error::Corrupt(hex::encode(hash)))?,
        };
        if blake3::hash(&data).as_bytes() != hash {
            return Err(Error::Corrupt(hex::encode(hash)));
        }
        Ok(data)
    }

    /// Notes a chunk for the next repair pass.
    pub(crate) fn queue_repair(&self, hash: [u8; 32]) {
        tracing::warn!(chunk = %hex::encode(hash), "degraded read; chunk queued for repair");
        self.meta.committer().spawn(move |txn| {
            txn.put(Table::Repair, &hash, &[])?;
            Ok(())
        });
    }
}
