//! Headers every response carries, whatever answered it (the S3 layer, a CORS preflight, the
//! admin paths): `Server: Predastore` and nothing that names a version, `X-Content-Type-Options:
//! nosniff` (a browser never guesses a script out of an object), and over HTTPS
//! `Strict-Transport-Security`.

use http::header::{HeaderMap, HeaderValue};

/// The headers for one server.
#[derive(Clone)]
pub struct SecurityHeaders {
    hsts: Option<HeaderValue>,
}

impl SecurityHeaders {
    /// For a server on HTTPS (`tls`) with HSTS `max_age` seconds (0: no HSTS header).
    pub fn new(tls: bool, max_age: u64) -> SecurityHeaders {
        let hsts = (tls && max_age > 0)
            .then(|| HeaderValue::from_str(&format!("max-age={max_age}")).ok())
            .flatten();
        SecurityHeaders { hsts }
    }

    /// Sets the headers on `h`, replacing any of the same name.
    pub fn apply(&self, h: &mut HeaderMap) {
        h.insert(http::header::SERVER, HeaderValue::from_static("Predastore"));
        h.insert(
            http::header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        if let Some(v) = &self.hsts {
            h.insert(http::header::STRICT_TRANSPORT_SECURITY, v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsts_only_over_https_and_when_wanted() {
        let mut h = HeaderMap::new();
        h.insert(http::header::SERVER, HeaderValue::from_static("hyper/1.0"));
        SecurityHeaders::new(true, 600).apply(&mut h);
        assert_eq!(h[http::header::SERVER], "Predastore");
        assert_eq!(h[http::header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(h[http::header::STRICT_TRANSPORT_SECURITY], "max-age=600");
        for (tls, age) in [(false, 600), (true, 0)] {
            let mut h = HeaderMap::new();
            SecurityHeaders::new(tls, age).apply(&mut h);
            assert!(h.get(http::header::STRICT_TRANSPORT_SECURITY).is_none());
            assert_eq!(h[http::header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        }
    }
}
