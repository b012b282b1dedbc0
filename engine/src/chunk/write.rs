//! Storing chunks: cut, hash, dedup, erasure-code, write the shards, make them durable;
//! and giving back what a writer stored but did not commit.

use std::sync::Arc;

use bytes::Bytes;
use futures::stream::StreamExt;
use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::hole::zero_runs;
use super::shard_io::Pending;
use super::volume::ShardBuf;
use super::{StoredChunk, StoredStream};
use crate::compression::{Compression, Encoding};
use crate::error::{Error, Result};
use crate::kv::{Read, Table};
use crate::meta::{ChunkRecord, ChunkRef, FreshShards};

use super::ChunkStore;

impl ChunkStore {
    /// Frees shards a writer stored for chunks another writer's record claimed first (what
    /// [`reference`] returned, once its commit is durable).
    pub(crate) async fn release_surplus(self: &Arc<Self>, surplus: Vec<(ChunkRef, FreshShards)>) {
        if surplus.is_empty() {
            return;
        }
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            for (r, f) in surplus {
                me.free_unnamed(&r, &f);
            }
        })
        .await;
    }

    /// Frees a writer's fresh shards unless a chunk record names them. One can: a commit
    /// whose reply was lost (etcd's connection dropped after it applied) looks failed to its
    /// writer, who then gives up or retries with the same fresh shards. Shards a record names
    /// are never freed here; when the record cannot be read, they are left to the orphan sweep.
    fn free_unnamed(&self, r: &ChunkRef, f: &FreshShards) {
        let named = (|| -> Result<bool> {
            let txn = self.read()?;
            let Some(b) = txn.get(Table::Chunks, &r.hash)? else {
                return Ok(false);
            };
            let rec = ChunkRecord::decode(&b)?;
            Ok(rec.layout == f.layout
                && f.locs
                    .iter()
                    .enumerate()
                    .any(|(i, l)| l.is_some() && rec.loc(i) == *l))
        })();
        match named {
            Ok(false) => {
                let s = self.codec.shard_len(f.stored_len as usize);
                self.disks.release(&r.hash, f.layout, s, &f.locs);
            }
            Ok(true) => tracing::warn!(
                chunk = %hex::encode(r.hash),
                "shards a record names not freed (a commit that seemed to fail went through)"
            ),
            Err(e) => tracing::warn!(
                chunk = %hex::encode(r.hash),
                "shards left to the orphan sweep: {e}"
            ),
        }
    }

    /// Cuts `first` + the rest of `body` into chunks and stores each chunk's shards (compressed
    /// where `compression` asks and it pays, [`ChunkStore::store_chunk`]), hashing,
    /// encoding and writing up to `pipeline_depth` chunks at a time while the next is read.
    /// The caller must hold a shared GC lock until it commits or abandons the chunks.
    pub(crate) async fn store_stream<R>(
        self: &Arc<Self>,
        first: Vec<u8>,
        body: &mut R,
        compression: Compression,
    ) -> Result<StoredStream>
    where
        R: AsyncRead + Unpin + Send,
    {
        let cs = self.chunk_size;
        let depth = self.pipeline_depth;
        let mut inflight = futures::stream::FuturesOrdered::new();
        let mut done: Vec<StoredChunk> = Vec::new();
        let (md5_queue, md5_task) = md5_worker(depth);
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
            // The worker only stops early if it panicked: the join below reports that.
            let _ = md5_queue.send(bytes.clone()).await;
            let me = self.clone();
            inflight.push_back(tokio::task::spawn_blocking(move || {
                me.store_data(&bytes, compression)
            }));
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
        drop(md5_queue);
        let md5 = md5_task.await?.finalize().into();
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
    /// take no space, and every other run a chunk ([`ChunkStore::store_chunk`]). Blocking. On error
    /// nothing it stored is left behind.
    pub(crate) fn store_data(
        &self,
        data: &[u8],
        compression: Compression,
    ) -> Result<Vec<StoredChunk>> {
        let mut out = Vec::new();
        let mut at = 0usize;
        for (len, hole) in zero_runs(data) {
            if hole {
                out.push(StoredChunk::hole(len as u32));
            } else {
                match self.store_chunk(&data[at..at + len], compression) {
                    Ok(c) => out.push(c),
                    Err(e) => {
                        self.abandon_now(out);
                        return Err(e);
                    }
                }
            }
            at += len;
        }
        Ok(out)
    }

    /// Hashes one chunk and, unless it is already stored, compresses it (when `compression`
    /// asks and it saves enough), erasure-codes what is to be stored and writes its shards.
    pub(crate) fn store_chunk(&self, data: &[u8], compression: Compression) -> Result<StoredChunk> {
        let hash = *blake3::hash(data).as_bytes();
        let r = ChunkRef {
            hash,
            len: data.len() as u32,
        };
        {
            let txn = self.read()?;
            if let Some(b) = txn.get(Table::Chunks, &hash)? {
                // In a cluster, another node's GC may collect a chunk without references
                // before this write commits (the GC lock is per node): such a chunk is stored
                // again, and the commit keeps one copy.
                let collectable = self.write_limit.is_some() && ChunkRecord::decode(&b)?.refs == 0;
                if !collectable {
                    return Ok(StoredChunk::existing(r));
                }
            }
        }
        let compressed = crate::compression::compress(data, compression);
        let (stored, encoding) = match &compressed {
            Some(z) => (z.as_slice(), Encoding::Zstd),
            None => (data, Encoding::Plain),
        };
        let codec = self.codec;
        let s = codec.shard_len(stored.len());
        let deadline = self.write_limit.map(crate::meta::WriteDeadline::start);
        let mut shards: Vec<ShardBuf> = (0..codec.n()).map(|_| ShardBuf::new(s)).collect();
        {
            let mut out: Vec<&mut [u8]> = shards.iter_mut().map(|b| b.payload_mut()).collect();
            codec.encode_into(stored, &mut out)?;
        }
        let out =
            self.disks
                .write_shards(&hash, stored.len(), encoding, codec.k, codec.m, &mut shards);
        if out.written < codec.k {
            self.disks.release(&hash, out.layout, s, &out.locs);
            self.disks.refresh();
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
            self.disks.refresh();
        }
        Ok(StoredChunk {
            r,
            fresh: Some(FreshShards {
                missing: out.missing,
                locs: out.locs,
                stored_len: stored.len() as u32,
                encoding,
                layout: out.layout,
                deadline,
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
        let mut by_volume: HashMap<u64, super::volume::PendingSync> = HashMap::new();
        for c in chunks.iter() {
            for (_, p) in &c.unsynced {
                let e = by_volume.entry(p.key()).or_insert_with(|| p.clone());
                if p.seq() > e.seq() {
                    *e = p.clone();
                }
            }
        }
        if by_volume.is_empty() {
            return Ok(());
        }
        let mut full = 0usize;
        let failed: std::collections::HashSet<u64> = std::thread::scope(|sc| {
            let handles: Vec<_> = by_volume
                .values()
                .map(|p| sc.spawn(move || (p.key(), p.make_durable())))
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
        let k = self.codec.k;
        let mut short = None;
        for c in chunks.iter_mut() {
            let unsynced = std::mem::take(&mut c.unsynced);
            if failed.is_empty() {
                continue;
            }
            if let Some(f) = &mut c.fresh {
                for (i, p) in unsynced {
                    if failed.contains(&p.key()) {
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
            self.disks.refresh();
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

    /// Frees the shards of stored chunks that will not be committed. Blocking.
    pub(crate) fn abandon_now(&self, chunks: Vec<StoredChunk>) {
        for c in chunks {
            if let Some(f) = c.fresh {
                self.free_unnamed(&c.r, &f);
            }
        }
    }

    /// Frees the shards a failed writer stored: no record refers to them (records only ever
    /// take the locations of the writer that commits them).
    pub(crate) async fn abandon_chunks(self: &Arc<Self>, chunks: &[StoredChunk]) {
        let fresh: Vec<(ChunkRef, FreshShards)> = chunks
            .iter()
            .filter_map(|c| c.fresh.clone().map(|f| (c.r, f)))
            .collect();
        self.release_surplus(fresh).await;
    }
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

/// The MD5 of a stream (its ETag) on a thread of its own, fed chunk by chunk through a queue
/// of `depth` chunks: MD5 is the slowest step of a put (one core's worth), so it must never
/// wait for the loop that reads the body and starts the stores, only for the body itself.
/// Dropping the sender ends the stream; the task returns the hasher.
fn md5_worker(
    depth: usize,
) -> (
    tokio::sync::mpsc::Sender<Bytes>,
    tokio::task::JoinHandle<Md5>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Bytes>(depth.max(1));
    let task = tokio::task::spawn_blocking(move || {
        let mut h = Md5::new();
        while let Some(b) = rx.blocking_recv() {
            h.update(&b);
        }
        h
    });
    (tx, task)
}
