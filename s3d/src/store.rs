//! The S3 operations: a thin mapping of s3s requests onto the engine.

use std::collections::BTreeMap;

use engine::{ByteRange, CopyOptions, Engine, ListQuery, ObjectAttrs, ObjectMeta, PutOptions};
use futures::StreamExt;
use s3s::dto::*;
use s3s::{s3_error, S3Request, S3Response, S3Result, S3};
use tokio_util::io::StreamReader;

use crate::body::{Expected, VerifyingBody, CHECKSUMS};
use crate::errors::s3_err;

/// The S3 service over one engine.
#[derive(Clone)]
pub struct Store {
    /// The engine.
    pub engine: Engine,
    /// Region reported by GetBucketLocation.
    pub region: String,
    /// How long a request body may stall.
    pub body_idle: std::time::Duration,
    /// Whether S3 clients may set set-uid/set-gid bits and device nodes (`auth.allow_setid_and_devices`).
    pub allow_setid_and_devices: bool,
}

const MAX_KEYS: i32 = 1000;

fn ts(ns: i64) -> Timestamp {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .into()
}

fn secs(ns: i64) -> i64 {
    ns.div_euclid(1_000_000_000)
}

fn ts_secs(t: &Timestamp) -> i64 {
    time::OffsetDateTime::from(t.clone()).unix_timestamp()
}

fn etag(m: &ObjectMeta) -> ETag {
    ETag::Strong(m.etag.clone())
}

fn owner() -> Owner {
    Owner {
        display_name: Some("predastore".into()),
        id: Some("predastore".into()),
    }
}

/// Accepts `versionId=null` (every object is its one version `null`); refuses others.
fn check_version(v: &Option<String>) -> S3Result<()> {
    match v.as_deref() {
        None | Some("null") => Ok(()),
        Some(_) => Err(s3_error!(
            NoSuchVersion,
            "The specified version does not exist."
        )),
    }
}

/// The attributes of an object put (or copied with replaced metadata) to `key`, from the
/// request's headers. POSIX attributes given as user metadata become the object's
/// ([`engine::posix`]).
#[allow(clippy::too_many_arguments)]
fn attrs_from(
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

fn check_tag(k: &str, v: &str) -> S3Result<()> {
    if k.is_empty() || k.chars().count() > 128 || v.chars().count() > 256 {
        return Err(s3_error!(
            InvalidTag,
            "The tag key or value is too long or empty"
        ));
    }
    Ok(())
}

fn urldecode(s: &str) -> Option<String> {
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
fn urlencode(s: &str) -> String {
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

fn expected_from(
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

/// What a PutObject or UploadPart input says its body is (Content-MD5, checksums, trailer).
macro_rules! expected {
    ($i:expr, $trailers:expr, $extensions:expr) => {
        expected_from(
            $i.content_md5.as_ref(),
            $i.checksum_algorithm.as_ref(),
            [
                $i.checksum_crc32.as_ref(),
                $i.checksum_crc32c.as_ref(),
                $i.checksum_crc64nvme.as_ref(),
                $i.checksum_sha1.as_ref(),
                $i.checksum_sha256.as_ref(),
            ],
            $trailers,
        )
        .map(|mut e| {
            e.framing = $extensions
                .get::<std::sync::Arc<crate::framing::Framing>>()
                .cloned();
            e
        })
    };
}

/// Evaluates If-Match / If-None-Match / If-(Un)Modified-Since against an object (RFC 9110 order).
fn check_conditions(
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

fn checksums_out(m: &ObjectMeta, mode: Option<&ChecksumMode>, full: bool) -> Checksum {
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
    c
}

/// The stored Content-Type, or S3's default for objects stored without one.
fn content_type_of(m: &ObjectMeta) -> Option<ContentType> {
    m.attrs
        .content_type
        .as_deref()
        .unwrap_or("binary/octet-stream")
        .parse()
        .ok()
}

/// The `x-amz-meta-*` an object shows: its user metadata and its POSIX attributes.
fn user_metadata(m: &ObjectMeta) -> Option<Metadata> {
    let shown = engine::posix::shown(&m.attrs.user_metadata, m.attrs.posix.as_ref());
    (!shown.is_empty()).then(|| shown.into_iter().collect())
}

fn expires_of(m: &ObjectMeta) -> Option<Timestamp> {
    m.attrs
        .expires
        .as_deref()
        .and_then(|e| Timestamp::parse(TimestampFormat::HttpDate, e).ok())
}

fn object_entry(m: &ObjectMeta, url: bool, fetch_owner: bool) -> Object {
    Object {
        e_tag: Some(etag(m)),
        key: Some(if url {
            urlencode(&m.key)
        } else {
            m.key.clone()
        }),
        last_modified: Some(ts(m.last_modified_ns)),
        size: Some(m.size as i64),
        storage_class: Some(ObjectStorageClass::from_static(
            ObjectStorageClass::STANDARD,
        )),
        owner: fetch_owner.then(owner),
        ..Default::default()
    }
}

fn prefixes(cps: Vec<String>, enc: impl Fn(String) -> String) -> Option<CommonPrefixList> {
    Some(
        cps.into_iter()
            .map(|p| CommonPrefix {
                prefix: Some(enc(p)),
            })
            .collect(),
    )
}

fn max_keys(v: Option<i32>) -> S3Result<usize> {
    match v {
        Some(n) if n < 0 => Err(s3_error!(InvalidArgument, "max-keys must be non-negative")),
        Some(n) => Ok(n.min(MAX_KEYS) as usize),
        None => Ok(MAX_KEYS as usize),
    }
}

fn is_url(e: &Option<EncodingType>) -> S3Result<bool> {
    match e {
        None => Ok(false),
        Some(e) if e.as_str() == EncodingType::URL => Ok(true),
        Some(_) => Err(s3_error!(
            InvalidArgument,
            "Invalid Encoding Method specified in Request"
        )),
    }
}

/// GetObjectOutput and HeadObjectOutput share the object's headers: fills them, plus `$extra`.
macro_rules! object_output {
    ($ty:ident, $m:expr, $c:expr, { $($field:ident: $val:expr),* $(,)? }) => {
        $ty {
            accept_ranges: Some("bytes".into()),
            e_tag: Some(etag($m)),
            last_modified: Some(ts($m.last_modified_ns)),
            content_type: content_type_of($m),
            content_encoding: $m.attrs.content_encoding.clone(),
            content_disposition: $m.attrs.content_disposition.clone(),
            content_language: $m.attrs.content_language.clone(),
            cache_control: $m.attrs.cache_control.clone(),
            expires: expires_of($m),
            metadata: user_metadata($m),
            checksum_crc32: $c.checksum_crc32,
            checksum_crc32c: $c.checksum_crc32c,
            checksum_crc64nvme: $c.checksum_crc64nvme,
            checksum_sha1: $c.checksum_sha1,
            checksum_sha256: $c.checksum_sha256,
            $($field: $val,)*
            ..Default::default()
        }
    };
}

impl Store {
    async fn store_body(
        &self,
        bucket: &str,
        key: &str,
        body: Option<StreamingBlob>,
        expected: Expected,
        mut opts: PutOptions,
    ) -> S3Result<ObjectMeta> {
        let body = body.unwrap_or_else(crate::body::empty);
        let vb = VerifyingBody::new(body, expected, self.body_idle);
        opts.late_checksums = Some(vb.verified.clone());
        let mut reader = StreamReader::new(vb);
        let res = self.engine.put_object(bucket, key, &mut reader, opts).await;
        if res.is_err() {
            drain(&mut reader).await;
        }
        res.map_err(s3_err)
    }
}

/// After a put or part failed in the middle of its body (full disks, say), reads the rest of
/// the body and drops it: clients send the whole body before they read the answer, so without
/// this they see a reset connection (and retry) instead of the error. The body's idle timeout
/// still applies. A body not started is left alone (a client waiting on `Expect:
/// 100-continue` gets the error without sending it).
async fn drain(reader: &mut StreamReader<VerifyingBody, bytes::Bytes>) {
    if reader.get_ref().unfinished() {
        let _ = tokio::io::copy(reader, &mut tokio::io::sink()).await;
    }
}

#[async_trait::async_trait]
impl S3 for Store {
    async fn list_buckets(
        &self,
        _req: S3Request<ListBucketsInput>,
    ) -> S3Result<S3Response<ListBucketsOutput>> {
        let buckets = self
            .engine
            .list_buckets()
            .map_err(s3_err)?
            .into_iter()
            .map(|b| Bucket {
                name: Some(b.name),
                creation_date: Some(ts(b.created_ns)),
                bucket_region: Some(self.region.clone()),
            })
            .collect();
        Ok(S3Response::new(ListBucketsOutput {
            buckets: Some(buckets),
            owner: Some(owner()),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        req: S3Request<CreateBucketInput>,
    ) -> S3Result<S3Response<CreateBucketOutput>> {
        let b = &req.input.bucket;
        if let Some(loc) = req
            .input
            .create_bucket_configuration
            .as_ref()
            .and_then(|c| c.location_constraint.as_ref())
        {
            if loc.as_str() != self.region
                && !(self.region == "us-east-1" && loc.as_str().is_empty())
            {
                return Err(s3_error!(
                    InvalidLocationConstraint,
                    "The specified location-constraint is not valid: this server is in {}",
                    self.region
                ));
            }
        }
        self.engine.create_bucket(b).await.map_err(s3_err)?;
        Ok(S3Response::new(CreateBucketOutput {
            location: Some(format!("/{b}")),
        }))
    }

    async fn delete_bucket(
        &self,
        req: S3Request<DeleteBucketInput>,
    ) -> S3Result<S3Response<DeleteBucketOutput>> {
        self.engine
            .delete_bucket(&req.input.bucket)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(DeleteBucketOutput {}))
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.engine.head_bucket(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(HeadBucketOutput {
            bucket_region: Some(self.region.clone()),
            ..Default::default()
        }))
    }

    async fn get_bucket_location(
        &self,
        req: S3Request<GetBucketLocationInput>,
    ) -> S3Result<S3Response<GetBucketLocationOutput>> {
        self.engine.head_bucket(&req.input.bucket).map_err(s3_err)?;
        let loc = (self.region != "us-east-1")
            .then(|| BucketLocationConstraint::from(self.region.clone()));
        Ok(S3Response::new(GetBucketLocationOutput {
            location_constraint: loc,
        }))
    }

    async fn get_bucket_versioning(
        &self,
        req: S3Request<GetBucketVersioningInput>,
    ) -> S3Result<S3Response<GetBucketVersioningOutput>> {
        self.engine.head_bucket(&req.input.bucket).map_err(s3_err)?;
        Ok(S3Response::new(GetBucketVersioningOutput::default()))
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        let i = req.input;
        let expected = expected!(i, req.trailing_headers, req.extensions)?;
        let attrs = attrs_from(
            &i.key,
            i.content_type.map(|c| c.to_string()),
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
            i.metadata,
            i.tagging,
            self.allow_setid_and_devices,
        )?;
        let opts = PutOptions {
            attrs,
            if_none_match: i.if_none_match.as_ref().is_some_and(|c| c.is_any()),
            if_match: i
                .if_match
                .as_ref()
                .and_then(|c| c.as_etag())
                .map(|e| e.value().to_string()),
            late_checksums: None,
        };
        if i.if_none_match.as_ref().is_some_and(|c| !c.is_any()) {
            return Err(s3_error!(
                NotImplemented,
                "If-None-Match on PUT supports only '*'"
            ));
        }
        let m = self
            .store_body(&i.bucket, &i.key, i.body, expected, opts)
            .await?;
        let c = checksums_out(
            &m,
            Some(&ChecksumMode::from_static(ChecksumMode::ENABLED)),
            true,
        );
        Ok(S3Response::new(PutObjectOutput {
            e_tag: Some(etag(&m)),
            checksum_crc32: c.checksum_crc32,
            checksum_crc32c: c.checksum_crc32c,
            checksum_crc64nvme: c.checksum_crc64nvme,
            checksum_sha1: c.checksum_sha1,
            checksum_sha256: c.checksum_sha256,
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        let i = req.input;
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
        let g = self
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
                        let (a, b) =
                            engine::part_bounds(m.size, parts, p as u32).map_err(|_| {
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
        Ok(S3Response::new(out))
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        let i = req.input;
        check_version(&i.version_id)?;
        let m = self.engine.head_object(&i.bucket, &i.key).map_err(s3_err)?;
        check_conditions(
            &m,
            i.if_match.as_ref(),
            i.if_none_match.as_ref(),
            i.if_modified_since.as_ref(),
            i.if_unmodified_since.as_ref(),
        )?;
        let (len, content_range) = match (i.part_number, i.range) {
            (Some(p), _) => {
                let (a, b) = self
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
        Ok(S3Response::new(object_output!(HeadObjectOutput, &m, c, {
            content_length: Some(len as i64),
            content_range: content_range,
            parts_count: parts_count,
        })))
    }

    async fn delete_object(
        &self,
        req: S3Request<DeleteObjectInput>,
    ) -> S3Result<S3Response<DeleteObjectOutput>> {
        let i = req.input;
        check_version(&i.version_id)?;
        if let Some(c) = &i.if_match {
            match self.engine.head_object(&i.bucket, &i.key) {
                Ok(m) if c.is_any() || c.as_etag().is_some_and(|e| e.value() == m.etag) => {}
                Ok(_) => {
                    return Err(s3_error!(
                        PreconditionFailed,
                        "At least one of the pre-conditions you specified did not hold"
                    ))
                }
                Err(engine::Error::NoSuchKey { .. }) => {
                    return Err(s3_error!(NoSuchKey, "The specified key does not exist."))
                }
                Err(e) => return Err(s3_err(e)),
            }
        }
        self.engine
            .delete_object(&i.bucket, &i.key)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        req: S3Request<DeleteObjectsInput>,
    ) -> S3Result<S3Response<DeleteObjectsOutput>> {
        let i = req.input;
        self.engine.head_bucket(&i.bucket).map_err(s3_err)?;
        if i.delete.objects.len() > 1000 {
            return Err(s3_error!(MalformedXML, "The XML you provided was not well-formed or did not validate against our published schema (at most 1000 keys)"));
        }
        let quiet = i.delete.quiet.unwrap_or(false);
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for o in i.delete.objects {
            let res = match check_version(&o.version_id) {
                Err(e) => Err(e),
                Ok(()) => self
                    .engine
                    .delete_object(&i.bucket, &o.key)
                    .await
                    .map_err(s3_err),
            };
            match res {
                Ok(_) => {
                    if !quiet {
                        deleted.push(DeletedObject {
                            key: Some(o.key),
                            version_id: o.version_id,
                            ..Default::default()
                        })
                    }
                }
                Err(e) => errors.push(Error {
                    code: Some(e.code().as_str().to_string()),
                    key: Some(o.key),
                    message: e.message().map(String::from),
                    version_id: o.version_id,
                }),
            }
        }
        Ok(S3Response::new(DeleteObjectsOutput {
            deleted: Some(deleted),
            errors: (!errors.is_empty()).then_some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        req: S3Request<CopyObjectInput>,
    ) -> S3Result<S3Response<CopyObjectOutput>> {
        let i = req.input;
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
        check_version(&version_id.as_ref().map(|v| v.to_string()))?;
        let src = self.engine.head_object(sb, sk).map_err(s3_err)?;
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
        if **sb == *i.bucket && **sk == *i.key && !replace && !tagging_replace {
            return Err(s3_error!(InvalidRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes."));
        }
        let mut attrs = if replace {
            let mut a = attrs_from(
                &i.key,
                i.content_type.map(|c| c.to_string()),
                i.content_encoding,
                i.content_disposition,
                i.content_language,
                i.cache_control,
                i.expires,
                i.metadata,
                None,
                self.allow_setid_and_devices,
            )?;
            a.checksums = src.attrs.checksums.clone();
            a.tags = src.attrs.tags.clone();
            // Kept unless the new metadata gives POSIX attributes.
            a.posix = a.posix.or(src.attrs.posix);
            a
        } else {
            src.attrs.clone()
        };
        if tagging_replace {
            attrs.tags = parse_tagging(i.tagging.as_deref().unwrap_or(""))?;
        }
        let m = self
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
                },
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(CopyObjectOutput {
            copy_object_result: Some(CopyObjectResult {
                e_tag: Some(etag(&m)),
                last_modified: Some(ts(m.last_modified_ns)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        req: S3Request<ListObjectsInput>,
    ) -> S3Result<S3Response<ListObjectsOutput>> {
        let i = req.input;
        let url = is_url(&i.encoding_type)?;
        let q = ListQuery {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            start_after: i.marker.clone().filter(|m| !m.is_empty()),
            max_keys: max_keys(i.max_keys)?,
        };
        let page = self.engine.list_objects(&i.bucket, &q).map_err(s3_err)?;
        let enc = |s: String| if url { urlencode(&s) } else { s };
        Ok(S3Response::new(ListObjectsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(q.prefix.clone())),
            marker: Some(i.marker.map(enc).unwrap_or_default()),
            max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
            is_truncated: Some(page.is_truncated),
            next_marker: if page.is_truncated {
                page.next_marker.map(enc)
            } else {
                None
            },
            contents: Some(
                page.objects
                    .iter()
                    .map(|o| object_entry(o, url, true))
                    .collect(),
            ),
            common_prefixes: prefixes(page.common_prefixes, enc),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(enc),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        let i = req.input;
        let url = is_url(&i.encoding_type)?;
        let token_marker = match &i.continuation_token {
            Some(t) => Some(
                base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, t)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .ok_or_else(|| {
                        s3_error!(
                            InvalidArgument,
                            "The continuation token provided is incorrect"
                        )
                    })?,
            ),
            None => None,
        };
        let start_after = match (token_marker, i.start_after.clone()) {
            (Some(t), Some(s)) => Some(t.max(s)),
            (t, s) => t.or(s).filter(|m| !m.is_empty()),
        };
        let q = ListQuery {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            start_after,
            max_keys: max_keys(i.max_keys)?,
        };
        let page = self.engine.list_objects(&i.bucket, &q).map_err(s3_err)?;
        let enc = |s: String| if url { urlencode(&s) } else { s };
        let key_count = (page.objects.len() + page.common_prefixes.len()) as i32;
        let next = if page.is_truncated {
            page.next_marker.map(|m| {
                base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, m)
            })
        } else {
            None
        };
        let fetch_owner = i.fetch_owner.unwrap_or(false);
        Ok(S3Response::new(ListObjectsV2Output {
            name: Some(i.bucket),
            prefix: Some(enc(q.prefix.clone())),
            max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
            key_count: Some(key_count),
            continuation_token: i.continuation_token,
            is_truncated: Some(page.is_truncated),
            next_continuation_token: next,
            contents: Some(
                page.objects
                    .iter()
                    .map(|o| object_entry(o, url, fetch_owner))
                    .collect(),
            ),
            common_prefixes: prefixes(page.common_prefixes, enc),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(enc),
            encoding_type: i.encoding_type,
            start_after: i.start_after.map(enc),
            ..Default::default()
        }))
    }

    async fn list_object_versions(
        &self,
        req: S3Request<ListObjectVersionsInput>,
    ) -> S3Result<S3Response<ListObjectVersionsOutput>> {
        let i = req.input;
        let url = is_url(&i.encoding_type)?;
        let q = ListQuery {
            prefix: i.prefix.clone().unwrap_or_default(),
            delimiter: i.delimiter.clone(),
            start_after: i.key_marker.clone().filter(|m| !m.is_empty()),
            max_keys: max_keys(i.max_keys)?,
        };
        let page = self.engine.list_objects(&i.bucket, &q).map_err(s3_err)?;
        let enc = |s: String| if url { urlencode(&s) } else { s };
        let versions = page
            .objects
            .iter()
            .map(|m| ObjectVersion {
                e_tag: Some(etag(m)),
                is_latest: Some(true),
                key: Some(enc(m.key.clone())),
                last_modified: Some(ts(m.last_modified_ns)),
                owner: Some(owner()),
                size: Some(m.size as i64),
                storage_class: Some(ObjectVersionStorageClass::from_static(
                    ObjectVersionStorageClass::STANDARD,
                )),
                version_id: Some("null".into()),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(ListObjectVersionsOutput {
            name: Some(i.bucket),
            prefix: Some(enc(q.prefix.clone())),
            key_marker: Some(i.key_marker.unwrap_or_default()),
            version_id_marker: Some(i.version_id_marker.unwrap_or_default()),
            max_keys: Some(i.max_keys.unwrap_or(MAX_KEYS)),
            is_truncated: Some(page.is_truncated),
            next_key_marker: if page.is_truncated {
                page.next_marker.clone().map(enc)
            } else {
                None
            },
            next_version_id_marker: page.is_truncated.then(|| "null".to_string()),
            versions: Some(versions),
            common_prefixes: prefixes(page.common_prefixes, enc),
            delimiter: i.delimiter.filter(|d| !d.is_empty()).map(enc),
            encoding_type: i.encoding_type,
            ..Default::default()
        }))
    }

    async fn get_object_tagging(
        &self,
        req: S3Request<GetObjectTaggingInput>,
    ) -> S3Result<S3Response<GetObjectTaggingOutput>> {
        let i = req.input;
        check_version(&i.version_id)?;
        let m = self.engine.head_object(&i.bucket, &i.key).map_err(s3_err)?;
        Ok(S3Response::new(GetObjectTaggingOutput {
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
        }))
    }

    async fn put_object_tagging(
        &self,
        req: S3Request<PutObjectTaggingInput>,
    ) -> S3Result<S3Response<PutObjectTaggingOutput>> {
        let i = req.input;
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
        self.engine
            .update_object_attrs(&i.bucket, &i.key, move |a| a.tags = tags)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(PutObjectTaggingOutput::default()))
    }

    async fn delete_object_tagging(
        &self,
        req: S3Request<DeleteObjectTaggingInput>,
    ) -> S3Result<S3Response<DeleteObjectTaggingOutput>> {
        let i = req.input;
        check_version(&i.version_id)?;
        self.engine
            .update_object_attrs(&i.bucket, &i.key, |a| a.tags.clear())
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(DeleteObjectTaggingOutput::default()))
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        let i = req.input;
        let attrs = attrs_from(
            &i.key,
            i.content_type.map(|c| c.to_string()),
            i.content_encoding,
            i.content_disposition,
            i.content_language,
            i.cache_control,
            i.expires,
            i.metadata,
            i.tagging,
            self.allow_setid_and_devices,
        )?;
        let id = self
            .engine
            .create_multipart_upload(&i.bucket, &i.key, attrs)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(CreateMultipartUploadOutput {
            bucket: Some(i.bucket),
            key: Some(i.key),
            upload_id: Some(id),
            checksum_algorithm: i.checksum_algorithm,
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        let i = req.input;
        let expected = expected!(i, req.trailing_headers, req.extensions)?;
        let body = i.body.unwrap_or_else(crate::body::empty);
        let vb = VerifyingBody::new(body, expected, self.body_idle);
        let verified = vb.verified.clone();
        let mut reader = StreamReader::new(vb);
        let res = self
            .engine
            .upload_part(
                &i.bucket,
                &i.key,
                &i.upload_id,
                i.part_number.max(0) as u32,
                &mut reader,
                BTreeMap::new(),
            )
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

    async fn upload_part_copy(
        &self,
        req: S3Request<UploadPartCopyInput>,
    ) -> S3Result<S3Response<UploadPartCopyOutput>> {
        let i = req.input;
        let CopySource::Bucket {
            bucket: sb,
            key: sk,
            ..
        } = &i.copy_source
        else {
            return Err(s3_error!(
                NotImplemented,
                "Access point copy sources are not supported"
            ));
        };
        let src = self.engine.head_object(sb, sk).map_err(s3_err)?;
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
                let (a, b): (u64, u64) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if b < a || b >= src.size {
                    return Err(s3_error!(
                        InvalidRange,
                        "The requested range is not satisfiable"
                    ));
                }
                Some(ByteRange::FromTo(a, b))
            }
        };
        let g = self
            .engine
            .get_object(sb, sk, range)
            .await
            .map_err(s3_err)?;
        let body = g
            .body
            .map(|r| r.map_err(|e| std::io::Error::other(e.to_string())));
        let p = self
            .engine
            .upload_part(
                &i.bucket,
                &i.key,
                &i.upload_id,
                i.part_number.max(0) as u32,
                StreamReader::new(body),
                BTreeMap::new(),
            )
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(UploadPartCopyOutput {
            copy_part_result: Some(CopyPartResult {
                e_tag: Some(ETag::Strong(p.etag)),
                last_modified: Some(ts(p.last_modified_ns)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        let i = req.input;
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
        if i.if_none_match.as_ref().is_some_and(|c| !c.is_any()) {
            return Err(s3_error!(
                NotImplemented,
                "If-None-Match on CompleteMultipartUpload supports only '*'"
            ));
        }
        let opts = PutOptions {
            if_none_match: i.if_none_match.as_ref().is_some_and(|c| c.is_any()),
            if_match: i
                .if_match
                .as_ref()
                .and_then(|c| c.as_etag())
                .map(|e| e.value().to_string()),
            ..Default::default()
        };
        let m = self
            .engine
            .complete_multipart_upload(&i.bucket, &i.key, &i.upload_id, parts, opts)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(CompleteMultipartUploadOutput {
            bucket: Some(i.bucket.clone()),
            key: Some(i.key.clone()),
            e_tag: Some(etag(&m)),
            location: Some(format!("/{}/{}", i.bucket, i.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        let i = req.input;
        self.engine
            .abort_multipart_upload(&i.bucket, &i.key, &i.upload_id)
            .await
            .map_err(s3_err)?;
        Ok(S3Response::new(AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        req: S3Request<ListPartsInput>,
    ) -> S3Result<S3Response<ListPartsOutput>> {
        let i = req.input;
        let marker = i.part_number_marker.unwrap_or(0).max(0) as u32;
        let max = i.max_parts.unwrap_or(1000).clamp(0, 1000) as usize;
        let page = self
            .engine
            .list_parts(&i.bucket, &i.key, &i.upload_id, marker, max)
            .map_err(s3_err)?;
        Ok(S3Response::new(ListPartsOutput {
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
        }))
    }

    async fn list_multipart_uploads(
        &self,
        req: S3Request<ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<ListMultipartUploadsOutput>> {
        let i = req.input;
        let max = i.max_uploads.unwrap_or(1000).clamp(0, 1000) as usize;
        let page = self
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
        Ok(S3Response::new(ListMultipartUploadsOutput {
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
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn url_codec_roundtrips(s in "\\PC{0,40}") {
            prop_assert_eq!(urldecode(&urlencode(&s)), Some(s));
        }

        #[test]
        fn tagging_parser_never_panics(s in "[a-z%=&+0-9A-F\\PC]{0,80}") {
            let _ = parse_tagging(&s);
        }

        #[test]
        fn operation_names_never_panic(path in "\\PC{0,40}", q in "\\PC{0,40}") {
            let _ = crate::metrics::operation(&http::Method::GET, &path, Some(&q));
        }
    }

    #[test]
    fn tagging_examples() {
        let t = parse_tagging("a=1&b=hello%20world&c=").unwrap();
        assert_eq!(t["b"], "hello world");
        assert_eq!(t["c"], "");
        assert!(parse_tagging("a=%zz").is_err());
        assert!(parse_tagging(&format!("{}=v", "k".repeat(129))).is_err());
    }
}
