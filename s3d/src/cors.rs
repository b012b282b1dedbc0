//! CORS for browsers (apps that upload to presigned URLs, pages that show public objects): a
//! preflight `OPTIONS` is answered from the bucket's rules, and an actual request with an
//! `Origin` gets the `Access-Control-*` headers of the rule that allows it. A bucket without
//! rules, or a request no rule allows, gets no CORS headers (the browser then refuses it). The
//! rules and their matching are the engine's (`engine::access::cors`).

use engine::access::cors::CorsRule;
use http::{HeaderMap, HeaderValue, Method};

use crate::precheck::Refusal;
use crate::vhost::VirtualHosts;

/// The bucket a request addresses: from the Host header (virtual-hosted style) or the path's
/// first segment.
pub fn bucket_of(headers: &HeaderMap, path: &str, vhosts: &VirtualHosts) -> Option<String> {
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok());
    if let Some(b) = host.and_then(|h| vhosts.bucket_of(h)) {
        return Some(b);
    }
    let first = path.trim_start_matches('/').split('/').next()?;
    let b = percent_encoding::percent_decode_str(first)
        .decode_utf8()
        .ok()?
        .into_owned();
    (!b.is_empty()).then_some(b)
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The answer to a preflight `OPTIONS` request.
pub fn preflight(
    engine: &engine::Engine,
    headers: &HeaderMap,
    path: &str,
    vhosts: &VirtualHosts,
) -> http::Response<s3s::Body> {
    let forbidden =
        |why: &str| Refusal::new(403, "AccessForbidden", format!("CORSResponse: {why}")).response();
    let Some(origin) = header(headers, "origin") else {
        return Refusal::new(
            400,
            "BadRequest",
            "Insufficient information. Origin request header needed.",
        )
        .response();
    };
    let Some(method) = header(headers, "access-control-request-method") else {
        return Refusal::new(
            400,
            "BadRequest",
            "Invalid Access-Control-Request-Method: none given.",
        )
        .response();
    };
    let requested: Vec<String> = header(headers, "access-control-request-headers")
        .map(|h| {
            h.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let Some(bucket) = bucket_of(headers, path, vhosts) else {
        return forbidden("CORS is not enabled for this bucket.");
    };
    let cors = match engine.bucket_cors(&bucket) {
        Ok(Some(c)) => c,
        Ok(None) | Err(engine::Error::NoSuchBucket(_)) => {
            return forbidden("CORS is not enabled for this bucket.")
        }
        Err(e) => {
            tracing::error!("reading the CORS rules of {bucket}: {e}");
            return Refusal::new(500, "InternalError", "We encountered an internal error.")
                .response();
        }
    };
    let names: Vec<&str> = requested.iter().map(String::as_str).collect();
    let Some(rule) = cors.matching(origin, method, &names) else {
        return forbidden(
            "This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.",
        );
    };
    let mut resp = http::Response::new(s3s::Body::empty());
    let h = resp.headers_mut();
    allow(h, rule, origin);
    if !requested.is_empty() {
        put(h, "access-control-allow-headers", &requested.join(", "));
    }
    if let Some(age) = rule.max_age_secs {
        put(h, "access-control-max-age", &age.to_string());
    }
    put(
        h,
        "vary",
        "Origin, Access-Control-Request-Headers, Access-Control-Request-Method",
    );
    resp
}

fn put(h: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        h.insert(name, v);
    }
}

/// The headers every allowed CORS answer carries.
fn allow(h: &mut HeaderMap, rule: &CorsRule, origin: &str) {
    let any = rule.allowed_origins.iter().any(|o| o == "*");
    put(
        h,
        "access-control-allow-origin",
        if any { "*" } else { origin },
    );
    put(
        h,
        "access-control-allow-methods",
        &rule.allowed_methods.join(", "),
    );
    if !rule.expose_headers.is_empty() {
        put(
            h,
            "access-control-expose-headers",
            &rule.expose_headers.join(", "),
        );
    }
    if !any {
        put(h, "vary", "Origin");
    }
}

/// A request with an `Origin`: what its answer's CORS headers depend on.
pub struct Actual {
    origin: String,
    method: Method,
    bucket: String,
}

impl Actual {
    /// `Some` for a request that names an origin and a bucket.
    pub fn of(
        method: &Method,
        headers: &HeaderMap,
        path: &str,
        vhosts: &VirtualHosts,
    ) -> Option<Actual> {
        let origin = header(headers, "origin")?.to_string();
        let bucket = bucket_of(headers, path, vhosts)?;
        Some(Actual {
            origin,
            method: method.clone(),
            bucket,
        })
    }

    /// Adds the headers of the rule that allows this request (none if no rule does).
    pub fn decorate(&self, engine: &engine::Engine, h: &mut HeaderMap) {
        let Ok(Some(cors)) = engine.bucket_cors(&self.bucket) else {
            return;
        };
        if let Some(rule) = cors.matching(&self.origin, self.method.as_str(), &[]) {
            allow(h, rule, &self.origin);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_of_requests() {
        let v = VirtualHosts::new(&["s3.localhost".into()]);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("127.0.0.1:8443"),
        );
        assert_eq!(
            bucket_of(&h, "/photos/a/b.jpg", &v).as_deref(),
            Some("photos")
        );
        assert_eq!(bucket_of(&h, "/", &v), None);
        h.insert(
            http::header::HOST,
            HeaderValue::from_static("photos.s3.localhost"),
        );
        assert_eq!(bucket_of(&h, "/a/b.jpg", &v).as_deref(), Some("photos"));
    }
}
