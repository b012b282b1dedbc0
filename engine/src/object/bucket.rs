//! Buckets: create, delete, list, head, tags.

use std::collections::BTreeMap;

use crate::compression::Compression;
use crate::error::{Error, Result};
use crate::kv::{Read, Table};
use crate::meta::{now_ns, object_key, BucketRecord, Versioning};
use crate::names::validate_bucket_name;

use super::Engine;

/// A bucket: its name, creation time and tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Creation time, ns since the epoch.
    pub created_ns: i64,
    /// Tags (empty: none).
    pub tags: BTreeMap<String, String>,
    /// Versioning (`None`: never turned on).
    pub versioning: Option<Versioning>,
    /// The key that owns it (`None`: the administrators).
    pub owner: Option<String>,
    /// Its own compression setting (`None`: the store's default).
    pub compression: Option<Compression>,
}

impl BucketInfo {
    fn decode(name: &[u8], record: &[u8]) -> Result<BucketInfo> {
        let rec: BucketRecord = rmp_serde::from_slice(record)?;
        Ok(BucketInfo {
            name: String::from_utf8_lossy(name).into_owned(),
            created_ns: rec.created_ns,
            tags: rec.tags,
            versioning: rec.versioning,
            owner: rec.owner,
            compression: rec.compression,
        })
    }
}

impl Engine {
    /// Creates a bucket owned by the administrators.
    pub async fn create_bucket(&self, name: &str) -> Result<()> {
        self.create_bucket_as(name, None, false).await
    }

    /// Creates a bucket owned by key `owner` (`None`: the administrators), with object lock
    /// (and versioning) enabled or not. An existing bucket is `BucketAlreadyExists` for its
    /// owner (and the administrators), `BucketTaken` for anyone else. Whether the caller may
    /// create buckets at all is the access layer's question (`Engine::authorize`), asked
    /// before.
    pub async fn create_bucket_as(
        &self,
        name: &str,
        owner: Option<&str>,
        object_lock: bool,
    ) -> Result<()> {
        validate_bucket_name(name)?;
        let name = name.to_string();
        let admin = owner.is_none();
        let owner = owner.map(str::to_string);
        self.commit(move |txn| {
            if let Some(v) = txn.get(Table::Buckets, name.as_bytes())? {
                let rec: BucketRecord = rmp_serde::from_slice(&v)?;
                if admin || rec.owner == owner {
                    return Err(Error::BucketAlreadyExists(name.clone()));
                }
                return Err(Error::BucketTaken(name.clone()));
            }
            let rec = rmp_serde::to_vec_named(&BucketRecord {
                created_ns: now_ns(),
                versioning: object_lock.then_some(Versioning::Enabled),
                object_lock: object_lock.then(crate::meta::LockConfig::default),
                owner: owner.clone(),
                ..Default::default()
            })?;
            txn.put(Table::Buckets, name.as_bytes(), &rec)?;
            Ok(())
        })
        .await
    }

    /// Deletes an empty bucket (`BucketNotEmpty` otherwise); aborts its unfinished uploads.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        let name = name.to_string();
        self.commit(move |txn| {
            crate::meta::require_bucket(txn, &name)?;
            let prefix = object_key(&name, "");
            if txn.prefix(Table::Objects, &prefix)?.next().is_some() {
                return Err(Error::BucketNotEmpty(name.clone()));
            }
            let uploads: Vec<Vec<u8>> = txn
                .prefix(Table::Uploads, &prefix)?
                .map(|r| r.map(|(k, _)| k.to_vec()))
                .collect::<Result<_, _>>()?;
            for uk in uploads {
                let upload_id =
                    String::from_utf8_lossy(uk.rsplit(|b| *b == 0).next().unwrap_or_default())
                        .into_owned();
                crate::object::multipart::drop_upload(txn, &uk, &upload_id)?;
            }
            txn.delete(Table::Buckets, name.as_bytes())?;
            txn.delete(Table::Policies, name.as_bytes())?;
            Ok(())
        })
        .await
    }

    /// Lists all buckets in name order.
    pub fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let txn = self.read()?;
        let mut out = Vec::new();
        for r in txn.all(Table::Buckets)? {
            let (name, v) = r?;
            out.push(BucketInfo::decode(&name, &v)?);
        }
        Ok(out)
    }

    /// A bucket's info, or `NoSuchBucket`.
    pub fn head_bucket(&self, name: &str) -> Result<BucketInfo> {
        let txn = self.read_settings()?;
        let v = txn
            .get(Table::Buckets, name.as_bytes())?
            .ok_or_else(|| Error::NoSuchBucket(name.to_string()))?;
        BucketInfo::decode(name.as_bytes(), &v)
    }

    /// Replaces a bucket's tags (empty: removes them).
    pub async fn set_bucket_tags(&self, name: &str, tags: BTreeMap<String, String>) -> Result<()> {
        self.update_bucket(name, move |rec, _| {
            rec.tags = tags.clone();
            Ok(())
        })
        .await
    }

    /// Turns versioning on (`Enabled`) or pauses it (`Suspended`). A bucket that has had
    /// versioning never returns to unversioned, as in S3.
    pub async fn set_bucket_versioning(&self, name: &str, state: Versioning) -> Result<()> {
        self.update_bucket(name, move |rec, _| {
            if rec.object_lock.is_some() && state != Versioning::Enabled {
                return Err(Error::InvalidBucketState(
                    "versioning cannot be suspended on a bucket with object lock",
                ));
            }
            rec.versioning = Some(state);
            Ok(())
        })
        .await
    }

    /// Sets the compression of data written to the bucket from now on (`None`: follow the
    /// store's default). Data already stored keeps its form.
    pub async fn set_bucket_compression(
        &self,
        name: &str,
        compression: Option<Compression>,
    ) -> Result<()> {
        self.update_bucket(name, move |rec, _| {
            rec.compression = compression;
            Ok(())
        })
        .await
    }

    /// Replaces the bucket's event notification rules (`None`: none), checked first.
    pub async fn set_bucket_notifications(
        &self,
        name: &str,
        cfg: Option<crate::events::NotificationConfig>,
    ) -> Result<()> {
        if let Some(c) = &cfg {
            c.validate()?;
        }
        let cfg = cfg.filter(|c| !c.rules.is_empty());
        self.update_bucket(name, move |rec, _| {
            rec.notifications = cfg.clone();
            Ok(())
        })
        .await
    }

    /// The bucket's event notification rules (empty: none).
    pub fn bucket_notifications(&self, name: &str) -> Result<crate::events::NotificationConfig> {
        let txn = self.read()?;
        Ok(super::version::bucket_record(&txn, name)?
            .notifications
            .unwrap_or_default())
    }

    /// The compression new data in bucket `name` gets: its own setting or the store's.
    pub fn compression_of(&self, name: &str) -> Result<Compression> {
        Ok(self
            .head_bucket(name)?
            .compression
            .unwrap_or(self.inner.cfg.compression))
    }

    /// Applies `change` to a bucket's record (and, through the transaction it is given, to
    /// what goes with it) in one commit; an error from `change` changes nothing.
    pub(crate) async fn update_bucket<F>(&self, name: &str, change: F) -> Result<()>
    where
        F: FnMut(&mut BucketRecord, &mut dyn crate::kv::Write) -> Result<()> + Send + 'static,
    {
        let name = name.to_string();
        let mut change = change;
        self.commit(move |txn| {
            let mut rec = super::version::bucket_record(txn, &name)?;
            change(&mut rec, txn)?;
            txn.put(
                Table::Buckets,
                name.as_bytes(),
                &rmp_serde::to_vec_named(&rec)?,
            )?;
            Ok(())
        })
        .await
    }
}
