//! Bucket operations: list, create, delete, head, location, versioning.

use super::*;

pub(super) async fn list_buckets(s: &Store, _i: ListBucketsInput) -> S3Result<ListBucketsOutput> {
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
    Ok(ListBucketsOutput {
        buckets: Some(buckets),
        owner: Some(owner()),
        ..Default::default()
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
