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
    nats: Option<&crate::nats::NatsStatus>,
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
        // NATS being away does not make S3 unready: it is said, not failed.
        "/-/ready" => match engine.list_buckets() {
            Ok(_) => reply(
                http::StatusCode::OK,
                "text/plain",
                match nats {
                    Some(n) if n.connected.load(std::sync::atomic::Ordering::Relaxed) => {
                        "ready\nnats: connected\n".into()
                    }
                    Some(_) => "ready\nnats: disconnected (reconnecting)\n".into(),
                    None => "ready\n".into(),
                },
            ),
            Err(e) => reply(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                format!("not ready: {e}\n"),
            ),
        },
        "/-/metrics" => {
            let (engine, metrics) = (engine.clone(), metrics.clone());
            let mut text = tokio::task::spawn_blocking(move || metrics.render(&engine))
                .await
                .unwrap_or_default();
            if let Some(n) = nats {
                text.push_str(&crate::metrics::render_nats(n));
            }
            reply(http::StatusCode::OK, "text/plain; version=0.0.4", text)
        }
        _ => reply(
            http::StatusCode::NOT_FOUND,
            "text/plain",
            "not found\n".into(),
        ),
    }
}
