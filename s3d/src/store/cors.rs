//! Put/Get/DeleteBucketCors over the engine (which checks and keeps the rules); the answers to
//! browsers are in `crate::cors`.

use engine::access::cors::{CorsConfig, CorsRule};

use super::*;

pub(super) async fn put_bucket_cors(
    s: &Store,
    i: PutBucketCorsInput,
) -> S3Result<PutBucketCorsOutput> {
    let rules = i
        .cors_configuration
        .cors_rules
        .into_iter()
        .map(|r| CorsRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: r.allowed_headers.unwrap_or_default(),
            expose_headers: r.expose_headers.unwrap_or_default(),
            max_age_secs: r.max_age_seconds,
        })
        .collect();
    s.engine
        .set_bucket_cors(&i.bucket, CorsConfig { rules })
        .await
        .map_err(s3_err)?;
    Ok(PutBucketCorsOutput {})
}

pub(super) async fn get_bucket_cors(
    s: &Store,
    i: GetBucketCorsInput,
) -> S3Result<GetBucketCorsOutput> {
    let Some(c) = s.engine.bucket_cors(&i.bucket).map_err(s3_err)? else {
        return Err(s3_error!(
            NoSuchCORSConfiguration,
            "The bucket {} has no CORS configuration",
            i.bucket
        ));
    };
    let rules = c
        .rules
        .into_iter()
        .map(|r| CORSRule {
            id: r.id,
            allowed_origins: r.allowed_origins,
            allowed_methods: r.allowed_methods,
            allowed_headers: (!r.allowed_headers.is_empty()).then_some(r.allowed_headers),
            expose_headers: (!r.expose_headers.is_empty()).then_some(r.expose_headers),
            max_age_seconds: r.max_age_secs,
        })
        .collect();
    Ok(GetBucketCorsOutput {
        cors_rules: Some(rules),
    })
}

pub(super) async fn delete_bucket_cors(
    s: &Store,
    i: DeleteBucketCorsInput,
) -> S3Result<DeleteBucketCorsOutput> {
    s.engine
        .delete_bucket_cors(&i.bucket)
        .await
        .map_err(s3_err)?;
    Ok(DeleteBucketCorsOutput {})
}
