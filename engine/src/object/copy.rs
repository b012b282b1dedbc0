//! Changes that touch only metadata: copy (the new object refers to the same chunks),
//! rename, and attribute updates.

use super::read::etag_matches;
use super::write::check_preconditions;
use crate::error::{Error, Result};
use crate::kv::{Read, Table};
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

/// The source and the target of a copy or a rename, as a transaction needs them.
struct SourceAndTarget {
    src: Vec<u8>,
    dst: Vec<u8>,
    src_bucket: String,
    src_key: String,
    dst_bucket: String,
    dst_key: String,
}

impl SourceAndTarget {
    fn new(src_bucket: &str, src_key: &str, dst_bucket: &str, dst_key: &str) -> Result<Self> {
        validate_key(dst_key)?;
        Ok(SourceAndTarget {
            src: object_key(src_bucket, src_key),
            dst: object_key(dst_bucket, dst_key),
            src_bucket: src_bucket.to_string(),
            src_key: src_key.to_string(),
            dst_bucket: dst_bucket.to_string(),
            dst_key: dst_key.to_string(),
        })
    }

    /// The source object (`NoSuchBucket` unless both buckets exist, `NoSuchKey`).
    fn source(&self, txn: &dyn Read) -> Result<ObjectMeta> {
        crate::meta::require_buckets(txn, &[&self.src_bucket, &self.dst_bucket])?;
        match txn.get(Table::Objects, &self.src)? {
            Some(b) => ObjectMeta::decode(&self.src_key, &b),
            None => Err(Error::NoSuchKey {
                bucket: self.src_bucket.clone(),
                key: self.src_key.clone(),
            }),
        }
    }
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
        let p = SourceAndTarget::new(src_bucket, src_key, dst_bucket, dst_key)?;
        self.commit(move |txn| {
            let smeta = p.source(txn)?;
            if let Some(want) = &opts.source_if_match {
                if !etag_matches(want, &smeta.etag) {
                    return Err(Error::PreconditionFailed("source ETag does not match"));
                }
            }
            let old = current_object(txn, &p.dst)?;
            let if_none_match = opts.if_none_match.then_some("*");
            check_preconditions(old.as_ref(), if_none_match, None, &p.dst_bucket, &p.dst_key)?;
            let manifest = crate::meta::read_manifest(txn, &smeta.data_id, &p.src_key)?;
            let meta = ObjectMeta {
                key: p.dst_key,
                size: smeta.size,
                etag: smeta.etag.clone(),
                last_modified_ns: now_ns(),
                parts_count: smeta.parts_count,
                attrs: opts.replace_attrs.unwrap_or(smeta.attrs),
                data_id: new_id(),
                hole_bytes: manifest.hole_bytes(),
                upload_id: None,
            };
            ref_manifest(txn, &manifest)?;
            crate::meta::install_object(txn, &p.dst, &meta, &manifest, old)?;
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
        let p = SourceAndTarget::new(src_bucket, src_key, dst_bucket, dst_key)?;
        self.commit(move |txn| {
            let mut meta = p.source(txn)?;
            if p.src != p.dst {
                if let Some(old) = current_object(txn, &p.dst)? {
                    release_manifest(txn, &old.data_id)?;
                }
                txn.delete(Table::Objects, &p.src)?;
                txn.put(Table::Objects, &p.dst, &meta.encode()?)?;
            }
            meta.key = p.dst_key;
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
        self.commit(move |txn| {
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
