//! Listing: ListObjects v1 and v2 and ListObjectVersions, three shapes of one listing
//! ([`Listing`]): the engine's page for a prefix, a delimiter, a start and a page size, with
//! keys URL-encoded when the client asked for it.

use super::*;

/// The most keys one page holds (and the default).
const MAX_KEYS: i32 = 1000;

/// What a listing request asks, whichever API it came through.
struct Ask<'a> {
    bucket: &'a str,
    prefix: Option<String>,
    delimiter: Option<String>,
    /// List keys after this one (v1's marker, v2's start-after or token, the key marker).
    start_after: Option<String>,
    max_keys: Option<i32>,
    encoding: &'a Option<EncodingType>,
}

/// Whether keys are to be URL-encoded, and the page size, from a listing request.
fn page_params(encoding: &Option<EncodingType>, max_keys: Option<i32>) -> S3Result<(bool, usize)> {
    let url = match encoding {
        None => false,
        Some(e) if e.as_str() == EncodingType::URL => true,
        Some(_) => {
            return Err(s3_error!(
                InvalidArgument,
                "Invalid Encoding Method specified in Request"
            ))
        }
    };
    let max_keys = match max_keys {
        Some(n) if n < 0 => {
            return Err(s3_error!(InvalidArgument, "max-keys must be non-negative"))
        }
        Some(n) => n.min(MAX_KEYS) as usize,
        None => MAX_KEYS as usize,
    };
    Ok((url, max_keys))
}

/// A key or prefix as the client asked to get it (URL-encoded or not).
fn encoded(url: bool, s: String) -> String {
    if url {
        urlencode(&s)
    } else {
        s
    }
}

/// One page of a listing.
struct Listing {
    page: engine::ListPage,
    url: bool,
    prefix: String,
    delimiter: Option<String>,
}

impl Listing {
    fn run(s: &Store, a: Ask<'_>) -> S3Result<Listing> {
        let (url, max_keys) = page_params(a.encoding, a.max_keys)?;
        let delimiter = a.delimiter.filter(|d| !d.is_empty());
        let q = ListQuery {
            prefix: a.prefix.unwrap_or_default(),
            delimiter: delimiter.clone(),
            start_after: a.start_after.filter(|m| !m.is_empty()),
            max_keys,
        };
        let page = s.engine.list_objects(a.bucket, &q).map_err(s3_err)?;
        Ok(Listing {
            page,
            url,
            prefix: q.prefix,
            delimiter,
        })
    }

    /// A key or prefix as the client asked to get it.
    fn enc(&self, s: String) -> String {
        encoded(self.url, s)
    }

    fn prefix(&self) -> Option<String> {
        Some(self.enc(self.prefix.clone()))
    }

    fn delimiter(&self) -> Option<String> {
        self.delimiter.clone().map(|d| self.enc(d))
    }

    /// The last key or prefix of a truncated page (where the next one starts).
    fn next_marker(&self) -> Option<String> {
        self.page
            .next_marker
            .clone()
            .filter(|_| self.page.is_truncated)
    }

    fn common_prefixes(&self) -> Option<CommonPrefixList> {
        Some(
            self.page
                .common_prefixes
                .iter()
                .map(|p| CommonPrefix {
                    prefix: Some(self.enc(p.clone())),
                })
                .collect(),
        )
    }

    fn objects(&self, owner: Option<&Owner>) -> Option<ObjectList> {
        Some(
            self.page
                .objects
                .iter()
                .map(|m| Object {
                    e_tag: Some(etag(m)),
                    key: Some(self.enc(m.key.clone())),
                    last_modified: Some(ts(m.last_modified_ns)),
                    size: Some(m.size as i64),
                    storage_class: Some(ObjectStorageClass::from_static(
                        ObjectStorageClass::STANDARD,
                    )),
                    owner: owner.cloned(),
                    ..Default::default()
                })
                .collect(),
        )
    }
}

pub(super) async fn list_objects(s: &Store, i: ListObjectsInput) -> S3Result<ListObjectsOutput> {
    let l = Listing::run(
        s,
        Ask {
            bucket: &i.bucket,
            prefix: i.prefix,
            delimiter: i.delimiter,
            start_after: i.marker.clone(),
            max_keys: i.max_keys,
            encoding: &i.encoding_type,
        },
    )?;
    Ok(ListObjectsOutput {
        prefix: l.prefix(),
        marker: Some(i.marker.map(|m| l.enc(m)).unwrap_or_default()),
        max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(l.page.is_truncated),
        next_marker: l.next_marker().map(|m| l.enc(m)),
        contents: l.objects(Some(&super::acl::bucket_owner(s, &i.bucket)?)),
        common_prefixes: l.common_prefixes(),
        delimiter: l.delimiter(),
        name: Some(i.bucket),
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}

pub(super) async fn list_objects_v2(
    s: &Store,
    i: ListObjectsV2Input,
) -> S3Result<ListObjectsV2Output> {
    let token_marker = continue_after(i.continuation_token.as_deref())?;
    let start_after = match (token_marker, i.start_after.clone()) {
        (Some(t), Some(s)) => Some(t.max(s)),
        (t, s) => t.or(s),
    };
    let l = Listing::run(
        s,
        Ask {
            bucket: &i.bucket,
            prefix: i.prefix,
            delimiter: i.delimiter,
            start_after,
            max_keys: i.max_keys,
            encoding: &i.encoding_type,
        },
    )?;
    let key_count = (l.page.objects.len() + l.page.common_prefixes.len()) as i32;
    Ok(ListObjectsV2Output {
        prefix: l.prefix(),
        max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
        key_count: Some(key_count),
        continuation_token: i.continuation_token,
        is_truncated: Some(l.page.is_truncated),
        next_continuation_token: l.next_marker().map(|m| continuation_token(&m)),
        contents: l.objects(
            match i.fetch_owner {
                Some(true) => Some(super::acl::bucket_owner(s, &i.bucket)?),
                _ => None,
            }
            .as_ref(),
        ),
        common_prefixes: l.common_prefixes(),
        delimiter: l.delimiter(),
        start_after: i.start_after.map(|m| l.enc(m)),
        name: Some(i.bucket),
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}

/// ListObjectVersions: every version and delete marker, keys in order and each key's newest
/// first, paged by key marker and version-id marker.
pub(super) async fn list_object_versions(
    s: &Store,
    i: ListObjectVersionsInput,
) -> S3Result<ListObjectVersionsOutput> {
    let (url, max_keys) = page_params(&i.encoding_type, i.max_keys)?;
    let key_marker = i.key_marker.clone().filter(|k| !k.is_empty());
    let version_marker = i.version_id_marker.clone().filter(|v| !v.is_empty());
    if version_marker.is_some() && key_marker.is_none() {
        return Err(s3_error!(
            InvalidArgument,
            "A version-id marker cannot be specified without a key marker."
        ));
    }
    let delimiter = i.delimiter.clone().filter(|d| !d.is_empty());
    let q = engine::VersionQuery {
        prefix: i.prefix.clone().unwrap_or_default(),
        delimiter: delimiter.clone(),
        key_marker,
        version_id_marker: version_marker,
        max_keys,
    };
    let page = s
        .engine
        .list_object_versions(&i.bucket, &q)
        .map_err(s3_err)?;
    let bucket_owner = super::acl::bucket_owner(s, &i.bucket)?;
    let enc = |s: String| encoded(url, s);
    let mut versions = Vec::new();
    let mut markers = Vec::new();
    for v in page.versions {
        let m = v.meta;
        let version_id = Some(m.version_id().unwrap_or("null").to_string());
        if m.delete_marker {
            markers.push(DeleteMarkerEntry {
                is_latest: Some(v.is_latest),
                key: Some(enc(m.key.clone())),
                last_modified: Some(ts(m.last_modified_ns)),
                owner: Some(bucket_owner.clone()),
                version_id,
            });
        } else {
            versions.push(ObjectVersion {
                e_tag: Some(etag(&m)),
                is_latest: Some(v.is_latest),
                key: Some(enc(m.key.clone())),
                last_modified: Some(ts(m.last_modified_ns)),
                owner: Some(bucket_owner.clone()),
                size: Some(m.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id,
                ..Default::default()
            });
        }
    }
    Ok(ListObjectVersionsOutput {
        prefix: Some(enc(q.prefix)),
        key_marker: Some(i.key_marker.map(enc).unwrap_or_default()),
        version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
        max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
        is_truncated: Some(page.is_truncated),
        next_key_marker: page.next_key_marker.map(enc),
        next_version_id_marker: page.next_version_id_marker,
        versions: Some(versions),
        delete_markers: Some(markers),
        common_prefixes: Some(
            page.common_prefixes
                .into_iter()
                .map(|p| CommonPrefix {
                    prefix: Some(enc(p)),
                })
                .collect(),
        ),
        delimiter: delimiter.map(enc),
        name: Some(i.bucket),
        encoding_type: i.encoding_type,
        ..Default::default()
    })
}
