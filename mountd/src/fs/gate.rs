//! What the mount's key may do (`mountd --access-key`): every call that lists, reads or
//! changes asks here first, and the engine's access layer decides as it does for S3. Without
//! a key the mount acts as an administrator (it runs on the store's own machine, by a user who
//! can read the data directory anyway).
//!
//! - Buckets the key may not use are not shown at the top and do not resolve (`ENOENT`).
//! - Listing a directory is `s3:ListBucket` with the directory as the prefix.
//! - Looking up a name needs that listing, or a read or a write of the entry itself (a key
//!   that may only write under `device-7/` can still create files there).
//! - Reading is `s3:GetObject`; creating, writing, `chmod`/`utimens`, xattrs and links are
//!   `s3:PutObject`; `unlink`/`rmdir` are `s3:DeleteObject`; a rename is all three;
//!   `mkdir`/`rmdir` at the top are `s3:CreateBucket` / `s3:DeleteBucket`.
//!
//! Refusals are `EACCES`.

use engine::access::{AccessRequest, Action, Listing, Origin};
use engine::Principal;

use super::*;

/// The mount's principal: `None` for an administrator's mount.
#[derive(Debug, Clone, Default)]
pub struct Gate(pub Option<Principal>);

/// A mount on this machine: no network address, nothing in clear on a wire.
const LOCAL: Origin = Origin {
    secure_transport: true,
    source_ip: None,
};

impl PredaFs {
    /// `Ok` if the mount's key may `action` on the object at `path` (`bucket/key`), or on the
    /// bucket at `path` for bucket actions; `EACCES` otherwise.
    pub(crate) fn allow(&self, action: Action, path: &str) -> Result<(), Errno> {
        let Some(who) = &self.gate.0 else {
            return Ok(());
        };
        let (b, k) = split(path);
        let key = (!k.is_empty()).then_some(k);
        self.decide(who, AccessRequest::new(action, b, key))
    }

    /// As [`PredaFs::allow`], for an entry that may be a file (`key`) or a directory (its
    /// marker `key/`): either passing is enough.
    pub(crate) fn allow_entry(&self, action: Action, path: &str) -> Result<(), Errno> {
        self.allow(action, path)
            .or_else(|_| self.allow(action, &format!("{path}/")))
    }

    /// `Ok` if the mount's key may list the directory at `path` (a bucket or a directory in
    /// it).
    pub(crate) fn allow_listing(&self, path: &str) -> Result<(), Errno> {
        let Some(who) = &self.gate.0 else {
            return Ok(());
        };
        let (b, k) = split(path);
        let prefix = if k.is_empty() {
            String::new()
        } else {
            format!("{k}/")
        };
        let mut req = AccessRequest::new(Action::ListBucket, b, None);
        req.listing = Some(Listing {
            prefix: &prefix,
            delimiter: Some("/"),
            max_keys: None,
        });
        self.decide(who, req)
    }

    /// `Ok` if the entry at `path` may be looked up: the bucket is one the key may use (at the
    /// top), or the key may list its directory, or read or write the entry itself.
    pub(crate) fn allow_lookup(&self, path: &str) -> Result<(), Errno> {
        if self.gate.0.is_none() {
            return Ok(());
        }
        let (b, k) = split(path);
        if k.is_empty() {
            return match self.visible_bucket(b)? {
                true => Ok(()),
                false => Err(Errno::ENOENT),
            };
        }
        let parent = path.rsplit_once('/').map(|(p, _)| p).unwrap_or_default();
        let dir = format!("{path}/");
        let ok = self.allow_listing(parent).is_ok()
            || [Action::GetObject, Action::PutObject]
                .iter()
                .any(|a| self.allow(*a, path).is_ok() || self.allow(*a, &dir).is_ok());
        if ok {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// Whether the key may use bucket `b` (it is in its ListBuckets).
    pub(crate) fn visible_bucket(&self, b: &str) -> Result<bool, Errno> {
        let Some(who) = &self.gate.0 else {
            return Ok(true);
        };
        let mine = self.engine.list_buckets_for(who).map_err(|e| errno(&e))?;
        Ok(mine.iter().any(|x| x.name == b))
    }

    /// The buckets the top level shows.
    pub(crate) fn visible_buckets(&self) -> Result<Vec<engine::BucketInfo>, Errno> {
        let who = self.gate.0.clone().unwrap_or(Principal::Admin);
        self.engine.list_buckets_for(&who).map_err(|e| errno(&e))
    }

    fn decide(&self, who: &Principal, req: AccessRequest<'_>) -> Result<(), Errno> {
        match self.engine.authorize(who, LOCAL, req) {
            Ok(()) => Ok(()),
            Err(engine::Error::AccessDenied(why)) => {
                tracing::debug!("refused: {why}");
                Err(Errno::EACCES)
            }
            Err(e) => Err(errno(&e)),
        }
    }
}
