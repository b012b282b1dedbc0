//! Object versions: ids, the `versions` table, and the rules by which a write or a delete
//! changes an object's versions under a bucket's versioning state (see
//! `docs/versioning-plan.md` and `docs/semantics.md`).
//!
//! The `objects` table holds each key's latest version (or delete marker); the `versions`
//! table every other one, under `bucket \0 key \0 inverted sort id`, so that a prefix scan
//! yields one key's versions newest first. A key has entries in `versions` only while it has
//! one in `objects`.

use crate::error::{Error, Result};
use crate::kv::{Read, Table, Write};
use crate::meta::{now_ns, release_manifest, BucketRecord, ObjectMeta, Versioning};

/// Which version of an object an operation addresses.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionSel {
    /// The latest version (what a request without `versionId` means).
    #[default]
    Latest,
    /// The `null` version.
    Null,
    /// The version with this id (32 hex digits).
    Id(String),
}

impl VersionSel {
    /// Parses a `versionId` as a client sends it: `null` or an id this store made.
    pub fn parse(s: &str) -> Result<VersionSel> {
        if s == "null" {
            return Ok(VersionSel::Null);
        }
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Ok(VersionSel::Id(s.to_string()));
        }
        Err(Error::InvalidVersionId(s.chars().take(64).collect()))
    }

    /// [`VersionSel::parse`] of an optional `versionId`: absent means the latest.
    pub fn from_param(s: Option<&str>) -> Result<VersionSel> {
        s.map_or(Ok(VersionSel::Latest), VersionSel::parse)
    }

    /// Whether `m` is the version this names (never true for [`VersionSel::Latest`]).
    pub(crate) fn names(&self, m: &ObjectMeta) -> bool {
        match self {
            VersionSel::Latest => false,
            VersionSel::Null => !m.versioned,
            VersionSel::Id(id) => m.versioned && m.vid == *id,
        }
    }
}

/// The tags of `key`'s version `version_id` (the latest when `None`): `None` when there is no
/// such version, it is a delete marker, or the id is not one this store makes.
pub(crate) fn tags_of(
    txn: &dyn Read,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<std::collections::BTreeMap<String, String>>> {
    let Ok(sel) = VersionSel::from_param(version_id) else {
        return Ok(None);
    };
    let okey = crate::meta::object_key(bucket, key);
    match locate(txn, bucket, key, &okey, &sel) {
        Ok((_, m)) if !m.delete_marker => Ok(Some(m.attrs.tags)),
        Ok(_) | Err(Error::NoSuchKey { .. } | Error::NoSuchVersion { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The ACL of `key`'s version `version_id` (the latest when `None`), if it has one.
pub(crate) fn acl_of(
    txn: &dyn Read,
    bucket: &str,
    key: &str,
    version_id: Option<&str>,
) -> Result<Option<crate::meta::access::Acl>> {
    let Ok(sel) = VersionSel::from_param(version_id) else {
        return Ok(None);
    };
    let okey = crate::meta::object_key(bucket, key);
    match locate(txn, bucket, key, &okey, &sel) {
        Ok((_, m)) if !m.delete_marker => Ok(m.attrs.acl),
        Ok(_) | Err(Error::NoSuchKey { .. } | Error::NoSuchVersion { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The position of a version among its key's versions: 8 bytes of time (ns, big-endian) and 8
/// random bytes; a version without an id sorts by its modification time.
pub(crate) fn sort_id(m: &ObjectMeta) -> [u8; 16] {
    let mut id = [0u8; 16];
    if hex::decode_to_slice(&m.vid, &mut id).is_ok() {
        return id;
    }
    id[..8].copy_from_slice(&(m.last_modified_ns.max(0) as u64).to_be_bytes());
    id
}

/// A new version id that sorts after `after` (the version it supersedes) even when the clock
/// went back.
pub(crate) fn new_vid(after: Option<[u8; 16]>) -> String {
    let mut t = now_ns().max(0) as u64;
    if let Some(a) = after {
        let mut prev = [0u8; 8];
        prev.copy_from_slice(&a[..8]);
        t = t.max(u64::from_be_bytes(prev).saturating_add(1));
    }
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&t.to_be_bytes());
    id[8..].copy_from_slice(&rand::random::<[u8; 8]>());
    hex::encode(id)
}

/// The `versions` key of a version of the object `okey` (`bucket \0 key`).
pub(crate) fn version_key(okey: &[u8], sort: [u8; 16]) -> Vec<u8> {
    let mut k = Vec::with_capacity(okey.len() + 17);
    k.extend_from_slice(okey);
    k.push(0);
    k.extend(sort.iter().map(|b| !b));
    k
}

/// The prefix of every `versions` key of the object `okey`.
pub(crate) fn versions_prefix(okey: &[u8]) -> Vec<u8> {
    let mut k = okey.to_vec();
    k.push(0);
    k
}

/// The bucket's record (`NoSuchBucket` when there is none).
pub(crate) fn bucket_record(txn: &dyn Read, bucket: &str) -> Result<BucketRecord> {
    let v = txn
        .get(Table::Buckets, bucket.as_bytes())?
        .ok_or_else(|| Error::NoSuchBucket(bucket.to_string()))?;
    Ok(rmp_serde::from_slice(&v)?)
}

/// Keeps `old`, the version being superseded, as a non-current version.
fn archive(txn: &mut dyn Write, okey: &[u8], old: &ObjectMeta) -> Result<()> {
    txn.put(
        Table::Versions,
        &version_key(okey, sort_id(old)),
        &old.encode()?,
    )
}

/// Removes the non-current `null` version of `okey`, if there is one, and frees its data.
fn drop_noncurrent_null(txn: &mut dyn Write, okey: &[u8]) -> Result<()> {
    if let Some((k, m)) = find_noncurrent(txn, okey, &VersionSel::Null)? {
        txn.delete(Table::Versions, &k)?;
        release_manifest(txn, &m.data_id)?;
    }
    Ok(())
}

/// Makes `new` the latest version of `okey` in a bucket in state `state`, in place of `old`:
/// gives `new` its version id, and keeps `old` as a non-current version or frees it, as S3's
/// rules say (enabled: every version stays; suspended or never versioned: the `null` version
/// is replaced). `new`'s own record is not written here.
pub(crate) fn supersede(
    txn: &mut dyn Write,
    state: Option<Versioning>,
    okey: &[u8],
    new: &mut ObjectMeta,
    old: Option<ObjectMeta>,
) -> Result<()> {
    let Some(state) = state else {
        if let Some(old) = old {
            release_manifest(txn, &old.data_id)?;
        }
        return Ok(());
    };
    new.vid = new_vid(old.as_ref().map(sort_id));
    new.versioned = state == Versioning::Enabled;
    let Some(old) = old else {
        return Ok(());
    };
    if old.versioned || new.versioned {
        if !new.versioned {
            drop_noncurrent_null(txn, okey)?;
        }
        archive(txn, okey, &old)
    } else {
        release_manifest(txn, &old.data_id)
    }
}

/// What kind of write an [`install`] is: the event it reports, and the store's compression (an
/// inline object goes by its bucket's setting, or by this one).
pub(crate) struct Installing {
    /// The event subscribers get.
    pub event: crate::events::EventName,
    /// The store's default compression.
    pub default_compression: crate::compression::Compression,
}

/// Makes `meta` (whose data is `manifest`) the latest version of the object under `okey` in
/// `bucket`, in place of `old` ([`supersede`]): the last step of every commit that writes an
/// object. `meta` gets its version id here. An inline object is compressed as the bucket asks
/// (or, without a setting of its own, as `default_compression` does).
pub(crate) fn install(
    txn: &mut dyn Write,
    bucket: &str,
    okey: &[u8],
    meta: &mut ObjectMeta,
    manifest: &crate::meta::Manifest,
    old: Option<ObjectMeta>,
    how: Installing,
) -> Result<()> {
    let Installing {
        event,
        default_compression,
    } = how;
    let rec = bucket_record(txn, bucket)?;
    let state = rec.versioning;
    super::retention::apply_on_write(rec.object_lock.as_ref(), meta)?;
    let compression = rec.compression.unwrap_or(default_compression);
    txn.put(
        Table::Manifests,
        meta.data_id.as_bytes(),
        &manifest.encode_compressed(compression),
    )?;
    supersede(txn, state, okey, meta, old)?;
    txn.put(Table::Objects, okey, &meta.encode()?)?;
    crate::events::emit(txn, &rec, bucket, key_of(okey), event, Some(meta), None)
}

/// The object key of `bucket \0 key`.
pub(crate) fn key_of(okey: &[u8]) -> &str {
    let at = okey
        .iter()
        .position(|b| *b == 0)
        .map_or(okey.len(), |i| i + 1);
    std::str::from_utf8(&okey[at..]).unwrap_or("")
}

/// Records the event of a delete (`lifecycle`: made by a lifecycle rule) that `out` describes.
pub(crate) fn emit_delete(
    txn: &mut dyn Write,
    bucket: &str,
    okey: &[u8],
    out: &DeleteOutcome,
    lifecycle: bool,
) -> Result<()> {
    use crate::events::EventName as E;
    if !out.existed && !out.delete_marker {
        return Ok(());
    }
    let rec = bucket_record(txn, bucket)?;
    let name = match (out.delete_marker && out.version_id.is_some(), lifecycle) {
        (true, false) => E::DeleteMarkerCreated,
        (false, false) => E::Delete,
        (true, true) => E::LifecycleDeleteMarkerCreated,
        (false, true) => E::LifecycleDelete,
    };
    crate::events::emit(
        txn,
        &rec,
        bucket,
        key_of(okey),
        name,
        None,
        out.version_id.as_deref(),
    )
}

/// After the latest version of `okey` was removed: makes the newest non-current version the
/// latest, or leaves the key without versions.
pub(crate) fn promote_newest(txn: &mut dyn Write, okey: &[u8]) -> Result<()> {
    let first = txn
        .prefix(Table::Versions, &versions_prefix(okey))?
        .next()
        .transpose()?
        .map(|(k, v)| (k.to_vec(), v.to_vec()));
    if let Some((k, v)) = first {
        txn.delete(Table::Versions, &k)?;
        txn.put(Table::Objects, okey, &v)?;
    }
    Ok(())
}

/// The non-current version `sel` names, with its `versions` key.
pub(crate) fn find_noncurrent(
    txn: &dyn Read,
    okey: &[u8],
    sel: &VersionSel,
) -> Result<Option<(Vec<u8>, ObjectMeta)>> {
    match sel {
        VersionSel::Latest => Ok(None),
        VersionSel::Id(id) => {
            let mut sort = [0u8; 16];
            if hex::decode_to_slice(id, &mut sort).is_err() {
                return Ok(None);
            }
            let k = version_key(okey, sort);
            match txn.get(Table::Versions, &k)? {
                Some(v) => {
                    let m = ObjectMeta::decode("", &v)?;
                    Ok(sel.names(&m).then_some((k, m)))
                }
                None => Ok(None),
            }
        }
        VersionSel::Null => {
            for r in txn.prefix(Table::Versions, &versions_prefix(okey))? {
                let (k, v) = r?;
                let m = ObjectMeta::decode("", &v)?;
                if !m.versioned {
                    return Ok(Some((k.to_vec(), m)));
                }
            }
            Ok(None)
        }
    }
}

/// Where a version is kept.
pub(crate) enum Place {
    /// It is the latest: in `objects`.
    Latest,
    /// A non-current version, under this `versions` key.
    Noncurrent(Vec<u8>),
}

/// The version of `bucket`/`key` that `sel` names and where it is, or the error S3 gives:
/// `NoSuchBucket`, `NoSuchKey` (no object, or its latest is a delete marker: then
/// [`Error::DeleteMarker`]), `NoSuchVersion`. Delete markers are returned as they are.
pub(crate) fn locate(
    txn: &dyn Read,
    bucket: &str,
    key: &str,
    okey: &[u8],
    sel: &VersionSel,
) -> Result<(Place, ObjectMeta)> {
    let found = match crate::meta::current_object(txn, okey)? {
        Some(m) if *sel == VersionSel::Latest || sel.names(&m) => Some((Place::Latest, m)),
        Some(_) => find_noncurrent(txn, okey, sel)?.map(|(k, m)| (Place::Noncurrent(k), m)),
        None => None,
    };
    match found {
        Some((place, mut m)) => {
            m.key = key.to_string();
            Ok((place, m))
        }
        None => {
            crate::meta::require_bucket(txn, bucket)?;
            match sel {
                VersionSel::Latest => Err(Error::NoSuchKey {
                    bucket: bucket.to_string(),
                    key: key.to_string(),
                }),
                _ => Err(Error::NoSuchVersion {
                    key: key.to_string(),
                }),
            }
        }
    }
}

/// [`locate`] for reading a version's data or attributes: a delete marker is an error
/// ([`Error::DeleteMarker`]: S3's 404 for the latest, 405 by id).
pub(crate) fn locate_readable(
    txn: &dyn Read,
    bucket: &str,
    key: &str,
    okey: &[u8],
    sel: &VersionSel,
) -> Result<(Place, ObjectMeta)> {
    let (place, m) = locate(txn, bucket, key, okey, sel)?;
    if m.delete_marker {
        return Err(Error::DeleteMarker {
            bucket: bucket.to_string(),
            key: key.to_string(),
            version_id: m.version_id().unwrap_or("null").to_string(),
            by_id: *sel != VersionSel::Latest,
            last_modified_ns: m.last_modified_ns,
        });
    }
    Ok((place, m))
}

/// Rewrites a version's record where it is kept.
pub(crate) fn rewrite(
    txn: &mut dyn Write,
    okey: &[u8],
    place: &Place,
    m: &ObjectMeta,
) -> Result<()> {
    match place {
        Place::Latest => txn.put(Table::Objects, okey, &m.encode()?),
        Place::Noncurrent(k) => txn.put(Table::Versions, k, &m.encode()?),
    }
}

/// What a delete did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeleteOutcome {
    /// Whether a live object (or the named version) was there to delete.
    pub existed: bool,
    /// The version id of the delete marker made, or of the version removed (`None`: a bucket
    /// that never had versioning, or nothing removed).
    pub version_id: Option<String>,
    /// Whether a delete marker was made, or the version removed was one.
    pub delete_marker: bool,
}

/// Deletes the latest version of `okey` in a bucket in state `state`: removes it (never
/// versioned) or puts a delete marker on top (enabled: the old version stays; suspended: the
/// marker is the `null` version).
pub(crate) fn delete_latest(
    txn: &mut dyn Write,
    state: Option<Versioning>,
    okey: &[u8],
) -> Result<DeleteOutcome> {
    let old = crate::meta::current_object(txn, okey)?;
    let existed = old.as_ref().is_some_and(|m| !m.delete_marker);
    if state.is_none() {
        if let Some(old) = old {
            txn.delete(Table::Objects, okey)?;
            release_manifest(txn, &old.data_id)?;
        }
        return Ok(DeleteOutcome {
            existed,
            ..Default::default()
        });
    }
    let mut marker = ObjectMeta {
        last_modified_ns: now_ns(),
        delete_marker: true,
        ..Default::default()
    };
    supersede(txn, state, okey, &mut marker, old)?;
    txn.put(Table::Objects, okey, &marker.encode()?)?;
    Ok(DeleteOutcome {
        existed,
        version_id: marker.version_id().map(str::to_string),
        delete_marker: true,
    })
}

/// Deletes the version `sel` names for good (a version or a delete marker); when it was the
/// latest, the newest remaining one becomes the latest. Nothing there: nothing done. A version
/// under object lock is refused ([`Error::ObjectLocked`]; `bypass`: GOVERNANCE bypassed).
pub(crate) fn delete_version(
    txn: &mut dyn Write,
    okey: &[u8],
    sel: &VersionSel,
    bypass: bool,
) -> Result<DeleteOutcome> {
    let latest = crate::meta::current_object(txn, okey)?;
    let (place, m) = match latest {
        Some(m) if sel.names(&m) => (Place::Latest, m),
        Some(_) => match find_noncurrent(txn, okey, sel)? {
            Some((k, m)) => (Place::Noncurrent(k), m),
            None => return Ok(DeleteOutcome::default()),
        },
        None => return Ok(DeleteOutcome::default()),
    };
    super::retention::check_deletable(&m, bypass)?;
    match place {
        Place::Latest => {
            txn.delete(Table::Objects, okey)?;
            promote_newest(txn, okey)?;
        }
        Place::Noncurrent(k) => {
            txn.delete(Table::Versions, &k)?;
        }
    }
    release_manifest(txn, &m.data_id)?;
    Ok(DeleteOutcome {
        existed: true,
        version_id: Some(m.version_id().unwrap_or("null").to_string()),
        delete_marker: m.delete_marker,
    })
}
