//! Object lock operations: locked buckets, the default retention, a version's retention and
//! legal hold (the rules they follow: `retention.rs`).

use crate::error::{Error, Result};
use crate::kv::Write;
use crate::meta::{
    now_ns, object_key, DefaultRetention, LockConfig, LockMode, ObjectMeta, Retention, Versioning,
};

use super::version::{self, VersionSel};
use super::Engine;

impl Engine {
    /// Creates a bucket with object lock enabled (and so versioning, for good).
    pub async fn create_locked_bucket(&self, name: &str) -> Result<()> {
        self.create_bucket_as(name, None, true).await
    }

    /// A bucket's object lock configuration, or `None` when object lock is not enabled.
    pub fn object_lock(&self, bucket: &str) -> Result<Option<LockConfig>> {
        let txn = self.read()?;
        Ok(version::bucket_record(&txn, bucket)?.object_lock)
    }

    /// Enables object lock on a bucket (it must have versioning enabled) and sets its default
    /// retention (`None`: none).
    pub async fn set_object_lock(
        &self,
        bucket: &str,
        default_retention: Option<DefaultRetention>,
    ) -> Result<()> {
        if default_retention.is_some_and(|d| d.days == 0) {
            return Err(Error::InvalidRetentionPeriod);
        }
        self.update_bucket(bucket, move |rec, _| {
            if rec.object_lock.is_none() && rec.versioning != Some(Versioning::Enabled) {
                return Err(Error::InvalidBucketState(
                    "object lock needs versioning enabled on the bucket",
                ));
            }
            rec.object_lock = Some(LockConfig { default_retention });
            Ok(())
        })
        .await
    }

    /// Sets (or, `None`, removes) a version's retention. A retention in force can only be
    /// extended in its mode; a GOVERNANCE one may be shortened, removed or changed with
    /// `bypass`, a COMPLIANCE one never.
    pub async fn set_retention(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        retention: Option<Retention>,
        bypass: bool,
    ) -> Result<ObjectMeta> {
        self.change_lock(bucket, key, sel, move |m| {
            if let Some(old) = m.retention.filter(|r| r.until_ns > now_ns()) {
                // Extending in the same mode is always allowed; anything else (shorter,
                // removed, another mode) only for GOVERNANCE with the bypass.
                let extends = retention
                    .is_some_and(|new| new.mode == old.mode && new.until_ns >= old.until_ns);
                let bypassed = old.mode == LockMode::Governance && bypass;
                if !(extends || bypassed) {
                    return Err(Error::ObjectLocked {
                        key: m.key.clone(),
                        reason: "a retention can only be extended (GOVERNANCE: unless bypassed)",
                    });
                }
            }
            m.retention = retention;
            Ok(())
        })
        .await
    }

    /// Puts or lifts a version's legal hold.
    pub async fn set_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        on: bool,
    ) -> Result<ObjectMeta> {
        self.change_lock(bucket, key, sel, move |m| {
            m.legal_hold = on;
            Ok(())
        })
        .await
    }

    /// Applies `change` to the lock state of the version `sel` names, in a bucket with object
    /// lock.
    async fn change_lock<F>(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        change: F,
    ) -> Result<ObjectMeta>
    where
        F: FnMut(&mut ObjectMeta) -> Result<()> + Send + 'static,
    {
        let mut change = change;
        let okey = object_key(bucket, key);
        let (b, k) = (bucket.to_string(), key.to_string());
        self.commit(move |txn: &mut dyn Write| {
            if version::bucket_record(txn, &b)?.object_lock.is_none() {
                return Err(Error::LockNotEnabled);
            }
            let (place, mut m) = version::locate_readable(txn, &b, &k, &okey, &sel)?;
            change(&mut m)?;
            version::rewrite(txn, &okey, &place, &m)?;
            Ok(m)
        })
        .await
    }
}
