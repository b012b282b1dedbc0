//! Predastore's HTTPS S3 API server as a library: the `s3d` binary (`main.rs`) is its command
//! line; the fuzz targets (`fuzz/`) drive its parsers and its request path directly.

pub mod access;
pub mod auth;
pub mod body;
pub mod bucket_cli;
pub mod cluster_cli;
pub mod config;
pub mod conn;
pub mod cors;
pub mod creds;
pub mod errors;
pub mod form_frames;
pub mod framing;
pub mod health_cli;
pub mod keys_cli;
pub mod metrics;
pub mod nats;
pub mod precheck;
pub mod routes;
pub mod security_headers;
pub mod server;
pub mod store;
pub mod tls;
pub mod vhost;
