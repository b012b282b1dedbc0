//! Bucket operations: list, create, delete, head, location, versioning.

use super::*;

pub(super) async fn list_buckets(
    s: &Store,
    _req: S3Request<ListBucketsInput>,
) -> S3Result<S3Response<ListBucketsOutput>> {
    let buckets = s
        .engine
        .list_buckets()
        .map_err(s3_err)?
        .into_iter()
        .map(|b| Bucket {
            name: Some(b.name),
            creation_date: Some(ts(b.created_ns)),
            bucket_region: Some(s.region.clone()),
        })
        .collect();
    Ok(S3Response::new(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        ..Default::default()
    }))
}

pub(super) async fn create_bucket(
    s: &Store,
    req: S3Request<CreateBucketInput>,
) -> S3Result<S3Response<CreateBucketOutput>> {
    let b = &req.input.bucket;
    if let Some(loc) = req
        .input
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
    Ok(S3Response::new(CreateBucketOutput {
        location: Some(format!("/{b}")),
    }))
}

pub(super) async fn delete_bucket(
    s: &Store,
    req: S3Request<DeleteBucketInput>,
) -> S3Result<S3Response<DeleteBucketOutput>> {
    s.engine
        .delete_bucket(&req.input.bucket)
        .await
        .map_err(s3_err)?;
    Ok(S3Response::new(DeleteBucketOutput {}))
}

pub(super) async fn head_bucket(
    s: &Store,
    req: S3Request<HeadBucketInput>,
) -> S3Result<S3Response<HeadBucketOutput>> {
    s.engine.head_bucket(&req.input.bucket).map_err(s3_err)?;
    Ok(S3Response::new(HeadBucketOutput {
        bucket_region: Some(s.region.clone()),
        ..Default::default()
    }))
}

pub(super) async fn get_bucket_location(
    s: &Store,
    req: S3Request<GetBucketLocationInput>,
) -> S3Result<S3Response<GetBucketLocationOutput>> {
    s.engine.head_bucket(&req.input.bucket).map_err(s3_err)?;
    let loc = (s.region != "us-east-1").then(|| BucketLocationConstraint::from(s.region.clone()));
    Ok(S3Response::new(GetBucketLocationOutput {
        location_constraint: loc,
    }))
}

pub(super) async fn get_bucket_versioning(
    s: &Store,
    req: S3Request<GetBucketVersioningInput>,
) -> S3Result<S3Response<GetBucketVersioningOutput>> {
    s.engine.head_bucket(&req.input.bucket).map_err(s3_err)?;
    Ok(S3Response::new(GetBucketVersioningOutput::default()))
}
