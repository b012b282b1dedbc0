//! Buckets, objects, ranges, copies, dedup, multipart: the engine's API on a real data dir.

mod common;

use common::*;
use engine::{ByteRange, CopyOptions, Engine, Error, ObjectAttrs, PutOptions};
use proptest::prelude::*;

async fn fresh() -> (tempfile::TempDir, Engine) {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    (dir, e)
}

#[tokio::test]
async fn bucket_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    assert!(matches!(
        e.create_bucket("Bad_Name").await,
        Err(Error::InvalidBucketName { .. })
    ));
    e.create_bucket("alpha").await.unwrap();
    e.create_bucket("beta").await.unwrap();
    assert!(matches!(
        e.create_bucket("alpha").await,
        Err(Error::BucketAlreadyExists(_))
    ));
    let names: Vec<_> = e
        .list_buckets()
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    assert_eq!(names, ["alpha", "beta"]);
    // Tags: set, replaced, kept across a reopen, removed; a missing bucket has none to set.
    let tags: std::collections::BTreeMap<String, String> = [
        ("team".into(), "edge".into()),
        ("env".into(), String::new()),
    ]
    .into();
    e.set_bucket_tags("beta", tags.clone()).await.unwrap();
    assert_eq!(e.head_bucket("beta").unwrap().tags, tags);
    assert!(matches!(
        e.set_bucket_tags("nope", tags.clone()).await,
        Err(Error::NoSuchBucket(_))
    ));
    drop(e);
    let e = Engine::open(config(dir.path())).unwrap();
    assert_eq!(e.list_buckets().unwrap()[1].tags, tags);
    e.set_bucket_tags("beta", Default::default()).await.unwrap();
    assert!(e.head_bucket("beta").unwrap().tags.is_empty());
    put(&e, "alpha", "k", b"v").await;
    assert!(matches!(
        e.delete_bucket("alpha").await,
        Err(Error::BucketNotEmpty(_))
    ));
    e.delete_object("alpha", "k").await.unwrap();
    e.delete_bucket("alpha").await.unwrap();
    assert!(matches!(
        e.head_bucket("alpha"),
        Err(Error::NoSuchBucket(_))
    ));
    assert!(matches!(
        e.delete_bucket("nope").await,
        Err(Error::NoSuchBucket(_))
    ));
    assert!(matches!(
        e.put_object("nope", "k", &b"x"[..], PutOptions::default())
            .await,
        Err(Error::NoSuchBucket(_))
    ));
}

#[tokio::test]
async fn put_get_head_delete_and_metadata() {
    let (_d, e) = fresh().await;
    let body = data(1, 200_000);
    let mut attrs = ObjectAttrs {
        content_type: Some("image/png".into()),
        cache_control: Some("max-age=60".into()),
        ..Default::default()
    };
    attrs.user_metadata.insert("color".into(), "blue".into());
    attrs.checksums.insert("CRC32".into(), "AAAAAA==".into());
    let m = e
        .put_object(
            "bkt",
            "dir/file.png",
            &body[..],
            PutOptions {
                attrs: attrs.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(m.size, body.len() as u64);
    assert_eq!(m.etag, md5_hex(&body));
    let h = e.head_object("bkt", "dir/file.png").unwrap();
    assert_eq!(h.attrs, attrs);
    assert_eq!(h.etag, m.etag);
    assert_eq!(h.posix().mode, 0o100644);
    assert_eq!(get(&e, "bkt", "dir/file.png", None).await.unwrap(), body);
    assert!(e.delete_object("bkt", "dir/file.png").await.unwrap());
    assert!(!e.delete_object("bkt", "dir/file.png").await.unwrap());
    assert!(matches!(
        e.head_object("bkt", "dir/file.png"),
        Err(Error::NoSuchKey { .. })
    ));
    assert!(matches!(
        e.put_object("bkt", "", &b""[..], PutOptions::default())
            .await,
        Err(Error::InvalidKey(_))
    ));
    let long = "k".repeat(1025);
    assert!(matches!(
        e.put_object("bkt", &long, &b""[..], PutOptions::default())
            .await,
        Err(Error::KeyTooLong { len: 1025 })
    ));
    // 1024-byte keys work (LMDB built with longer keys).
    let k1024 = "k".repeat(1024);
    put(&e, "bkt", &k1024, b"x").await;
    assert_eq!(get(&e, "bkt", &k1024, None).await.unwrap(), b"x");
}

#[tokio::test]
async fn empty_and_inline_and_chunked_objects() {
    let (dir, e) = fresh().await;
    let m = put(&e, "bkt", "empty", b"").await;
    assert_eq!(m.etag, "d41d8cd98f00b204e9800998ecf8427e");
    assert_eq!(get(&e, "bkt", "empty", None).await.unwrap(), b"");
    put(&e, "bkt", "small", &data(2, 4096)).await;
    assert_eq!(shard_files(dir.path()), 0, "small objects are inline");
    put(&e, "bkt", "big", &data(3, 64 * 1024 * 3 + 17)).await;
    assert_eq!(shard_files(dir.path()), 4 * 6);
    assert_eq!(
        get(&e, "bkt", "big", None).await.unwrap(),
        data(3, 64 * 1024 * 3 + 17)
    );
}

#[tokio::test]
async fn ranges() {
    let (_d, e) = fresh().await;
    let body = data(4, 300_001);
    put(&e, "bkt", "r", &body).await;
    put(&e, "bkt", "s", &body[..1000]).await;
    for key in ["r", "s"] {
        let b = if key == "r" { &body[..] } else { &body[..1000] };
        let n = b.len() as u64;
        for (r, want) in [
            (ByteRange::FromTo(0, 0), &b[0..1]),
            (ByteRange::FromTo(10, 99), &b[10..100]),
            (ByteRange::FromTo(5, n + 100), &b[5..]),
            (ByteRange::From(n - 3), &b[b.len() - 3..]),
            (ByteRange::Suffix(7), &b[b.len() - 7..]),
            (ByteRange::Suffix(n + 5), b),
        ] {
            assert_eq!(get(&e, "bkt", key, Some(r)).await.unwrap(), want, "{r:?}");
        }
        for r in [
            ByteRange::FromTo(n, n + 1),
            ByteRange::From(n),
            ByteRange::Suffix(0),
            ByteRange::FromTo(5, 4),
        ] {
            assert!(matches!(
                get(&e, "bkt", key, Some(r)).await,
                Err(Error::InvalidRange { .. })
            ));
        }
    }
    // Ranges across chunk boundaries (64 KiB chunks, 16 KiB shards).
    for (a, z) in [(65_530u64, 65_545u64), (16_383, 16_385), (0, 200_000)] {
        assert_eq!(
            get(&e, "bkt", "r", Some(ByteRange::FromTo(a, z)))
                .await
                .unwrap(),
            &body[a as usize..=z as usize]
        );
    }
}

#[tokio::test]
async fn dedup_copy_overwrite_and_gc() {
    let (dir, e) = fresh().await;
    let body = data(5, 64 * 1024 * 4);
    put(&e, "bkt", "a", &body).await;
    let files = shard_files(dir.path());
    put(&e, "bkt", "b", &body).await;
    assert_eq!(shard_files(dir.path()), files, "identical data stored once");
    let c = e
        .copy_object("bkt", "a", "bkt", "c", CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(c.etag, md5_hex(&body));
    assert_eq!(shard_files(dir.path()), files, "copy writes no data");
    assert_eq!(get(&e, "bkt", "c", None).await.unwrap(), body);
    let recs = e.chunk_records().unwrap();
    assert!(recs.values().all(|r| r.refs == 3));
    // Copy onto itself replaces metadata.
    let attrs = ObjectAttrs {
        content_type: Some("text/plain".into()),
        ..Default::default()
    };
    e.copy_object(
        "bkt",
        "c",
        "bkt",
        "c",
        CopyOptions {
            replace_attrs: Some(attrs.clone()),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(e.head_object("bkt", "c").unwrap().attrs, attrs);
    assert!(e.chunk_records().unwrap().values().all(|r| r.refs == 3));
    // Overwrite and delete: nothing is freed until the last reference goes.
    put(&e, "bkt", "a", b"tiny").await;
    e.delete_object("bkt", "b").await.unwrap();
    e.gc(true).await.unwrap();
    assert_eq!(shard_files(dir.path()), files);
    e.delete_object("bkt", "c").await.unwrap();
    let rep = e.gc(true).await.unwrap();
    assert_eq!(rep.chunks_removed, 4);
    assert_eq!(shard_files(dir.path()), 0);
    assert!(e.chunk_records().unwrap().is_empty());
}

#[tokio::test]
async fn conditional_puts() {
    let (_d, e) = fresh().await;
    let m = put(&e, "bkt", "k", b"one").await;
    let put_two = |if_none_match: Option<&str>, if_match: Option<String>| {
        let opts = PutOptions {
            if_none_match: if_none_match.map(String::from),
            if_match,
            ..Default::default()
        };
        e.put_object("bkt", "k", &b"two"[..], opts)
    };
    let r = put_two(Some("*"), None).await;
    assert!(matches!(r, Err(Error::PreconditionFailed(_))));
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), b"one");
    // If-None-Match with an ETag: refused when it is the current one, not otherwise.
    let r = put_two(Some(&format!("\"{}\"", m.etag)), None).await;
    assert!(matches!(r, Err(Error::PreconditionFailed(_))));
    let r = put_two(Some("\"0000\""), Some("\"0000\"".into())).await;
    assert!(matches!(r, Err(Error::PreconditionFailed(_))));
    put_two(Some("\"0000\""), Some(format!("\"{}\"", m.etag)))
        .await
        .unwrap();
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), b"two");
}

#[tokio::test]
async fn failed_conditional_put_of_big_object_leaves_no_garbage() {
    let (dir, e) = fresh().await;
    put(&e, "bkt", "k", b"one").await;
    let big = data(9, 300_000);
    let r = e
        .put_object(
            "bkt",
            "k",
            &big[..],
            PutOptions {
                if_none_match: Some("*".into()),
                ..Default::default()
            },
        )
        .await;
    assert!(matches!(r, Err(Error::PreconditionFailed(_))));
    e.gc(false).await.unwrap();
    assert_eq!(shard_files(dir.path()), 0);
}

#[tokio::test]
async fn body_error_mid_stream_stores_nothing() {
    let (dir, e) = fresh().await;
    let good = data(10, 200_000);
    let failing = tokio::io::AsyncReadExt::chain(&good[..], tokio_test_reader_error());
    let r = e
        .put_object("bkt", "k", failing, PutOptions::default())
        .await;
    assert!(matches!(r, Err(Error::Io(_))));
    assert!(matches!(
        e.head_object("bkt", "k"),
        Err(Error::NoSuchKey { .. })
    ));
    e.gc(false).await.unwrap();
    assert_eq!(shard_files(dir.path()), 0);
}

/// A reader that fails on first read.
fn tokio_test_reader_error() -> impl tokio::io::AsyncRead + Unpin + Send {
    struct Fail;
    impl tokio::io::AsyncRead for Fail {
        fn poll_read(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Err(std::io::Error::other("client went away")))
        }
    }
    Fail
}

#[tokio::test]
async fn multipart_upload() {
    let (dir, e) = fresh().await;
    let p1 = data(11, engine::MIN_PART_SIZE as usize);
    let p2 = data(12, 1000);
    let id = e
        .create_multipart_upload("bkt", "mp", ObjectAttrs::default())
        .await
        .unwrap();
    let up = e
        .list_multipart_uploads("bkt", "", None, None, 1000)
        .unwrap();
    assert_eq!(up.uploads.len(), 1);
    assert_eq!(up.uploads[0].upload_id, id);
    let i2 = e
        .upload_part("bkt", "mp", &id, 2, &p2[..], None)
        .await
        .unwrap();
    let i1 = e
        .upload_part("bkt", "mp", &id, 1, &p1[..], None)
        .await
        .unwrap();
    assert_eq!(i1.etag, md5_hex(&p1));
    let parts = e.list_parts("bkt", "mp", &id, 0, 1000).unwrap();
    assert_eq!(
        parts
            .parts
            .iter()
            .map(|p| p.part_number)
            .collect::<Vec<_>>(),
        [1, 2]
    );
    // Wrong order, wrong ETag, too small.
    let complete = |parts: Vec<(u32, String)>| {
        e.complete_multipart_upload("bkt", "mp", &id, parts, PutOptions::default())
    };
    assert!(matches!(
        complete(vec![(2, i2.etag.clone()), (1, i1.etag.clone())]).await,
        Err(Error::InvalidPartOrder)
    ));
    assert!(matches!(
        complete(vec![(1, "ffff".into())]).await,
        Err(Error::InvalidPart(_))
    ));
    assert!(matches!(
        complete(vec![(2, i2.etag.clone()), (3, i2.etag.clone())]).await,
        Err(Error::InvalidPart(_))
    ));
    let files_before = shard_files(dir.path());
    let m = e
        .complete_multipart_upload(
            "bkt",
            "mp",
            &id,
            vec![(1, format!("\"{}\"", i1.etag)), (2, i2.etag.clone())],
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(shard_files(dir.path()), files_before, "no data copied");
    let mut md5s = hex::decode(&i1.etag).unwrap();
    md5s.extend(hex::decode(&i2.etag).unwrap());
    assert_eq!(m.etag, format!("{}-2", md5_hex(&md5s)));
    let mut whole = p1.clone();
    whole.extend_from_slice(&p2);
    assert_eq!(get(&e, "bkt", "mp", None).await.unwrap(), whole);
    assert_eq!(
        e.part_range("bkt", "mp", 2).unwrap(),
        (p1.len() as u64, whole.len() as u64)
    );
    assert!(matches!(
        e.list_parts("bkt", "mp", &id, 0, 10),
        Err(Error::NoSuchUpload(_))
    ));
    // Abort frees the parts' chunks.
    let id2 = e
        .create_multipart_upload("bkt", "mp2", ObjectAttrs::default())
        .await
        .unwrap();
    e.upload_part(
        "bkt",
        "mp2",
        &id2,
        1,
        &data(13, 300_000)[..],
        Default::default(),
    )
    .await
    .unwrap();
    let before = shard_files(dir.path());
    e.abort_multipart_upload("bkt", "mp2", &id2).await.unwrap();
    e.gc(false).await.unwrap();
    assert!(shard_files(dir.path()) < before);
    assert!(matches!(
        e.abort_multipart_upload("bkt", "mp2", &id2).await,
        Err(Error::NoSuchUpload(_))
    ));
    assert!(matches!(
        e.upload_part("bkt", "mp2", "zz", 1, &b""[..], None).await,
        Err(Error::NoSuchUpload(_))
    ));
    // Everything left is referenced by "mp".
    e.delete_object("bkt", "mp").await.unwrap();
    e.gc(true).await.unwrap();
    assert_eq!(shard_files(dir.path()), 0);
}

#[tokio::test]
async fn reopen_keeps_everything_and_checks_format_version() {
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Engine::open(config(dir.path())).unwrap();
        e.create_bucket("bkt").await.unwrap();
        put(&e, "bkt", "k", &data(20, 100_000)).await;
    }
    {
        let e = Engine::open(config(dir.path())).unwrap();
        assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), data(20, 100_000));
    }
    let f = dir.path().join("predastore.json");
    let s = std::fs::read_to_string(&f).unwrap();
    std::fs::write(
        &f,
        s.replace(
            &format!("\"format_version\": {}", engine::testing::FORMAT_VERSION),
            "\"format_version\": 99",
        ),
    )
    .unwrap();
    let err = Engine::open(config(dir.path())).err().unwrap();
    assert!(
        matches!(err, Error::FormatVersion { found: 99, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("99"));
}

// Chunking and reassembly for sizes around chunk boundaries.
proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn sizes_around_chunk_boundaries(
        chunks in 0usize..4,
        delta in -3i64..=3,
        seed in any::<u64>(),
        a in any::<u32>(),
        b in any::<u32>(),
    ) {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let dir = tempfile::tempdir().unwrap();
            let e = tiny_chunk_engine(dir.path()).await;
            let len = ((chunks * 4096) as i64 + delta).max(0) as usize;
            let body = data(seed, len);
            let m = put(&e, "bkt", "k", &body).await;
            prop_assert_eq!(m.size, len as u64);
            prop_assert_eq!(&m.etag, &md5_hex(&body));
            prop_assert_eq!(&get(&e, "bkt", "k", None).await.unwrap(), &body);
            if len > 0 {
                let (x, y) = ((a as usize) % len, (b as usize) % len);
                let (x, y) = (x.min(y), x.max(y));
                let got = get(&e, "bkt", "k", Some(ByteRange::FromTo(x as u64, y as u64))).await.unwrap();
                prop_assert_eq!(&got[..], &body[x..=y]);
            }
            Ok(())
        })?;
    }
}

#[tokio::test]
async fn attrs_update_and_late_checksums() {
    let (_d, e) = fresh().await;
    let late: engine::LateChecksums = Default::default();
    late.lock()
        .unwrap()
        .insert("CRC32".into(), "trailer==".into());
    e.put_object(
        "bkt",
        "k",
        &b"body"[..],
        PutOptions {
            late_checksums: Some(late),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let before = e.head_object("bkt", "k").unwrap();
    assert_eq!(before.attrs.checksums["CRC32"], "trailer==");
    let after = e
        .update_object_attrs("bkt", "k", |a| {
            a.tags.insert("t".into(), "v".into());
        })
        .await
        .unwrap();
    assert_eq!(after.etag, before.etag);
    assert_eq!(after.last_modified_ns, before.last_modified_ns);
    assert_eq!(e.head_object("bkt", "k").unwrap().attrs.tags["t"], "v");
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), b"body");
    assert!(matches!(
        e.update_object_attrs("bkt", "nope", |_| {}).await,
        Err(Error::NoSuchKey { .. })
    ));
}

#[tokio::test]
async fn rename_is_atomic_and_replaces_the_target() {
    let (dir, e) = fresh().await;
    let a = data(40, 200_000);
    let b = data(41, 100_000);
    put(&e, "bkt", "a", &a).await;
    put(&e, "bkt", "b", &b).await;
    let files = shard_files(dir.path());
    e.rename_object("bkt", "a", "bkt", "b").await.unwrap();
    assert_eq!(get(&e, "bkt", "b", None).await.unwrap(), a);
    assert!(matches!(
        e.head_object("bkt", "a"),
        Err(Error::NoSuchKey { .. })
    ));
    assert_eq!(shard_files(dir.path()), files, "rename writes no data");
    assert!(e.fsck().unwrap().is_clean());
    e.gc(false).await.unwrap();
    assert!(
        shard_files(dir.path()) < files,
        "the replaced object's chunks are freed"
    );
    assert!(matches!(
        e.rename_object("bkt", "a", "bkt", "c").await,
        Err(Error::NoSuchKey { .. })
    ));
}

/// `storage.direct_io`: shards written with O_DIRECT read back the same, and GC frees them.
#[tokio::test]
async fn direct_io_writes_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.direct_io = true;
    cfg.durability = engine::Durability::Fsync;
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let body = data(5, 300_000);
    put(&e, "bkt", "k", &body).await;
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), body);
    e.delete_object("bkt", "k").await.unwrap();
    e.gc(true).await.unwrap();
    assert_no_orphans(&e, dir.path(), "after GC");
    assert!(e.chunk_records().unwrap().is_empty());
}
