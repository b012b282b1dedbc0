//! Multipart uploads: create, upload part, complete, abort, list parts and uploads.

use super::*;
use s3s::S3ErrorCode;

pub(super) async fn create_multipart_upload(
    s: &Store,
    i: CreateMultipartUploadInput,
) -> S3Result<CreateMultipartUploadOutput> {
    let mut attrs = attrs_of!(s, i, i.tagging)?;
    attrs.lock = lock_of!(i)?;
    attrs.acl = object_acl!(s, i)?;
    let algorithm = i
        .checksum_algorithm
        .as_ref()
        .map(|a| a.as_str().to_ascii_uppercase());
    let kind = i
        .checksum_type
        .as_ref()
        .map(|t| t.as_str().to_ascii_uppercase());
    match (&algorithm, &kind) {
        (None, Some(_)) => {
            return Err(s3_error!(
                InvalidRequest,
                "x-amz-checksum-type needs x-amz-checksum-algorithm"
            ))
        }
        (Some(a), Some(k)) if !mpu_checksum::allowed(a, k) => {
            return Err(s3_error!(
                InvalidRequest,
                "The {k} checksum type cannot be used with the {a} checksum algorithm"
            ))
        }
        (Some(a), _) => {
            let k = kind
                .clone()
                .unwrap_or(mpu_checksum::default_type(a).to_string());
            if !mpu_checksum::allowed(a, &k) {
                return Err(s3_error!(InvalidRequest, "Unknown checksum algorithm {a}"));
            }
            attrs.checksum_algorithm = Some(a.clone());
            attrs.checksum_type = Some(k);
        }
        (None, None) => {}
    }
    let checksum_type = attrs.checksum_type.clone().map(ChecksumType::from);
    let id = s
        .engine
        .create_multipart_upload(&i.bucket, &i.key, attrs)
        .await
        .map_err(s3_err)?;
    Ok(CreateMultipartUploadOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(id),
        checksum_algorithm: i.checksum_algorithm,
        checksum_type,
        ..Default::default()
    })
}

pub(super) async fn upload_part(
    s: &Store,
    req: S3Request<UploadPartInput>,
) -> S3Result<S3Response<UploadPartOutput>> {
    let (expected, i) = expected!(req)?;
    let body = i.body.unwrap_or_else(crate::body::empty);
    let vb = VerifyingBody::new(body, expected, s.body_idle);
    let verified = vb.verified.clone();
    let mut reader = StreamReader::new(vb);
    let (b, k, upload, part) = part_of!(i);
    let res = s
        .engine
        .upload_part(b, k, upload, part, &mut reader, Some(verified.clone()))
        .await;
    if res.is_err() {
        drain(&mut reader).await;
    }
    let p = res.map_err(s3_err)?;
    let v = verified.lock().map(|v| v.clone()).unwrap_or_default();
    Ok(S3Response::new(UploadPartOutput {
        e_tag: Some(ETag::Strong(p.etag)),
        checksum_crc32: v.get("CRC32").cloned(),
        checksum_crc32c: v.get("CRC32C").cloned(),
        checksum_crc64nvme: v.get("CRC64NVME").cloned(),
        checksum_sha1: v.get("SHA1").cloned(),
        checksum_sha256: v.get("SHA256").cloned(),
        ..Default::default()
    }))
}

pub(super) async fn complete_multipart_upload(
    s: &Store,
    i: CompleteMultipartUploadInput,
) -> S3Result<CompleteMultipartUploadOutput> {
    let completed = i
        .multipart_upload
        .as_ref()
        .and_then(|m| m.parts.clone())
        .unwrap_or_default();
    let parts = completed
        .iter()
        .map(|p| {
            let n = p.part_number.unwrap_or(0);
            if !(1..=10_000).contains(&n) {
                return Err(s3_error!(
                    InvalidArgument,
                    "Part number must be an integer between 1 and 10000, inclusive"
                ));
            }
            Ok((
                n as u32,
                p.e_tag
                    .as_ref()
                    .map(|e| e.value().to_string())
                    .unwrap_or_default(),
            ))
        })
        .collect::<S3Result<Vec<_>>>()?;
    if parts.is_empty() {
        return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema: no parts"));
    }
    let (if_none_match, if_match) = write_conditions(i.if_match.as_ref(), i.if_none_match.as_ref());
    let late = match object_checksum(s, &i, &completed).await {
        // A retried completion: the engine answers it from the object the upload made.
        Err(e) if *e.code() == S3ErrorCode::NoSuchUpload => None,
        r => r?,
    };
    let opts = PutOptions {
        if_none_match,
        if_match,
        late_checksums: late.map(|c| std::sync::Arc::new(std::sync::Mutex::new(c))),
        ..Default::default()
    };
    let m = s
        .engine
        .complete_multipart_upload(&i.bucket, &i.key, &i.upload_id, parts, opts)
        .await
        .map_err(s3_err)?;
    let mode = ChecksumMode::from_static(ChecksumMode::ENABLED);
    let c = checksums_out(&m, Some(&mode), true);
    Ok(with_checksums!(CompleteMultipartUploadOutput, c, {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&m)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        version_id: written_version(&m),
    }))
}

/// The value among the five checksum fields of `$x` (a request, a completed part) that
/// belongs to `$algorithm`.
macro_rules! checksum_named {
    ($algorithm:expr, $x:expr) => {
        match $algorithm.as_str() {
            "CRC32" => $x.checksum_crc32.as_ref(),
            "CRC32C" => $x.checksum_crc32c.as_ref(),
            "CRC64NVME" => $x.checksum_crc64nvme.as_ref(),
            "SHA1" => $x.checksum_sha1.as_ref(),
            "SHA256" => $x.checksum_sha256.as_ref(),
            _ => None,
        }
    };
}

/// The checksum a completed upload's object carries, when the upload was created with a
/// checksum algorithm: every part must have been sent with one; a part checksum named in the
/// completion must be the one stored; and a whole-object checksum the client sends must be the
/// one computed (`BadDigest` otherwise). Nothing is completed when any of this fails.
async fn object_checksum(
    s: &Store,
    i: &CompleteMultipartUploadInput,
    completed: &[CompletedPart],
) -> S3Result<Option<BTreeMap<String, String>>> {
    let attrs = s
        .engine
        .upload_attrs(&i.bucket, &i.key, &i.upload_id)
        .map_err(s3_err)?;
    let (Some(algorithm), Some(kind)) = (attrs.checksum_algorithm, attrs.checksum_type) else {
        return Ok(None);
    };
    let mut stored = BTreeMap::new();
    let mut marker = 0;
    loop {
        let page = s
            .engine
            .list_parts(&i.bucket, &i.key, &i.upload_id, marker, 1000)
            .map_err(s3_err)?;
        for p in page.parts {
            marker = p.part_number;
            stored.insert(p.part_number, p);
        }
        if !page.is_truncated {
            break;
        }
    }
    let mut parts = Vec::with_capacity(completed.len());
    for c in completed {
        let n = c.part_number.unwrap_or(0) as u32;
        let Some(p) = stored.get(&n) else {
            return Err(s3_error!(InvalidPart, "Part {n} was not uploaded"));
        };
        let Some(value) = p.checksums.get(&algorithm) else {
            return Err(s3_error!(
                InvalidPart,
                "Part {n} was uploaded without the {algorithm} checksum this upload keeps"
            ));
        };
        let named = checksum_named!(&algorithm, c);
        if named.is_some_and(|v| v != value) {
            return Err(s3_error!(
                InvalidPart,
                "The {algorithm} checksum given for part {n} is not the part's"
            ));
        }
        parts.push((value.clone(), p.size));
    }
    let value = mpu_checksum::of_parts(&algorithm, &kind, &parts)
        .map_err(|why| s3_error!(InvalidPart, "{why}"))?;
    let sent = checksum_named!(&algorithm, i);
    // A composite value may be sent with or without its `-N`.
    if let Some(sent) = sent {
        let bare = value.split('-').next().unwrap_or_default();
        if sent != &value && sent != bare {
            return Err(s3_error!(
                BadDigest,
                "The {kind} {algorithm} checksum sent, {sent}, is not the object's, {value}"
            ));
        }
    }
    Ok(Some(BTreeMap::from([(algorithm, value)])))
}

pub(super) async fn abort_multipart_upload(
    s: &Store,
    i: AbortMultipartUploadInput,
) -> S3Result<AbortMultipartUploadOutput> {
    s.engine
        .abort_multipart_upload(&i.bucket, &i.key, &i.upload_id)
        .await
        .map_err(s3_err)?;
    Ok(AbortMultipartUploadOutput::default())
}

pub(super) async fn list_parts(s: &Store, i: ListPartsInput) -> S3Result<ListPartsOutput> {
    let marker = i.part_number_marker.unwrap_or(0).max(0) as u32;
    let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
    let page = s
        .engine
        .list_parts(&i.bucket, &i.key, &i.upload_id, marker, max)
        .map_err(s3_err)?;
    let bucket_owner = super::acl::bucket_owner(s, &i.bucket)?;
    Ok(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        part_number_marker: Some(marker as i32),
        next_part_number_marker: page.next_marker.map(|n| n as i32),
        max_parts: Some(max as i32),
        is_truncated: Some(page.is_truncated),
        initiator: Some(super::acl::initiator_of(&bucket_owner)),
        owner: Some(bucket_owner),
        storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
        parts: Some(
            page.parts
                .into_iter()
                .map(|p| Part {
                    e_tag: Some(ETag::Strong(p.etag)),
                    last_modified: Some(ts(p.last_modified_ns)),
                    part_number: Some(p.part_number as i32),
                    size: Some(p.size as i64),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    })
}

pub(super) async fn list_multipart_uploads(
    s: &Store,
    i: ListMultipartUploadsInput,
) -> S3Result<ListMultipartUploadsOutput> {
    let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
    let page = s
        .engine
        .list_multipart_uploads(
            &i.bucket,
            i.prefix.as_deref().unwrap_or(""),
            i.key_marker.as_deref(),
            i.upload_id_marker.as_deref(),
            max,
        )
        .map_err(s3_err)?;
    let bucket_owner = super::acl::bucket_owner(s, &i.bucket)?;
    let last = page
        .uploads
        .last()
        .map(|u| (u.key.clone(), u.upload_id.clone()));
    Ok(ListMultipartUploadsOutput {
        bucket: Some(i.bucket),
        prefix: i.prefix,
        key_marker: i.key_marker,
        upload_id_marker: i.upload_id_marker,
        max_uploads: Some(max as i32),
        is_truncated: Some(page.is_truncated),
        next_key_marker: page
            .is_truncated
            .then(|| last.clone().map(|l| l.0))
            .flatten(),
        next_upload_id_marker: page.is_truncated.then(|| last.map(|l| l.1)).flatten(),
        uploads: Some(
            page.uploads
                .into_iter()
                .map(|u| MultipartUpload {
                    key: Some(u.key),
                    upload_id: Some(u.upload_id),
                    initiated: Some(ts(u.initiated_ns)),
                    owner: Some(bucket_owner.clone()),
                    initiator: Some(super::acl::initiator_of(&bucket_owner)),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    })
}
