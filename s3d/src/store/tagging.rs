//! Tags of objects and of buckets: get, put, delete.

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

/// A tag set as S3 sends it, checked: at most `max` tags, keys unique, S3's lengths.
fn tag_set(set: Vec<Tag>, max: usize, of: &str) -> S3Result<BTreeMap<String, String>> {
    if set.len() > max {
        return Err(s3_error!(
            InvalidTag,
            "{of} tags cannot be greater than {max}"
        ));
    }
    let mut tags = BTreeMap::new();
    for t in set {
        let (k, v) = (t.key.unwrap_or_default(), t.value.unwrap_or_default());
        check_tag(&k, &v)?;
        if tags.insert(k, v).is_some() {
            return Err(s3_error!(
                InvalidTag,
                "Cannot provide multiple Tags with the same key"
            ));
        }
    }
    Ok(tags)
}

/// Tags as S3 answers them.
fn tags_out(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect()
}

pub(super) async fn get_object_tagging(
    s: &Store,
    i: GetObjectTaggingInput,
) -> S3Result<GetObjectTaggingOutput> {
    let sel = version_sel(&i.version_id)?;
    let m = s
        .engine
        .head_object_version(&i.bucket, &i.key, &sel)
        .map_err(s3_err)?;
    Ok(GetObjectTaggingOutput {
        tag_set: tags_out(&m.attrs.tags),
        version_id: version_of(&m),
    })
}

pub(super) async fn put_object_tagging(
    s: &Store,
    i: PutObjectTaggingInput,
) -> S3Result<PutObjectTaggingOutput> {
    let sel = version_sel(&i.version_id)?;
    let tags = tag_set(i.tagging.tag_set, 10, "Object")?;
    let m = s
        .engine
        .update_version_attrs(&i.bucket, &i.key, sel, move |a| a.tags = tags.clone())
        .await
        .map_err(s3_err)?;
    Ok(PutObjectTaggingOutput {
        version_id: version_of(&m),
    })
}

pub(super) async fn delete_object_tagging(
    s: &Store,
    i: DeleteObjectTaggingInput,
) -> S3Result<DeleteObjectTaggingOutput> {
    let sel = version_sel(&i.version_id)?;
    let m = s
        .engine
        .update_version_attrs(&i.bucket, &i.key, sel, |a| a.tags.clear())
        .await
        .map_err(s3_err)?;
    Ok(DeleteObjectTaggingOutput {
        version_id: version_of(&m),
    })
}

/// GetBucketTagging: `NoSuchTagSet` (404) when the bucket has none.
pub(super) async fn get_bucket_tagging(
    s: &Store,
    i: GetBucketTaggingInput,
) -> S3Result<GetBucketTaggingOutput> {
    let b = s.engine.head_bucket(&i.bucket).map_err(s3_err)?;
    if b.tags.is_empty() {
        return Err(s3_error!(NoSuchTagSet, "The TagSet does not exist"));
    }
    Ok(GetBucketTaggingOutput {
        tag_set: tags_out(&b.tags),
    })
}

/// PutBucketTagging: replaces the bucket's tags (at most 50).
pub(super) async fn put_bucket_tagging(
    s: &Store,
    i: PutBucketTaggingInput,
) -> S3Result<PutBucketTaggingOutput> {
    let tags = tag_set(i.tagging.tag_set, 50, "Bucket")?;
    s.engine
        .set_bucket_tags(&i.bucket, tags)
        .await
        .map_err(s3_err)?;
    Ok(PutBucketTaggingOutput::default())
}

pub(super) async fn delete_bucket_tagging(
    s: &Store,
    i: DeleteBucketTaggingInput,
) -> S3Result<DeleteBucketTaggingOutput> {
    s.engine
        .set_bucket_tags(&i.bucket, BTreeMap::new())
        .await
        .map_err(s3_err)?;
    Ok(DeleteBucketTaggingOutput::default())
}
