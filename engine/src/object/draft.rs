//! Drafts: objects edited in place by a long-lived writer (a file open for writing on the mount).
//!
//! A writer that edits an object chunk by chunk needs the chunks it has not changed to stay
//! readable until it commits, whatever happens to the object meanwhile (an overwrite over S3, a
//! delete, an unlink of the open file). A draft is an LMDB record that holds references on
//! exactly those chunks, as a manifest does, so GC never takes them. Chunks the writer stores
//! before it commits are protected by a [`WriteGuard`] (the shared GC lock) until the commit
//! records them.
//!
//! Each draft names its owner: a lock file under `data_dir/owners/` that the owning engine
//! instance holds locked while it lives. A draft whose owner's lock is free belongs to a process
//! that died; [`Engine::release_stale_drafts`] (run by GC) drops its references.

use std::collections::HashSet;
use std::sync::Arc;

use bytes::Bytes;
use md5::{Digest, Md5};

use super::Engine;
use crate::chunk::StoredChunk;
use crate::error::{Error, Result};
use crate::kv::{Read, Table, Write};
use crate::lock::{GcGuard, OwnerLock};
use crate::meta::{
    current_object, decref, incref, new_id, now_ns, object_key, ChunkRef, Manifest, ObjectAttrs,
    ObjectMeta, REFS_PER_COMMIT,
};
use crate::names::validate_key;

/// An open draft. Closing it ([`Engine::close_draft`]) releases what it pins; a draft of a
/// process that dies is released by the next GC. Its pins are in records of at most
/// [`REFS_PER_COMMIT`] chunks each: `id`, then `id:1`, `id:2`, … ([`piece_key`]).
#[derive(Debug, PartialEq, Eq)]
pub struct Draft {
    id: String,
    pieces: u32,
}

impl Draft {
    /// A draft whose pins are in `pieces` records.
    pub(crate) fn with_pieces(id: String, pieces: u32) -> Draft {
        Draft { id, pieces }
    }

    /// The keys of its records.
    pub(crate) fn keys(&self) -> Vec<Vec<u8>> {
        (0..self.pieces).map(|i| piece_key(&self.id, i)).collect()
    }
}

/// The key of record `i` of draft `id`: the id itself for the first (as before drafts had
/// pieces), `id:i` for the others.
pub(crate) fn piece_key(id: &str, i: u32) -> Vec<u8> {
    if i == 0 {
        id.as_bytes().to_vec()
    } else {
        format!("{id}:{i}").into_bytes()
    }
}

/// The object a draft starts from, as it was when the draft was opened.
#[derive(Debug, Clone)]
pub struct DraftBase {
    /// Its metadata (`None`: there was no object under the key).
    pub meta: Option<ObjectMeta>,
    /// Its contents.
    pub content: DraftContent,
}

/// An object's contents as a draft sees them.
#[derive(Debug, Clone)]
pub enum DraftContent {
    /// Small enough to live in the metadata record.
    Inline(Vec<u8>),
    /// Chunks in order (empty for an empty or absent object). Every one is pinned by the draft.
    Chunks(Vec<ChunkRef>),
}

/// What a draft commit stores under the key.
pub enum DraftData {
    /// Inline bytes (at most the inline threshold).
    Inline(Vec<u8>),
    /// Chunks in order: ones the draft pins ([`StoredChunk::existing`]) and ones stored for it
    /// under the current [`WriteGuard`] ([`Engine::store_draft_chunk`]), each with its MD5 when
    /// the writer knows it (kept for later ETags).
    Chunks(Vec<(StoredChunk, Option<[u8; 16]>)>),
}

/// Computes a committed object's attributes from the object it replaces (if any).
/// (A commit may run more than once: see [`crate::kv::Committer`].)
pub type AttrsFn = Box<dyn Fn(Option<&ObjectMeta>) -> ObjectAttrs + Send>;

/// What a draft commit gives the object besides its data.
pub struct DraftCommit {
    /// The ETag.
    pub etag: String,
    /// Part sizes (the chunk lengths, when the ETag is a multipart-style one), or empty.
    pub part_sizes: Vec<u64>,
    /// Computes the attributes from the object currently under the key (if any).
    pub attrs: AttrsFn,
    /// The version id of an empty placeholder version this writer made (a file created on
    /// the mount): if it is still the latest, this commit takes its place instead of stacking
    /// a second version on it, so a new file is one version.
    pub replaces: Option<String>,
}

/// Held while a writer has stored chunks it has not committed yet: GC (in any process) waits,
/// so those chunks' shards are not swept as orphans.
#[derive(Debug)]
pub struct WriteGuard {
    _g: GcGuard,
}

/// Draft record: `owner (32 hex) ‖ manifest of the pinned chunks`.
pub(crate) fn encode_record(owner: &str, pinned: &[ChunkRef]) -> Vec<u8> {
    let m = Manifest::Chunks {
        chunks: pinned.to_vec(),
        part_sizes: Vec::new(),
    };
    let mut v = owner.as_bytes().to_vec();
    v.extend_from_slice(&m.encode());
    v
}

pub(crate) fn decode_record(b: &[u8]) -> Result<(String, Vec<ChunkRef>)> {
    if b.len() < 32 {
        return Err(Error::Decode("draft record".into()));
    }
    let owner = String::from_utf8_lossy(&b[..32]).into_owned();
    Ok((owner, Manifest::decode(&b[32..])?.chunks().to_vec()))
}

/// The member whose process owns the draft under `key`, for a draft of a cluster node
/// (`<member>/<id>`); `None` for one of a single machine.
fn draft_member(key: &[u8]) -> Option<&[u8]> {
    key.iter().position(|b| *b == b'/').map(|i| &key[..i])
}

impl Engine {
    /// A new draft's id: in a cluster, under this node's member id, since only this node can
    /// tell whether the owner (a lock file here) is alive.
    pub(crate) fn new_draft_id(&self) -> String {
        match &self.inner.cfg.cluster {
            Some(c) => format!("{}/{}", c.me, new_id()),
            None => new_id(),
        }
    }

    pub(crate) fn owner(&self) -> Result<&OwnerLock> {
        if let Some(o) = self.inner.owner.get() {
            return Ok(o);
        }
        let _ = self
            .inner
            .owner
            .set(OwnerLock::take(&self.inner.cfg.data_dir)?);
        self.inner
            .owner
            .get()
            .ok_or_else(|| Error::Format("owner not set".into()))
    }

    /// Opens a draft of the object under `key` (which need not exist) and returns what it holds.
    /// A draft record (pinning the chunks) is made only when there are chunks to pin; an absent,
    /// empty or inline object needs none, and costs no metadata commit. Without `content` (a
    /// writer that truncates), only the metadata is returned and nothing is pinned.
    pub async fn open_draft(
        &self,
        bucket: &str,
        key: &str,
        content: bool,
    ) -> Result<(Option<Draft>, DraftBase)> {
        validate_key(key)?;
        let okey = object_key(bucket, key);
        // Cheap path first: nothing to pin.
        let large = {
            let txn = self.read()?;
            crate::meta::require_bucket(&txn, bucket)?;
            let meta = live_object(&txn, &okey)?.map(|mut m| {
                m.key = key.to_string();
                m
            });
            let content = match &meta {
                None => Some(DraftContent::Chunks(Vec::new())),
                Some(_) if !content => Some(DraftContent::Chunks(Vec::new())),
                Some(m) => match crate::meta::read_manifest(&txn, &m.data_id, key)? {
                    Manifest::Inline(d) => Some(DraftContent::Inline(d)),
                    Manifest::Chunks { chunks, .. } if chunks.is_empty() => {
                        Some(DraftContent::Chunks(chunks))
                    }
                    Manifest::Chunks { chunks, .. } if chunks.len() > REFS_PER_COMMIT => {
                        Some(DraftContent::Chunks(chunks))
                    }
                    Manifest::Chunks { .. } => None,
                },
            };
            match content {
                Some(DraftContent::Chunks(c)) if !c.is_empty() => Some((meta, c)),
                Some(content) => return Ok((None, DraftBase { meta, content })),
                None => None,
            }
        };
        if let Some((meta, chunks)) = large {
            return self.open_large_draft(bucket, key, meta, chunks).await;
        }
        let owner = self.owner()?.id.clone();
        let id = self.new_draft_id();
        let (b, did) = (bucket.to_string(), id.clone());
        let base = self
            .commit(move |txn| {
                crate::meta::require_bucket(txn, &b)?;
                let meta = live_object(txn, &okey)?;
                let content = match &meta {
                    None => DraftContent::Chunks(Vec::new()),
                    Some(m) => {
                        match crate::meta::read_manifest(txn, &m.data_id, "a draft's base object")?
                        {
                            Manifest::Inline(d) => DraftContent::Inline(d),
                            Manifest::Chunks { chunks, .. } => DraftContent::Chunks(chunks),
                        }
                    }
                };
                let pinned = match &content {
                    DraftContent::Chunks(c) => c.clone(),
                    DraftContent::Inline(_) => Vec::new(),
                };
                for c in &pinned {
                    incref(txn, &c.hash, c.len, None, 1)?;
                }
                txn.put(
                    Table::Drafts,
                    did.as_bytes(),
                    &encode_record(&owner, &pinned),
                )?;
                Ok(DraftBase { meta, content })
            })
            .await?;
        let base = DraftBase {
            meta: base.meta.map(|mut m| {
                m.key = key.to_string();
                m
            }),
            content: base.content,
        };
        match base.content {
            // Grew past one transaction's worth since it was looked at: pin it in pieces.
            DraftContent::Chunks(ref c) if c.len() > REFS_PER_COMMIT => {
                self.close_draft(Draft { id, pieces: 1 });
                Box::pin(self.open_draft(bucket, key, content)).await
            }
            _ => Ok((Some(Draft { id, pieces: 1 }), base)),
        }
    }

    /// [`Engine::open_draft`] of an object of more than [`REFS_PER_COMMIT`] chunks: its
    /// chunks pinned in pieces, each piece's transaction checking that the object is still the
    /// one read (else it starts again: a draft pins what it was opened on).
    async fn open_large_draft(
        &self,
        bucket: &str,
        key: &str,
        meta: Option<ObjectMeta>,
        chunks: Vec<ChunkRef>,
    ) -> Result<(Option<Draft>, DraftBase)> {
        let data_id = meta.as_ref().map(|m| m.data_id.clone()).unwrap_or_default();
        let okey = object_key(bucket, key);
        let check: super::pieces::HoldCheck =
            Arc::new(move |txn| Ok(live_object(txn, &okey)?.is_some_and(|m| m.data_id == data_id)));
        match self
            .hold_in_pieces(chunks.clone(), Vec::new(), 1, check)
            .await?
        {
            Some(mut drafts) => Ok((
                drafts.pop(),
                DraftBase {
                    meta,
                    content: DraftContent::Chunks(chunks),
                },
            )),
            None => Box::pin(self.open_draft(bucket, key, true)).await,
        }
    }

    /// Takes the guard under which chunks may be stored for a draft.
    pub async fn write_guard(&self) -> Result<WriteGuard> {
        Ok(WriteGuard {
            _g: self.inner.chunks.gc_lock.shared().await?,
        })
    }

    /// Stores the bytes of one chunk for a later draft commit (deduplicated, compressed as
    /// `compression` asks, erasure-coded; see [`Engine::compression_of`]): the
    /// pieces it became, in order, runs of zeros as holes ([`crate::chunk::zero_runs`]).
    /// Blocking: call it from a blocking thread. The pieces stay protected only while `guard` is
    /// held; hand them to [`Engine::commit_draft`] (which makes them durable) or give them up
    /// with [`Engine::abandon_chunks_now`].
    pub fn store_draft_data(
        &self,
        _guard: &WriteGuard,
        compression: crate::compression::Compression,
        data: &[u8],
    ) -> Result<Vec<StoredChunk>> {
        self.inner.chunks.store_data(data, compression)
    }

    /// Frees the shards of stored chunks that will not be committed. Blocking.
    pub fn abandon_chunks_now(&self, chunks: Vec<StoredChunk>) {
        self.inner.chunks.abandon_now(chunks)
    }

    /// Commits a draft's contents as the object under `key`, replacing whatever is there.
    /// Atomic: a crash leaves the old object or the new one. With `keep`, `draft` afterwards pins
    /// exactly the committed chunks (for a writer that goes on editing); without, it is closed
    /// (in the same transaction, or right after it for a large one). On error the object is
    /// unchanged, and the caller still owns the fresh chunks in `data` (it may retry or
    /// abandon them); `draft` may by then pin some of them (see [`Engine::pin_draft_chunks`]).
    ///
    /// A commit of more than [`REFS_PER_COMMIT`] chunks, or of a draft pinning in several
    /// records, goes in pieces: fresh chunks are pinned by the draft first, then the
    /// manifest's references (and with `keep`, the next pins) are taken in pieces by a hold
    /// ([`Engine::hold_in_pieces`]) which the commit hands over; the old pins go after it.
    pub async fn commit_draft(
        &self,
        draft: &mut Option<Draft>,
        bucket: &str,
        key: &str,
        data: DraftData,
        c: DraftCommit,
        keep: bool,
    ) -> Result<ObjectMeta> {
        validate_key(key)?;
        let large = match &data {
            DraftData::Chunks(v) => v.len() > REFS_PER_COMMIT,
            DraftData::Inline(_) => false,
        } || draft.as_ref().is_some_and(|d| d.pieces > 1);
        if large {
            return self
                .commit_large_draft(draft, bucket, key, data, c, keep)
                .await;
        }
        let at = self.installing(bucket, key);
        let old_id = draft.as_ref().map(|d| d.id.clone());
        let pins_wanted = keep && matches!(&data, DraftData::Chunks(v) if !v.is_empty());
        let new_id_ = if pins_wanted {
            Some(old_id.clone().unwrap_or_else(|| self.new_draft_id()))
        } else {
            None
        };
        let owner = if pins_wanted {
            Some(self.owner()?.id.clone())
        } else {
            None
        };
        let nid = new_id_.clone();
        let data = self.sync_draft_data(data).await?;
        let (res, surplus) = self
            .commit(move |txn| {
                let old_pins = match &old_id {
                    Some(id) => {
                        let rec = txn
                            .get(Table::Drafts, id.as_bytes())?
                            .ok_or_else(|| Error::Decode(format!("draft {id} is gone")))?;
                        decode_record(&rec)?.1
                    }
                    None => Vec::new(),
                };
                let mut surplus = Vec::new();
                let (manifest, pins) = match &data {
                    DraftData::Inline(d) => (Manifest::Inline(d.clone()), Vec::new()),
                    DraftData::Chunks(chunks) => {
                        surplus = crate::chunk::reference(txn, chunks.iter().map(|c| &c.0))?;
                        for (sc, md5) in chunks {
                            if let Some(m) = md5.filter(|_| !sc.r.is_hole()) {
                                txn.put(Table::ChunkMd5, &sc.r.hash, &m)?;
                            }
                        }
                        let refs: Vec<ChunkRef> = chunks.iter().map(|c| c.0.r).collect();
                        let m = Manifest::Chunks {
                            chunks: refs.clone(),
                            part_sizes: c.part_sizes.clone(),
                        };
                        (m, refs)
                    }
                };
                let meta = install_draft(txn, &at, &manifest, &c)?;
                // Re-pin: the new pins first, so no count touches zero on the way.
                if let (Some(id), Some(owner)) = (&nid, &owner) {
                    for p in &pins {
                        incref(txn, &p.hash, p.len, None, 1)?;
                    }
                    txn.put(Table::Drafts, id.as_bytes(), &encode_record(owner, &pins))?;
                }
                for p in &old_pins {
                    decref(txn, &p.hash)?;
                }
                if let Some(id) = &old_id {
                    if nid.as_ref() != Some(id) {
                        txn.delete(Table::Drafts, id.as_bytes())?;
                    }
                }
                Ok((meta, surplus))
            })
            .await?;
        *draft = new_id_.map(|id| Draft { id, pieces: 1 });
        self.inner.chunks.release_surplus(surplus).await;
        Ok(res)
    }

    /// Makes the chunks stored for a draft durable (one sync per volume) before a commit.
    async fn sync_draft_data(&self, data: DraftData) -> Result<DraftData> {
        let DraftData::Chunks(chunks) = data else {
            return Ok(data);
        };
        let me = self.clone();
        let (chunks, r) = tokio::task::spawn_blocking(move || {
            let mut list: Vec<StoredChunk> = chunks.iter().map(|(c, _)| c.clone()).collect();
            let r = me.inner.chunks.sync_chunks(&mut list);
            let chunks: Vec<(StoredChunk, Option<[u8; 16]>)> = list
                .into_iter()
                .zip(chunks)
                .map(|(c, (_, md5))| (c, md5))
                .collect();
            (chunks, r)
        })
        .await?;
        r?;
        Ok(DraftData::Chunks(chunks))
    }

    /// [`Engine::commit_draft`] in pieces.
    async fn commit_large_draft(
        &self,
        draft: &mut Option<Draft>,
        bucket: &str,
        key: &str,
        data: DraftData,
        c: DraftCommit,
        keep: bool,
    ) -> Result<ObjectMeta> {
        let (manifest, held) = match data {
            DraftData::Inline(d) => (Manifest::Inline(d), None),
            DraftData::Chunks(mut chunks) => {
                // Fresh chunks become the draft's own first: pinned by it, they outlive a
                // failure below with their records (the caller's copies are then never freed:
                // shards a record names are not).
                let fresh: Vec<StoredChunk> = chunks
                    .iter()
                    .filter(|(sc, _)| sc.fresh.is_some() && !sc.is_hole())
                    .map(|(sc, _)| sc.clone())
                    .collect();
                if !fresh.is_empty() {
                    let mut pinned = self.pin_draft_chunks(draft, fresh).await?.into_iter();
                    for (sc, _) in chunks.iter_mut() {
                        if sc.fresh.is_some() && !sc.is_hole() {
                            if let Some(p) = pinned.next() {
                                *sc = p;
                            }
                        }
                    }
                }
                let refs: Vec<ChunkRef> = chunks.iter().map(|(sc, _)| sc.r).collect();
                let md5s = chunks.iter().map(|(_, m)| *m).collect();
                let copies = if keep && !refs.is_empty() { 2 } else { 1 };
                let mut drafts = self
                    .hold_in_pieces(refs.clone(), md5s, copies, super::pieces::no_check())
                    .await?
                    .unwrap_or_default();
                let pins = (drafts.len() > 1).then(|| drafts.remove(1));
                let hold = drafts.pop();
                let m = Manifest::Chunks {
                    chunks: refs,
                    part_sizes: c.part_sizes.clone(),
                };
                (m, Some((hold, pins)))
            }
        };
        let (hold, pins) = held.unwrap_or((None, None));
        let hold_keys = hold.as_ref().map(Draft::keys).unwrap_or_default();
        let at = self.installing(bucket, key);
        let res = self
            .commit(move |txn| {
                let meta = install_draft(txn, &at, &manifest, &c)?;
                // The hold's references pass to the manifest.
                for key in &hold_keys {
                    txn.delete(Table::Drafts, key)?;
                }
                Ok(meta)
            })
            .await;
        match res {
            Ok(meta) => {
                // The next pins (taken only with `keep`) in place of the old ones.
                if let Some(old) = std::mem::replace(draft, pins) {
                    self.close_draft(old);
                }
                Ok(meta)
            }
            Err(e) => {
                for d in [hold, pins].into_iter().flatten() {
                    self.close_draft(d);
                }
                Err(e)
            }
        }
    }

    /// Makes chunks stored for a draft its own without committing the object: they are made
    /// durable, recorded, and pinned by the draft (one is made when there is none), so they
    /// need the write guard no more and a later commit takes them as
    /// [`StoredChunk::existing`], which is what this returns them as. A file kept open in a
    /// cluster has its stored chunks pinned so, well within
    /// [`crate::EngineConfig::write_limit`]; the pins go at the draft's next commit or close.
    /// Pinned [`REFS_PER_COMMIT`] at a time: on error, the pieces before are pinned (a
    /// retry with the caller's fresh copies pins them again, which costs a count and frees
    /// nothing: shards a record names are never freed as surplus or abandoned).
    pub async fn pin_draft_chunks(
        &self,
        draft: &mut Option<Draft>,
        chunks: Vec<StoredChunk>,
    ) -> Result<Vec<StoredChunk>> {
        let chunks: Vec<StoredChunk> = chunks.into_iter().filter(|c| !c.is_hole()).collect();
        if chunks.is_empty() {
            return Ok(chunks);
        }
        let owner = self.owner()?.id.clone();
        let me = self.clone();
        let (chunks, synced) = tokio::task::spawn_blocking(move || {
            let mut list = chunks;
            let r = me.inner.chunks.sync_chunks(&mut list);
            (list, r)
        })
        .await?;
        synced?;
        let mut out = Vec::with_capacity(chunks.len());
        // A piece at a time: into the draft's last record while it has room, else a new one.
        for piece in chunks.chunks(REFS_PER_COMMIT) {
            let (id, pieces) = match draft {
                Some(d) => (d.id.clone(), d.pieces),
                None => (self.new_draft_id(), 0),
            };
            let piece: Vec<StoredChunk> = piece.to_vec();
            let refs: Vec<ChunkRef> = piece.iter().map(|c| c.r).collect();
            let (did, owner) = (id.clone(), owner.clone());
            let (surplus, pieces) = self
                .commit(move |txn| {
                    let (key, mut pins, pieces) = match pieces.checked_sub(1) {
                        Some(last) => {
                            let key = piece_key(&did, last);
                            let rec = txn
                                .get(Table::Drafts, &key)?
                                .ok_or_else(|| Error::Decode(format!("draft {did} is gone")))?;
                            let pins = decode_record(&rec)?.1;
                            if pins.len() + piece.len() <= REFS_PER_COMMIT {
                                (key, pins, pieces)
                            } else {
                                (piece_key(&did, pieces), Vec::new(), pieces + 1)
                            }
                        }
                        None => (piece_key(&did, 0), Vec::new(), 1),
                    };
                    let surplus = crate::chunk::reference(txn, piece.iter())?;
                    pins.extend(piece.iter().map(|c| c.r));
                    txn.put(Table::Drafts, &key, &encode_record(&owner, &pins))?;
                    Ok((surplus, pieces))
                })
                .await?;
            *draft = Some(Draft { id, pieces });
            self.inner.chunks.release_surplus(surplus).await;
            out.extend(refs.into_iter().map(StoredChunk::existing));
        }
        Ok(out)
    }

    /// Releases the draft records under `keys` (a hold not handed over), each in a commit of
    /// its own, without waiting.
    pub(crate) fn release_draft_records(&self, keys: Vec<Vec<u8>>) {
        for key in keys {
            self.inner
                .meta
                .committer()
                .spawn(move |txn| release_draft(txn, &key));
        }
    }

    /// Closes a draft: drops the references it holds, a commit per record, in the next
    /// metadata commits (without waiting for them: should the process die first, GC releases
    /// the draft).
    pub fn close_draft(&self, draft: Draft) {
        self.release_draft_records(draft.keys());
    }

    /// Releases the drafts of engine instances (in any process) that are gone; returns how many.
    /// Run by GC before it collects. In a cluster, each node judges only its own processes'
    /// drafts (their owners' lock files are there): every node runs this, not only the one
    /// that runs GC.
    pub fn release_stale_drafts(&self) -> Result<u64> {
        let mine = self.inner.owner.get().map(|o| o.id.clone());
        let member = self.inner.cfg.cluster.as_ref().map(|c| c.me.as_bytes());
        let drafts: Vec<(Vec<u8>, String, usize)> = {
            let txn = self.read()?;
            let mut v = Vec::new();
            for r in txn.all(Table::Drafts)? {
                let (k, b) = r?;
                if member.is_some() && draft_member(&k) != member {
                    continue;
                }
                let (owner, pins) = decode_record(&b)?;
                v.push((k.to_vec(), owner, pins.len()));
            }
            v
        };
        let mut dead_owners = HashSet::new();
        let mut alive = HashSet::new();
        let mut stale = Vec::new();
        for (k, owner, pins) in drafts {
            if Some(&owner) == mine.as_ref() || alive.contains(&owner) {
                continue;
            }
            if !dead_owners.contains(&owner) {
                if OwnerLock::is_alive(&self.inner.cfg.data_dir, &owner) {
                    alive.insert(owner);
                    continue;
                }
                dead_owners.insert(owner);
            }
            stale.push((k, pins));
        }
        let n = self.release_drafts(stale)?;
        for o in dead_owners {
            let _ = std::fs::remove_file(OwnerLock::path_of(&self.inner.cfg.data_dir, &o));
        }
        Ok(n)
    }

    /// Releases the drafts of the processes of cluster member `member`, which was removed
    /// (its lock files are gone with it, so no node can judge them); returns how many. Never
    /// this node's own. Blocking.
    pub fn release_drafts_of_member(&self, member: &str) -> Result<u64> {
        let me = self.inner.cfg.cluster.as_ref().map(|c| c.me.as_str());
        if me.is_none() || me == Some(member) {
            return Ok(0);
        }
        let prefix = format!("{member}/");
        let records: Vec<(Vec<u8>, usize)> = {
            let txn = self.read()?;
            let mut v = Vec::new();
            for r in txn.prefix(Table::Drafts, prefix.as_bytes())? {
                let (k, b) = r?;
                v.push((k.to_vec(), decode_record(&b)?.1.len()));
            }
            v
        };
        self.release_drafts(records)
    }

    /// Releases the draft records under the keys of `records` (each with how many chunks it
    /// pins), as many in one commit as [`REFS_PER_COMMIT`] allows; returns how many. Blocking.
    fn release_drafts(&self, records: Vec<(Vec<u8>, usize)>) -> Result<u64> {
        let n = records.len() as u64;
        let mut batch: Vec<Vec<u8>> = Vec::new();
        let mut pins = 0;
        let mut records = records.into_iter().peekable();
        while let Some((k, p)) = records.next() {
            batch.push(k);
            pins += p;
            let full = records
                .peek()
                .is_none_or(|(_, next)| pins + next > REFS_PER_COMMIT);
            if full {
                let keys = std::mem::take(&mut batch);
                pins = 0;
                self.commit_blocking(move |txn| {
                    for k in &keys {
                        release_draft(txn, k)?;
                    }
                    Ok(())
                })?;
            }
        }
        Ok(n)
    }

    /// Number of open drafts (all processes).
    pub fn draft_count(&self) -> Result<u64> {
        let txn = self.read()?;
        txn.count(Table::Drafts)
    }

    /// Reads bytes `[a, b)` of a chunk, verified (rebuilt from parity if need be): a recorded
    /// chunk, or one stored for a draft and not committed yet. Blocking.
    pub fn read_stored_chunk(&self, c: &StoredChunk, a: usize, b: usize) -> Result<Vec<Bytes>> {
        let b = b.min(c.r.len as usize);
        if a >= b {
            return Ok(Vec::new());
        }
        if c.r.is_hole() {
            return Ok(crate::chunk::hole::zeros(b - a));
        }
        match &c.fresh {
            Some(f) => {
                let rec = f.record(0, c.r.len);
                self.inner.chunks.read_chunk_at(&c.r, &rec, a, b)
            }
            None => self.inner.chunks.read_chunk(&c.r, a, b),
        }
    }

    /// The MD5 of each chunk (for multipart-style ETags), from the table of known ones or by
    /// reading the chunk (and then remembering it, once it is recorded). Blocking.
    pub fn chunk_md5s(&self, chunks: &[StoredChunk]) -> Result<Vec<[u8; 16]>> {
        let mut out = Vec::with_capacity(chunks.len());
        let mut missing = Vec::new();
        {
            let txn = self.read()?;
            for (i, c) in chunks.iter().enumerate() {
                if c.r.is_hole() {
                    out.push(zeros_md5(c.r.len));
                    continue;
                }
                match txn.get(Table::ChunkMd5, &c.r.hash)? {
                    Some(m) if m.len() == 16 => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&m);
                        out.push(a);
                    }
                    _ => {
                        out.push([0u8; 16]);
                        missing.push(i);
                    }
                }
            }
        }
        let mut learnt = Vec::new();
        for i in missing {
            let c = &chunks[i];
            let mut h = Md5::new();
            for piece in self.read_stored_chunk(c, 0, c.r.len as usize)? {
                h.update(&piece);
            }
            out[i] = h.finalize().into();
            if c.fresh.is_none() {
                learnt.push((c.r.hash, out[i]));
            }
        }
        if !learnt.is_empty() {
            self.inner.meta.committer().spawn(move |txn| {
                for (h, m) in &learnt {
                    let (h, m) = (*h, *m);
                    // Only for chunks that still exist (GC removes the entry with the chunk).
                    if txn.get(Table::Chunks, &h)?.is_some() {
                        txn.put(Table::ChunkMd5, &h, &m)?;
                    }
                }
                Ok(())
            });
        }
        Ok(out)
    }
}

/// Where a draft commit installs its object.
struct Installing {
    bucket: String,
    okey: Vec<u8>,
    key: String,
    data_id: String,
    default_compression: crate::compression::Compression,
}

impl Engine {
    /// Where a commit of a draft of `key` installs it: a new data id.
    fn installing(&self, bucket: &str, key: &str) -> Installing {
        Installing {
            bucket: bucket.to_string(),
            okey: object_key(bucket, key),
            key: key.to_string(),
            data_id: new_id(),
            default_compression: self.inner.cfg.compression,
        }
    }
}

/// Installs `manifest` (its references taken already) as the latest version of the object a
/// draft commit writes, in place of what is there — or of this writer's own empty placeholder
/// version, which it replaces instead of stacking on it ([`DraftCommit::replaces`]).
fn install_draft(
    txn: &mut dyn Write,
    at: &Installing,
    manifest: &Manifest,
    c: &DraftCommit,
) -> Result<ObjectMeta> {
    crate::meta::require_bucket(txn, &at.bucket)?;
    let mut old = current_object(txn, &at.okey)?;
    if let (Some(vid), Some(o)) = (&c.replaces, &old) {
        let enabled = super::version::bucket_record(txn, &at.bucket)?.versioning
            == Some(crate::meta::Versioning::Enabled);
        let unlocked = o.lock_reason(now_ns(), false).is_none();
        if enabled && unlocked && o.versioned && o.vid == *vid && o.size == 0 && !o.delete_marker {
            crate::meta::release_manifest(txn, &o.data_id)?;
            old = None;
        }
    }
    let size = match manifest {
        Manifest::Inline(d) => d.len() as u64,
        Manifest::Chunks { chunks, .. } => chunks.iter().map(|r| r.len as u64).sum(),
    };
    let mut meta = ObjectMeta {
        key: at.key.clone(),
        size,
        etag: c.etag.clone(),
        last_modified_ns: now_ns(),
        parts_count: c.part_sizes.len() as u32,
        attrs: (c.attrs)(old.as_ref().filter(|o| !o.delete_marker)),
        data_id: at.data_id.clone(),
        hole_bytes: manifest.hole_bytes(),
        ..Default::default()
    };
    super::version::install(
        txn,
        &at.bucket,
        &at.okey,
        &mut meta,
        manifest,
        old,
        super::version::Installing {
            event: crate::events::EventName::Put,
            default_compression: at.default_compression,
        },
    )?;
    Ok(meta)
}

/// The chunks a draft record pins (for fsck).
pub(crate) fn pinned_chunks(record: &[u8]) -> Result<Vec<ChunkRef>> {
    Ok(decode_record(record)?.1)
}

fn release_draft(txn: &mut dyn Write, key: &[u8]) -> Result<()> {
    let Some(b) = txn.get(Table::Drafts, key)? else {
        return Ok(());
    };
    let (_, pins) = decode_record(&b)?;
    for p in &pins {
        decref(txn, &p.hash)?;
    }
    txn.delete(Table::Drafts, key)?;
    Ok(())
}

/// MD5 of `len` zero bytes (a hole's part of a multipart-style ETag), remembered per length.
pub fn zeros_md5(len: u32) -> [u8; 16] {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static KNOWN: Mutex<Option<HashMap<u32, [u8; 16]>>> = Mutex::new(None);
    if let Some(m) = KNOWN
        .lock()
        .ok()
        .and_then(|g| g.as_ref().and_then(|k| k.get(&len).copied()))
    {
        return m;
    }
    let mut h = Md5::new();
    for piece in crate::chunk::hole::zeros(len as usize) {
        h.update(&piece);
    }
    let m: [u8; 16] = h.finalize().into();
    if let Ok(mut g) = KNOWN.lock() {
        let k = g.get_or_insert_with(HashMap::new);
        if k.len() >= 1024 {
            k.clear();
        }
        k.insert(len, m);
    }
    m
}

/// ETag of an object made of `md5s` parts, S3's multipart rule: MD5 of the parts' MD5s, `-N`.
pub fn multipart_etag(md5s: &[[u8; 16]]) -> String {
    let mut h = Md5::new();
    for m in md5s {
        h.update(m);
    }
    format!("{}-{}", hex::encode(h.finalize()), md5s.len())
}

/// The latest version of the object under `okey` unless it is a delete marker (a draft of a
/// deleted object starts empty).
fn live_object(txn: &dyn crate::kv::Read, okey: &[u8]) -> Result<Option<ObjectMeta>> {
    Ok(current_object(txn, okey)?.filter(|m| !m.delete_marker))
}
