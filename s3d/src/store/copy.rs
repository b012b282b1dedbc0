//! Copies inside the store: CopyObject and UploadPartCopy.

use super::*;

pub(super) async fn copy_object(s: &Store, i: CopyObjectInput) -> S3Result<CopyObjectOutput> {
    let CopySource::Bucket {
        bucket: sb,
        key: sk,
        version_id,
    } = &i.copy_source
    else {
        return Err(s3_error!(
            NotImplemented,
            "Access point copy sources are not supported"
        ));
    };
    let sel = version_sel(&version_id.as_ref().map(|v| v.to_string()))?;
    let src = s.engine.head_object_version(sb, sk, &sel).map_err(s3_err)?;
    // x-amz-copy-source-if-*: failures are 412 PreconditionFailed.
    let failed = || {
        s3_error!(
            PreconditionFailed,
            "At least one of the pre-conditions you specified did not hold"
        )
    };
    let matches =
        |c: &ETagCondition| c.is_any() || c.as_etag().is_some_and(|e| e.value() == src.etag);
    let modified = secs(src.last_modified_ns);
    if let Some(c) = &i.copy_source_if_match {
        if !matches(c) {
            return Err(failed());
        }
    } else if let Some(t) = &i.copy_source_if_unmodified_since {
        if modified > ts_secs(t) {
            return Err(failed());
        }
    }
    if let Some(c) = &i.copy_source_if_none_match {
        if matches(c) {
            return Err(failed());
        }
    } else if let Some(t) = &i.copy_source_if_modified_since {
        if modified <= ts_secs(t) {
            return Err(failed());
        }
    }
    let replace = i
        .metadata_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == MetadataDirective::REPLACE);
    let tagging_replace = i
        .tagging_directive
        .as_ref()
        .is_some_and(|d| d.as_str() == TaggingDirective::REPLACE);
    let same_version = sel == VersionSel::Latest || src.version_id() == version_id.as_deref();
    if **sb == *i.bucket && **sk == *i.key && same_version && !replace && !tagging_replace {
        return Err(s3_error!(InvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."));
    }
    let mut attrs = if replace {
        let mut a = attrs_of!(s, i, None)?;
        a.checksums = src.attrs.checksums.clone();
        a.tags = src.attrs.tags.clone();
        // Kept unless the new metadata gives POSIX attributes.
        a.posix = a.posix.or(src.attrs.posix);
        a
    } else {
        src.attrs.clone()
    };
    // A copy's lock and ACL are what the request asks, never the source's.
    attrs.lock = lock_of!(i)?;
    attrs.acl = object_acl!(s, i)?;
    if tagging_replace {
        attrs.tags = parse_tagging(i.tagging.as_deref().unwrap_or(""))?;
    }
    let m = s
        .engine
        .copy_object(
            sb,
            sk,
            &i.bucket,
            &i.key,
            CopyOptions {
                replace_attrs: Some(attrs),
                source_if_match: Some(src.etag.clone()),
                if_none_match: false,
                source_version: sel,
            },
        )
        .await
        .map_err(s3_err)?;
    Ok(CopyObjectOutput {
        copy_object_result: Some(CopyObjectResult {
            e_tag: Some(etag(&m)),
            last_modified: Some(ts(m.last_modified_ns)),
            ..Default::default()
        }),
        copy_source_version_id: version_of(&src),
        version_id: written_version(&m),
        ..Default::default()
    })
}

pub(super) async fn upload_part_copy(
    s: &Store,
    i: UploadPartCopyInput,
) -> S3Result<UploadPartCopyOutput> {
    let CopySource::Bucket {
        bucket: sb,
        key: sk,
        version_id,
    } = &i.copy_source
    else {
        return Err(s3_error!(
            NotImplemented,
            "Access point copy sources are not supported"
        ));
    };
    let sel = version_sel(&version_id.as_ref().map(|v| v.to_string()))?;
    let src = s.engine.head_object_version(sb, sk, &sel).map_err(s3_err)?;
    if let Some(c) = &i.copy_source_if_match {
        if !(c.is_any() || c.as_etag().is_some_and(|e| e.value() == src.etag)) {
            return Err(s3_error!(
                PreconditionFailed,
                "At least one of the pre-conditions you specified did not hold"
            ));
        }
    }
    let range = match &i.copy_source_range {
        None => None,
        Some(r) => {
            let bad = || {
                s3_error!(InvalidArgument, "The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
            };
            let spec = r.strip_prefix("bytes=").ok_or_else(bad)?;
            let (a, b) = spec.split_once('-').ok_or_else(bad)?;
            let (a, b): (u64, u64) = (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
            if b < a || b >= src.size {
                return Err(s3_error!(
                    InvalidRange,
                    "The requested range is not satisfiable"
                ));
            }
            Some(ByteRange::FromTo(a, b))
        }
    };
    let (b, k, upload, part) = part_of!(i);
    // An upload that keeps a checksum gets the copied part's, as if it had been sent.
    let algorithm = s
        .engine
        .upload_attrs(b, k, upload)
        .map_err(s3_err)?
        .checksum_algorithm;
    // The very version checked above: its ETag is required again where the data is read.
    let g = s
        .engine
        .get_object_with(sb, sk, &sel, |m, _| match m.etag == src.etag {
            true => Ok(range),
            false => Err(s3_error!(
                PreconditionFailed,
                "The source object changed while it was being copied"
            )),
        })
        .await
        .map_err(s3_err)??;
    let (body, checksums) = mpu_checksum::checksummed(g.body, algorithm);
    let body = Box::pin(body.map(|r| r.map_err(|e| std::io::Error::other(e.to_string()))));
    let p = s
        .engine
        .upload_part(b, k, upload, part, StreamReader::new(body), checksums)
        .await
        .map_err(s3_err)?;
    Ok(UploadPartCopyOutput {
        copy_part_result: Some(CopyPartResult {
            e_tag: Some(ETag::Strong(p.etag)),
            last_modified: Some(ts(p.last_modified_ns)),
            ..Default::default()
        }),
        copy_source_version_id: version_of(&src),
        ..Default::default()
    })
}
