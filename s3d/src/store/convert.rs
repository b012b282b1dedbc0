//! Conversions between the engine's records and S3's shapes: times, ETags, owners, headers,
//! user metadata, checksums, ranges, URL encoding.

use super::*;

pub(super) fn ts(ns: i64) -> Timestamp {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .into()
}

pub(super) fn secs(ns: i64) -> i64 {
    ns.div_euclid(1_000_000_000)
}

pub(super) fn ts_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

pub(super) fn etag(m: &ObjectMeta) -> ETag {
    ETag::Strong(m.etag.clone())
}

pub(super) fn owner() -> Owner {
    Owner {
        display_name: Some("predastore".into()),
        id: Some("predastore".into()),
    }
}

/// The version a request's `versionId` names (none: the latest); a malformed id is
/// `InvalidArgument`.
pub(super) fn version_sel(v: &Option<String>) -> S3Result<VersionSel> {
    VersionSel::from_param(v.as_deref()).map_err(s3_err)
}

/// The version id to answer with (`x-amz-version-id`): none in a bucket that never had
/// versioning.
pub(super) fn version_of(m: &ObjectMeta) -> Option<String> {
    m.version_id().map(str::to_string)
}

/// The version id a write answers with: the new version's own, none for a `null` version (S3
/// says nothing when a write in a suspended bucket replaces it).
pub(super) fn written_version(m: &ObjectMeta) -> Option<String> {
    m.version_id().filter(|v| *v != "null").map(str::to_string)
}

/// The attributes of an object put (or copied with replaced metadata) to `key`, from the
/// request's headers. POSIX attributes given as user metadata become the object's
/// ([`engine::posix`]).
#[allow(clippy::too_many_arguments)]
pub(super) fn attrs_from(
    key: &str,
    content_type: Option<String>,
    content_encoding: Option<String>,
    content_disposition: Option<String>,
    content_language: Option<String>,
    cache_control: Option<String>,
    expires: Option<Timestamp>,
    metadata: Option<Metadata>,
    tagging: Option<String>,
    allow_setid_and_devices: bool,
) -> S3Result<ObjectAttrs> {
    // `aws-chunked` describes the transfer, not the object: S3 does not store it.
    let content_encoding = content_encoding.and_then(|e| {
        let rest: Vec<&str> = e
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty() && !t.eq_ignore_ascii_case("aws-chunked"))
            .collect();
        (!rest.is_empty()).then(|| rest.join(", "))
    });
    let mut a = ObjectAttrs {
        content_type,
        content_encoding,
        content_disposition,
        content_language,
        cache_control,
        ..Default::default()
    };
    if let Some(e) = expires {
        let mut buf = Vec::new();
        if e.format(TimestampFormat::HttpDate, &mut buf).is_ok() {
            a.expires = String::from_utf8(buf).ok();
        }
    }
    let mut size = 0;
    for (k, v) in metadata.unwrap_or_default() {
        size += k.len() + v.len();
        a.user_metadata.insert(k.to_ascii_lowercase(), v);
    }
    if size > 2048 {
        return Err(s3_error!(
            MetadataTooLarge,
            "Your metadata headers exceed the maximum allowed metadata size (2 KB)."
        ));
    }
    a.posix = engine::posix::take(&mut a.user_metadata, key, engine::meta::now_ns());
    if let (Some(p), false) = (a.posix.as_mut(), allow_setid_and_devices) {
        if engine::posix::restrict(p) {
            tracing::info!(key, "set-id bits or a device type given over S3 were taken away (auth.allow_setid_and_devices is off)");
        }
    }
    if let Some(t) = tagging {
        a.tags = parse_tagging(&t)?;
    }
    Ok(a)
}

pub(super) fn urldecode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let h = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(h, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

/// URL-encodes a key for `encoding-type=url` (everything but unreserved characters and `/`).
pub fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The engine's byte range for a parsed `Range` header.
pub fn range_of(r: Range) -> ByteRange {
    match r {
        Range::Int {
            first,
            last: Some(l),
        } => ByteRange::FromTo(first, l),
        Range::Int { first, last: None } => ByteRange::From(first),
        Range::Suffix { length } => ByteRange::Suffix(length),
    }
}

pub(super) fn checksums_out(m: &ObjectMeta, mode: Option<&ChecksumMode>, full: bool) -> Checksum {
    let mut c = Checksum::default();
    if !full
        || mode
            .map(|m| m.as_str() != ChecksumMode::ENABLED)
            .unwrap_or(true)
    {
        return c;
    }
    let g = |k: &str| m.attrs.checksums.get(k).cloned();
    c.checksum_crc32 = g("CRC32");
    c.checksum_crc32c = g("CRC32C");
    c.checksum_crc64nvme = g("CRC64NVME");
    c.checksum_sha1 = g("SHA1");
    c.checksum_sha256 = g("SHA256");
    if !m.attrs.checksums.is_empty() {
        // A single put's checksum covers the whole object; a multipart one says which it is.
        let kind = m.attrs.checksum_type.as_deref().unwrap_or("FULL_OBJECT");
        c.checksum_type = Some(ChecksumType::from(kind.to_string()));
    }
    c
}

/// The stored Content-Type, or S3's default for objects stored without one.
pub(super) fn content_type_of(m: &ObjectMeta) -> Option<ContentType> {
    m.attrs
        .content_type
        .as_deref()
        .unwrap_or("binary/octet-stream")
        .parse()
        .ok()
}

/// The `x-amz-meta-*` an object shows: its user metadata and its POSIX attributes.
pub(super) fn user_metadata(m: &ObjectMeta) -> Option<Metadata> {
    let shown = engine::posix::shown(&m.attrs.user_metadata, m.attrs.posix.as_ref());
    (!shown.is_empty()).then(|| shown.into_iter().collect())
}

pub(super) fn expires_of(m: &ObjectMeta) -> Option<Timestamp> {
    m.attrs
        .expires
        .as_deref()
        .and_then(|e| Timestamp::parse(TimestampFormat::HttpDate, e).ok())
}

/// A continuation token for a listing that goes on after `name`: opaque to the client.
pub(super) fn continuation_token(name: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    base64::Engine::encode(&URL_SAFE_NO_PAD, name)
}

/// The name a continuation token goes on after (`InvalidArgument` for anything this server
/// did not hand out).
pub(super) fn continue_after(token: Option<&str>) -> S3Result<Option<String>> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let Some(t) = token else {
        return Ok(None);
    };
    base64::Engine::decode(&URL_SAFE_NO_PAD, t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(|| {
            s3_error!(
                InvalidArgument,
                "The continuation token provided is incorrect"
            )
        })
}
