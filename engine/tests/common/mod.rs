//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;

use engine::{Durability, Engine, EngineConfig, PutOptions};
use futures::StreamExt;

/// A small-chunk configuration so tests cross chunk boundaries with little data.
pub fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.chunk_size = 64 * 1024;
    c.inline_threshold = 4 * 1024;
    c.durability = Durability::None;
    c
}

/// An engine with 4 KiB chunks and nothing inline, with bucket `bkt`: many chunks from little data.
pub async fn tiny_chunk_engine(dir: &Path) -> Engine {
    let mut cfg = config(dir);
    cfg.chunk_size = 4096;
    cfg.inline_threshold = 0;
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    e
}

/// Deterministic pseudo-random bytes.
pub fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// Puts `bytes` under `key`.
pub async fn put(e: &Engine, bucket: &str, key: &str, bytes: &[u8]) -> engine::ObjectMeta {
    e.put_object(bucket, key, bytes, PutOptions::default())
        .await
        .unwrap()
}

/// Reads a whole object or range.
pub async fn get(
    e: &Engine,
    bucket: &str,
    key: &str,
    range: Option<engine::ByteRange>,
) -> engine::Result<Vec<u8>> {
    let g = e.get_object(bucket, key, range).await?;
    let mut body = g.body;
    let mut out = Vec::new();
    while let Some(b) = body.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

/// Number of shard files under every disk's `chunks/`.
pub fn shard_files(dir: &Path) -> usize {
    let mut n = 0;
    for d in std::fs::read_dir(dir.join("disks")).unwrap().flatten() {
        n += count_files(&d.path().join("chunks"));
    }
    n
}

fn count_files(p: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(p) else {
        return 0;
    };
    rd.flatten()
        .map(|e| {
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                count_files(&e.path())
            } else {
                1
            }
        })
        .sum()
}

/// MD5 hex of bytes.
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}
