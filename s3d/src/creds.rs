//! Credentials: configured key pairs, or a random pair made on first start and kept in the data
//! dir (mode 0600).

use std::path::{Path, PathBuf};

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::config::KeyPair;

/// The example key of the AWS documentation (and of `make dev`).
pub const EXAMPLE_ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

#[derive(Serialize, Deserialize)]
struct Stored {
    access_key: String,
    secret_key: String,
}

/// Where the generated pair lives.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("credentials.json")
}

/// Loads the generated pair, creating it first if needed; returns it and whether it is new.
pub fn load_or_create(data_dir: &Path) -> std::io::Result<(KeyPair, bool)> {
    let p = path(data_dir);
    if let Ok(bytes) = std::fs::read(&p) {
        let s: Stored = serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", p.display())))?;
        return Ok((
            KeyPair {
                access_key: s.access_key,
                secret_key: s.secret_key,
            },
            false,
        ));
    }
    const AK: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SK: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut rng = rand::rng();
    let access_key: String = "PS"
        .chars()
        .chain((0..18).map(|_| AK[rng.random_range(0..AK.len())] as char))
        .collect();
    let secret_key: String = (0..40)
        .map(|_| SK[rng.random_range(0..SK.len())] as char)
        .collect();
    let bytes = serde_json::to_vec_pretty(&Stored {
        access_key: access_key.clone(),
        secret_key: secret_key.clone(),
    })
    .map_err(std::io::Error::other)?;
    engine::private::create_dir_all(data_dir)?;
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    Ok((
        KeyPair {
            access_key,
            secret_key,
        },
        true,
    ))
}
