//! What a request says about the object it reads or writes: the body it sends (Content-MD5,
//! checksums, trailers) and its conditions (If-Match and the others).

use super::*;

pub(super) fn expected_from(
    content_md5: Option<&String>,
    algorithm: Option<&ChecksumAlgorithm>,
    values: [Option<&String>; 5],
    trailers: Option<s3s::TrailingHeaders>,
) -> S3Result<Expected> {
    let mut e = Expected::default();
    e.set_content_md5(content_md5.map(|s| s.as_str()))?;
    for ((alg, _), v) in CHECKSUMS.iter().zip(values) {
        e.add_checksum(alg, v);
    }
    if let (Some(a), Some(t)) = (algorithm, trailers) {
        let a = a.as_str().to_ascii_uppercase();
        if !e.checksums.contains_key(&a) {
            e.trailer_algorithm = Some(a);
            e.trailers = Some(t);
        }
    }
    Ok(e)
}

/// The conditions of a write (PutObject, CompleteMultipartUpload) as the engine takes them:
/// `If-None-Match` (`*` or ETags) and `If-Match` (ETags or `*`).
pub(super) fn write_conditions(
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
) -> (Option<String>, Option<String>) {
    let text = |c: &ETagCondition| match c {
        ETagCondition::Any => "*".to_string(),
        ETagCondition::ETag(e) => e.value().to_string(),
    };
    (if_none_match.map(text), if_match.map(text))
}

/// Evaluates If-Match / If-None-Match / If-(Un)Modified-Since against an object (RFC 9110 order).
pub(super) fn check_conditions(
    m: &ObjectMeta,
    if_match: Option<&ETagCondition>,
    if_none_match: Option<&ETagCondition>,
    if_modified_since: Option<&Timestamp>,
    if_unmodified_since: Option<&Timestamp>,
) -> S3Result<()> {
    let matches = |c: &ETagCondition| match c {
        ETagCondition::Any => true,
        ETagCondition::ETag(e) => e.value() == m.etag,
    };
    let failed = || {
        s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )
    };
    let modified = secs(m.last_modified_ns);
    if let Some(c) = if_match {
        if !matches(c) {
            return Err(failed());
        }
    } else if let Some(t) = if_unmodified_since {
        if modified > ts_secs(t) {
            return Err(failed());
        }
    }
    let not_modified = || {
        // A 304 carries the validators of the current object.
        let mut e = s3_error!(NotModified);
        let mut h = http::HeaderMap::new();
        if let Ok(v) = http::HeaderValue::from_str(&format!("\"{}\"", m.etag)) {
            h.insert(http::header::ETAG, v);
        }
        let lm = std::time::UNIX_EPOCH + std::time::Duration::from_secs(modified.max(0) as u64);
        if let Ok(v) = http::HeaderValue::from_str(&httpdate::fmt_http_date(lm)) {
            h.insert(http::header::LAST_MODIFIED, v);
        }
        e.set_headers(h);
        e
    };
    if let Some(c) = if_none_match {
        if matches(c) {
            return Err(not_modified());
        }
    } else if let Some(t) = if_modified_since {
        if modified <= ts_secs(t) {
            return Err(not_modified());
        }
    }
    Ok(())
}
