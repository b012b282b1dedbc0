//! Mapping of engine errors onto S3 error codes.

use s3s::{s3_error, S3Error, S3ErrorCode};

use crate::body::BodyError;

/// A request that reached a delete marker: S3's 404 `NoSuchKey` when it is the latest version,
/// 405 `MethodNotAllowed` when named by its id; both say `x-amz-delete-marker: true` and the
/// marker's version id.
fn delete_marker_error(version_id: &str, by_id: bool, last_modified_ns: i64) -> S3Error {
    let mut err = if by_id {
        let mut e = s3_error!(
            MethodNotAllowed,
            "The specified method is not allowed against this resource (a delete marker)."
        );
        e.set_status_code(http::StatusCode::METHOD_NOT_ALLOWED);
        e
    } else {
        s3_error!(NoSuchKey, "The specified key does not exist.")
    };
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-amz-delete-marker",
        http::HeaderValue::from_static("true"),
    );
    if let Ok(v) = http::HeaderValue::from_str(version_id) {
        h.insert("x-amz-version-id", v);
    }
    if by_id {
        let t =
            std::time::UNIX_EPOCH + std::time::Duration::from_nanos(last_modified_ns.max(0) as u64);
        if let Ok(v) = http::HeaderValue::from_str(&httpdate::fmt_http_date(t)) {
            h.insert(http::header::LAST_MODIFIED, v);
        }
    }
    err.set_headers(h);
    err
}

/// Converts an engine error into the S3 error a client expects.
pub fn s3_err(e: engine::Error) -> S3Error {
    use engine::Error as E;
    if e.is_no_space() {
        // S3 itself never runs out of space; 507 is what MinIO and restic's rest-server answer,
        // and clients do not retry it (a retry would only fill the disks again).
        tracing::warn!("out of space: {e}");
        let mut err = S3Error::with_message(
            S3ErrorCode::Custom("InsufficientStorage".into()),
            "The server has no space left to store this object; delete objects or add disk space",
        );
        err.set_status_code(http::StatusCode::INSUFFICIENT_STORAGE);
        return err;
    }
    match e {
        E::InvalidBucketName { name, reason } => {
            s3_error!(InvalidBucketName, "The specified bucket is not valid: {name:?} {reason}")
        }
        E::KeyTooLong { len } => {
            s3_error!(KeyTooLongError, "Your key is too long: {len} bytes, at most 1024")
        }
        E::InvalidKey(why) => s3_error!(InvalidArgument, "Invalid object key: {why}"),
        E::NoSuchBucket(b) => s3_error!(NoSuchBucket, "The specified bucket does not exist: {b}"),
        E::BucketAlreadyExists(b) => s3_error!(
            BucketAlreadyOwnedByYou,
            "Your previous request to create the named bucket succeeded and you already own it: {b}"
        ),
        E::BucketTaken(b) => s3_error!(
            BucketAlreadyExists,
            "The requested bucket name is not available: {b} belongs to another key. Please select a different name and try again."
        ),
        E::AccessDenied(why) => s3_error!(AccessDenied, "Access Denied: {why}"),
        E::MalformedPolicy(why) => s3_error!(MalformedPolicy, "{why}"),
        E::InvalidCors(why) => s3_error!(InvalidRequest, "{why}"),
        E::InvalidNotification(why) => s3_error!(InvalidArgument, "{why}"),
        E::AclNotSupported => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("AccessControlListNotSupported".into()),
                "The bucket does not allow ACLs (its object ownership is BucketOwnerEnforced)",
            );
            err.set_status_code(http::StatusCode::BAD_REQUEST);
            err
        }
        E::AclWithOwnership => s3_error!(
            InvalidBucketAclWithObjectOwnership,
            "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting"
        ),
        E::InvalidGrantee(id) => s3_error!(InvalidArgument, "Invalid id: no key {id}"),
        E::NoSuchBucketPolicy(b) => s3_error!(
            NoSuchBucketPolicy,
            "The bucket policy does not exist: {b}"
        ),
        E::BucketNotEmpty(b) => s3_error!(
            BucketNotEmpty,
            "The bucket you tried to delete is not empty: {b}"
        ),
        E::NoSuchKey { .. } => s3_error!(NoSuchKey, "The specified key does not exist."),
        E::InvalidLifecycle {
            reason,
            malformed: true,
        } => s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed or did not validate against our published schema: {reason}"
        ),
        E::InvalidLifecycle { reason, .. } => s3_error!(InvalidArgument, "{reason}"),
        E::InvalidRetentionPeriod => {
            let mut err = S3Error::with_message(
                S3ErrorCode::Custom("InvalidRetentionPeriod".into()),
                "The default retention period must be a positive number of days or years",
            );
            err.set_status_code(http::StatusCode::BAD_REQUEST);
            err
        }
        E::LockNotEnabled => s3_error!(
            InvalidRequest,
            "Bucket is missing Object Lock Configuration"
        ),
        E::InvalidBucketState(why) => s3_error!(
            InvalidBucketState,
            "The request is not valid with the current state of the bucket: {why}"
        ),
        E::ObjectLocked { reason, .. } => s3_error!(AccessDenied, "Access Denied because object protected by object lock: {reason}"),
        E::InvalidVersionId(v) => s3_error!(InvalidArgument, "Invalid version id specified: {v:?}"),
        E::NoSuchVersion { .. } => s3_error!(
            NoSuchVersion,
            "The specified version does not exist."
        ),
        E::DeleteMarker {
            version_id,
            by_id,
            last_modified_ns,
            ..
        } => delete_marker_error(&version_id, by_id, last_modified_ns),
        E::NoSuchUpload(_) => s3_error!(
            NoSuchUpload,
            "The specified multipart upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
        ),
        E::PreconditionFailed(why) => {
            s3_error!(PreconditionFailed, "At least one of the pre-conditions you specified did not hold: {why}")
        }
        E::InvalidRange { size } => {
            let mut e = s3_error!(InvalidRange, "The requested range is not satisfiable");
            if let Ok(v) = http::HeaderValue::from_str(&format!("bytes */{size}")) {
                let mut h = http::HeaderMap::new();
                h.insert(http::header::CONTENT_RANGE, v);
                e.set_headers(h);
            }
            e
        }
        E::InvalidPart(why) => s3_error!(
            InvalidPart,
            "One or more of the specified parts could not be found or its entity tag did not match: {why}"
        ),
        E::InvalidPartOrder => s3_error!(
            InvalidPartOrder,
            "The list of parts was not in ascending order. Parts must be ordered by part number."
        ),
        E::EntityTooSmall { part, size, min } => s3_error!(
            EntityTooSmall,
            "Your proposed upload is smaller than the minimum allowed object size: part {part} is {size} bytes, minimum {min}"
        ),
        E::InvalidPartNumber(n) => {
            s3_error!(InvalidArgument, "Part number must be an integer between 1 and 10000, inclusive: {n}")
        }
        // What S3 answers a request too slow to finish; clients send it again.
        E::WriteTooSlow { .. } => {
            tracing::warn!("{e}");
            s3_error!(RequestTimeout, "{e}")
        }
        // A race with another node's GC: nothing changed, and the write succeeds when sent
        // again (503 is what clients retry by themselves).
        E::ChunkCollected(_) => {
            tracing::warn!("{e}");
            let mut err = S3Error::with_message(S3ErrorCode::ServiceUnavailable, e.to_string());
            err.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            err
        }
        E::WriteQuorum { .. } | E::ReadQuorum { .. } | E::LayoutUnknown(_) => {
            tracing::error!("storage unavailable: {e}");
            let mut err = S3Error::with_message(
                S3ErrorCode::ServiceUnavailable,
                "Too many disks are unavailable; please retry later",
            );
            err.set_status_code(http::StatusCode::SERVICE_UNAVAILABLE);
            err
        }
        E::Io(io) => match io.get_ref().and_then(|i| i.downcast_ref::<BodyError>()) {
            Some(b) => b.to_s3(),
            None => {
                tracing::error!("I/O error: {io}");
                s3_error!(InternalError, "We encountered an internal error. Please try again.")
            }
        },
        other => {
            tracing::error!("internal error: {other}");
            s3_error!(InternalError, "We encountered an internal error. Please try again.")
        }
    }
}
