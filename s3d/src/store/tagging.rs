//! Object tags: get, put, delete.

use super::*;

/// Tags from an `x-amz-tagging` query string (`k=v&k2=v2`), with S3's limits.
pub fn parse_tagging(q: &str) -> S3Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = urldecode(k).ok_or_else(|| s3_error!(InvalidTag, "Invalid tag encoding"))?;
        let v = urldecode(v).ok_or_else(|| s3_error!(InvalidTag, "Invalid tag encoding"))?;
        check_tag(&k, &v)?;
        out.insert(k, v);
    }
    if out.len() > 10 {
        return Err(s3_error!(
            InvalidTag,
            "Object tags cannot be greater than 10"
        ));
    }
    Ok(out)
}

pub(super) fn check_tag(k: &str, v: &str) -> S3Result<()> {
    if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
        return Err(s3_error!(
            InvalidTag,
            "The tag key or value is too long or empty"
        ));
    }
    Ok(())
}

pub(super) async fn get_object_tagging(
    s: &Store,
    i: GetObjectTaggingInput,
) -> S3Result<GetObjectTaggingOutput> {
    check_version(&i.version_id)?;
    let m = s.engine.head_object(&i.bucket, &i.key).map_err(s3_err)?;
    Ok(GetObjectTaggingOutput {
        tag_set: m
            .attrs
            .tags
            .iter()
            .map(|(k, v)| Tag {
                key: Some(k.clone()),
                value: Some(v.clone()),
            })
            .collect(),
        version_id: None,
    })
}

pub(super) async fn put_object_tagging(
    s: &Store,
    i: PutObjectTaggingInput,
) -> S3Result<PutObjectTaggingOutput> {
    check_version(&i.version_id)?;
    if i.tagging.tag_set.len() > 10 {
        return Err(s3_error!(
            InvalidTag,
            "Object tags cannot be greater than 10"
        ));
    }
    let mut tags = BTreeMap::new();
    for t in i.tagging.tag_set {
        let (k, v) = (t.key.unwrap_or_default(), t.value.unwrap_or_default());
        check_tag(&k, &v)?;
        if tags.insert(k, v).is_some() {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    s.engine
        .update_object_attrs(&i.bucket, &i.key, move |a| a.tags = tags)
        .await
        .map_err(s3_err)?;
    Ok(PutObjectTaggingOutput::default())
}

pub(super) async fn delete_object_tagging(
    s: &Store,
    i: DeleteObjectTaggingInput,
) -> S3Result<DeleteObjectTaggingOutput> {
    check_version(&i.version_id)?;
    s.engine
        .update_object_attrs(&i.bucket, &i.key, |a| a.tags.clear())
        .await
        .map_err(s3_err)?;
    Ok(DeleteObjectTaggingOutput::default())
}
