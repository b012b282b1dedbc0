//! Endpoints beside the S3 API, on paths no bucket can have (`/-/…`: `-` is not a valid bucket
//! name), answered before the S3 layer and without authentication: `/-/health` (the process
//! answers), `/-/ready` (the engine can read its metadata), `/-/metrics` (Prometheus).

use std::sync::Arc;

use crate::metrics::Metrics;

/// The response for an admin path, or `None` when the request is for the S3 API.
pub async fn handle(
    method: &http::Method,
    path: &str,
    engine: &engine::Engine,
    metrics: &Arc<Metrics>,
) -> Option<http::Response<s3s::Body>> {
    if !path.starts_with("/-/") {
        return None;
    }
    let reply = |status: http::StatusCode, ctype: &'static str, body: String| {
        let mut r = http::Response::new(s3s::Body::from(body));
        *r.status_mut() = status;
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(ctype),
        );
        Some(r)
    };
    if method != http::Method::GET && method != http::Method::HEAD {
        return reply(
            http::StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n".into(),
        );
    }
    match path {
        "/-/health" => reply(http::StatusCode::OK, "text/plain", "ok\n".into()),
        "/-/ready" => match engine.list_buckets() {
            Ok(_) => reply(http::StatusCode::OK, "text/plain", "ready\n".into()),
            Err(e) => reply(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {e}\n"),
            ),
        },
        "/-/metrics" => {
            let (engine, metrics) = (engine.clone(), metrics.clone());
            let text = tokio::task::spawn_blocking(move || metrics.render(&engine))
                .await
                .unwrap_or_default();
            reply(http::StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        _ => reply(
            http::StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".into(),
        ),
    }
}
