//! Header and name parsers: Range (and its resolution against an object size), ETag
//! conditions, HTTP dates as SigV2 sends them, tagging query strings, bucket and key rules.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: (String, u64)| {
    let (s, size) = data;
    if let Ok(r) = s3s::dto::Range::parse(&s) {
        let br = s3d::store::range_of(r);
        if let Ok((a, b)) = br.resolve(size) {
            assert!(a < b && b <= size, "{s:?} on {size}: {a}..{b}");
        }
    }
    let _ = s3s::dto::ETagCondition::parse_http_header(s.as_bytes());
    let _ = s3s::dto::ETag::parse_http_header(s.as_bytes());
    let _ = s3d::precheck::parse_http_date(&s);
    let _ = s3d::precheck::query_pairs(&s);
    if let Ok(tags) = s3d::store::parse_tagging(&s) {
        assert!(tags.len() <= 10);
    }
    let key_ok = engine::names::validate_key(&s).is_ok();
    if key_ok {
        assert!(!s.is_empty() && s.len() <= 1024 && !s.contains('\0'));
    }
    if engine::names::validate_bucket_name(&s).is_ok() {
        assert!((3..=63).contains(&s.len()));
        assert!(!s.contains('/'));
    }
});
