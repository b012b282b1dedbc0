//! The signed request of the NATS door (docs/nats.md): an access key, a date, a nonce and the
//! body's SHA-256 in headers, and an HMAC-SHA256 over the subject, every header and that
//! digest, with a key derived from the key's secret and the day — SigV4's construction over a
//! NATS message. Pure: parsing, signing and checking, no I/O (fuzzed and unit-tested).

use std::collections::HashMap;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm named first in the string to sign.
pub const ALGORITHM: &str = "PREDASTORE-NATS-HMAC-SHA256";
/// Header: the access key id.
pub const ACCESS_KEY: &str = "Predastore-Access-Key";
/// Header: when the request was signed, `YYYYMMDDTHHMMSSZ` (UTC).
pub const DATE: &str = "Predastore-Date";
/// Header: 16 to 64 characters of `[A-Za-z0-9_-]`, never used twice within the window.
pub const NONCE: &str = "Predastore-Nonce";
/// Header: the body's SHA-256, lowercase hex.
pub const CONTENT_SHA256: &str = "Predastore-Content-SHA256";
/// Header: the signature, lowercase hex.
pub const SIGNATURE: &str = "Predastore-Signature";

/// Why a request's signature does not hold; each has its S3 error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// An authentication header is missing.
    #[error("the request has no {0} header (NATS requests must be signed: docs/nats.md)")]
    Missing(&'static str),
    /// A header is given twice, or a value is malformed.
    #[error("{0}")]
    Malformed(String),
    /// The date is outside the replay window.
    #[error(
        "the request's date {date} is {skew} s away from the server's time (at most {window} s)"
    )]
    Skewed {
        /// The date given.
        date: String,
        /// Seconds away.
        skew: i64,
        /// The window.
        window: u64,
    },
    /// The body does not hash to the digest signed.
    #[error("the body's SHA-256 is not the one in {CONTENT_SHA256}")]
    Digest,
    /// The signature is not the one computed.
    #[error("the request signature we calculated does not match the signature you provided")]
    Signature,
    /// The nonce was seen before within the window.
    #[error("this request was already received (its {NONCE} was used before)")]
    Replayed,
}

impl WireError {
    /// The S3 error code the reply carries.
    pub fn code(&self) -> &'static str {
        match self {
            WireError::Missing(_) => "MissingSecurityHeader",
            WireError::Malformed(_) => "InvalidRequest",
            WireError::Skewed { .. } => "RequestTimeTooSkewed",
            WireError::Digest => "XAmzContentSHA256Mismatch",
            WireError::Signature => "SignatureDoesNotMatch",
            WireError::Replayed => "AccessDenied",
        }
    }
}

/// A message's headers, names as sent, every value in order.
pub type Headers = Vec<(String, String)>;

/// The one value of header `name` (case-insensitive); an error when it is given twice.
pub fn one<'a>(headers: &'a Headers, name: &str) -> Result<Option<&'a str>, WireError> {
    let mut found = None;
    for (n, v) in headers {
        if n.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(WireError::Malformed(format!(
                    "header {name} is given twice"
                )));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

/// What the authentication headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// Access key id.
    pub access_key: String,
    /// `YYYYMMDDTHHMMSSZ`.
    pub date: String,
    /// When, in seconds since the epoch.
    pub unix: i64,
    /// Nonce.
    pub nonce: String,
    /// Body digest, hex.
    pub content_sha256: String,
    /// Signature, hex.
    pub signature: String,
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`.
pub fn parse_date(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = &s[r];
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())
            .flatten()
    };
    let year = digits(0..4)? as i32;
    let month = time::Month::try_from(digits(4..6)? as u8).ok()?;
    let date = time::Date::from_calendar_date(year, month, digits(6..8)? as u8).ok()?;
    let t = time::Time::from_hms(
        digits(9..11)? as u8,
        digits(11..13)? as u8,
        digits(13..15)? as u8,
    )
    .ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// `YYYYMMDDTHHMMSSZ` of `unix` seconds.
pub fn format_date(unix: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(unix).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// Reads and checks the form of the authentication headers.
pub fn parse(headers: &Headers) -> Result<Signed, WireError> {
    let need = |name: &'static str| -> Result<String, WireError> {
        one(headers, name)?
            .map(str::to_string)
            .ok_or(WireError::Missing(name))
    };
    let s = Signed {
        access_key: need(ACCESS_KEY)?,
        date: need(DATE)?,
        unix: 0,
        nonce: need(NONCE)?,
        content_sha256: need(CONTENT_SHA256)?,
        signature: need(SIGNATURE)?,
    };
    let unix = parse_date(&s.date).ok_or_else(|| {
        WireError::Malformed(format!("{DATE} {:?} is not YYYYMMDDTHHMMSSZ", s.date))
    })?;
    if !(16..=64).contains(&s.nonce.len())
        || !s
            .nonce
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        return Err(WireError::Malformed(format!(
            "{NONCE} must be 16 to 64 characters of A-Z, a-z, 0-9, - and _"
        )));
    }
    if !hex_of_len(&s.content_sha256, 64) {
        return Err(WireError::Malformed(format!(
            "{CONTENT_SHA256} must be 64 lowercase hex digits"
        )));
    }
    if !hex_of_len(&s.signature, 64) {
        return Err(WireError::Malformed(format!(
            "{SIGNATURE} must be 64 lowercase hex digits"
        )));
    }
    if s.access_key.is_empty() || s.access_key.len() > 128 {
        return Err(WireError::Malformed(format!(
            "{ACCESS_KEY} must be 1 to 128 characters"
        )));
    }
    Ok(Signed { unix, ..s })
}

/// What is signed: the algorithm, date, nonce, subject, every header but the signature (names
/// lowercased, sorted by name, values trimmed, in their order), and the body's digest.
pub fn string_to_sign(subject: &str, headers: &Headers, signed: &Signed) -> String {
    let mut lines: Vec<(String, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case(SIGNATURE))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.trim()))
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = format!(
        "{ALGORITHM}\n{}\n{}\n{subject}\n",
        signed.date, signed.nonce
    );
    for (n, v) in lines {
        out.push_str(&n);
        out.push(':');
        out.push_str(v);
        out.push('\n');
    }
    out.push_str(&signed.content_sha256);
    out
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut m = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    m.update(msg);
    m.finalize().into_bytes().into()
}

/// The key of one day: HMAC(HMAC("PREDASTORE" + secret, YYYYMMDD), "predastore_nats").
pub fn signing_key(secret: &str, date: &str) -> [u8; 32] {
    let day = &date[..date.len().min(8)];
    let k_date = hmac(format!("PREDASTORE{secret}").as_bytes(), day.as_bytes());
    hmac(&k_date, b"predastore_nats")
}

/// Lowercase hex SHA-256 of `body`.
pub fn sha256_hex(body: &[u8]) -> String {
    hex::encode(Sha256::digest(body))
}

/// Checks a parsed request against `secret`, at `now` (seconds), within `window` seconds.
pub fn verify(
    signed: &Signed,
    secret: &str,
    subject: &str,
    headers: &Headers,
    body: &[u8],
    now: i64,
    window: u64,
) -> Result<(), WireError> {
    let skew = (now - signed.unix).abs();
    if skew > window as i64 {
        return Err(WireError::Skewed {
            date: signed.date.clone(),
            skew,
            window,
        });
    }
    if sha256_hex(body) != signed.content_sha256 {
        return Err(WireError::Digest);
    }
    let given = hex::decode(&signed.signature).map_err(|_| WireError::Signature)?;
    let mut m = <HmacSha256 as Mac>::new_from_slice(&signing_key(secret, &signed.date))
        .map_err(|_| WireError::Signature)?;
    m.update(string_to_sign(subject, headers, signed).as_bytes());
    // Constant time.
    m.verify_slice(&given).map_err(|_| WireError::Signature)
}

/// Signs a request (for clients and tests): adds the authentication headers to `headers`.
pub fn sign(
    access_key: &str,
    secret: &str,
    subject: &str,
    headers: &mut Headers,
    body: &[u8],
    now: i64,
    nonce: &str,
) {
    headers.retain(|(n, _)| {
        ![ACCESS_KEY, DATE, NONCE, CONTENT_SHA256, SIGNATURE]
            .iter()
            .any(|a| n.eq_ignore_ascii_case(a))
    });
    let date = format_date(now);
    let sha = sha256_hex(body);
    headers.push((ACCESS_KEY.into(), access_key.into()));
    headers.push((DATE.into(), date.clone()));
    headers.push((NONCE.into(), nonce.into()));
    headers.push((CONTENT_SHA256.into(), sha.clone()));
    let signed = Signed {
        access_key: access_key.into(),
        date: date.clone(),
        unix: now,
        nonce: nonce.into(),
        content_sha256: sha,
        signature: String::new(),
    };
    let sig = hmac(
        &signing_key(secret, &date),
        string_to_sign(subject, headers, &signed).as_bytes(),
    );
    headers.push((SIGNATURE.into(), hex::encode(sig)));
}

/// Nonces seen within the replay window, per key: a request whose nonce is there is refused.
#[derive(Default)]
pub struct ReplayGuard {
    seen: Mutex<HashMap<(String, String), i64>>,
}

impl ReplayGuard {
    /// Remembers `(key, nonce)` until `expires` (seconds); `Replayed` if it is remembered.
    pub fn admit(&self, key: &str, nonce: &str, now: i64, expires: i64) -> Result<(), WireError> {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() > 4096 {
            seen.retain(|_, e| *e >= now);
        }
        match seen.get(&(key.to_string(), nonce.to_string())) {
            Some(e) if *e >= now => Err(WireError::Replayed),
            _ => {
                seen.insert((key.to_string(), nonce.to_string()), expires);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_796_608_000;

    fn signed_request() -> (Headers, Vec<u8>) {
        let mut h: Headers = vec![
            ("Bucket".into(), "photos".into()),
            ("Key".into(), "a/b.jpg".into()),
        ];
        let body = b"hello".to_vec();
        sign(
            "AKID",
            "secret-secret",
            "s3.putobject",
            &mut h,
            &body,
            NOW,
            "nonce-0123456789ab",
        );
        (h, body)
    }

    #[test]
    fn dates_round_trip_and_reject_garbage() {
        assert_eq!(parse_date(&format_date(NOW)), Some(NOW));
        for bad in [
            "",
            "20261207T0123Z",
            "2026120xT012345Z",
            "20261307T012345Z",
            "20261207T256000Z",
            "20261207 012345Z",
        ] {
            assert_eq!(parse_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_signed_request_verifies_and_any_change_breaks_it() {
        let (h, body) = signed_request();
        let s = parse(&h).unwrap();
        assert_eq!(s.access_key, "AKID");
        verify(
            &s,
            "secret-secret",
            "s3.putobject",
            &h,
            &body,
            NOW + 10,
            300,
        )
        .unwrap();
        // Another secret, subject, body, header value, added header: refused.
        assert_eq!(
            verify(&s, "other", "s3.putobject", &h, &body, NOW, 300),
            Err(WireError::Signature)
        );
        assert_eq!(
            verify(&s, "secret-secret", "s3.getobject", &h, &body, NOW, 300),
            Err(WireError::Signature)
        );
        assert_eq!(
            verify(&s, "secret-secret", "s3.putobject", &h, b"hellO", NOW, 300),
            Err(WireError::Digest)
        );
        let mut other_key = h.clone();
        other_key[1].1 = "a/c.jpg".into();
        assert_eq!(
            verify(
                &s,
                "secret-secret",
                "s3.putobject",
                &other_key,
                &body,
                NOW,
                300
            ),
            Err(WireError::Signature)
        );
        let mut extra = h.clone();
        extra.push(("Content-Type".into(), "text/html".into()));
        assert_eq!(
            verify(&s, "secret-secret", "s3.putobject", &extra, &body, NOW, 300),
            Err(WireError::Signature)
        );
        // Header names are case-insensitive and their order free.
        let mut shuffled: Headers = h
            .iter()
            .rev()
            .map(|(n, v)| (n.to_uppercase(), v.clone()))
            .collect();
        shuffled.swap(0, 1);
        let s2 = parse(&shuffled).unwrap();
        verify(
            &s2,
            "secret-secret",
            "s3.putobject",
            &shuffled,
            &body,
            NOW,
            300,
        )
        .unwrap();
        // Outside the window.
        assert!(matches!(
            verify(
                &s,
                "secret-secret",
                "s3.putobject",
                &h,
                &body,
                NOW + 301,
                300
            ),
            Err(WireError::Skewed { .. })
        ));
        assert!(matches!(
            verify(
                &s,
                "secret-secret",
                "s3.putobject",
                &h,
                &body,
                NOW - 301,
                300
            ),
            Err(WireError::Skewed { .. })
        ));
    }

    #[test]
    fn malformed_headers_are_named() {
        let (h, _) = signed_request();
        for drop in [ACCESS_KEY, DATE, NONCE, CONTENT_SHA256, SIGNATURE] {
            let less: Headers = h.iter().filter(|(n, _)| n != drop).cloned().collect();
            assert_eq!(parse(&less), Err(WireError::Missing(drop)));
        }
        let mut twice = h.clone();
        twice.push((ACCESS_KEY.into(), "AKID".into()));
        assert!(matches!(parse(&twice), Err(WireError::Malformed(_))));
        for (name, value) in [
            (NONCE, "short"),
            (NONCE, "has spaces in it here"),
            (SIGNATURE, "ab"),
            (CONTENT_SHA256, "XYZ"),
            (DATE, "yesterday"),
        ] {
            let mut bad = h.clone();
            for (n, v) in bad.iter_mut() {
                if n == name {
                    *v = value.into();
                }
            }
            assert!(
                matches!(parse(&bad), Err(WireError::Malformed(_))),
                "{name} {value}"
            );
        }
    }

    #[test]
    fn a_nonce_is_admitted_once_within_its_window() {
        let g = ReplayGuard::default();
        g.admit("k", "n1", NOW, NOW + 300).unwrap();
        assert_eq!(
            g.admit("k", "n1", NOW + 5, NOW + 305),
            Err(WireError::Replayed)
        );
        g.admit("other", "n1", NOW, NOW + 300).unwrap();
        // Expired entries no longer count.
        g.admit("k", "n1", NOW + 301, NOW + 601).unwrap();
    }
}
