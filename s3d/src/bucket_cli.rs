//! `s3d bucket …`: bucket settings S3 has no request for (with the server running or not: a
//! change applies to the next write).

use std::process::ExitCode;

use engine::{Compression, Engine};

/// `s3d bucket …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum BucketCommand {
    /// Show or set the compression of data written to BUCKET from now on: off, zstd,
    /// zstd:LEVEL (1..=19), or default (follow `storage.compression`). Data already stored
    /// keeps its form.
    Compression {
        /// Bucket name.
        bucket: String,
        /// off, zstd, zstd:LEVEL or default; absent: show the setting.
        setting: Option<String>,
    },
}

/// What a setting argument asks for: `Some(None)` is "follow the store's default".
fn parse_setting(s: &str) -> Result<Option<Compression>, String> {
    if s.eq_ignore_ascii_case("default") {
        return Ok(None);
    }
    s.parse::<Compression>().map(Some)
}

/// Runs one command against the store.
pub async fn run(engine: &Engine, cmd: BucketCommand) -> Result<ExitCode, String> {
    match cmd {
        BucketCommand::Compression { bucket, setting } => {
            if let Some(s) = setting {
                let wanted = parse_setting(&s)?;
                engine
                    .set_bucket_compression(&bucket, wanted)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let own = engine
                .head_bucket(&bucket)
                .map_err(|e| e.to_string())?
                .compression;
            let store = engine.config().compression;
            match own {
                Some(c) => println!("{bucket}: compression {c}"),
                None => println!("{bucket}: compression {store} (the store's default)"),
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings() {
        assert_eq!(parse_setting("default"), Ok(None));
        assert_eq!(parse_setting("zstd:7"), Ok(Some(Compression::Zstd(7))));
        assert_eq!(parse_setting("off"), Ok(Some(Compression::Off)));
        assert!(parse_setting("gzip").unwrap_err().contains("zstd:LEVEL"));
    }
}
