//! Logs to stderr (or a daemon's log file), text or JSON, colour only on a terminal.

use crate::config::{ConfigError, FileConfig};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line (for log collectors).
    Json,
}

impl LogFormat {
    /// `--log-format` / `PREDASTORE_LOG_FORMAT` when given, else `server.log_format`, else text.
    pub fn resolve(flag: Option<&str>, file: &FileConfig) -> Result<LogFormat, ConfigError> {
        match flag.or(file.server.log_format.as_deref()) {
            None | Some("text") => Ok(LogFormat::Text),
            Some("json") => Ok(LogFormat::Json),
            Some(other) => Err(ConfigError::Invalid(format!(
                "log format must be text or json, not {other:?}"
            ))),
        }
    }
}

/// Starts logging to stderr. `default_filter` applies unless `PREDASTORE_LOG` gives another
/// (same syntax as `RUST_LOG`); colour codes only when stderr is a terminal.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("PREDASTORE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => b.json().init(),
        LogFormat::Text => b.init(),
    }
}
