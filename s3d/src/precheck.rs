//! Checks made on a request's head before the S3 layer sees it: rules S3 enforces that s3s
//! 0.14.1 does not.
//!
//! - every `x-amz-*` header must be covered by the SigV4 signature (header or presigned form),
//!   so a presigned URL cannot be turned into another operation (`x-amz-copy-source`, …);
//! - the credential scope's region must be the server's region;
//! - SigV2 has the same time window as SigV4: a header-signed request's date within 15 minutes
//!   of the server's clock, a presigned URL valid for at most 7 days;
//! - SigV4 presigned URLs valid for at most 7 days;
//! - XML request bodies larger than [`MAX_XML_BODY`] are refused before they are read.
//!
//! All of these are pure functions of the request head and the clock, so they are unit-tested
//! and fuzzed without a server.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest XML (or JSON) request body accepted: configuration documents, DeleteObjects,
/// CompleteMultipartUpload. 1,000 keys of 1,024 bytes each fit several times over.
pub const MAX_XML_BODY: u64 = 20 * 1024 * 1024;

/// How far a signed request's time may be from the server's clock (as SigV4 in s3s).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// Longest validity of a presigned URL (SigV4's `X-Amz-Expires` cap, applied to SigV2 too).
pub const MAX_PRESIGNED: Duration = Duration::from_secs(7 * 24 * 3600);

/// Headers whose value is part of every SigV4 string to sign, whether listed in
/// `SignedHeaders` or not: changing them changes the signature.
const IMPLICITLY_SIGNED: [&str; 2] = ["x-amz-date", "x-amz-content-sha256"];

/// Configuration subresources whose PUT carries an XML (or JSON) document.
const CONFIG_SUBRESOURCES: [&str; 22] = [
    "acl",
    "tagging",
    "lifecycle",
    "policy",
    "cors",
    "versioning",
    "object-lock",
    "retention",
    "legal-hold",
    "notification",
    "encryption",
    "website",
    "logging",
    "replication",
    "requestPayment",
    "ownershipControls",
    "publicAccessBlock",
    "accelerate",
    "analytics",
    "inventory",
    "metrics",
    "intelligent-tiering",
];

/// A request refused before the S3 layer: an S3 error to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP status.
    pub status: u16,
    /// S3 error code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Extra elements of the error document, as S3 sends them (`HeadersNotSigned`, `Region`).
    pub extra: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal {
            status,
            code,
            message: message.into(),
            extra: Vec::new(),
        }
    }

    fn with(mut self, tag: &'static str, value: impl Into<String>) -> Refusal {
        self.extra.push((tag, value.into()));
        self
    }

    /// The S3 error document for this refusal.
    pub fn xml(&self) -> String {
        let mut s = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{}</Code><Message>{}</Message>",
            self.code,
            xml_escape(&self.message)
        );
        for (tag, v) in &self.extra {
            s.push_str(&format!("<{tag}>{}</{tag}>", xml_escape(v)));
        }
        s.push_str("</Error>");
        s
    }

    /// The HTTP response for this refusal (the server adds request id and resource).
    pub fn response(&self) -> http::Response<s3s::Body> {
        let mut r = http::Response::new(s3s::Body::from(self.xml()));
        *r.status_mut() =
            http::StatusCode::from_u16(self.status).unwrap_or(http::StatusCode::BAD_REQUEST);
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/xml"),
        );
        r
    }
}

/// Escapes text for an XML element.
pub fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The parts of a request head the checks read.
pub struct Head<'a> {
    /// Method.
    pub method: &'a http::Method,
    /// Raw query string, if any.
    pub query: Option<&'a str>,
    /// Headers.
    pub headers: &'a http::HeaderMap,
}

/// How a request claims to be signed.
#[derive(Debug, PartialEq, Eq)]
pub enum Signing<'a> {
    /// `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
    V4Header {
        /// The credential scope, `AK/DATE/REGION/SERVICE/aws4_request`.
        credential: &'a str,
        /// Lower-case header names, `;`-separated.
        signed_headers: &'a str,
    },
    /// `X-Amz-Signature` in the query.
    V4Query {
        /// Decoded `X-Amz-Credential`.
        credential: String,
        /// Decoded `X-Amz-SignedHeaders`.
        signed_headers: String,
        /// Decoded `X-Amz-Expires`.
        expires: Option<String>,
    },
    /// `Authorization: AWS AK:SIGNATURE`.
    V2Header {
        /// The access key.
        access_key: &'a str,
    },
    /// `Signature` and `Expires` in the query.
    V2Query {
        /// Decoded `AWSAccessKeyId`.
        access_key: String,
        /// Decoded `Expires`.
        expires: Option<String>,
    },
    /// Neither (anonymous, or a browser POST form whose signature is in the body).
    None,
}

/// Decoded query parameters in order.
pub fn query_pairs(query: &str) -> Vec<(Cow<'_, str>, Cow<'_, str>)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> Cow<'_, str> {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy()
}

fn param<'q>(pairs: &'q [(Cow<'q, str>, Cow<'q, str>)], name: &str) -> Option<&'q str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

/// Reads how `head` is signed. Malformed forms are left to the S3 layer, which refuses them.
pub fn signing<'a>(head: &Head<'a>) -> Signing<'a> {
    if let Some(q) = head.query {
        let pairs = query_pairs(q);
        if param(&pairs, "X-Amz-Signature").is_some() {
            return Signing::V4Query {
                credential: param(&pairs, "X-Amz-Credential")
                    .unwrap_or_default()
                    .to_string(),
                signed_headers: param(&pairs, "X-Amz-SignedHeaders")
                    .unwrap_or_default()
                    .to_string(),
                expires: param(&pairs, "X-Amz-Expires").map(str::to_string),
            };
        }
        if param(&pairs, "Signature").is_some() {
            return Signing::V2Query {
                access_key: param(&pairs, "AWSAccessKeyId")
                    .unwrap_or_default()
                    .to_string(),
                expires: param(&pairs, "Expires").map(str::to_string),
            };
        }
    }
    let Some(auth) = head
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Signing::None;
    };
    if let Some(rest) = auth.strip_prefix("AWS4-HMAC-SHA256") {
        let mut credential = "";
        let mut signed_headers = "";
        for part in rest.split(',') {
            let part = part.trim();
            if let Some(v) = part.strip_prefix("Credential=") {
                credential = v.trim();
            } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
                signed_headers = v.trim();
            }
        }
        return Signing::V4Header {
            credential,
            signed_headers,
        };
    }
    if let Some(rest) = auth.strip_prefix("AWS ") {
        let access_key = rest.rsplit_once(':').map_or(rest, |(k, _)| k).trim();
        return Signing::V2Header { access_key };
    }
    Signing::None
}

impl Signing<'_> {
    /// The access key the request claims (not yet verified), for the access log.
    pub fn access_key(&self) -> Option<&str> {
        let k = match self {
            Signing::V4Header { credential, .. } => credential.split('/').next(),
            Signing::V4Query { credential, .. } => credential.split('/').next(),
            Signing::V2Header { access_key } => Some(*access_key),
            Signing::V2Query { access_key, .. } => Some(access_key.as_str()),
            Signing::None => None,
        };
        k.filter(|k| !k.is_empty())
    }
}

/// The server's settings the checks apply.
#[derive(Debug, Clone)]
pub struct Rules {
    /// `server.region`: the only region a credential scope may name.
    pub region: String,
    /// `auth.allow_sigv2`: whether Signature Version 2 is accepted at all.
    pub allow_sigv2: bool,
}

/// Runs every check on `head`; `None` when the request may go on to the S3 layer.
pub fn check(head: &Head<'_>, rules: &Rules, now: SystemTime) -> Option<Refusal> {
    check_signed(head, &signing(head), rules, now)
}

/// [`check`] with the head's [`signing`] already read.
pub fn check_signed(
    head: &Head<'_>,
    signing: &Signing<'_>,
    rules: &Rules,
    now: SystemTime,
) -> Option<Refusal> {
    check_xml_body_size(head)
        .or_else(|| check_sigv2_allowed(signing, rules.allow_sigv2))
        .or_else(|| check_unsigned_headers(head, signing))
        .or_else(|| check_region(signing, &rules.region))
        .or_else(|| check_v4_expiry(signing))
        .or_else(|| check_v2_time(head, signing, now))
}

/// `x-amz-*` headers present but not covered by a SigV4 signature. (SigV2 signs every
/// `x-amz-*` header by construction: one added afterwards is `SignatureDoesNotMatch`.)
pub fn unsigned_amz_headers(head: &Head<'_>, signing: &Signing<'_>) -> Vec<String> {
    let (signed, implicit): (&str, &[&str]) = match signing {
        Signing::V4Header { signed_headers, .. } => (signed_headers, &IMPLICITLY_SIGNED),
        // A presigned request's body hash header only narrows what is accepted (s3s checks the
        // body against it); everything else must be in X-Amz-SignedHeaders.
        Signing::V4Query { signed_headers, .. } => {
            (signed_headers.as_str(), &IMPLICITLY_SIGNED[1..])
        }
        _ => return Vec::new(),
    };
    let mut out: Vec<String> = Vec::new();
    for name in head.headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-")
            && !implicit.contains(&n)
            && !signed.split(';').any(|s| s.trim().eq_ignore_ascii_case(n))
            && !out.iter().any(|o| o == n)
        {
            out.push(n.to_string());
        }
    }
    out
}

fn check_unsigned_headers(head: &Head<'_>, signing: &Signing<'_>) -> Option<Refusal> {
    let unsigned = unsigned_amz_headers(head, signing);
    if unsigned.is_empty() {
        return None;
    }
    Some(
        Refusal::new(
            403,
            "AccessDenied",
            "There were headers present in the request which were not signed",
        )
        .with("HeadersNotSigned", unsigned.join(", ")),
    )
}

fn check_sigv2_allowed(signing: &Signing<'_>, allowed: bool) -> Option<Refusal> {
    let v2 = matches!(signing, Signing::V2Header { .. } | Signing::V2Query { .. });
    (v2 && !allowed).then(|| {
        Refusal::new(
            403,
            "AccessDenied",
            "Signature Version 2 is turned off on this server (auth.allow_sigv2): sign with AWS4-HMAC-SHA256",
        )
    })
}

fn check_region(signing: &Signing<'_>, region: &str) -> Option<Refusal> {
    let (credential, header) = match signing {
        Signing::V4Header { credential, .. } => (*credential, true),
        Signing::V4Query { credential, .. } => (credential.as_str(), false),
        _ => return None,
    };
    // AK/DATE/REGION/SERVICE/aws4_request; a malformed scope is refused by the S3 layer.
    let parts: Vec<&str> = credential.split('/').collect();
    if parts.len() != 5 || parts[2] == region {
        return None;
    }
    let got = parts[2];
    Some(if header {
        Refusal::new(
            400,
            "AuthorizationHeaderMalformed",
            format!("The authorization header is malformed; the region '{got}' is wrong; expecting '{region}'"),
        )
        .with("Region", region)
    } else {
        Refusal::new(
            400,
            "AuthorizationQueryParametersError",
            format!("Error parsing the X-Amz-Credential parameter; the region '{got}' is wrong; expecting '{region}'"),
        )
        .with("Region", region)
    })
}

fn check_v4_expiry(signing: &Signing<'_>) -> Option<Refusal> {
    let Signing::V4Query {
        expires: Some(v), ..
    } = signing
    else {
        return None;
    };
    match v.parse::<u64>() {
        Ok(n) if (1..=MAX_PRESIGNED.as_secs()).contains(&n) => None,
        _ => Some(Refusal::new(
            400,
            "AuthorizationQueryParametersError",
            "X-Amz-Expires must be a positive number of seconds, at most 604800 (a week)",
        )),
    }
}

/// Parses an HTTP date as SigV2 clients send it: RFC 1123 with `GMT` (boto, the aws cli), with
/// a numeric zone (`+0000`, s3cmd), RFC 850 or asctime.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let s = s.trim();
    if let Ok(t) = httpdate::parse_http_date(s) {
        return Some(t);
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc2822).ok()?;
    let secs = t.unix_timestamp();
    (secs >= 0).then(|| UNIX_EPOCH + Duration::from_secs(secs as u64))
}

fn check_v2_time(head: &Head<'_>, signing: &Signing<'_>, now: SystemTime) -> Option<Refusal> {
    match signing {
        Signing::V2Header { .. } => {
            // SigV2 signs `x-amz-date` instead of `Date` when both are present.
            let date = head
                .headers
                .get("x-amz-date")
                .or_else(|| head.headers.get(http::header::DATE))
                .and_then(|v| v.to_str().ok());
            let Some(t) = date.and_then(parse_http_date) else {
                return Some(Refusal::new(
                    403,
                    "AccessDenied",
                    "AWS authentication requires a valid Date or x-amz-date header",
                ));
            };
            let skew = match now.duration_since(t) {
                Ok(d) => d,
                Err(e) => e.duration(),
            };
            (skew > MAX_SKEW).then(|| {
                Refusal::new(
                    403,
                    "RequestTimeTooSkewed",
                    "The difference between the request time and the current time is too large.",
                )
            })
        }
        Signing::V2Query { expires, .. } => {
            let now_secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
            match expires.as_deref().map(str::parse::<u64>) {
                Some(Ok(e)) if e <= now_secs.saturating_add(MAX_PRESIGNED.as_secs()) => None,
                Some(Ok(_)) => Some(Refusal::new(
                    400,
                    "AuthorizationQueryParametersError",
                    "Expires must be at most 604800 seconds (a week) in the future",
                )),
                _ => Some(Refusal::new(
                    400,
                    "AuthorizationQueryParametersError",
                    "Expires must be a number of seconds since 1970-01-01",
                )),
            }
        }
        _ => None,
    }
}

/// Whether the request's body is a document the S3 layer reads whole (XML or JSON).
pub fn has_document_body(head: &Head<'_>) -> bool {
    let pairs = head.query.map(query_pairs).unwrap_or_default();
    let has = |name: &str| pairs.iter().any(|(k, _)| k == name);
    if head.method == http::Method::POST {
        // Browser form uploads stream their file; everything else POSTed is a document.
        return !crate::form_frames::is_form_upload(head.method, head.headers);
    }
    head.method == http::Method::PUT && CONFIG_SUBRESOURCES.iter().any(|s| has(s))
}

fn check_xml_body_size(head: &Head<'_>) -> Option<Refusal> {
    let len = head
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())?;
    (len > MAX_XML_BODY && has_document_body(head)).then(|| {
        Refusal::new(
            400,
            "MaxMessageLengthExceeded",
            format!(
                "Your request was too big: request documents are limited to {} MiB",
                MAX_XML_BODY >> 20
            ),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(region: &str) -> Rules {
        Rules {
            region: region.into(),
            allow_sigv2: true,
        }
    }

    #[test]
    fn sigv2_can_be_turned_off() {
        let m = http::Method::GET;
        let now = SystemTime::now();
        let h = hm(&[
            ("authorization", "AWS AK:sig"),
            ("date", &httpdate::fmt_http_date(now)),
        ]);
        let off = Rules {
            allow_sigv2: false,
            ..rules("r")
        };
        assert_eq!(check(&head(&m, None, &h), &rules("r"), now), None);
        assert_eq!(
            check(&head(&m, None, &h), &off, now).unwrap().code,
            "AccessDenied"
        );
        let q = "AWSAccessKeyId=AK&Expires=1&Signature=x";
        let e = hm(&[]);
        assert_eq!(
            check(&head(&m, Some(q), &e), &off, now).unwrap().code,
            "AccessDenied"
        );
        assert_eq!(check(&head(&m, None, &e), &off, now), None);
    }

    fn head<'a>(
        method: &'a http::Method,
        query: Option<&'a str>,
        headers: &'a http::HeaderMap,
    ) -> Head<'a> {
        Head {
            method,
            query,
            headers,
        }
    }

    fn hm(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, http::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    const V4: &str = "AWS4-HMAC-SHA256 Credential=AK/20261206/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-meta-a, Signature=00";

    #[test]
    fn header_signed_v4_refuses_unsigned_amz_headers() {
        let m = http::Method::PUT;
        let h = hm(&[
            ("authorization", V4),
            ("x-amz-date", "20261206T000000Z"),
            ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ("x-amz-meta-a", "1"),
        ]);
        assert_eq!(
            check(&head(&m, None, &h), &rules("us-east-1"), SystemTime::now()),
            None
        );
        let h = hm(&[
            ("authorization", V4),
            ("x-amz-meta-a", "1"),
            ("x-amz-copy-source", "/b/secret"),
            ("x-amz-meta-uid", "0"),
        ]);
        let r = check(&head(&m, None, &h), &rules("us-east-1"), SystemTime::now()).unwrap();
        assert_eq!((r.status, r.code), (403, "AccessDenied"));
        assert_eq!(
            r.extra,
            vec![(
                "HeadersNotSigned",
                "x-amz-copy-source, x-amz-meta-uid".to_string()
            )]
        );
        assert!(r.xml().contains("which were not signed"));
    }

    #[test]
    fn presigned_v4_refuses_unsigned_amz_headers_but_not_its_body_hash() {
        let m = http::Method::PUT;
        let q = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20261206%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20261206T000000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        let h = hm(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")]);
        assert_eq!(
            check(
                &head(&m, Some(q), &h),
                &rules("us-east-1"),
                SystemTime::now()
            ),
            None
        );
        for extra in [
            "x-amz-copy-source",
            "x-amz-date",
            "x-amz-tagging",
            "X-Amz-Meta-Mode",
        ] {
            let mut h = hm(&[]);
            h.insert(
                http::HeaderName::from_bytes(extra.as_bytes()).unwrap(),
                http::HeaderValue::from_static("x"),
            );
            let r = check(
                &head(&m, Some(q), &h),
                &rules("us-east-1"),
                SystemTime::now(),
            )
            .unwrap();
            assert_eq!(r.code, "AccessDenied", "{extra}");
        }
        // Signed in the query's list: accepted.
        let q2 = q.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-amz-meta-mode");
        let h = hm(&[("x-amz-meta-mode", "100644")]);
        assert_eq!(
            check(
                &head(&m, Some(&q2), &h),
                &rules("us-east-1"),
                SystemTime::now()
            ),
            None
        );
    }

    #[test]
    fn region_must_match() {
        let m = http::Method::GET;
        let h = hm(&[("authorization", &V4.replace("us-east-1", "eu-west-3"))]);
        let r = check(&head(&m, None, &h), &rules("us-east-1"), SystemTime::now()).unwrap();
        assert_eq!(r.code, "AuthorizationHeaderMalformed");
        assert!(r
            .message
            .contains("'eu-west-3' is wrong; expecting 'us-east-1'"));
        let q = "X-Amz-Credential=AK%2F20261206%2Fmars%2Fs3%2Faws4_request&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature=00";
        let h = hm(&[]);
        let r = check(
            &head(&m, Some(q), &h),
            &rules("us-east-1"),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!(r.code, "AuthorizationQueryParametersError");
    }

    #[test]
    fn v4_expiry_capped() {
        let m = http::Method::GET;
        let h = hm(&[]);
        for (e, ok) in [
            ("1", true),
            ("604800", true),
            ("604801", false),
            ("0", false),
            ("-5", false),
            ("x", false),
        ] {
            let q = format!("X-Amz-Expires={e}&X-Amz-Signature=00");
            assert_eq!(
                check(&head(&m, Some(&q), &h), &rules("r"), SystemTime::now()).is_none(),
                ok,
                "{e}"
            );
        }
    }

    #[test]
    fn v2_header_time_window() {
        let m = http::Method::DELETE;
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let date = |t: SystemTime| httpdate::fmt_http_date(t);
        let ok = hm(&[("authorization", "AWS AK:sig"), ("date", &date(now))]);
        assert_eq!(check(&head(&m, None, &ok), &rules("r"), now), None);
        let plus = hm(&[
            ("authorization", "AWS AK:sig"),
            ("date", "Fri, 15 Jan 2027 08:00:00 +0000"),
        ]);
        let t = parse_http_date("Fri, 15 Jan 2027 08:00:00 +0000").unwrap();
        assert_eq!(
            check(
                &head(&m, None, &plus),
                &rules("r"),
                t + Duration::from_secs(60)
            ),
            None
        );
        let old = hm(&[
            ("authorization", "AWS AK:sig"),
            ("date", "Mon, 01 Jan 2001 00:00:00 GMT"),
        ]);
        assert_eq!(
            check(&head(&m, None, &old), &rules("r"), now).unwrap().code,
            "RequestTimeTooSkewed"
        );
        let future = hm(&[
            ("authorization", "AWS AK:sig"),
            ("date", &date(now + Duration::from_secs(1000))),
        ]);
        assert_eq!(
            check(&head(&m, None, &future), &rules("r"), now)
                .unwrap()
                .code,
            "RequestTimeTooSkewed"
        );
        let junk = hm(&[("authorization", "AWS AK:sig"), ("date", "x")]);
        assert_eq!(
            check(&head(&m, None, &junk), &rules("r"), now)
                .unwrap()
                .code,
            "AccessDenied"
        );
        let none = hm(&[("authorization", "AWS AK:sig")]);
        assert_eq!(
            check(&head(&m, None, &none), &rules("r"), now)
                .unwrap()
                .code,
            "AccessDenied"
        );
        // x-amz-date wins over Date, as in SigV2's string to sign.
        let both = hm(&[
            ("authorization", "AWS AK:sig"),
            ("date", "Mon, 01 Jan 2001 00:00:00 GMT"),
            ("x-amz-date", &date(now)),
        ]);
        assert_eq!(check(&head(&m, None, &both), &rules("r"), now), None);
    }

    #[test]
    fn v2_presigned_expiry_capped() {
        let m = http::Method::PUT;
        let h = hm(&[]);
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let q = |e: &str| format!("AWSAccessKeyId=AK&Expires={e}&Signature=x");
        assert_eq!(
            check(&head(&m, Some(&q("1800003600")), &h), &rules("r"), now),
            None
        );
        assert_eq!(
            check(&head(&m, Some(&q("1800604800")), &h), &rules("r"), now),
            None
        );
        assert!(check(&head(&m, Some(&q("4102444800")), &h), &rules("r"), now).is_some());
        assert!(check(&head(&m, Some(&q("soon")), &h), &rules("r"), now).is_some());
    }

    #[test]
    fn oversized_documents_refused_by_length() {
        let big = (MAX_XML_BODY + 1).to_string();
        let h = hm(&[("content-length", &big)]);
        let post = http::Method::POST;
        let put = http::Method::PUT;
        let r = check(
            &head(&post, Some("delete"), &h),
            &rules("r"),
            SystemTime::now(),
        )
        .unwrap();
        assert_eq!((r.status, r.code), (400, "MaxMessageLengthExceeded"));
        assert!(check(
            &head(&put, Some("tagging"), &h),
            &rules("r"),
            SystemTime::now()
        )
        .is_some());
        // Object data is not a document.
        assert_eq!(
            check(&head(&put, None, &h), &rules("r"), SystemTime::now()),
            None
        );
        assert_eq!(
            check(
                &head(&put, Some("partNumber=1&uploadId=x"), &h),
                &rules("r"),
                SystemTime::now()
            ),
            None
        );
        let form = hm(&[
            ("content-length", &big),
            ("content-type", "multipart/form-data; boundary=x"),
        ]);
        assert_eq!(
            check(&head(&post, None, &form), &rules("r"), SystemTime::now()),
            None
        );
    }

    #[test]
    fn claimed_access_key() {
        let m = http::Method::GET;
        let h = hm(&[("authorization", V4)]);
        assert_eq!(signing(&head(&m, None, &h)).access_key(), Some("AK"));
        let h = hm(&[("authorization", "AWS KEY2:abc")]);
        assert_eq!(signing(&head(&m, None, &h)).access_key(), Some("KEY2"));
        let h = hm(&[]);
        let q = "X-Amz-Credential=K3%2F2026&X-Amz-Signature=1";
        assert_eq!(signing(&head(&m, Some(q), &h)).access_key(), Some("K3"));
        assert_eq!(signing(&head(&m, None, &h)).access_key(), None);
    }
}
