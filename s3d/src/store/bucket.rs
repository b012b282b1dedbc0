//! Bucket operations: list, create, delete, head, location, versioning, and the answers for
//! bucket configurations this server does not hold yet (S3's "not found" 404s).

use super::*;
use s3s::{S3Error, S3ErrorCode};

/// Buckets ListBuckets answers with at most, by default and at the most.
const MAX_BUCKETS: usize = 10_000;

/// ListBuckets: the buckets the caller may use (all of them for an administrator).
pub(super) async fn list_buckets(
    s: &Store,
    caller: &Caller,
    i: ListBucketsInput,
) -> S3Result<ListBucketsOutput> {
    let max = match i.max_buckets {
        None => MAX_BUCKETS,
        Some(n) if (1..=MAX_BUCKETS as i32).contains(&n) => n as usize,
        Some(n) => {
            return Err(s3_error!(
                InvalidArgument,
                "max-buckets must be between 1 and {MAX_BUCKETS}, not {n}"
            ))
        }
    };
    // The token is the last name of the page before, opaque to the client.
    let after = continue_after(i.continuation_token.as_deref())?;
    let prefix = i.prefix.clone().unwrap_or_default();
    let mut all = s
        .engine
        .list_buckets_for(&caller.principal)
        .map_err(s3_err)?
        .into_iter()
        .filter(|b| b.name.starts_with(&prefix))
        .filter(|b| after.as_ref().is_none_or(|a| b.name > *a));
    let page: Vec<_> = all.by_ref().take(max).collect();
    let token = match (all.next(), page.last()) {
        (Some(_), Some(last)) => Some(continuation_token(&last.name)),
        _ => None,
    };
    let buckets = page
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(ts(b.created_ns)),
            bucket_region: Some(s.region.clone()),
        })
        .collect();
    Ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(super::acl::owner_of(caller.principal.owner_id())),
        continuation_token: token,
        prefix: i.prefix,
    })
}

/// CreateBucket: the caller owns the new bucket (a key) or the administrators do.
pub(super) async fn create_bucket(
    s: &Store,
    caller: &Caller,
    i: CreateBucketInput,
) -> S3Result<CreateBucketOutput> {
    let b = &i.bucket;
    if let Some(loc) = i
        .create_bucket_configuration
        .as_ref()
        .and_then(|c| c.location_constraint.as_ref())
    {
        if loc.as_str() != s.region && !(s.region == "us-east-1" && loc.as_str().is_empty()) {
            return Err(s3_error!(
                InvalidLocationConstraint,
                "The specified location-constraint is not valid: this server is in {}",
                s.region
            ));
        }
    }
    let locked = i.object_lock_enabled_for_bucket == Some(true);
    let owner = super::acl::owner_of(caller.principal.owner_id());
    let mut acl_req = super::acl::acl_request!(i, None);
    acl_req.headers[1].0 = i.grant_write.as_ref();
    let acl = acl_req.resolve(&owner)?;
    if let Some(o) = &i.object_ownership {
        if !engine::access::acl::OWNERSHIP.contains(&o.as_str()) {
            return Err(s3_error!(
                InvalidArgument,
                "Invalid x-amz-object-ownership: {}",
                o.as_str()
            ));
        }
        if o.as_str() == "BucketOwnerEnforced" && acl.as_ref().is_some_and(|a| !a.grants.is_empty())
        {
            return Err(s3_error!(
                InvalidBucketAclWithObjectOwnership,
                "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
            ));
        }
    }
    s.engine
        .create_bucket_as(b, caller.principal.owner_id(), locked)
        .await
        .map_err(s3_err)?;
    if let Some(o) = &i.object_ownership {
        s.engine
            .set_ownership(b, Some(o.as_str().to_string()))
            .await
            .map_err(s3_err)?;
    }
    if let Some(acl) = acl.filter(|a| !a.grants.is_empty()) {
        s.engine.set_bucket_acl(b, acl).await.map_err(s3_err)?;
    }
    Ok(CreateBucketOutput {
        location: Some(format!("/{b}")),
    })
}

pub(super) async fn delete_bucket(s: &Store, i: DeleteBucketInput) -> S3Result<DeleteBucketOutput> {
    s.engine.delete_bucket(&i.bucket).await.map_err(s3_err)?;
    Ok(DeleteBucketOutput {})
}

pub(super) async fn head_bucket(s: &Store, i: HeadBucketInput) -> S3Result<HeadBucketOutput> {
    s.engine.head_bucket(&i.bucket).map_err(s3_err)?;
    Ok(HeadBucketOutput {
        bucket_region: Some(s.region.clone()),
        ..Default::default()
    })
}

pub(super) async fn get_bucket_location(
    s: &Store,
    i: GetBucketLocationInput,
) -> S3Result<GetBucketLocationOutput> {
    s.engine.head_bucket(&i.bucket).map_err(s3_err)?;
    let loc = (s.region != "us-east-1").then(|| BucketLocationConstraint::from(s.region.clone()));
    Ok(GetBucketLocationOutput {
        location_constraint: loc,
    })
}

pub(super) async fn get_bucket_versioning(
    s: &Store,
    i: GetBucketVersioningInput,
) -> S3Result<GetBucketVersioningOutput> {
    let b = s.engine.head_bucket(&i.bucket).map_err(s3_err)?;
    let status = b.versioning.map(|v| {
        BucketVersioningStatus::from_static(match v {
            Versioning::Enabled => BucketVersioningStatus::ENABLED,
            Versioning::Suspended => BucketVersioningStatus::SUSPENDED,
        })
    });
    Ok(GetBucketVersioningOutput {
        status,
        ..Default::default()
    })
}

/// PutBucketVersioning: `Enabled` or `Suspended`; MFA delete is refused (this server has no
/// MFA devices), as is any other status.
pub(super) async fn put_bucket_versioning(
    s: &Store,
    i: PutBucketVersioningInput,
) -> S3Result<PutBucketVersioningOutput> {
    let c = i.versioning_configuration;
    if c.mfa_delete
        .as_ref()
        .is_some_and(|m| m.as_str() == MFADelete::ENABLED)
        || i.mfa.is_some()
    {
        return Err(s3_error!(
            InvalidArgument,
            "MFA delete is not supported: this server has no MFA devices"
        ));
    }
    let state = match c.status.as_ref().map(|s| s.as_str()) {
        Some(BucketVersioningStatus::ENABLED) => Versioning::Enabled,
        Some(BucketVersioningStatus::SUSPENDED) => Versioning::Suspended,
        other => {
            return Err(s3_error!(
                MalformedXML,
                "The versioning status must be Enabled or Suspended, not {other:?}"
            ))
        }
    };
    s.engine
        .set_bucket_versioning(&i.bucket, state)
        .await
        .map_err(s3_err)?;
    Ok(PutBucketVersioningOutput::default())
}

/// The answer for a bucket configuration that is not set: S3's 404 with its own code (SDKs
/// read it as "none"), or `NoSuchBucket`.
fn not_set<T>(s: &Store, bucket: &str, code: S3ErrorCode, what: &str) -> S3Result<T> {
    s.engine.head_bucket(bucket).map_err(s3_err)?;
    Err(S3Error::with_message(
        code,
        format!("The bucket {bucket} has no {what}"),
    ))
}

/// Getters of bucket configurations this server does not hold yet: each answers its
/// configuration's "not set" error (after `NoSuchBucket`).
macro_rules! not_set_getters {
    ($( $op:ident($input:ty) -> $output:ty: $code:ident, $what:literal; )*) => {
        $(
            pub(super) async fn $op(s: &Store, i: $input) -> S3Result<$output> {
                not_set(s, &i.bucket, S3ErrorCode::$code, $what)
            }
        )*
    };
}

not_set_getters! {
    get_bucket_encryption(GetBucketEncryptionInput) -> GetBucketEncryptionOutput: ServerSideEncryptionConfigurationNotFoundError, "server-side encryption configuration";
}
