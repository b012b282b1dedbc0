//! Changes that touch only metadata: copy (the new object refers to the same chunks),
//! rename, and attribute updates.

use super::read::etag_matches;
use super::write::check_preconditions;
use crate::error::{Error, Result};
use crate::kv::Table;
use crate::meta::{
    current_object, new_id, now_ns, object_key, ref_manifest, release_manifest, ObjectAttrs,
    ObjectMeta,
};
use crate::names::validate_key;

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
}

impl Engine {
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
        validate_key(dst_key)?;
        let src = object_key(src_bucket, src_key);
        let dst = object_key(dst_bucket, dst_key);
        let (sb, sk, db, dk) = (
            src_bucket.to_string(),
            src_key.to_string(),
            dst_bucket.to_string(),
            dst_key.to_string(),
        );
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_buckets(txn, &[&sb, &db])?;
                let Some(sbytes) = txn.get(Table::Objects, &src)? else {
                    return Err(Error::NoSuchKey {
                        bucket: sb,
                        key: sk,
                    });
                };
                let smeta = ObjectMeta::decode(&sk, &sbytes)?;
                if let Some(want) = &opts.source_if_match {
                    if !etag_matches(want, &smeta.etag) {
                        return Err(Error::PreconditionFailed("source ETag does not match"));
                    }
                }
                let old = current_object(txn, &dst)?;
                check_preconditions(old.as_ref(), opts.if_none_match, None)?;
                let manifest = crate::meta::read_manifest(txn, &smeta.data_id, &sk)?;
                let meta = ObjectMeta {
                    key: dk,
                    size: smeta.size,
                    etag: smeta.etag.clone(),
                    last_modified_ns: now_ns(),
                    parts_count: smeta.parts_count,
                    attrs: opts.replace_attrs.unwrap_or(smeta.attrs),
                    data_id: new_id(),
                    hole_bytes: manifest.hole_bytes(),
                };
                ref_manifest(txn, &manifest)?;
                crate::meta::install_object(txn, &dst, &meta, &manifest, old)?;
                Ok(meta)
            })
            .await
    }

    /// Renames an object atomically (one metadata transaction, no data touched), replacing
    /// any object under the new key, as POSIX `rename` does.
    pub async fn rename_object(
        &self,
        src_bucket: &str,
        src_key: &str,
        dst_bucket: &str,
        dst_key: &str,
    ) -> Result<ObjectMeta> {
        validate_key(dst_key)?;
        let src = object_key(src_bucket, src_key);
        let dst = object_key(dst_bucket, dst_key);
        let (sb, sk, db, dk) = (
            src_bucket.to_string(),
            src_key.to_string(),
            dst_bucket.to_string(),
            dst_key.to_string(),
        );
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_buckets(txn, &[&sb, &db])?;
                let Some(mut meta) = current_object(txn, &src)? else {
                    return Err(Error::NoSuchKey {
                        bucket: sb,
                        key: sk,
                    });
                };
                if src == dst {
                    meta.key = dk;
                    return Ok(meta);
                }
                if let Some(old) = current_object(txn, &dst)? {
                    release_manifest(txn, &old.data_id)?;
                }
                txn.delete(Table::Objects, &src)?;
                txn.put(Table::Objects, &dst, &meta.encode()?)?;
                meta.key = dk;
                Ok(meta)
            })
            .await
    }

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
        self.update_object_attrs_with(bucket, key, move |attrs, last_modified_ns| {
            let mut p = attrs.posix.unwrap_or_else(|| {
                crate::posix::PosixAttrs::default_for(&default_key, last_modified_ns)
            });
            p.apply(&change, now);
            attrs.posix = Some(p);
        })
        .await
    }

    /// Changes an object's attributes (tags, POSIX attributes, …) atomically, keeping its data,
    /// ETag and modification time.
    pub async fn update_object_attrs<F>(&self, bucket: &str, key: &str, f: F) -> Result<ObjectMeta>
    where
        F: FnOnce(&mut ObjectAttrs) + Send + 'static,
    {
        self.update_object_attrs_with(bucket, key, move |a, _| f(a))
            .await
    }

    /// [`Engine::update_object_attrs`], with the object's modification time given to `f`.
    async fn update_object_attrs_with<F>(&self, bucket: &str, key: &str, f: F) -> Result<ObjectMeta>
    where
        F: FnOnce(&mut ObjectAttrs, i64) + Send + 'static,
    {
        let okey = object_key(bucket, key);
        let (b, k) = (bucket.to_string(), key.to_string());
        self.inner
            .meta
            .committer()
            .run(move |txn| {
                crate::meta::require_bucket(txn, &b)?;
                let Some(mut meta) = current_object(txn, &okey)? else {
                    return Err(Error::NoSuchKey { bucket: b, key: k });
                };
                f(&mut meta.attrs, meta.last_modified_ns);
                txn.put(Table::Objects, &okey, &meta.encode()?)?;
                meta.key = k;
                Ok(meta)
            })
            .await
    }
}
