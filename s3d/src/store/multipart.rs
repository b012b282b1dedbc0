//! Multipart uploads: create, upload part, complete, abort, list parts and uploads.

use super::*;

pub(super) async fn create_multipart_upload(
    s: &Store,
    i: CreateMultipartUploadInput,
) -> S3Result<CreateMultipartUploadOutput> {
    let attrs = attrs_of!(s, i, i.tagging)?;
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
        .upload_part(b, k, upload, part, &mut reader, BTreeMap::new())
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
    let parts = i
        .multipart_upload
        .and_then(|m| m.parts)
        .unwrap_or_default()
        .into_iter()
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
                p.e_tag.map(|e| e.value().to_string()).unwrap_or_default(),
            ))
        })
        .collect::<S3Result<Vec<_>>>()?;
    if parts.is_empty() {
        return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema: no parts"));
    }
    let (if_none_match, if_match) = write_conditions(i.if_match.as_ref(), i.if_none_match.as_ref());
    let opts = PutOptions {
        if_none_match,
        if_match,
        ..Default::default()
    };
    let m = s
        .engine
        .complete_multipart_upload(&i.bucket, &i.key, &i.upload_id, parts, opts)
        .await
        .map_err(s3_err)?;
    Ok(CompleteMultipartUploadOutput {
        bucket: Some(i.bucket.clone()),
        key: Some(i.key.clone()),
        e_tag: Some(etag(&m)),
        location: Some(format!("/{}/{}", i.bucket, i.key)),
        ..Default::default()
    })
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
    Ok(ListPartsOutput {
        bucket: Some(i.bucket),
        key: Some(i.key),
        upload_id: Some(i.upload_id),
        part_number_marker: Some(marker as i32),
        next_part_number_marker: page.next_marker.map(|n| n as i32),
        max_parts: Some(max as i32),
        is_truncated: Some(page.is_truncated),
        owner: Some(owner()),
        initiator: Some(Initiator {
            display_name: Some("predastore".into()),
            id: Some("predastore".into()),
        }),
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
                    owner: Some(owner()),
                    initiator: Some(Initiator {
                        display_name: Some("predastore".into()),
                        id: Some("predastore".into()),
                    }),
                    storage_class: Some(StorageClass::from_static(StorageClass::STANDARD)),
                    ..Default::default()
                })
                .collect(),
        ),
        ..Default::default()
    })
}
