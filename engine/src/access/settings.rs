//! The engine's operations on a bucket's access settings beyond its policy: its ACL and its
//! objects' ACLs, PublicAccessBlock and OwnershipControls (the rules: [`super::acl`]).

use crate::error::{Error, Result};
use crate::meta::BucketRecord;
use crate::object::version::{self, VersionSel};
use crate::object::Engine;

use crate::kv::Read;

use super::acl::{Acl, Grantee, PublicAccessBlock, OWNERSHIP};

/// Whether the bucket's ownership setting disables ACLs (S3's `BucketOwnerEnforced`).
pub(crate) fn acls_disabled(rec: &BucketRecord) -> bool {
    rec.ownership.as_deref() == Some("BucketOwnerEnforced")
}

/// Whether `acl` may be set in the bucket of `rec`: `AclNotSupported` where ACLs are disabled,
/// `AccessDenied` for a public ACL under BlockPublicAcls, `InvalidGrantee` for a key that does
/// not exist.
fn check_acl(txn: &dyn Read, rec: &BucketRecord, acl: &Acl) -> Result<()> {
    if acl.grants.is_empty() {
        return Ok(());
    }
    if acls_disabled(rec) {
        return Err(Error::AclNotSupported);
    }
    for g in &acl.grants {
        if let Grantee::Key(id) = &g.grantee {
            if super::keys::key_record(txn, id)?.is_none() {
                return Err(Error::InvalidGrantee(id.clone()));
            }
        }
    }
    if acl.is_public() && rec.public_access_block.is_some_and(|p| p.block_public_acls) {
        return Err(Error::AccessDenied(
            "public ACLs are blocked by the bucket's PublicAccessBlock (BlockPublicAcls)".into(),
        ));
    }
    Ok(())
}

impl Engine {
    /// A bucket's owner (`None`: the administrators) and ACL.
    pub fn bucket_acl(&self, bucket: &str) -> Result<(Option<String>, Acl)> {
        let txn = self.read()?;
        let rec = version::bucket_record(&txn, bucket)?;
        Ok((rec.owner, rec.acl.unwrap_or_default()))
    }

    /// Sets a bucket's ACL (`AccessDenied` for a public one under BlockPublicAcls).
    pub async fn set_bucket_acl(&self, bucket: &str, acl: Acl) -> Result<()> {
        self.update_bucket(bucket, move |rec, txn| {
            check_acl(txn, rec, &acl)?;
            rec.acl = (!acl.grants.is_empty()).then(|| acl.clone());
            Ok(())
        })
        .await
    }

    /// Whether an object may be written with `acl` in `bucket` (see `check_acl`).
    pub fn check_object_acl(&self, bucket: &str, acl: &Acl) -> Result<()> {
        let txn = self.read()?;
        check_acl(&txn, &version::bucket_record(&txn, bucket)?, acl)
    }

    /// An object version's owner (its bucket's) and ACL.
    pub fn object_acl(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
    ) -> Result<(Option<String>, Acl)> {
        let txn = self.read()?;
        let rec = version::bucket_record(&txn, bucket)?;
        let okey = crate::meta::object_key(bucket, key);
        let (_, m) = version::locate_readable(&txn, bucket, key, &okey, &sel)?;
        Ok((rec.owner, m.attrs.acl.unwrap_or_default()))
    }

    /// Sets an object version's ACL.
    pub async fn set_object_acl(
        &self,
        bucket: &str,
        key: &str,
        sel: VersionSel,
        acl: Acl,
    ) -> Result<()> {
        self.check_object_acl(bucket, &acl)?;
        if !acl.grants.is_empty() {
            self.note_object_acls(bucket).await?;
        }
        self.update_version_attrs(bucket, key, sel, move |a| {
            a.acl = (!acl.grants.is_empty()).then(|| acl.clone());
        })
        .await
        .map(|_| ())
    }

    /// Records that objects of `bucket` may have ACLs: reads then look at them.
    pub async fn note_object_acls(&self, bucket: &str) -> Result<()> {
        if version::bucket_record(&self.read()?, bucket)?.object_acls {
            return Ok(());
        }
        self.update_bucket(bucket, |rec, _| {
            rec.object_acls = true;
            Ok(())
        })
        .await
    }

    /// A bucket's PublicAccessBlock.
    pub fn public_access_block(&self, bucket: &str) -> Result<Option<PublicAccessBlock>> {
        let txn = self.read()?;
        Ok(version::bucket_record(&txn, bucket)?.public_access_block)
    }

    /// Sets (or with `None` removes) a bucket's PublicAccessBlock.
    pub async fn set_public_access_block(
        &self,
        bucket: &str,
        pab: Option<PublicAccessBlock>,
    ) -> Result<()> {
        self.update_bucket(bucket, move |rec, _| {
            rec.public_access_block = pab;
            Ok(())
        })
        .await
    }

    /// Whether the bucket's ownership setting disables ACLs (`BucketOwnerEnforced`).
    pub fn acls_disabled(&self, bucket: &str) -> Result<bool> {
        let txn = self.read()?;
        Ok(acls_disabled(&version::bucket_record(&txn, bucket)?))
    }

    /// A bucket's object ownership setting, if one was set.
    pub fn ownership(&self, bucket: &str) -> Result<Option<String>> {
        let txn = self.read()?;
        Ok(version::bucket_record(&txn, bucket)?.ownership)
    }

    /// Sets (or with `None` removes) a bucket's object ownership setting: one of
    /// [`OWNERSHIP`] (the behaviour stays `BucketOwnerEnforced`'s).
    pub async fn set_ownership(&self, bucket: &str, ownership: Option<String>) -> Result<()> {
        if let Some(o) = &ownership {
            if !OWNERSHIP.contains(&o.as_str()) {
                return Err(Error::InvalidBucketState(
                    "object ownership must be BucketOwnerEnforced, BucketOwnerPreferred or ObjectWriter",
                ));
            }
        }
        self.update_bucket(bucket, move |rec, _| {
            let enforced = ownership.as_deref() == Some("BucketOwnerEnforced");
            if enforced && rec.acl.as_ref().is_some_and(|a| !a.grants.is_empty()) {
                return Err(Error::AclWithOwnership);
            }
            rec.ownership = ownership.clone();
            Ok(())
        })
        .await
    }
}
