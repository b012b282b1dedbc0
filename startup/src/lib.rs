//! What both of Predastore's front doors, s3d and mountd, do the same way at start and stop:
//! read the configuration ([`config`]: the same keys, equally strict), log (text or JSON,
//! [`LogFormat`]), wait for SIGINT/SIGTERM ([`shutdown_requested`]), and exit with the same
//! codes ([`EXIT_CONFIG`], [`EXIT_FAILURE`]). The background jobs they both run are the
//! engine's (`engine::background`).

#![warn(missing_docs)]

pub mod config;
mod logging;

pub use logging::{init_logging, LogFormat};

/// Exit status for a configuration that cannot be used (bad flag, variable or file), as for
/// a command-line usage error.
pub const EXIT_CONFIG: u8 = 2;

/// Exit status for a failure at run time (cannot open the data dir, bind, mount, …).
pub const EXIT_FAILURE: u8 = 1;

/// Resolves when the process is asked to stop: SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_requested() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!("cannot watch for SIGTERM: {e}");
                std::future::pending::<()>().await
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term => {}
    }
}
