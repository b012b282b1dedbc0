//! Multipart uploads: parts are stored as chunks as they arrive; completion writes no data, the
//! object's manifest is the parts' chunks in order.

use md5::{Digest, Md5};
use tokio::io::AsyncRead;

use super::write::{LateChecksums, PutOptions};
use super::Engine;
use crate::chunk::write::read_up_to;
use crate::error::{Error, Result};
use crate::kv::{Read, Table, Write};
use crate::meta::{
    current_object, new_id, now_ns, object_key, part_key, release_manifest, upload_key, Manifest,
    ObjectAttrs, ObjectMeta, PartRecord, UploadRecord,
};
use crate::names::validate_key;

/// Smallest size of every part but the last.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// A stored part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// Part number.
    pub part_number: u32,
    /// MD5 hex of the part.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// Upload time, ns since the epoch.
    pub last_modified_ns: i64,
    /// Checksums sent with the part.
    pub checksums: std::collections::BTreeMap<String, String>,
}

/// An upload in progress.
#[derive(Debug, Clone)]
pub struct UploadInfo {
    /// Object key.
    pub key: String,
    /// Upload id.
    pub upload_id: String,
    /// Creation time, ns since the epoch.
    pub initiated_ns: i64,
    /// Attributes the object will get.
    pub attrs: ObjectAttrs,
}

/// One page of [`Engine::list_parts`].
#[derive(Debug, Clone, Default)]
pub struct PartsPage {
    /// Parts in number order.
    pub parts: Vec<PartInfo>,
    /// Whether more follow.
    pub is_truncated: bool,
    /// Number to continue after.
    pub next_marker: Option<u32>,
}

/// One page of [`Engine::list_multipart_uploads`].
#[derive(Debug, Clone, Default)]
pub struct UploadsPage {
    /// Uploads in key order.
    pub uploads: Vec<UploadInfo>,
    /// Whether more follow.
    pub is_truncated: bool,
}

/// Removes an upload and all its parts, dropping their chunk references.
pub(crate) fn drop_upload(txn: &mut dyn Write, ukey: &[u8], upload_id: &str) -> Result<()> {
    drop_upload_handing_over(txn, ukey, upload_id, &[])
}

/// [`drop_upload`], except that the parts whose manifests are `handed_over` (by data id) give
/// their chunk references to the object completed from them: their manifests go, their
/// references stay. A completion then touches no chunk record (each part's references become
/// the object's), so its transaction grows with the parts, not with the chunks.
fn drop_upload_handing_over(
    txn: &mut dyn Write,
    ukey: &[u8],
    upload_id: &str,
    handed_over: &[String],
) -> Result<()> {
    let parts: Vec<(Vec<u8>, PartRecord)> = txn
        .prefix(Table::Parts, upload_id.as_bytes())?
        .map(|r| {
            let (k, v) = r?;
            Ok((k.to_vec(), rmp_serde::from_slice(&v)?))
        })
        .collect::<Result<_>>()?;
    for (k, p) in parts {
        if handed_over.contains(&p.data_id) {
            txn.delete(Table::Manifests, p.data_id.as_bytes())?;
        } else {
            release_manifest(txn, &p.data_id)?;
        }
        txn.delete(Table::Parts, &k)?;
    }
    txn.delete(Table::Uploads, ukey)?;
    Ok(())
}

fn valid_upload_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

impl Engine {
    /// Starts a multipart upload; returns its id.
    pub async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        attrs: ObjectAttrs,
    ) -> Result<String> {
        validate_key(key)?;
        let id = new_id();
        let ukey = upload_key(bucket, key, &id);
        let bucket = bucket.to_string();
        let rec = rmp_serde::to_vec_named(&UploadRecord {
            attrs,
            initiated_ns: now_ns(),
        })?;
        self.commit(move |txn| {
            crate::meta::require_bucket(txn, &bucket)?;
            txn.put(Table::Uploads, &ukey, &rec)?;
            Ok(())
        })
        .await?;
        Ok(id)
    }

    fn require_upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<UploadRecord> {
        if !valid_upload_id(upload_id) {
            return Err(Error::NoSuchUpload(upload_id.to_string()));
        }
        let txn = self.read()?;
        match txn.get(Table::Uploads, &upload_key(bucket, key, upload_id))? {
            Some(v) => Ok(rmp_serde::from_slice(&v)?),
            None => {
                crate::meta::require_bucket(&txn, bucket)?;
                Err(Error::NoSuchUpload(upload_id.to_string()))
            }
        }
    }

    /// The attributes an upload in progress was created with (what its object will carry).
    pub fn upload_attrs(&self, bucket: &str, key: &str, upload_id: &str) -> Result<ObjectAttrs> {
        Ok(self.require_upload(bucket, key, upload_id)?.attrs)
    }

    /// Stores one part (replacing an earlier part with the same number), with the checksums
    /// the body reader verified (read once the body has been read to its end).
    pub async fn upload_part<R>(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        mut body: R,
        checksums: Option<LateChecksums>,
    ) -> Result<PartInfo>
    where
        R: AsyncRead + Unpin + Send,
    {
        if part_number == 0 || part_number > MAX_PART_NUMBER {
            return Err(Error::InvalidPartNumber(part_number));
        }
        self.require_upload(bucket, key, upload_id)?;
        let guard = self.inner.chunks.gc_lock.shared().await?;
        let first = read_up_to(&mut body, self.inner.cfg.chunk_size).await?;
        let stored = if first.is_empty() {
            crate::chunk::StoredStream {
                chunks: Vec::new(),
                size: 0,
                md5: Md5::digest([]).into(),
            }
        } else {
            let compression = self.compression_of(bucket)?;
            self.inner
                .chunks
                .store_stream(first, &mut body, compression)
                .await?
        };
        let checksums = checksums
            .and_then(|c| c.lock().ok().map(|c| c.clone()))
            .unwrap_or_default();
        let rec = PartRecord {
            etag: hex::encode(stored.md5),
            size: stored.size,
            last_modified_ns: now_ns(),
            checksums,
            data_id: new_id(),
        };
        let info = PartInfo {
            part_number,
            etag: rec.etag.clone(),
            size: rec.size,
            last_modified_ns: rec.last_modified_ns,
            checksums: rec.checksums.clone(),
        };
        let manifest = Manifest::Chunks {
            chunks: stored.chunks.iter().map(|c| c.r).collect(),
            part_sizes: Vec::new(),
        };
        let chunks = stored.chunks.clone();
        let ukey = upload_key(bucket, key, upload_id);
        let pkey = part_key(upload_id, part_number);
        let uid = upload_id.to_string();
        let res = self
            .commit(move |txn| {
                if txn.get(Table::Uploads, &ukey)?.is_none() {
                    return Err(Error::NoSuchUpload(uid.clone()));
                }
                let surplus = crate::chunk::reference(txn, &chunks)?;
                if let Some(old) = txn.get(Table::Parts, &pkey)? {
                    let old: PartRecord = rmp_serde::from_slice(&old)?;
                    release_manifest(txn, &old.data_id)?;
                }
                txn.put(Table::Manifests, rec.data_id.as_bytes(), &manifest.encode())?;
                txn.put(Table::Parts, &pkey, &rmp_serde::to_vec_named(&rec)?)?;
                Ok(surplus)
            })
            .await;
        let res = match res {
            Ok(surplus) => {
                self.inner.chunks.release_surplus(surplus).await;
                Ok(info)
            }
            Err(e) => {
                self.inner.chunks.abandon_chunks(&stored.chunks).await;
                Err(e)
            }
        };
        drop(guard);
        res
    }

    /// Lists the parts of an upload after part number `marker`.
    pub fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max_parts: usize,
    ) -> Result<PartsPage> {
        self.require_upload(bucket, key, upload_id)?;
        let txn = self.read()?;
        let mut page = PartsPage::default();
        for r in txn.prefix(Table::Parts, upload_id.as_bytes())? {
            let (k, v) = r?;
            let n = u32::from_be_bytes(
                k[upload_id.len()..]
                    .try_into()
                    .map_err(|_| Error::Decode("part key".into()))?,
            );
            if n <= marker {
                continue;
            }
            if page.parts.len() == max_parts {
                page.is_truncated = true;
                break;
            }
            let p: PartRecord = rmp_serde::from_slice(&v)?;
            page.parts.push(PartInfo {
                part_number: n,
                etag: p.etag,
                size: p.size,
                last_modified_ns: p.last_modified_ns,
                checksums: p.checksums,
            });
            page.next_marker = Some(n);
        }
        Ok(page)
    }

    /// Lists uploads in progress whose key starts with `prefix`, after (`key_marker`,
    /// `upload_id_marker`).
    pub fn list_multipart_uploads(
        &self,
        bucket: &str,
        prefix: &str,
        key_marker: Option<&str>,
        upload_id_marker: Option<&str>,
        max_uploads: usize,
    ) -> Result<UploadsPage> {
        let txn = self.read()?;
        crate::meta::require_bucket(&txn, bucket)?;
        let base = object_key(bucket, "");
        let mut page = UploadsPage::default();
        for r in txn.prefix(Table::Uploads, &object_key(bucket, prefix))? {
            let (k, v) = r?;
            let rest = &k[base.len()..];
            let Some(sep) = rest.iter().rposition(|b| *b == 0) else {
                continue;
            };
            let key = String::from_utf8_lossy(&rest[..sep]).into_owned();
            let id = String::from_utf8_lossy(&rest[sep + 1..]).into_owned();
            if let Some(km) = key_marker {
                let after = match upload_id_marker {
                    Some(um) => (key.as_str(), id.as_str()) > (km, um),
                    None => key.as_str() > km,
                };
                if !after {
                    continue;
                }
            }
            if page.uploads.len() == max_uploads {
                page.is_truncated = true;
                break;
            }
            let rec: UploadRecord = rmp_serde::from_slice(&v)?;
            page.uploads.push(UploadInfo {
                key,
                upload_id: id,
                initiated_ns: rec.initiated_ns,
                attrs: rec.attrs,
            });
        }
        Ok(page)
    }

    /// Completes an upload from the listed `(part number, ETag)` pairs. No data is copied.
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        match self
            .complete_upload(bucket, key, upload_id, parts, opts)
            .await
        {
            // A retried completion (the client missed the answer) gets the same answer, as
            // long as the object is still the one that upload made.
            Err(Error::NoSuchUpload(id)) => match self.head_object(bucket, key) {
                Ok(m) if m.upload_id.as_deref() == Some(upload_id) => Ok(m),
                _ => Err(Error::NoSuchUpload(id)),
            },
            r => r,
        }
    }

    async fn complete_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        parts: Vec<(u32, String)>,
        opts: PutOptions,
    ) -> Result<ObjectMeta> {
        self.require_upload(bucket, key, upload_id)?;
        if parts.is_empty() {
            return Err(Error::InvalidPart("at least one part must be given".into()));
        }
        let ukey = upload_key(bucket, key, upload_id);
        let okey = object_key(bucket, key);
        let uid = upload_id.to_string();
        let key = key.to_string();
        let bucket_name = bucket.to_string();
        self.commit(move |txn| {
            let Some(u) = txn.get(Table::Uploads, &ukey)? else {
                return Err(Error::NoSuchUpload(uid.clone()));
            };
            let upload: UploadRecord = rmp_serde::from_slice(&u)?;
            let mut prev = 0u32;
            let mut chunks = Vec::new();
            let mut part_sizes = Vec::new();
            let mut md5s = Md5::new();
            let n = parts.len();
            for (num, _) in &parts {
                if *num <= prev {
                    return Err(Error::InvalidPartOrder);
                }
                prev = *num;
            }
            let mut records = Vec::with_capacity(n);
            for (num, etag) in &parts {
                let Some(pb) = txn.get(Table::Parts, &part_key(&uid, *num))? else {
                    return Err(Error::InvalidPart(format!("part {num} was not uploaded")));
                };
                let p: PartRecord = rmp_serde::from_slice(&pb)?;
                if etag.trim().trim_matches('"') != p.etag {
                    return Err(Error::InvalidPart(format!(
                        "part {num}: ETag {etag} does not match {}",
                        p.etag
                    )));
                }
                records.push((*num, p));
            }
            let min = opts.min_part_size.unwrap_or(MIN_PART_SIZE);
            for (i, (num, p)) in records.iter().enumerate() {
                if i + 1 < n && p.size < min {
                    return Err(Error::EntityTooSmall {
                        part: *num,
                        size: p.size,
                        min,
                    });
                }
            }
            for (_, p) in &records {
                let raw = hex::decode(&p.etag).map_err(|e| Error::Decode(e.to_string()))?;
                md5s.update(&raw);
                let mb = txn
                    .get(Table::Manifests, p.data_id.as_bytes())?
                    .ok_or_else(|| Error::Decode("part manifest missing".into()))?;
                chunks.extend_from_slice(Manifest::decode(&mb)?.chunks());
                part_sizes.push(p.size);
            }
            let old = current_object(txn, &okey)?;
            super::write::check_preconditions(
                old.as_ref(),
                opts.if_none_match.as_deref(),
                opts.if_match.as_deref(),
                &bucket_name,
                &key,
            )?;
            let size = part_sizes.iter().sum();
            let manifest = Manifest::Chunks { chunks, part_sizes };
            let mut attrs = upload.attrs.clone();
            if let Some(late) = opts.late_checksums.as_ref().and_then(|l| l.lock().ok()) {
                attrs.checksums.extend(late.clone());
            }
            let mut meta = ObjectMeta {
                key: key.clone(),
                size,
                etag: format!("{}-{n}", hex::encode(md5s.finalize())),
                last_modified_ns: now_ns(),
                parts_count: n as u32,
                attrs,
                data_id: new_id(),
                hole_bytes: manifest.hole_bytes(),
                upload_id: Some(uid.clone()),
                ..Default::default()
            };
            // The parts' references become the object's (drop_upload_handing_over).
            let handed_over: Vec<String> = records.iter().map(|(_, p)| p.data_id.clone()).collect();
            super::version::install(
                txn,
                &bucket_name,
                &okey,
                &mut meta,
                &manifest,
                old,
                super::version::Installing {
                    event: crate::events::EventName::CompleteMultipartUpload,
                    default_compression: crate::compression::Compression::Off,
                },
            )?;
            drop_upload_handing_over(txn, &ukey, &uid, &handed_over)?;
            Ok(meta)
        })
        .await
    }

    /// Aborts an upload and frees its parts.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        self.require_upload(bucket, key, upload_id)?;
        let ukey = upload_key(bucket, key, upload_id);
        let uid = upload_id.to_string();
        self.commit(move |txn| {
            if txn.get(Table::Uploads, &ukey)?.is_none() {
                return Err(Error::NoSuchUpload(uid.clone()));
            }
            drop_upload(txn, &ukey, &uid)
        })
        .await
    }
}
