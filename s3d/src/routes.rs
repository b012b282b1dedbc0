//! Endpoints beside the S3 API, on paths no bucket can have (`/-/…`: `-` is not a valid bucket
//! name): health and readiness, unauthenticated.

use http::{HeaderMap, Method, Uri};
use s3s::route::S3Route;
use s3s::{Body, S3Request, S3Response, S3Result};

/// `/-/health` (the process answers) and `/-/ready` (the engine can read its metadata).
pub struct AdminRoutes {
    /// The engine.
    pub engine: engine::Engine,
}

#[async_trait::async_trait]
impl S3Route for AdminRoutes {
    fn is_match(
        &self,
        method: &Method,
        uri: &Uri,
        _: &HeaderMap,
        _: &mut http::Extensions,
    ) -> bool {
        method == Method::GET && matches!(uri.path(), "/-/health" | "/-/ready")
    }

    async fn check_access(&self, _req: &mut S3Request<Body>) -> S3Result<()> {
        Ok(())
    }

    async fn call(&self, req: S3Request<Body>) -> S3Result<S3Response<Body>> {
        if req.uri.path() == "/-/ready" {
            if let Err(e) = self.engine.list_buckets() {
                let mut r = S3Response::new(Body::from(format!("not ready: {e}\n")));
                r.status = Some(http::StatusCode::SERVICE_UNAVAILABLE);
                return Ok(r);
            }
        }
        Ok(S3Response::new(Body::from("ok\n".to_string())))
    }
}
