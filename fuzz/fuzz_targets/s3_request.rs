//! Whole requests through s3d's request path — the checks before the S3 layer, SigV4 and SigV2
//! verification (header and presigned forms), routing, XML bodies, `aws-chunked` decoding with
//! chunk signatures and trailers, the body verifier and the engine — on a real store in a
//! temporary directory.
//!
//! The harness signs what the fuzzer builds with the server's key, so verification succeeds as
//! often as it fails; the fuzzer then chooses whether to tamper with the signature, skew the
//! clock, name another region, add a header after signing, cut an `aws-chunked` stream or lie
//! about its length. Whatever comes in: no panic, an answer for every request, and no object
//! stored from a request that was not signed.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

const AK: &str = "PSFUZZACCESSKEY00001";
const SK: &str = "fuzz-secret-key-0123456789abcdefghijklm";
const BUCKET: &str = "fuzz";

/// Query parameter names the fuzzer picks from (subresources and list parameters).
const PARAMS: &[&str] = &[
    "uploads",
    "uploadId",
    "partNumber",
    "tagging",
    "delete",
    "versioning",
    "acl",
    "list-type",
    "prefix",
    "delimiter",
    "max-keys",
    "continuation-token",
    "versionId",
    "location",
    "marker",
    "encoding-type",
    "start-after",
    "x-id",
    "versions",
    "key-marker",
    "max-uploads",
    "lifecycle",
    "version-id-marker",
    "object-lock",
    "retention",
    "legal-hold",
];

/// Header names the fuzzer picks from.
const HEADERS: &[&str] = &[
    "content-type",
    "content-md5",
    "range",
    "if-match",
    "if-none-match",
    "if-modified-since",
    "if-unmodified-since",
    "x-amz-copy-source",
    "x-amz-copy-source-range",
    "x-amz-meta-mode",
    "x-amz-meta-uid",
    "x-amz-meta-mtime",
    "x-amz-tagging",
    "x-amz-checksum-crc32",
    "x-amz-checksum-sha256",
    "x-amz-sdk-checksum-algorithm",
    "x-amz-metadata-directive",
    "content-encoding",
    "x-amz-tagging-directive",
    "cache-control",
    "expires",
    "x-amz-trailer",
    "x-amz-checksum-mode",
    "x-amz-decoded-content-length",
    "x-amz-bucket-object-lock-enabled",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
    "x-amz-bypass-governance-retention",
];

#[derive(Arbitrary, Debug)]
enum Auth {
    Anonymous,
    V4Header {
        unsigned_payload: bool,
    },
    V4Query {
        expires: u32,
    },
    V2Header,
    V2Query {
        expires_in: u32,
    },
    V4Chunked {
        sizes: Vec<u16>,
        final_chunk: bool,
        unsigned_trailer: bool,
        bad_crc: bool,
    },
}

#[derive(Arbitrary, Debug)]
struct Req {
    method: u8,
    key: Vec<u8>,
    query: Vec<(u8, Vec<u8>)>,
    headers: Vec<(u8, Vec<u8>)>,
    body: Vec<u8>,
    auth: Auth,
    skew_minutes: i8,
    other_region: bool,
    tamper_signature: Option<u8>,
    header_after_signing: Option<(u8, Vec<u8>)>,
    declared_length_delta: i8,
}

/// Maps bytes onto characters that need no URI encoding (so canonicalisation is the identity).
fn safe(b: &[u8], slash: bool) -> String {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
    b.iter()
        .take(200)
        .map(|&c| {
            if slash && c % 17 == 0 {
                '/'
            } else {
                A[c as usize % A.len()] as char
            }
        })
        .collect()
}

/// Maps bytes onto header-value characters without spaces.
fn value(b: &[u8]) -> String {
    b.iter()
        .take(200)
        .map(|&c| {
            let c = c % 94 + 33; // '!'..='~'
            c as char
        })
        .collect()
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    m.update(msg.as_bytes());
    m.finalize().into_bytes().to_vec()
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn signing_key(date: &str, region: &str) -> Vec<u8> {
    let k = hmac(format!("AWS4{SK}").as_bytes(), &date[..8]);
    let k = hmac(&k, region);
    let k = hmac(&k, "s3");
    hmac(&k, "aws4_request")
}

fn amz_date(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

struct World {
    rt: tokio::runtime::Runtime,
    svc: s3s::service::S3Service,
    rules: s3d::precheck::Rules,
    engine: engine::Engine,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = engine::EngineConfig::new(dir.path().join("data"));
        cfg.durability = engine::Durability::None;
        cfg.chunk_size = 64 * 1024;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let engine = rt.block_on(async {
            let e = engine::Engine::open(cfg).expect("engine");
            e.create_bucket(BUCKET).await.expect("bucket");
            e
        });
        let store = s3d::store::Store {
            engine: engine.clone(),
            region: "us-east-1".into(),
            body_idle: std::time::Duration::from_secs(5),
            allow_setid_and_devices: false,
        };
        let keys = [s3d::config::KeyPair {
            access_key: AK.into(),
            secret_key: SK.into(),
        }];
        let svc = s3d::server::s3_service(store, s3d::auth::KeyStore::new(&keys, engine.clone()), &[]);
        World {
            rt,
            svc,
            rules: s3d::precheck::Rules {
                region: "us-east-1".into(),
                allow_sigv2: true,
            },
            engine,
            _dir: dir,
        }
    })
}

/// The bucket's keys and ETags.
fn objects(e: &engine::Engine) -> Vec<(String, String)> {
    e.list_objects(
        BUCKET,
        &engine::ListQuery {
            max_keys: 1000,
            ..Default::default()
        },
    )
    .map(|p| p.objects.into_iter().map(|o| (o.key, o.etag)).collect())
    .unwrap_or_default()
}

fuzz_target!(|r: Req| {
    let w = world();
    let method = ["GET", "PUT", "POST", "DELETE", "HEAD"][r.method as usize % 5];
    let key = safe(&r.key, true);
    let path = if key.is_empty() {
        format!("/{BUCKET}")
    } else {
        format!("/{BUCKET}/{key}")
    };
    let mut query: Vec<(String, String)> = r
        .query
        .iter()
        .take(6)
        .map(|(i, v)| {
            (
                PARAMS[*i as usize % PARAMS.len()].to_string(),
                safe(v, false),
            )
        })
        .collect();
    let mut headers: std::collections::BTreeMap<String, String> = r
        .headers
        .iter()
        .take(8)
        .map(|(i, v)| (HEADERS[*i as usize % HEADERS.len()].to_string(), value(v)))
        .collect();
    headers.insert("host".into(), "127.0.0.1".into());
    let now = std::time::SystemTime::now();
    let when = if r.skew_minutes >= 0 {
        now + std::time::Duration::from_secs(r.skew_minutes as u64 * 60)
    } else {
        now - std::time::Duration::from_secs(r.skew_minutes.unsigned_abs() as u64 * 60)
    };
    let date = amz_date(when);
    let region = if r.other_region {
        "eu-west-3"
    } else {
        "us-east-1"
    };
    let scope = format!("{}/{region}/s3/aws4_request", &date[..8]);
    let mut body = r.body.clone();
    body.truncate(1 << 16);
    let signed_request = !matches!(r.auth, Auth::Anonymous);

    let canonical = |headers: &std::collections::BTreeMap<String, String>,
                     query: &[(String, String)],
                     payload: &str| {
        let mut q = query.to_vec();
        q.sort();
        let cq: Vec<String> = q.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let ch: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let sh: Vec<&str> = headers.keys().map(String::as_str).collect();
        (
            format!(
                "{method}\n{path}\n{}\n{ch}\n{}\n{payload}",
                cq.join("&"),
                sh.join(";")
            ),
            sh.join(";"),
        )
    };
    let sign = |creq: &str| {
        let sts = format!(
            "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        hex::encode(hmac(&signing_key(&date, region), &sts))
    };
    let tamper = |sig: &mut String| {
        if let Some(t) = r.tamper_signature {
            let i = t as usize % sig.len().max(1);
            let c = if sig.as_bytes().get(i) == Some(&b'0') {
                "1"
            } else {
                "0"
            };
            sig.replace_range(i..=i, c);
        }
    };

    match &r.auth {
        Auth::Anonymous => {}
        Auth::V4Header { unsigned_payload } => {
            let payload = if *unsigned_payload {
                "UNSIGNED-PAYLOAD".to_string()
            } else {
                sha256_hex(&body)
            };
            headers.insert("x-amz-date".into(), date.clone());
            headers.insert("x-amz-content-sha256".into(), payload.clone());
            let (creq, sh) = canonical(&headers, &query, &payload);
            let mut sig = sign(&creq);
            tamper(&mut sig);
            headers.insert(
                "authorization".into(),
                format!(
                    "AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={sh}, Signature={sig}"
                ),
            );
        }
        Auth::V4Query { expires } => {
            let only_host: std::collections::BTreeMap<String, String> =
                [("host".to_string(), "127.0.0.1".to_string())].into();
            query.push(("X-Amz-Algorithm".into(), "AWS4-HMAC-SHA256".into()));
            query.push((
                "X-Amz-Credential".into(),
                format!("{AK}%2F{}", scope.replace('/', "%2F")),
            ));
            query.push(("X-Amz-Date".into(), date.clone()));
            query.push(("X-Amz-Expires".into(), (expires % 700_000).to_string()));
            query.push(("X-Amz-SignedHeaders".into(), "host".into()));
            let (creq, _) = canonical(&only_host, &query, "UNSIGNED-PAYLOAD");
            let mut sig = sign(&creq);
            tamper(&mut sig);
            query.push(("X-Amz-Signature".into(), sig));
        }
        Auth::V2Header | Auth::V2Query { .. } => {
            let v2_date = httpdate::fmt_http_date(when);
            let expires = match &r.auth {
                Auth::V2Query { expires_in } => Some(
                    (now.duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_secs())
                        .unwrap_or(0)
                        + *expires_in as u64 % 1_000_000)
                        .to_string(),
                ),
                _ => None,
            };
            if expires.is_none() {
                headers.insert("date".into(), v2_date.clone());
            }
            let amz: String = headers
                .iter()
                .filter(|(k, _)| k.starts_with("x-amz-"))
                .map(|(k, v)| format!("{k}:{v}\n"))
                .collect();
            let get = |h: &str| headers.get(h).cloned().unwrap_or_default();
            let sts = format!(
                "{method}\n{}\n{}\n{}\n{amz}{path}",
                get("content-md5"),
                get("content-type"),
                expires.clone().unwrap_or(v2_date)
            );
            let mut m = Hmac::<sha1::Sha1>::new_from_slice(SK.as_bytes()).expect("key");
            m.update(sts.as_bytes());
            use base64::Engine as _;
            let mut sig =
                base64::engine::general_purpose::STANDARD.encode(m.finalize().into_bytes());
            tamper(&mut sig);
            match expires {
                Some(e) => {
                    query.push(("AWSAccessKeyId".into(), AK.into()));
                    query.push(("Expires".into(), e));
                    let enc: String = sig
                        .bytes()
                        .map(|b| match b {
                            b'+' => "%2B".to_string(),
                            b'/' => "%2F".to_string(),
                            b'=' => "%3D".to_string(),
                            _ => (b as char).to_string(),
                        })
                        .collect();
                    query.push(("Signature".into(), enc));
                }
                None => {
                    headers.insert("authorization".into(), format!("AWS {AK}:{sig}"));
                }
            }
        }
        Auth::V4Chunked {
            sizes,
            final_chunk,
            unsigned_trailer,
            bad_crc,
        } => {
            let mode = if *unsigned_trailer {
                "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
            } else {
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
            };
            let decoded = body.len() as i64 + r.declared_length_delta as i64;
            headers.insert("x-amz-date".into(), date.clone());
            headers.insert("x-amz-content-sha256".into(), mode.into());
            headers.insert("content-encoding".into(), "aws-chunked".into());
            headers.insert(
                "x-amz-decoded-content-length".into(),
                decoded.max(0).to_string(),
            );
            if *unsigned_trailer {
                headers.insert("x-amz-trailer".into(), "x-amz-checksum-crc32".into());
            }
            let (creq, sh) = canonical(&headers, &query, mode);
            let mut prev = sign(&creq);
            let mut seed = prev.clone();
            tamper(&mut seed);
            headers.insert(
                "authorization".into(),
                format!("AWS4-HMAC-SHA256 Credential={AK}/{scope}, SignedHeaders={sh}, Signature={seed}"),
            );
            // Cut the body into the fuzzer's chunk sizes.
            let mut pieces: Vec<&[u8]> = Vec::new();
            let mut at = 0;
            for s in sizes.iter().take(16) {
                let n = (*s as usize).min(body.len() - at);
                if n == 0 {
                    continue;
                }
                pieces.push(&body[at..at + n]);
                at += n;
            }
            if at < body.len() {
                pieces.push(&body[at..]);
            }
            let key = signing_key(&date, region);
            let empty = sha256_hex(b"");
            let mut out = Vec::new();
            let last: &[u8] = b"";
            for c in pieces.iter().copied().chain(final_chunk.then_some(last)) {
                if *unsigned_trailer {
                    out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
                    out.extend_from_slice(c);
                    if !c.is_empty() {
                        out.extend_from_slice(b"\r\n");
                    }
                } else {
                    let sts = format!(
                        "AWS4-HMAC-SHA256-PAYLOAD\n{date}\n{scope}\n{prev}\n{empty}\n{}",
                        sha256_hex(c)
                    );
                    prev = hex::encode(hmac(&key, &sts));
                    out.extend_from_slice(
                        format!("{:x};chunk-signature={prev}\r\n", c.len()).as_bytes(),
                    );
                    out.extend_from_slice(c);
                    out.extend_from_slice(b"\r\n");
                }
            }
            if *unsigned_trailer && *final_chunk {
                let crc = if *bad_crc {
                    [0u8; 4]
                } else {
                    crc32(&body).to_be_bytes()
                };
                use base64::Engine as _;
                let v = base64::engine::general_purpose::STANDARD.encode(crc);
                out.extend_from_slice(format!("x-amz-checksum-crc32:{v}\r\n\r\n").as_bytes());
            }
            body = out;
        }
    }
    if let Some((i, v)) = &r.header_after_signing {
        headers.insert(HEADERS[*i as usize % HEADERS.len()].to_string(), value(v));
    }

    let mut uri = path.clone();
    if !query.is_empty() {
        let q: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                if v.is_empty() {
                    k.clone()
                } else {
                    format!("{k}={v}")
                }
            })
            .collect();
        uri = format!("{uri}?{}", q.join("&"));
    }
    let mut b = http::Request::builder().method(method).uri(&uri);
    for (k, v) in &headers {
        b = b.header(k, v);
    }
    let b = b.header("content-length", body.len());
    let Ok(req) = b.body(s3s::Body::from(Bytes::from(body))) else {
        return;
    };
    let mut before = objects(&w.engine);
    if before.len() > 200 {
        // Keep listings cheap: start over with an empty bucket.
        w.rt.block_on(async {
            for (k, _) in &before {
                let _ = w.engine.delete_object(BUCKET, k).await;
            }
        });
        before = objects(&w.engine);
    }
    let resp = w.rt.block_on(async {
        let resp = s3d::server::call_s3(&w.svc, &w.rules, req).await;
        match resp {
            Ok(call) => {
                let status = call.response.status();
                let _ = http_body_util::BodyExt::collect(call.response.into_body()).await;
                Some(status)
            }
            Err(_) => None,
        }
    });
    if !signed_request {
        assert!(
            resp.is_none_or(|s| !s.is_success()),
            "anonymous request served: {resp:?}"
        );
    }
    if resp.is_none_or(|s| s.is_client_error() || s.is_server_error()) {
        // A refused request changes nothing stored.
        assert_eq!(
            objects(&w.engine),
            before,
            "refused request ({resp:?}) changed the bucket"
        );
    }
});

fn crc32(b: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &x in b {
        crc ^= x as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}
