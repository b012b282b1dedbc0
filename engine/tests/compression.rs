//! zstd compression per chunk and of inline objects: what compresses is stored smaller, what
//! does not is stored plain, every byte comes back (whole, in ranges, degraded, after heal),
//! names, ETags and sizes are those of the plain data, and dedup works across settings.

mod common;

use std::path::Path;

use common::*;
use engine::{ByteRange, Compression, Engine};

/// Log-like text: compresses about tenfold.
fn text(n: usize, seed: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(n + 100);
    let mut i = seed;
    while out.len() < n {
        out.extend_from_slice(
            format!(
                "2026-12-07T01:{:02}:{:02}Z INFO s3d request id={i:08x} op=GetObject status=200 bytes={}\n",
                (i / 60) % 60,
                i % 60,
                i * 37 % 100_000
            )
            .as_bytes(),
        );
        i += 1;
    }
    out.truncate(n);
    out
}

fn zstd_config(dir: &Path) -> engine::EngineConfig {
    let mut c = config(dir);
    c.compression = Compression::Zstd(3);
    c
}

fn compressed(e: &Engine) -> usize {
    e.chunk_records()
        .unwrap()
        .values()
        .filter(|r| r.encoding == engine::compression::Encoding::Zstd)
        .count()
}

async fn check_ranges(e: &Engine, bucket: &str, key: &str, want: &[u8]) {
    assert_eq!(get(e, bucket, key, None).await.unwrap(), want, "{key}");
    let n = want.len() as u64;
    for (a, b) in [
        (0, 0),
        (0, 99),
        (65_530, 65_545),
        (n / 2, n / 2 + 200_000),
        (n - 1, n - 1),
        (n - 70_000, n - 1),
    ] {
        let b = b.min(n - 1);
        let got = get(e, bucket, key, Some(ByteRange::FromTo(a, b)))
            .await
            .unwrap();
        assert_eq!(got, &want[a as usize..=b as usize], "{key} {a}-{b}");
    }
}

#[tokio::test]
async fn text_is_stored_compressed_random_plain_and_both_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(zstd_config(dir.path())).unwrap();
    e.create_bucket("logs").await.unwrap();
    let log = text(1_000_003, 1);
    let noise = data(7, 300_000);
    let m = put(&e, "logs", "app.log", &log).await;
    assert_eq!(m.size, log.len() as u64);
    assert_eq!(m.etag, md5_hex(&log), "the ETag is the plain object's MD5");
    put(&e, "logs", "noise.bin", &noise).await;
    let recs = e.chunk_records().unwrap();
    // 1 MB of text in 64 KiB chunks: 16 chunks, all compressed; the random ones plain.
    assert_eq!(compressed(&e), 16);
    assert_eq!(recs.len(), 16 + 5);
    for r in recs.values() {
        if r.encoding == engine::compression::Encoding::Zstd {
            assert!(r.len * 5 < r.plain_len, "{} of {}", r.len, r.plain_len);
        } else {
            assert_eq!(r.len, r.plain_len);
        }
    }
    check_ranges(&e, "logs", "app.log", &log).await;
    check_ranges(&e, "logs", "noise.bin", &noise).await;
    // Many small reads of one chunk (the mount's pattern) come back right, in any order.
    for a in (0..200_000u64)
        .step_by(4096)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let got = get(&e, "logs", "app.log", Some(ByteRange::FromTo(a, a + 4095)))
            .await
            .unwrap();
        assert_eq!(got, &log[a as usize..a as usize + 4096]);
    }
    let st = e.status().unwrap();
    assert_eq!(st.compressed_chunks, 16);
    assert!(st.compression_saved_bytes > 800_000, "{st:?}");
    assert!(st.chunk_bytes < 200_000 + 300_000, "{st:?}");
    assert!(e.fsck().unwrap().is_clean());
    // The store reopens (format upgraded) and reads the same.
    drop(e);
    let e = Engine::open(zstd_config(dir.path())).unwrap();
    check_ranges(&e, "logs", "app.log", &log).await;
}

#[tokio::test]
async fn bucket_settings_override_the_store_and_dedup_spans_them() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    for b in ["plain", "packed"] {
        e.create_bucket(b).await.unwrap();
    }
    e.set_bucket_compression("packed", Some(Compression::Zstd(9)))
        .await
        .unwrap();
    assert_eq!(e.compression_of("plain").unwrap(), Compression::Off);
    assert_eq!(e.compression_of("packed").unwrap(), Compression::Zstd(9));
    let log = text(500_000, 2);
    put(&e, "packed", "a.log", &log).await;
    let after_first = e.chunk_records().unwrap().len();
    assert_eq!(compressed(&e), after_first);
    // The same bytes in a bucket without compression: the same chunks (named by their plain
    // bytes), nothing stored again.
    put(&e, "plain", "a.log", &log).await;
    assert_eq!(e.chunk_records().unwrap().len(), after_first);
    check_ranges(&e, "plain", "a.log", &log).await;
    // New text in the plain bucket is stored plain.
    let other = text(200_000, 99_999);
    put(&e, "plain", "b.log", &other).await;
    assert_eq!(compressed(&e), after_first);
    // Back to the store's default: plain from then on; what was stored stays readable.
    e.set_bucket_compression("packed", None).await.unwrap();
    put(&e, "packed", "c.log", &text(100_000, 424_242)).await;
    assert_eq!(compressed(&e), after_first);
    check_ranges(&e, "packed", "a.log", &log).await;
    assert!(e.set_bucket_compression("nope", None).await.is_err());
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn small_objects_are_compressed_inline_and_copied() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(zstd_config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    e.create_bucket("cpy").await.unwrap();
    let small = text(4000, 3);
    let m = put(&e, "bkt", "small.log", &small).await;
    assert_eq!(m.etag, md5_hex(&small));
    assert!(e.chunk_records().unwrap().is_empty(), "inline, no chunk");
    let saved = e.status().unwrap().compression_saved_bytes;
    assert!(saved > 3000, "{saved}");
    assert_eq!(get(&e, "bkt", "small.log", None).await.unwrap(), small);
    assert_eq!(
        get(&e, "bkt", "small.log", Some(ByteRange::FromTo(100, 199)))
            .await
            .unwrap(),
        &small[100..200]
    );
    // Tiny or random inline objects stay plain; all read back.
    for (k, v) in [("tiny", b"hello".to_vec()), ("rand", data(4, 3000))] {
        put(&e, "bkt", k, &v).await;
        assert_eq!(get(&e, "bkt", k, None).await.unwrap(), v);
    }
    e.copy_object("bkt", "small.log", "cpy", "copy.log", Default::default())
        .await
        .unwrap();
    assert_eq!(get(&e, "cpy", "copy.log", None).await.unwrap(), small);
    assert!(e.status().unwrap().compression_saved_bytes >= 2 * saved - 100);
}

#[tokio::test]
async fn compressed_chunks_survive_rot_are_scrubbed_and_never_read_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(zstd_config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let log = text(700_000, 5);
    put(&e, "bkt", "k", &log).await;
    drop(e);
    assert!(
        scan_shards(dir.path())
            .iter()
            .all(|(_, _, h)| h.encoding == 1),
        "every chunk here is compressed"
    );
    let flipped = rot(dir.path(), 2);
    assert!(flipped >= 2 * 10);
    // A fresh process: nothing decompressed in memory yet.
    let e = Engine::open(zstd_config(dir.path())).unwrap();
    check_ranges(&e, "bkt", "k", &log).await;
    let rep = scrub(&e).await;
    assert_eq!(rep.shards_corrupt as usize, flipped);
    assert_eq!(rep.shards_repaired as usize, flipped);
    assert!(rep.unrecoverable.is_empty());
    drop(e);
    // Three bad shards of a chunk: an error, never wrong bytes.
    rot(dir.path(), 3);
    let e = Engine::open(zstd_config(dir.path())).unwrap();
    let r = get(&e, "bkt", "k", None).await;
    assert!(
        matches!(r, Err(engine::Error::ReadQuorum { .. })),
        "{:?}",
        r.map(|v| v.len())
    );
}
