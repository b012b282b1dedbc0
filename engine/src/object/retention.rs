//! Object lock (WORM): a bucket's lock configuration and default retention, each version's
//! retention and legal hold, and the one rule everything obeys — a version under retention or
//! legal hold is never deleted for good: not over S3, not by lifecycle, not by GC (which only
//! frees what no version refers to). Delete markers may still be put on top, as in S3.
//!
//! `docs/semantics.md` states the contract.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::{Table, Write};
use crate::meta::{now_ns, object_key, ObjectMeta, Versioning};

use super::version::{self, VersionSel};
use super::Engine;

/// A retention mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LockMode {
    /// May be shortened or removed by a request that asks to bypass it.
    Governance,
    /// Nobody may shorten or remove it before it ends; it can only be extended.
    Compliance,
}

/// A version's retention: its mode and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The mode.
    pub mode: LockMode,
    /// Retained until this time (ns since the epoch).
    pub until_ns: i64,
}

/// A bucket's default retention for new versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefaultRetention {
    /// The mode.
    pub mode: LockMode,
    /// Days (a year counts 365).
    pub days: u32,
}

/// A bucket's object lock configuration (present once object lock is enabled, which is for
/// good).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockConfig {
    /// Retention given to new versions that ask for none.
    #[serde(default)]
    pub default_retention: Option<DefaultRetention>,
}

/// What a write asks for a new version (object lock headers).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockRequest {
    /// Retention for the version (none: the bucket's default, if any).
    #[serde(default)]
    pub retention: Option<Retention>,
    /// Legal hold on the version.
    #[serde(default)]
    pub legal_hold: bool,
}

impl ObjectMeta {
    /// Why this version may not be deleted for good now (`bypass`: a GOVERNANCE retention is
    /// bypassed), or `None`.
    pub fn lock_reason(&self, now: i64, bypass: bool) -> Option<&'static str> {
        if self.legal_hold {
            return Some("the version is under legal hold");
        }
        match self.retention {
            Some(r) if r.until_ns > now => match (r.mode, bypass) {
                (LockMode::Compliance, _) => Some("the version is under COMPLIANCE retention"),
                (LockMode::Governance, false) => Some("the version is under GOVERNANCE retention"),
                (LockMode::Governance, true) => None,
            },
            _ => None,
        }
    }
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// Gives a new version (`meta`, with its request in `meta.attrs.lock`) its retention and legal
/// hold: what it asked for, else the bucket's default. Asking for either in a bucket without
/// object lock is refused.
pub(crate) fn apply_on_write(lock: Option<&LockConfig>, meta: &mut ObjectMeta) -> Result<()> {
    let req = meta.attrs.lock.take().unwrap_or_default();
    let Some(lock) = lock else {
        if req.retention.is_some() || req.legal_hold {
            return Err(Error::LockNotEnabled);
        }
        return Ok(());
    };
    meta.legal_hold = req.legal_hold;
    meta.retention = req.retention.or_else(|| {
        lock.default_retention.map(|d| Retention {
            mode: d.mode,
            until_ns: meta
                .last_modified_ns
                .saturating_add((d.days as i64).saturating_mul(DAY_NS)),
        })
    });
    Ok(())
}

/// Fails with [`Error::ObjectLocked`] if `m` may not be deleted for good.
pub(crate) fn check_deletable(m: &ObjectMeta, bypass: bool) -> Result<()> {
    match m.lock_reason(now_ns(), bypass) {
        Some(reason) => Err(Error::ObjectLocked {
            key: m.key.clone(),
            reason,
        }),
        None => Ok(()),
    }
}

impl Engine {
    /// Creates a bucket with object lock enabled (and so versioning, for good).
    pub async fn create_locked_bucket(&self, name: &str) -> Result<()> {
        self.create_bucket_with(name, true).await
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
            return Err(Error::InvalidLifecycle {
                reason: "the default retention period must be a positive number of days or years"
                    .into(),
                malformed: false,
            });
        }
        let name = bucket.to_string();
        self.commit(move |txn| {
            let mut rec = version::bucket_record(txn, &name)?;
            if rec.object_lock.is_none() && rec.versioning != Some(Versioning::Enabled) {
                return Err(Error::InvalidBucketState(
                    "object lock needs versioning enabled on the bucket",
                ));
            }
            rec.object_lock = Some(LockConfig { default_retention });
            txn.put(
                Table::Buckets,
                name.as_bytes(),
                &rmp_serde::to_vec_named(&rec)?,
            )
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
        F: FnOnce(&mut ObjectMeta) -> Result<()> + Send + 'static,
    {
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
