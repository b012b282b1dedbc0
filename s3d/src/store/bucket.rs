//! Bucket operations: list, create, delete, head, location, versioning, and the answers for
//! bucket configurations this server does not hold yet (S3's "not found" 404s).

use super::*;
use s3s::{S3Error, S3ErrorCode};

/// Buckets ListBuckets answers with at most, by default and at the most.
const MAX_BUCKETS: usize = 10_000;

pub(super) async fn list_buckets(s: &Store, i: ListBucketsInput) -> S3Result<ListBucketsOutput> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
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
    let after = match &i.continuation_token {
        None => None,
        Some(t) => Some(
            base64::Engine::decode(&URL_SAFE_NO_PAD, t)
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| {
                    s3_error!(
                        InvalidArgument,
                        "The continuation token provided is incorrect"
                    )
                })?,
        ),
    };
    let prefix = i.prefix.clone().unwrap_or_default();
    let mut all = s
        .engine
        .list_buckets()
        .map_err(s3_err)?
        .into_iter()
        .filter(|b| b.name.starts_with(&prefix))
        .filter(|b| after.as_ref().is_none_or(|a| b.name > *a));
    let page: Vec<_> = all.by_ref().take(max).collect();
    let token = match (all.next(), page.last()) {
        (Some(_), Some(last)) => Some(base64::Engine::encode(&URL_SAFE_NO_PAD, &last.name)),
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
        owner: Some(owner()),
        continuation_token: token,
        prefix: i.prefix,
    })
}

pub(super) async fn create_bucket(s: &Store, i: CreateBucketInput) -> S3Result<CreateBucketOutput> {
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
    s.engine.create_bucket(b).await.map_err(s3_err)?;
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
    s.engine.head_bucket(&i.bucket).map_err(s3_err)?;
    Ok(GetBucketVersioningOutput::default())
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

pub(super) async fn get_bucket_lifecycle_configuration(
    s: &Store,
    i: GetBucketLifecycleConfigurationInput,
) -> S3Result<GetBucketLifecycleConfigurationOutput> {
    let code = S3ErrorCode::NoSuchLifecycleConfiguration;
    not_set(s, &i.bucket, code, "lifecycle configuration")
}

pub(super) async fn get_bucket_policy(
    s: &Store,
    i: GetBucketPolicyInput,
) -> S3Result<GetBucketPolicyOutput> {
    not_set(
        s,
        &i.bucket,
        S3ErrorCode::NoSuchBucketPolicy,
        "bucket policy",
    )
}

pub(super) async fn get_bucket_policy_status(
    s: &Store,
    i: GetBucketPolicyStatusInput,
) -> S3Result<GetBucketPolicyStatusOutput> {
    not_set(
        s,
        &i.bucket,
        S3ErrorCode::NoSuchBucketPolicy,
        "bucket policy",
    )
}

pub(super) async fn get_object_lock_configuration(
    s: &Store,
    i: GetObjectLockConfigurationInput,
) -> S3Result<GetObjectLockConfigurationOutput> {
    let code = S3ErrorCode::ObjectLockConfigurationNotFoundError;
    not_set(s, &i.bucket, code, "object lock configuration")
}

pub(super) async fn get_bucket_encryption(
    s: &Store,
    i: GetBucketEncryptionInput,
) -> S3Result<GetBucketEncryptionOutput> {
    let code = S3ErrorCode::ServerSideEncryptionConfigurationNotFoundError;
    not_set(s, &i.bucket, code, "server-side encryption configuration")
}

pub(super) async fn get_bucket_cors(
    s: &Store,
    i: GetBucketCorsInput,
) -> S3Result<GetBucketCorsOutput> {
    not_set(
        s,
        &i.bucket,
        S3ErrorCode::NoSuchCORSConfiguration,
        "CORS configuration",
    )
}
