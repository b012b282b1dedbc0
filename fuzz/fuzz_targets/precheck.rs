//! The checks on a request head before the S3 layer (s3d `precheck`): any method, query and
//! headers. Never panics; a refusal always renders as an S3 error document.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fuzz_target!(|data: (u8, String, Vec<(String, String)>, u32, bool)| {
    let (m, query, headers, now, sigv2) = data;
    let method = [
        http::Method::GET,
        http::Method::PUT,
        http::Method::POST,
        http::Method::DELETE,
        http::Method::HEAD,
    ][m as usize % 5]
        .clone();
    let mut h = http::HeaderMap::new();
    for (k, v) in &headers {
        if let (Ok(k), Ok(v)) = (
            http::HeaderName::from_bytes(k.as_bytes()),
            http::HeaderValue::from_str(v),
        ) {
            h.append(k, v);
        }
    }
    let head = s3d::precheck::Head {
        method: &method,
        query: Some(query.as_str()).filter(|q| !q.is_empty()),
        headers: &h,
    };
    let rules = s3d::precheck::Rules {
        region: "us-east-1".into(),
        allow_sigv2: sigv2,
    };
    let now = UNIX_EPOCH + Duration::from_secs(now as u64);
    let signing = s3d::precheck::signing(&head);
    let _ = signing.access_key();
    let _ = s3d::precheck::unsigned_amz_headers(&head, &signing);
    let _ = s3d::precheck::has_document_body(&head);
    if let Some(r) = s3d::precheck::check(&head, &rules, now) {
        assert!(r.status >= 400 && r.status < 500);
        let xml = r.xml();
        assert!(xml.contains(r.code));
    }
    let _ = s3d::precheck::check(&head, &rules, SystemTime::now());
});
