//! Bucket policies: Put/Get/DeleteBucketPolicy and GetBucketPolicyStatus over the engine's
//! access layer (which parses, checks and stores them).

use super::*;

pub(super) async fn put_bucket_policy(
    s: &Store,
    i: PutBucketPolicyInput,
) -> S3Result<PutBucketPolicyOutput> {
    s.engine
        .set_bucket_policy(&i.bucket, &i.policy)
        .await
        .map_err(s3_err)?;
    Ok(PutBucketPolicyOutput {})
}

pub(super) async fn get_bucket_policy(
    s: &Store,
    i: GetBucketPolicyInput,
) -> S3Result<GetBucketPolicyOutput> {
    let policy = s.engine.bucket_policy(&i.bucket).map_err(s3_err)?;
    Ok(GetBucketPolicyOutput {
        policy: Some(policy),
    })
}

pub(super) async fn delete_bucket_policy(
    s: &Store,
    i: DeleteBucketPolicyInput,
) -> S3Result<DeleteBucketPolicyOutput> {
    s.engine
        .delete_bucket_policy(&i.bucket)
        .await
        .map_err(s3_err)?;
    Ok(DeleteBucketPolicyOutput {})
}

pub(super) async fn get_bucket_policy_status(
    s: &Store,
    i: GetBucketPolicyStatusInput,
) -> S3Result<GetBucketPolicyStatusOutput> {
    let public = s
        .engine
        .bucket_policy_is_public(&i.bucket)
        .map_err(s3_err)?;
    Ok(GetBucketPolicyStatusOutput {
        policy_status: Some(PolicyStatus {
            is_public: Some(public),
        }),
    })
}
