//! Writing objects: put (streamed into chunks, then one commit) and delete.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::io::AsyncRead;

use super::read::etag_matches;
use crate::chunk::write::read_up_to;
use crate::error::{Error, Result};
use md5::{Digest, Md5};

use crate::chunk::{reference, StoredChunk};
use crate::meta::{current_object, new_id, now_ns, object_key, Manifest, ObjectAttrs, ObjectMeta};
use crate::names::validate_key;

use super::version::{self, DeleteOutcome, VersionSel};
use super::Engine;

/// Options of a put.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Attributes to store with the object.
    pub attrs: ObjectAttrs,
    /// Fail with `PreconditionFailed` if the key exists with an ETag this matches (`*`: any
    /// ETag, so if it exists at all) (`If-None-Match`).
    pub if_none_match: Option<String>,
    /// Fail with `PreconditionFailed` unless the current ETag is this one (`If-Match`).
    pub if_match: Option<String>,
    /// Checksums learnt only once the body has been read (e.g. from HTTP trailers): merged into
    /// `attrs.checksums` at commit time.
    pub late_checksums: Option<LateChecksums>,
    /// Smallest part but the last a multipart completion accepts (`None`: S3's 5 MiB). The
    /// NATS door lowers it: a message is at most the server's max payload (1 MiB by default).
    pub min_part_size: Option<u64>,
}

/// Checksums filled in by the body reader while the put runs.
pub type LateChecksums = Arc<std::sync::Mutex<BTreeMap<String, String>>>;

impl Engine {
    /// Stores an object read from `body` (of any length), replacing any object under `key`.
    /// The object becomes visible only once all its data and metadata are durable.
    pub async fn put_object<R>(
        &self,
        bucket: &str,
        key: &str,
        mut body: R,
        opts: PutOptions,
    ) -> Result<ObjectMeta>
    where
        R: AsyncRead + Unpin + Send,
    {
        validate_key(key)?;
        let compression = self.compression_of(bucket)?;
        let cs = self.inner.cfg.chunk_size;
        let first = read_up_to(&mut body, cs).await?;
        if first.len() < cs && first.len() <= self.inner.cfg.inline_threshold {
            let md5: [u8; 16] = Md5::digest(&first).into();
            let size = first.len() as u64;
            return self
                .commit_object(
                    bucket,
                    key,
                    Manifest::Inline(first),
                    hex::encode(md5),
                    size,
                    0,
                    opts,
                    Vec::new(),
                )
                .await;
        }
        let guard = self.inner.chunks.gc_lock.shared().await?;
        let stored = self
            .inner
            .chunks
            .store_stream(first, &mut body, compression)
            .await?;
        let chunks = stored.chunks;
        let manifest = Manifest::Chunks {
            chunks: chunks.iter().map(|c| c.r).collect(),
            part_sizes: Vec::new(),
        };
        let res = self
            .commit_object(
                bucket,
                key,
                manifest,
                hex::encode(stored.md5),
                stored.size,
                0,
                opts,
                chunks.clone(),
            )
            .await;
        if res.is_err() {
            self.inner.chunks.abandon_chunks(&chunks).await;
        }
        drop(guard);
        res
    }

    #[allow(clippy::too_many_arguments)]
    async fn commit_object(
        &self,
        bucket: &str,
        key: &str,
        manifest: Manifest,
        etag: String,
        size: u64,
        parts_count: u32,
        opts: PutOptions,
        stored: Vec<StoredChunk>,
    ) -> Result<ObjectMeta> {
        let mut attrs = opts.attrs;
        if let Some(late) = &opts.late_checksums {
            if let Ok(late) = late.lock() {
                attrs
                    .checksums
                    .extend(late.iter().map(|(k, v)| (k.clone(), v.clone())));
            }
        }
        let meta = ObjectMeta {
            key: key.to_string(),
            size,
            etag,
            last_modified_ns: now_ns(),
            parts_count,
            attrs,
            data_id: new_id(),
            hole_bytes: manifest.hole_bytes(),
            ..Default::default()
        };
        let okey = object_key(bucket, key);
        let bucket = bucket.to_string();
        let default_compression = self.inner.cfg.compression;
        let if_none_match = opts.if_none_match;
        let if_match = opts.if_match;
        let (meta, surplus) = self
            .commit(move |txn| {
                let mut meta = meta.clone();
                let old = current_object(txn, &okey)?;
                let (inm, im) = (if_none_match.as_deref(), if_match.as_deref());
                check_preconditions(old.as_ref(), inm, im, &bucket, &meta.key)?;
                let surplus = reference(txn, &stored)?;
                version::install(
                    txn,
                    &bucket,
                    &okey,
                    &mut meta,
                    &manifest,
                    old,
                    super::version::Installing {
                        event: crate::events::EventName::Put,
                        default_compression,
                    },
                )?;
                Ok((meta, surplus))
            })
            .await?;
        self.inner.chunks.release_surplus(surplus).await;
        Ok(meta)
    }

    /// Deletes an object; returns whether it existed. In a bucket with versioning, this puts a
    /// delete marker on top of it ([`Engine::delete_object_version`] says more).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<bool> {
        Ok(self
            .delete_object_version(bucket, key, VersionSel::Latest)
            .await?
            .existed)
    }

    /// Deletes the latest version of an object (`Latest`: removed in a bucket that never had
    /// versioning, covered by a new delete marker otherwise) or one version for good (by its id
    /// or `null`; the newest remaining becomes the latest). Deleting what is not there is not
    /// an error.
    pub async fn delete_object_version(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
    ) -> Result<DeleteOutcome> {
        self.delete_object_version_bypassing(bucket, key, sel, false)
            .await
    }

    /// [`Engine::delete_object_version`]; with `bypass_governance`, a version under
    /// GOVERNANCE retention may be deleted (`x-amz-bypass-governance-retention`).
    pub async fn delete_object_version_bypassing(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        bypass_governance: bool,
    ) -> Result<DeleteOutcome> {
        let okey = object_key(bucket, key);
        let bucket = bucket.to_string();
        self.commit(move |txn| {
            let state = version::bucket_record(txn, &bucket)?.versioning;
            let out = match &sel {
                VersionSel::Latest => version::delete_latest(txn, state, &okey)?,
                sel => version::delete_version(txn, &okey, sel, bypass_governance)?,
            };
            version::emit_delete(txn, &bucket, &okey, &out, false)?;
            Ok(out)
        })
        .await
    }
}

/// The conditions of a write, decided on the object it replaces (`None`: there is none):
/// `If-None-Match` fails when an ETag it names (or `*`: any) is the current one, `If-Match`
/// unless the current ETag is one it names — and with `NoSuchKey` when there is no object to
/// match at all. A delete marker counts as no object.
pub(crate) fn check_preconditions(
    old: Option<&ObjectMeta>,
    if_none_match: Option<&str>,
    if_match: Option<&str>,
    bucket: &str,
    key: &str,
) -> Result<()> {
    let old = old.filter(|o| !o.delete_marker);
    if let (Some(cond), Some(o)) = (if_none_match, old) {
        if etag_matches(cond, &o.etag) {
            return Err(Error::PreconditionFailed("the object exists"));
        }
    }
    if let Some(want) = if_match {
        match old {
            Some(o) if etag_matches(want, &o.etag) => {}
            Some(_) => return Err(Error::PreconditionFailed("ETag does not match")),
            None => {
                return Err(Error::NoSuchKey {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                })
            }
        }
    }
    Ok(())
}
