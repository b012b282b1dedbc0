//! Reading objects: GetObject, HeadObject (ranges, part numbers, conditions, checksums) and
//! GetObjectAttributes.

use super::*;

pub(super) async fn get_object(s: &Store, i: GetObjectInput) -> S3Result<GetObjectOutput> {
    let sel = version_sel(&i.version_id)?;
    if i.part_number.is_some() && i.range.is_some() {
        return Err(s3_error!(
            InvalidRequest,
            "Cannot specify both Range header and partNumber query parameter"
        ));
    }
    if i.part_number.is_some_and(|p| p < 1) {
        return Err(s3_error!(
            InvalidArgument,
            "Part number must be an integer between 1 and 10000, inclusive"
        ));
    }
    // Conditions and part ranges are decided on the version that is served (one metadata
    // read): an overwrite in between cannot slip past an If-Match.
    let mut partial = false;
    let g = s
        .engine
        .get_object_with(&i.bucket, &i.key, &sel, |m, parts| {
            check_conditions(
                m,
                i.if_match.as_ref(),
                i.if_none_match.as_ref(),
                i.if_modified_since.as_ref(),
                i.if_unmodified_since.as_ref(),
            )?;
            let r = match (i.part_number, i.range) {
                (Some(p), _) => {
                    let (a, b) = engine::part_bounds(m.size, parts, p as u32).map_err(|_| {
                        crate::body::custom(
                            "InvalidPartNumber",
                            "The requested partnumber is not satisfiable",
                            http::StatusCode::RANGE_NOT_SATISFIABLE,
                        )
                    })?;
                    (b != a).then_some(ByteRange::FromTo(a, b.max(1) - 1))
                }
                (None, r) => r.map(range_of),
            };
            partial = r.is_some();
            Ok::<_, s3s::S3Error>(r)
        })
        .await
        .map_err(s3_err)??;
    let m = g.meta;
    let (start, end) = g.range;
    let body = g
        .body
        .map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
    let c = checksums_out(&m, i.checksum_mode.as_ref(), !partial);
    let parts_count =
        (i.part_number.is_some() && m.parts_count > 0).then_some(m.parts_count as i32);
    let out = object_output!(GetObjectOutput, &m, c, {
        body: Some(StreamingBlob::wrap(crate::body::SyncStream(
            std::sync::Mutex::new(body),
        ))),
        content_length: Some((end - start) as i64),
        content_range: partial.then(|| format!("bytes {start}-{}/{}", end.max(1) - 1, m.size)),
        parts_count: parts_count,
        tag_count: (!m.attrs.tags.is_empty()).then_some(m.attrs.tags.len() as i32),
        expiration: lifecycle::expiration_header(s, &i.bucket, &m),
    });
    Ok(out)
}

/// HeadObject: GetObject's headers without the body, and `x-amz-tagging-count` as GET has it
/// (s3s's HeadObjectOutput has no field for it, so it goes on the response).
pub(super) async fn head_object(
    s: &Store,
    req: S3Request<HeadObjectInput>,
) -> S3Result<S3Response<HeadObjectOutput>> {
    let i = req.input;
    let sel = version_sel(&i.version_id)?;
    let (m, part_sizes) = s
        .engine
        .version_part_sizes(&i.bucket, &i.key, &sel)
        .map_err(s3_err)?;
    check_conditions(
        &m,
        i.if_match.as_ref(),
        i.if_none_match.as_ref(),
        i.if_modified_since.as_ref(),
        i.if_unmodified_since.as_ref(),
    )?;
    let (len, content_range) = match (i.part_number, i.range) {
        (Some(p), _) => {
            let (a, b) =
                engine::part_bounds(m.size, &part_sizes, p.max(0) as u32).map_err(|_| {
                    crate::body::custom(
                        "InvalidPartNumber",
                        "The requested partnumber is not satisfiable",
                        http::StatusCode::RANGE_NOT_SATISFIABLE,
                    )
                })?;
            (
                b - a,
                (b > a).then(|| format!("bytes {a}-{}/{}", b - 1, m.size)),
            )
        }
        (None, Some(r)) => {
            let (a, b) = range_of(r).resolve(m.size).map_err(s3_err)?;
            (b - a, Some(format!("bytes {a}-{}/{}", b - 1, m.size)))
        }
        (None, None) => (m.size, None),
    };
    let c = checksums_out(&m, i.checksum_mode.as_ref(), content_range.is_none());
    let parts_count =
        (i.part_number.is_some() && m.parts_count > 0).then_some(m.parts_count as i32);
    let mut res = S3Response::new(object_output!(HeadObjectOutput, &m, c, {
        content_length: Some(len as i64),
        content_range: content_range,
        parts_count: parts_count,
        expiration: lifecycle::expiration_header(s, &i.bucket, &m),
    }));
    if !m.attrs.tags.is_empty() {
        res.headers.insert(
            "x-amz-tagging-count",
            http::HeaderValue::from(m.attrs.tags.len()),
        );
    }
    Ok(res)
}

/// Parts GetObjectAttributes lists at most, by default and at the most.
const MAX_PARTS: i32 = 1000;

/// GetObjectAttributes: the attributes asked for (`x-amz-object-attributes`) of an object;
/// its parts by number and size, paged by `part-number-marker` and `max-parts`.
pub(super) async fn get_object_attributes(
    s: &Store,
    i: GetObjectAttributesInput,
) -> S3Result<GetObjectAttributesOutput> {
    let sel = version_sel(&i.version_id)?;
    // The header is a comma-separated list (one or several headers).
    let names: Vec<&str> = i
        .object_attributes
        .iter()
        .flat_map(|a| a.as_str().split(','))
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    let known = [
        ObjectAttributes::CHECKSUM,
        ObjectAttributes::ETAG,
        ObjectAttributes::OBJECT_PARTS,
        ObjectAttributes::OBJECT_SIZE,
        ObjectAttributes::STORAGE_CLASS,
    ];
    if let Some(a) = names.iter().find(|a| !known.contains(a)) {
        return Err(s3_error!(
            InvalidArgument,
            "Invalid attribute name specified: {a}"
        ));
    }
    if names.is_empty() {
        return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-attributes names no attribute"
        ));
    }
    let asked = |a: &str| names.contains(&a);
    let max = i.max_parts.unwrap_or(MAX_PARTS);
    if !(0..=MAX_PARTS).contains(&max) || i.part_number_marker.is_some_and(|m| m < 0) {
        return Err(s3_error!(
            InvalidArgument,
            "max-parts must be 0 to {MAX_PARTS} and part-number-marker not negative"
        ));
    }
    let (m, sizes) = s
        .engine
        .version_part_sizes(&i.bucket, &i.key, &sel)
        .map_err(s3_err)?;
    let mut out = GetObjectAttributesOutput {
        last_modified: Some(ts(m.last_modified_ns)),
        version_id: version_of(&m),
        ..Default::default()
    };
    if asked(ObjectAttributes::ETAG) {
        out.e_tag = Some(etag(&m));
    }
    if asked(ObjectAttributes::OBJECT_SIZE) {
        out.object_size = Some(m.size as i64);
    }
    if asked(ObjectAttributes::STORAGE_CLASS) {
        out.storage_class = Some(StorageClass::from_static(StorageClass::STANDARD));
    }
    if asked(ObjectAttributes::CHECKSUM) {
        let mode = ChecksumMode::from_static(ChecksumMode::ENABLED);
        let c = checksums_out(&m, Some(&mode), true);
        out.checksum = (c != Checksum::default()).then_some(c);
    }
    if asked(ObjectAttributes::OBJECT_PARTS) && !sizes.is_empty() {
        let marker = i.part_number_marker.unwrap_or(0);
        let parts: Vec<ObjectPart> = sizes
            .iter()
            .enumerate()
            .map(|(n, size)| (n as i32 + 1, *size))
            .filter(|(n, _)| *n > marker)
            .take(max as usize)
            .map(|(n, size)| ObjectPart {
                part_number: Some(n),
                size: Some(size as i64),
                ..Default::default()
            })
            .collect();
        let last = parts.last().and_then(|p| p.part_number).unwrap_or(marker);
        out.object_parts = Some(GetObjectAttributesParts {
            is_truncated: Some((last as usize) < sizes.len()),
            max_parts: Some(max),
            next_part_number_marker: Some(last),
            part_number_marker: Some(marker),
            parts: Some(parts),
            total_parts_count: Some(sizes.len() as i32),
        });
    }
    Ok(out)
}
