//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::path::Path;

use engine::{Durability, Engine, EngineConfig, PutOptions};
use futures::StreamExt;

/// A small-chunk configuration so tests cross chunk boundaries with little data.
///
/// With `PREDASTORE_TEST_ETCD` set (client URLs, comma-separated), the metadata is on that etcd
/// cluster instead of LMDB, under a prefix of the data directory's own: the same tests then
/// run against the etcd store (`scripts/engine-tests-on-etcd.sh`), and an engine opened again
/// on the same directory finds its metadata.
pub fn config(dir: &Path) -> EngineConfig {
    let mut c = EngineConfig::new(dir);
    c.chunk_size = 64 * 1024;
    c.inline_threshold = 4 * 1024;
    c.durability = Durability::None;
    if let Ok(eps) = std::env::var("PREDASTORE_TEST_ETCD") {
        c.metadata = engine::Metadata::Etcd {
            endpoints: eps.split(',').map(str::to_string).collect(),
            prefix: format!("/predastore-test{}/", dir.display()),
        };
    }
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
#[allow(unused_imports)]
pub use engine::testing::pseudo_random as data;

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

/// Every shard physically present in the volume files of every disk:
/// `(volume path, offset, header)`, found by scanning the files' data ranges for shard headers.
pub fn scan_shards(dir: &Path) -> Vec<(std::path::PathBuf, u64, engine::testing::ShardHeader)> {
    let mut out = Vec::new();
    let mut disks: Vec<_> = std::fs::read_dir(dir.join("disks"))
        .unwrap()
        .flatten()
        .map(|d| d.path())
        .collect();
    disks.sort();
    for d in disks {
        for (_, path) in engine::testing::list_volumes(&d) {
            for (off, h) in engine::testing::scan_shards(&path).unwrap() {
                out.push((path.clone(), off, h));
            }
        }
    }
    out
}

/// Number of shards physically present on all disks.
pub fn shard_files(dir: &Path) -> usize {
    scan_shards(dir).len()
}

/// Asserts that the shards on disk are exactly the ones the chunk records point at: nothing
/// orphaned, nothing recorded but absent.
pub fn assert_no_orphans(e: &Engine, dir: &Path, what: &str) {
    use std::collections::BTreeSet;
    let on_disk: BTreeSet<(std::path::PathBuf, u64)> = scan_shards(dir)
        .into_iter()
        .map(|(p, o, _)| (p, o))
        .collect();
    let mut recorded = BTreeSet::new();
    for h in e.chunk_records().unwrap().keys() {
        for p in e.shard_locations(h).unwrap().into_iter().flatten() {
            recorded.insert((p.volume, p.offset));
        }
    }
    let orphans: Vec<_> = on_disk.difference(&recorded).collect();
    let absent: Vec<_> = recorded.difference(&on_disk).collect();
    assert!(
        orphans.is_empty() && absent.is_empty(),
        "{what}: {} orphan shards on disk {:?}, {} recorded shards absent {:?}",
        orphans.len(),
        orphans.iter().take(3).collect::<Vec<_>>(),
        absent.len(),
        absent.iter().take(3).collect::<Vec<_>>()
    );
}

/// MD5 hex of bytes.
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(b))
}

/// Flips a byte inside the payload of up to `per_chunk` shards of every chunk, found by
/// scanning the volume files (as a disk's bitrot would hit them, without asking the engine).
pub fn rot(dir: &Path, per_chunk: usize) -> usize {
    use std::os::unix::fs::FileExt;
    let mut by_chunk: std::collections::BTreeMap<[u8; 32], Vec<(std::path::PathBuf, u64, usize)>> =
        Default::default();
    for (path, off, h) in scan_shards(dir) {
        let codec = engine::testing::Codec {
            k: h.k as usize,
            m: h.m as usize,
        };
        let s = codec.shard_len(h.chunk_len as usize);
        by_chunk.entry(h.chunk).or_default().push((path, off, s));
    }
    let mut n = 0;
    for (_, mut shards) in by_chunk {
        shards.sort();
        for (path, off, s) in shards.into_iter().take(per_chunk) {
            let f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .unwrap();
            let at = off + engine::testing::HEADER_LEN as u64 + (s as u64) / 2;
            let mut b = [0u8; 1];
            f.read_exact_at(&mut b, at).unwrap();
            b[0] ^= 0x5a;
            f.write_all_at(&b, at).unwrap();
            n += 1;
        }
    }
    n
}

/// A full scrub (every shard verified, the bad ones rewritten); its report.
pub async fn scrub(e: &Engine) -> engine::HealReport {
    e.heal(
        engine::HealOptions {
            mode: engine::HealMode::Scrub,
            ..Default::default()
        },
        Box::new(|_| {}),
    )
    .await
    .unwrap()
}
