//! The operations behind the request subjects: check the signature, authorise the key as S3
//! would, call the engine, answer with a raw body or JSON, and errors with S3's codes.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use engine::access::{AccessRequest, Action, Listing, Origin};
use engine::{Engine, ObjectAttrs, Principal, PutOptions};
use futures::StreamExt;
use serde_json::{json, Value};

use super::wire::{self, Headers};
use super::{NatsSettings, NatsStatus};

/// Room left in a reply for its headers when a body must fit under the server's max payload.
const HEADER_ROOM: usize = 8 * 1024;
/// Most keys one `listobjects` answers.
const MAX_KEYS: usize = 1000;

/// An error reply: S3's code, the status it would have over HTTP, a message.
#[derive(Debug)]
pub struct Failure {
    code: String,
    status: u16,
    message: String,
}

impl Failure {
    fn new(code: &str, status: u16, message: impl Into<String>) -> Failure {
        Failure {
            code: code.to_string(),
            status,
            message: message.into(),
        }
    }

    fn invalid(message: impl Into<String>) -> Failure {
        Failure::new("InvalidRequest", 400, message)
    }
}

impl From<engine::Error> for Failure {
    fn from(e: engine::Error) -> Failure {
        let s3 = crate::errors::s3_err(e);
        let status = s3
            .status_code()
            .unwrap_or_else(|| {
                s3.code()
                    .status_code()
                    .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR)
            })
            .as_u16();
        Failure {
            code: s3.code().as_str().to_string(),
            status,
            message: s3.message().unwrap_or_default().to_string(),
        }
    }
}

impl From<wire::WireError> for Failure {
    fn from(e: wire::WireError) -> Failure {
        let status = if matches!(e, wire::WireError::Malformed(_) | wire::WireError::Digest) {
            400
        } else {
            403
        };
        Failure::new(e.code(), status, e.to_string())
    }
}

/// A successful reply: headers and a body.
pub struct Reply {
    headers: Headers,
    body: Bytes,
}

impl Reply {
    fn json(v: Value) -> Reply {
        Reply {
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Bytes::from(v.to_string()),
        }
    }
}

type Outcome = Result<Reply, Failure>;

/// A verified request: who sent it and what it carries.
struct Request {
    who: Principal,
    op: String,
    headers: Headers,
    body: Bytes,
}

impl Request {
    fn header(&self, name: &str) -> Result<Option<&str>, Failure> {
        Ok(wire::one(&self.headers, name)?)
    }

    fn need(&self, name: &str) -> Result<&str, Failure> {
        self.header(name)?.filter(|v| !v.is_empty()).ok_or_else(|| {
            Failure::invalid(format!("the {} request needs a {name} header", self.op))
        })
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, Failure> {
        self.header(name)?
            .map(|v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|_| Failure::invalid(format!("header {name}: {v:?} is not a number")))
            })
            .transpose()
    }

    /// Content headers and `Meta-NAME` user metadata.
    fn attrs(&self) -> ObjectAttrs {
        let mut a = ObjectAttrs::default();
        for (n, v) in &self.headers {
            let lower = n.to_ascii_lowercase();
            match lower.as_str() {
                "content-type" => a.content_type = Some(v.clone()),
                "content-encoding" => a.content_encoding = Some(v.clone()),
                "content-disposition" => a.content_disposition = Some(v.clone()),
                "cache-control" => a.cache_control = Some(v.clone()),
                _ => {
                    if let Some(m) = lower.strip_prefix("meta-") {
                        a.user_metadata.insert(m.to_string(), v.clone());
                    }
                }
            }
        }
        a
    }
}

/// Everything serving a request needs.
pub struct Door {
    client: async_nats::Client,
    engine: Engine,
    keys: crate::auth::KeyStore,
    replay: wire::ReplayGuard,
    window: u64,
    prefix: String,
    origin: Origin,
    status: Arc<NatsStatus>,
}

fn rfc3339(ns: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(ns as i128)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn object_json(m: &engine::ObjectMeta) -> Value {
    json!({
        "Key": m.key,
        "Size": m.size,
        "ETag": format!("\"{}\"", m.etag),
        "LastModified": rfc3339(m.last_modified_ns),
    })
}

impl Door {
    /// The door over `client`.
    pub fn new(
        client: async_nats::Client,
        engine: Engine,
        keys: crate::auth::KeyStore,
        s: &NatsSettings,
        status: Arc<NatsStatus>,
    ) -> Door {
        Door {
            client,
            engine,
            keys,
            replay: wire::ReplayGuard::default(),
            window: s.replay_window,
            prefix: s.prefix.clone(),
            origin: Origin {
                secure_transport: s.tls(),
                source_ip: None,
            },
            status,
        }
    }

    /// Answers one message (a message without a reply subject is dropped: nobody listens).
    pub async fn serve(&self, msg: async_nats::Message) {
        let Some(reply_to) = msg.reply.clone() else {
            return;
        };
        let subject = msg.subject.to_string();
        let headers: Headers = msg
            .headers
            .as_ref()
            .map(|h| {
                h.iter()
                    .flat_map(|(n, vs)| {
                        vs.iter()
                            .map(move |v| (n.to_string(), v.as_str().to_string()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let started = std::time::Instant::now();
        let op = subject
            .strip_prefix(&self.prefix)
            .and_then(|s| s.strip_prefix('.'))
            .unwrap_or("")
            .to_string();
        let outcome = match self.verify(&subject, &op, headers, msg.payload) {
            Ok(req) => {
                let key = match &req.who {
                    Principal::Key(k) => k.clone(),
                    _ => "admin".into(),
                };
                let r = self.dispatch(&req).await;
                tracing::info!(
                    op = %op, access_key = %key, ok = r.is_ok(),
                    error_code = r.as_ref().err().map(|f| f.code.as_str()).unwrap_or(""),
                    latency_ms = started.elapsed().as_secs_f64() * 1e3, "NATS request"
                );
                r
            }
            Err(f) => {
                tracing::info!(op = %op, error_code = %f.code, error = %f.message, "NATS request refused");
                Err(f)
            }
        };
        let (headers, body) = match outcome {
            Ok(r) => {
                self.status.answered_ok.fetch_add(1, Ordering::Relaxed);
                let mut h = r.headers;
                h.push(("Status".into(), "200".into()));
                (h, r.body)
            }
            Err(f) => {
                self.status.answered_error.fetch_add(1, Ordering::Relaxed);
                let body = json!({"Code": f.code, "Message": f.message}).to_string();
                (
                    vec![
                        ("Status".into(), f.status.to_string()),
                        ("Error-Code".into(), f.code.clone()),
                        ("Content-Type".into(), "application/json".into()),
                    ],
                    Bytes::from(body),
                )
            }
        };
        let mut map = async_nats::HeaderMap::new();
        for (n, v) in headers {
            map.append(n.as_str(), v.as_str());
        }
        if let Err(e) = self.client.publish_with_headers(reply_to, map, body).await {
            tracing::warn!("NATS: reply not sent: {e}");
        }
    }

    /// Signature, replay window, key.
    fn verify(
        &self,
        subject: &str,
        op: &str,
        headers: Headers,
        body: Bytes,
    ) -> Result<Request, Failure> {
        let signed = wire::parse(&headers)?;
        let (secret, who) = self.keys.lookup(&signed.access_key).map_err(|e| {
            let (code, message) = e.code_and_message();
            Failure::new(
                code,
                if code == "InternalError" { 500 } else { 403 },
                message,
            )
        })?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        wire::verify(&signed, &secret, subject, &headers, &body, now, self.window)?;
        self.replay.admit(
            &signed.access_key,
            &signed.nonce,
            now,
            signed.unix + self.window as i64,
        )?;
        Ok(Request {
            who,
            op: op.to_string(),
            headers,
            body,
        })
    }

    fn allow(
        &self,
        req: &Request,
        action: Action,
        bucket: &str,
        key: Option<&str>,
        listing: Option<Listing<'_>>,
    ) -> Result<(), Failure> {
        self.engine
            .authorize(
                &req.who,
                self.origin,
                AccessRequest {
                    action,
                    bucket,
                    key,
                    version_id: None,
                    listing,
                    headers: None,
                },
            )
            .map_err(Failure::from)
    }

    /// The largest body a reply may carry.
    fn max_body(&self) -> usize {
        self.client
            .server_info()
            .max_payload
            .saturating_sub(HEADER_ROOM)
    }

    async fn dispatch(&self, r: &Request) -> Outcome {
        match r.op.as_str() {
            "createbucket" => self.create_bucket(r).await,
            "deletebucket" => self.delete_bucket(r).await,
            "listbuckets" => self.list_buckets(r),
            "putobject" => self.put_object(r).await,
            "getobject" => self.get_object(r).await,
            "headobject" => self.head_object(r),
            "listobjects" => self.list_objects(r),
            "deleteobject" => self.delete_object(r).await,
            "copyobject" => self.copy_object(r).await,
            "multipart.init" => self.multipart_init(r).await,
            "multipart.upload" => self.multipart_upload(r).await,
            "multipart.complete" => self.multipart_complete(r).await,
            "multipart.abort" => self.multipart_abort(r).await,
            other => Err(Failure::invalid(format!(
                "{}.{other} is not an operation (docs/nats.md lists them)",
                self.prefix
            ))),
        }
    }

    async fn create_bucket(&self, r: &Request) -> Outcome {
        let b = r.need("Bucket")?;
        self.allow(r, Action::CreateBucket, b, None, None)?;
        self.engine
            .create_bucket_as(b, r.who.owner_id(), false)
            .await?;
        Ok(Reply::json(json!({ "Bucket": b })))
    }

    async fn delete_bucket(&self, r: &Request) -> Outcome {
        let b = r.need("Bucket")?;
        self.allow(r, Action::DeleteBucket, b, None, None)?;
        self.engine.delete_bucket(b).await?;
        Ok(Reply::json(json!({})))
    }

    fn list_buckets(&self, r: &Request) -> Outcome {
        self.allow(r, Action::ListAllMyBuckets, "", None, None)?;
        let buckets: Vec<Value> = self
            .engine
            .list_buckets_for(&r.who)?
            .iter()
            .map(|b| json!({"Name": b.name, "CreationDate": rfc3339(b.created_ns)}))
            .collect();
        Ok(Reply::json(json!({ "Buckets": buckets })))
    }

    async fn put_object(&self, r: &Request) -> Outcome {
        let (b, k) = (r.need("Bucket")?, r.need("Key")?);
        self.allow(r, Action::PutObject, b, Some(k), None)?;
        let meta = self
            .engine
            .put_object(
                b,
                k,
                &r.body[..],
                PutOptions {
                    attrs: r.attrs(),
                    ..Default::default()
                },
            )
            .await?;
        Ok(Reply::json(
            json!({"ETag": format!("\"{}\"", meta.etag), "Size": meta.size}),
        ))
    }

    async fn get_object(&self, r: &Request) -> Outcome {
        let (b, k) = (r.need("Bucket")?, r.need("Key")?);
        self.allow(r, Action::GetObject, b, Some(k), None)?;
        let range = match r.header("Range")? {
            Some(v) => Some(parse_range(v)?),
            None => None,
        };
        let meta = self.engine.head_object(b, k)?;
        let (start, end) = match &range {
            Some(rg) => rg.resolve(meta.size)?,
            None => (0, meta.size),
        };
        let max = self.max_body();
        if (end - start) as usize > max {
            return Err(Failure::new(
                "EntityTooLarge",
                400,
                format!(
                    "{} bytes do not fit in one reply: this NATS server's max payload leaves {max} bytes for a body; read the object in ranges (Range: bytes=A-B) or over S3",
                    end - start
                ),
            ));
        }
        let g = self.engine.get_object(b, k, range).await?;
        let mut body = BytesMut::with_capacity((g.range.1 - g.range.0) as usize);
        let mut stream = g.body;
        while let Some(piece) = stream.next().await {
            body.extend_from_slice(&piece?);
        }
        let m = &g.meta;
        let mut headers: Headers = vec![
            ("ETag".into(), format!("\"{}\"", m.etag)),
            ("Content-Length".into(), body.len().to_string()),
            ("Last-Modified".into(), rfc3339(m.last_modified_ns)),
            ("Object-Size".into(), m.size.to_string()),
        ];
        if range.is_some() {
            headers.push((
                "Content-Range".into(),
                format!(
                    "bytes {}-{}/{}",
                    g.range.0,
                    g.range.1.saturating_sub(1),
                    m.size
                ),
            ));
        }
        if let Some(ct) = &m.attrs.content_type {
            headers.push(("Content-Type".into(), ct.clone()));
        }
        for (n, v) in &m.attrs.user_metadata {
            headers.push((format!("Meta-{n}"), v.clone()));
        }
        Ok(Reply {
            headers,
            body: body.freeze(),
        })
    }

    fn head_object(&self, r: &Request) -> Outcome {
        let (b, k) = (r.need("Bucket")?, r.need("Key")?);
        self.allow(r, Action::GetObject, b, Some(k), None)?;
        let m = self.engine.head_object(b, k)?;
        let mut v = object_json(&m);
        v["ContentType"] = json!(m.attrs.content_type);
        v["Metadata"] = json!(m.attrs.user_metadata);
        Ok(Reply::json(v))
    }

    fn list_objects(&self, r: &Request) -> Outcome {
        let b = r.need("Bucket")?;
        let prefix = r.header("Prefix")?.unwrap_or("").to_string();
        let delimiter = r.header("Delimiter")?.map(str::to_string);
        let max_keys_text = r.header("Max-Keys")?;
        let max_keys = r
            .number::<usize>("Max-Keys")?
            .unwrap_or(MAX_KEYS)
            .min(MAX_KEYS);
        self.allow(
            r,
            Action::ListBucket,
            b,
            None,
            Some(Listing {
                prefix: &prefix,
                delimiter: delimiter.as_deref(),
                max_keys: max_keys_text,
            }),
        )?;
        let page = self.engine.list_objects(
            b,
            &engine::ListQuery {
                prefix,
                delimiter,
                start_after: r.header("Start-After")?.map(str::to_string),
                max_keys,
            },
        )?;
        Ok(Reply::json(json!({
            "Contents": page.objects.iter().map(object_json).collect::<Vec<_>>(),
            "CommonPrefixes": page.common_prefixes,
            "IsTruncated": page.is_truncated,
            "NextStartAfter": page.next_marker,
        })))
    }

    async fn delete_object(&self, r: &Request) -> Outcome {
        let (b, k) = (r.need("Bucket")?, r.need("Key")?);
        self.allow(r, Action::DeleteObject, b, Some(k), None)?;
        self.engine.delete_object(b, k).await?;
        Ok(Reply::json(json!({})))
    }

    async fn copy_object(&self, r: &Request) -> Outcome {
        let (sb, sk) = (r.need("Source-Bucket")?, r.need("Source-Key")?);
        let (b, k) = (r.need("Bucket")?, r.need("Key")?);
        self.allow(r, Action::GetObject, sb, Some(sk), None)?;
        self.allow(r, Action::PutObject, b, Some(k), None)?;
        let m = self
            .engine
            .copy_object(sb, sk, b, k, Default::default())
            .await?;
        Ok(Reply::json(json!({
            "ETag": format!("\"{}\"", m.etag),
            "LastModified": rfc3339(m.last_modified_ns),
        })))
    }

    async fn multipart_init(&self, r: &Request) -> Outcome {
        let (b, k) = (r.need("Bucket")?, r.need("Key")?);
        self.allow(r, Action::PutObject, b, Some(k), None)?;
        let id = self.engine.create_multipart_upload(b, k, r.attrs()).await?;
        Ok(Reply::json(json!({"Bucket": b, "Key": k, "UploadId": id})))
    }

    async fn multipart_upload(&self, r: &Request) -> Outcome {
        let (b, k, id) = (r.need("Bucket")?, r.need("Key")?, r.need("Upload-Id")?);
        let n = r.number::<u32>("Part-Number")?.ok_or_else(|| {
            Failure::invalid("the multipart.upload request needs a Part-Number header")
        })?;
        self.allow(r, Action::PutObject, b, Some(k), None)?;
        let p = self
            .engine
            .upload_part(b, k, id, n, &r.body[..], None)
            .await?;
        Ok(Reply::json(json!({
            "PartNumber": p.part_number,
            "ETag": format!("\"{}\"", p.etag),
            "Size": p.size,
        })))
    }

    async fn multipart_complete(&self, r: &Request) -> Outcome {
        let (b, k, id) = (r.need("Bucket")?, r.need("Key")?, r.need("Upload-Id")?);
        self.allow(r, Action::PutObject, b, Some(k), None)?;
        let parts = parse_parts(&r.body)?;
        let m = self
            .engine
            .complete_multipart_upload(
                b,
                k,
                id,
                parts,
                PutOptions {
                    // One message carries a part: any size but the last is allowed.
                    min_part_size: Some(1),
                    ..Default::default()
                },
            )
            .await?;
        Ok(Reply::json(json!({
            "Bucket": b,
            "Key": k,
            "ETag": format!("\"{}\"", m.etag),
            "Size": m.size,
        })))
    }

    async fn multipart_abort(&self, r: &Request) -> Outcome {
        let (b, k, id) = (r.need("Bucket")?, r.need("Key")?, r.need("Upload-Id")?);
        self.allow(r, Action::AbortMultipartUpload, b, Some(k), None)?;
        self.engine.abort_multipart_upload(b, k, id).await?;
        Ok(Reply::json(json!({})))
    }
}

/// `bytes=A-B`, `bytes=A-` or `bytes=-N`.
pub fn parse_range(v: &str) -> Result<engine::ByteRange, Failure> {
    let bad = || {
        Failure::invalid(format!(
            "Range {v:?}: expected bytes=A-B, bytes=A- or bytes=-N"
        ))
    };
    let spec = v.trim().strip_prefix("bytes=").ok_or_else(bad)?;
    let (a, b) = spec.split_once('-').ok_or_else(bad)?;
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    Ok(match (a.trim().is_empty(), b.trim().is_empty()) {
        (true, false) => engine::ByteRange::Suffix(num(b)?),
        (false, true) => engine::ByteRange::From(num(a)?),
        (false, false) => {
            let (a, b) = (num(a)?, num(b)?);
            if b < a {
                return Err(bad());
            }
            engine::ByteRange::FromTo(a, b)
        }
        (true, true) => return Err(bad()),
    })
}

/// The body of `multipart.complete`: `{"Parts": [{"PartNumber": 1, "ETag": "…"}, …]}`.
pub fn parse_parts(body: &[u8]) -> Result<Vec<(u32, String)>, Failure> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Part {
        #[serde(rename = "PartNumber")]
        number: u32,
        #[serde(rename = "ETag")]
        etag: String,
    }
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Body {
        #[serde(rename = "Parts")]
        parts: Vec<Part>,
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| {
        Failure::new(
            "MalformedJSON",
            400,
            format!("multipart.complete wants {{\"Parts\": [{{\"PartNumber\": N, \"ETag\": \"…\"}}]}}: {e}"),
        )
    })?;
    if b.parts.is_empty() || b.parts.len() > 10_000 {
        return Err(Failure::new(
            "MalformedJSON",
            400,
            "multipart.complete needs 1 to 10000 parts",
        ));
    }
    Ok(b.parts.into_iter().map(|p| (p.number, p.etag)).collect())
}

/// The metadata of a reply as a map (for tests and clients written in Rust).
pub fn reply_headers(h: &async_nats::HeaderMap) -> BTreeMap<String, String> {
    h.iter()
        .map(|(n, v)| {
            (
                n.to_string(),
                v.iter().map(|x| x.as_str()).collect::<Vec<_>>().join(","),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_part_lists() {
        assert!(matches!(
            parse_range("bytes=0-9"),
            Ok(engine::ByteRange::FromTo(0, 9))
        ));
        assert!(matches!(
            parse_range("bytes=5-"),
            Ok(engine::ByteRange::From(5))
        ));
        assert!(matches!(
            parse_range("bytes=-5"),
            Ok(engine::ByteRange::Suffix(5))
        ));
        for bad in ["0-9", "bytes=9-1", "bytes=-", "bytes=a-b", "bytes=1"] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_parts(br#"{"Parts":[{"PartNumber":1,"ETag":"\"ab\""}]}"#).unwrap(),
            vec![(1, "\"ab\"".to_string())]
        );
        for bad in [
            &b"{}"[..],
            b"[]",
            br#"{"Parts":[]}"#,
            br#"{"Parts":[{"PartNumber":-1,"ETag":"x"}]}"#,
            b"\xff",
        ] {
            assert!(parse_parts(bad).is_err());
        }
    }
}
