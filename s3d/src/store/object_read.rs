//! Reading objects: GetObject and HeadObject (ranges, part numbers, conditions, checksums).

use super::*;

pub(super) async fn get_object(s: &Store, i: GetObjectInput) -> S3Result<GetObjectOutput> {
    check_version(&i.version_id)?;
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
        .get_object_with(&i.bucket, &i.key, |m, parts| {
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
    });
    Ok(out)
}

pub(super) async fn head_object(s: &Store, i: HeadObjectInput) -> S3Result<HeadObjectOutput> {
    check_version(&i.version_id)?;
    let m = s.engine.head_object(&i.bucket, &i.key).map_err(s3_err)?;
    check_conditions(
        &m,
        i.if_match.as_ref(),
        i.if_none_match.as_ref(),
        i.if_modified_since.as_ref(),
        i.if_unmodified_since.as_ref(),
    )?;
    let (len, content_range) = match (i.part_number, i.range) {
        (Some(p), _) => {
            let (a, b) = s
                .engine
                .part_range(&i.bucket, &i.key, p.max(0) as u32)
                .map_err(|_| {
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
    Ok(object_output!(HeadObjectOutput, &m, c, {
        content_length: Some(len as i64),
        content_range: content_range,
        parts_count: parts_count,
    }))
}
