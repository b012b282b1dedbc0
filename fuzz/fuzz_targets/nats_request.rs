//! The NATS door's request parsing: the signed headers (any names, values, repeats), the
//! signature check, Range and the multipart.complete body. Any request that is signed verifies;
//! nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use s3d::nats::{ops, wire};

fuzz_target!(|data: (Vec<(String, String)>, Vec<u8>, String, i64)| {
    let (headers, body, subject, now) = data;
    if let Ok(signed) = wire::parse(&headers) {
        let _ = wire::verify(&signed, "secret", &subject, &headers, &body, now, 300);
    }
    // Whatever else the request carries, signing it makes it verify (and only with the secret).
    let mut h = headers.clone();
    let now = now.rem_euclid(4_000_000_000);
    wire::sign("AKID", "secret", &subject, &mut h, &body, now, "nonce-fuzz-0123456789");
    if let Ok(signed) = wire::parse(&h) {
        assert_eq!(
            wire::verify(&signed, "secret", &subject, &h, &body, now, 300),
            Ok(())
        );
        assert!(wire::verify(&signed, "other", &subject, &h, &body, now, 300).is_err());
    }
    if let Ok(s) = std::str::from_utf8(&body) {
        let _ = ops::parse_range(s);
    }
    let _ = ops::parse_parts(&body);
});
