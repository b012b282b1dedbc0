//! Object lock's rules on versions (WORM): a write's retention and legal hold, and whether a
//! version may be deleted for good. The one rule everything obeys — a version under retention
//! or legal hold is never deleted for good: not over S3, not by lifecycle, not by GC (which
//! only frees what no version refers to). Delete markers may still be put on top, as in S3.
//! The operations that change a bucket's or a version's lock are in `object_lock.rs`;
//! `docs/semantics.md` states the contract.

use crate::error::{Error, Result};
use crate::meta::{now_ns, LockConfig, LockMode, ObjectMeta, Retention};

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
