//! Changes that touch only metadata: copy (the new object refers to the same chunks),
//! rename, and attribute updates.

use super::read::etag_matches;
use super::write::check_preconditions;
use crate::error::{Error, Result};
use crate::kv::{Read, Table};
use crate::meta::{
    current_object, new_id, now_ns, object_key, ref_manifest, release_manifest, ObjectAttrs,
    ObjectMeta, REFS_PER_COMMIT,
};
use crate::names::validate_key;

use super::version::{self, VersionSel};
use super::Engine;

/// How a copy treats attributes.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// `Some`: replace the attributes (`x-amz-metadata-directive: REPLACE`); `None`: copy them.
    pub replace_attrs: Option<ObjectAttrs>,
    /// Fail with `PreconditionFailed` unless the source's ETag is this one.
    pub source_if_match: Option<String>,
    /// Fail with `PreconditionFailed` if the destination exists.
    pub if_none_match: bool,
    /// The version of the source to copy (`versionId` in `x-amz-copy-source`).
    pub source_version: VersionSel,
}

/// The references a copy of a large source took beforehand ([`Engine::hold_source`]): the
/// source's data id and the keys of the hold's records, which the copy's commit deletes to
/// hand the references over.
struct HeldCopy {
    data_id: String,
    keys: Vec<Vec<u8>>,
}

/// What a copy's transaction found when the source it held changed meanwhile: start again.
struct SourceChanged;

/// The source and the target of a copy or a rename, as a transaction needs them.
struct SourceAndTarget {
    src: Vec<u8>,
    dst: Vec<u8>,
    src_bucket: String,
    src_key: String,
    dst_bucket: String,
    dst_key: String,
    /// The store's compression, for an inline object the target bucket has no setting for.
    default_compression: crate::compression::Compression,
}

impl SourceAndTarget {
    fn new(
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
        default_compression: crate::compression::Compression,
    ) -> Result<Self> {
        validate_key(dst_key)?;
        Ok(SourceAndTarget {
            src: object_key(src_bucket, src_key),
            dst: object_key(dst_bucket, dst_key),
            src_bucket: src_bucket.to_string(),
            src_key: src_key.to_string(),
            dst_bucket: dst_bucket.to_string(),
            dst_key: dst_key.to_string(),
            default_compression,
        })
    }

    /// The source object, the version `sel` names (`NoSuchBucket` unless both buckets exist,
    /// `NoSuchKey`, `NoSuchVersion`, a delete marker).
    fn source(&self, txn: &dyn Read, sel: &VersionSel) -> Result<ObjectMeta> {
        crate::meta::require_buckets(txn, &[&self.src_bucket, &self.dst_bucket])?;
        let (_, m) =
            version::locate_readable(txn, &self.src_bucket, &self.src_key, &self.src, sel)?;
        Ok(m)
    }

    /// Installs a copy of `smeta` (with `attrs`) as the target's latest version, referring to
    /// the same chunks under a manifest of its own: its references taken here, or handed over
    /// by `held` when that holds them (a source of more than [`REFS_PER_COMMIT`] chunks).
    /// `Err(SourceChanged)` when the source is a large one `held` does not hold.
    fn install_copy(
        &self,
        txn: &mut dyn crate::kv::Write,
        smeta: &ObjectMeta,
        attrs: ObjectAttrs,
        old: Option<ObjectMeta>,
        held: Option<&HeldCopy>,
    ) -> Result<std::result::Result<ObjectMeta, SourceChanged>> {
        let manifest = crate::meta::read_manifest(txn, &smeta.data_id, &self.src_key)?;
        match held {
            Some(h) if h.data_id == smeta.data_id => {
                for k in &h.keys {
                    txn.delete(Table::Drafts, k)?;
                }
            }
            _ if manifest.chunks().len() > REFS_PER_COMMIT => return Ok(Err(SourceChanged)),
            _ => ref_manifest(txn, &manifest)?,
        }
        let mut meta = ObjectMeta {
            key: self.dst_key.clone(),
            size: smeta.size,
            etag: smeta.etag.clone(),
            last_modified_ns: now_ns(),
            parts_count: smeta.parts_count,
            attrs,
            data_id: new_id(),
            hole_bytes: manifest.hole_bytes(),
            ..Default::default()
        };
        version::install(
            txn,
            &self.dst_bucket,
            &self.dst,
            &mut meta,
            &manifest,
            old,
            super::version::Installing {
                event: crate::events::EventName::Copy,
                default_compression: self.default_compression,
            },
        )?;
        Ok(Ok(meta))
    }
}

impl Engine {
    fn source_and_target(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<SourceAndTarget> {
        SourceAndTarget::new(
            src_bucket,
            src_key,
            dst_bucket,
            dst_key,
            self.inner.cfg.compression,
        )
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
        let p =
            std::sync::Arc::new(self.source_and_target(src_bucket, src_key, dst_bucket, dst_key)?);
        // The commit counts a small source's references itself; a large one's are held in
        // pieces first, and the commit tried again.
        let mut held: Option<HeldCopy> = None;
        loop {
            let (p2, opts2, h) = (p.clone(), opts.clone(), held.take());
            let keys = h.as_ref().map(|h| h.keys.clone());
            let r = self
                .commit(move |txn| {
                    let (p, opts) = (&p2, &opts2);
                    let smeta = p.source(txn, &opts.source_version)?;
                    if let Some(want) = &opts.source_if_match {
                        if !etag_matches(want, &smeta.etag) {
                            return Err(Error::PreconditionFailed("source ETag does not match"));
                        }
                    }
                    let old = current_object(txn, &p.dst)?;
                    let if_none_match = opts.if_none_match.then_some("*");
                    check_preconditions(
                        old.as_ref(),
                        if_none_match,
                        None,
                        &p.dst_bucket,
                        &p.dst_key,
                    )?;
                    let attrs = opts
                        .replace_attrs
                        .clone()
                        .unwrap_or_else(|| smeta.attrs.clone());
                    p.install_copy(txn, &smeta, attrs, old, h.as_ref())
                })
                .await;
            match self.settle_hold(r, keys) {
                Some(r) => return r,
                None => held = self.hold_source(&p, &opts.source_version).await?,
            }
        }
    }

    /// When the source `sel` names has more chunks than one transaction may count
    /// ([`REFS_PER_COMMIT`]), takes its references in pieces for the copy's commit to hand
    /// over; `None` for a smaller source (the commit counts them itself).
    async fn hold_source(
        &self,
        p: &std::sync::Arc<SourceAndTarget>,
        sel: &VersionSel,
    ) -> Result<Option<HeldCopy>> {
        loop {
            let (data_id, chunks) = {
                let txn = self.read()?;
                let smeta = p.source(&txn, sel)?;
                let m = crate::meta::read_manifest(&txn, &smeta.data_id, &p.src_key)?;
                if m.chunks().len() <= REFS_PER_COMMIT {
                    return Ok(None);
                }
                (smeta.data_id, m.chunks().to_vec())
            };
            let id = data_id.clone();
            // Its chunks stay while its manifest does and is not being let go.
            let check: super::pieces::HoldCheck = std::sync::Arc::new(move |txn| {
                Ok(txn.contains(Table::Manifests, id.as_bytes())?
                    && !txn.contains(Table::Releases, id.as_bytes())?)
            });
            if let Some(mut d) = self.hold_in_pieces(chunks, Vec::new(), 1, check).await? {
                if let Some(d) = d.pop() {
                    return Ok(Some(HeldCopy {
                        data_id,
                        keys: d.keys(),
                    }));
                }
            }
        }
    }

    /// The outcome of a copy's commit given a hold's record `keys`: the result, or `None` to
    /// start again (the source changed after it was held); a hold not handed over is released.
    fn settle_hold(
        &self,
        r: Result<std::result::Result<ObjectMeta, SourceChanged>>,
        keys: Option<Vec<Vec<u8>>>,
    ) -> Option<Result<ObjectMeta>> {
        let handed_over = matches!(r, Ok(Ok(_)));
        if let (false, Some(keys)) = (handed_over, keys) {
            self.release_draft_records(keys);
        }
        match r {
            Ok(Ok(meta)) => Some(Ok(meta)),
            Ok(Err(SourceChanged)) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Renames an object atomically (one metadata transaction, no data touched), replacing
    /// any object under the new key, as POSIX `rename` does. Where a bucket has versioning,
    /// the target gets a new version and the source a delete marker, as a copy and a delete
    /// over S3 would.
    pub async fn rename_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<ObjectMeta> {
        let p =
            std::sync::Arc::new(self.source_and_target(src_bucket, src_key, dst_bucket, dst_key)?);
        // Only a versioned rename copies (and so counts references): a large source's are
        // held in pieces when the commit asks for them, and the commit tried again.
        let mut held: Option<HeldCopy> = None;
        loop {
            let (p2, h) = (p.clone(), held.take());
            let keys = h.as_ref().map(|h| h.keys.clone());
            let r = self.commit(move |txn| p2.rename(txn, h.as_ref())).await;
            match self.settle_hold(r, keys) {
                Some(r) => return r,
                None => held = self.hold_source(&p, &VersionSel::Latest).await?,
            }
        }
    }
}

impl SourceAndTarget {
    /// The transaction of [`Engine::rename_object`].
    fn rename(
        &self,
        txn: &mut dyn crate::kv::Write,
        held: Option<&HeldCopy>,
    ) -> Result<std::result::Result<ObjectMeta, SourceChanged>> {
        let p = self;
        {
            let mut meta = p.source(txn, &VersionSel::Latest)?;
            if p.src == p.dst {
                return Ok(Ok(meta));
            }
            let src_state = version::bucket_record(txn, &p.src_bucket)?.versioning;
            let dst_state = version::bucket_record(txn, &p.dst_bucket)?.versioning;
            let old = current_object(txn, &p.dst)?;
            if src_state.is_some() || dst_state.is_some() {
                let attrs = meta.attrs.clone();
                let meta = match p.install_copy(txn, &meta, attrs, old, held)? {
                    Ok(meta) => meta,
                    Err(changed) => return Ok(Err(changed)),
                };
                let out = version::delete_latest(txn, src_state, &p.src)?;
                version::emit_delete(txn, &p.src_bucket, &p.src, &out, false)?;
                return Ok(Ok(meta));
            }
            if let Some(old) = old {
                release_manifest(txn, &old.data_id)?;
            }
            txn.delete(Table::Objects, &p.src)?;
            txn.put(Table::Objects, &p.dst, &meta.encode()?)?;
            meta.key = p.dst_key.clone();
            // A rename is, to a subscriber, the object copied to its new name and removed from
            // its old one.
            let dst_rec = version::bucket_record(txn, &p.dst_bucket)?;
            crate::events::emit(
                txn,
                &dst_rec,
                &p.dst_bucket,
                &p.dst_key,
                crate::events::EventName::Copy,
                Some(&meta),
                None,
            )?;
            let src_rec = version::bucket_record(txn, &p.src_bucket)?;
            crate::events::emit(
                txn,
                &src_rec,
                &p.src_bucket,
                &p.src_key,
                crate::events::EventName::Delete,
                None,
                None,
            )?;
            Ok(Ok(meta))
        }
    }
}

impl Engine {
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
        self.update_object_attrs_with(
            bucket,
            key,
            VersionSel::Latest,
            move |attrs, last_modified_ns| {
                let mut p = attrs.posix.unwrap_or_else(|| {
                    crate::posix::PosixAttrs::default_for(&default_key, last_modified_ns)
                });
                p.apply(&change, now);
                attrs.posix = Some(p);
            },
        )
        .await
    }

    /// Changes an object's attributes (tags, POSIX attributes, …) atomically, keeping its data,
    /// ETag and modification time.
    pub async fn update_object_attrs<F>(&self, bucket: &str, key: &str, f: F) -> Result<ObjectMeta>
    where
        F: FnMut(&mut ObjectAttrs) + Send + 'static,
    {
        self.update_version_attrs(bucket, key, VersionSel::Latest, f)
            .await
    }

    /// [`Engine::update_object_attrs`] of the version `sel` names (e.g. tagging by
    /// `versionId`), which stays where it is among the object's versions.
    pub async fn update_version_attrs<F>(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        f: F,
    ) -> Result<ObjectMeta>
    where
        F: FnMut(&mut ObjectAttrs) + Send + 'static,
    {
        let mut f = f;
        self.update_object_attrs_with(bucket, key, sel, move |a, _| f(a))
            .await
    }

    /// [`Engine::update_version_attrs`], with the version's modification time given to `f`.
    async fn update_object_attrs_with<F>(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        f: F,
    ) -> Result<ObjectMeta>
    where
        F: FnMut(&mut ObjectAttrs, i64) + Send + 'static,
    {
        let mut f = f;
        let okey = object_key(bucket, key);
        let (b, k) = (bucket.to_string(), key.to_string());
        self.commit(move |txn| {
            let (place, mut meta) = version::locate_readable(txn, &b, &k, &okey, &sel)?;
            f(&mut meta.attrs, meta.last_modified_ns);
            version::rewrite(txn, &okey, &place, &meta)?;
            Ok(meta)
        })
        .await
    }
}
