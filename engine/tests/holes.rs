//! Runs of zeros stored as holes (nothing on disk, the same bytes back, references and fsck
//! untouched), the upgrade of version 3 data directories, and full disks.

mod common;

#[path = "../../tests/support/small_fs.rs"]
mod small_fs;
use small_fs::SmallFs;

use std::path::{Path, PathBuf};

use common::*;
use engine::{ByteRange, CopyOptions, Engine, EngineConfig, Error};

const KIB: usize = 1024;
const MIB: usize = 1 << 20;

#[test]
fn zero_runs_are_whole_pages_of_at_least_min_hole() {
    use engine::{zero_runs, HOLE_PAGE, MIN_HOLE};
    assert_eq!(zero_runs(&[]), vec![]);
    // All zeros, of any length: one hole.
    assert_eq!(zero_runs(&[0u8; 5]), vec![(5, true)]);
    assert_eq!(zero_runs(&vec![0u8; MIB + 3]), vec![(MIB + 3, true)]);
    // No zeros: one run of data.
    assert_eq!(zero_runs(&data(1, 300 * KIB)), vec![(300 * KIB, false)]);
    // A run of zero pages long enough becomes a hole, between data.
    let mut d = data(2, 3 * MIB);
    d[HOLE_PAGE * 10..HOLE_PAGE * 10 + MIN_HOLE].fill(0);
    assert_eq!(
        zero_runs(&d),
        vec![
            (HOLE_PAGE * 10, false),
            (MIN_HOLE, true),
            (3 * MIB - HOLE_PAGE * 10 - MIN_HOLE, false)
        ]
    );
    // One page short of the minimum, or not page-aligned: data.
    let mut d = data(3, MIB);
    d[HOLE_PAGE..MIN_HOLE].fill(0);
    assert_eq!(zero_runs(&d), vec![(MIB, false)]);
    let mut d = data(4, MIB);
    d[100..100 + MIN_HOLE + HOLE_PAGE - 200].fill(0);
    assert_eq!(zero_runs(&d), vec![(MIB, false)]);
    // One nonzero byte at the very end of a page keeps that page.
    let mut d = vec![0u8; 2 * MIN_HOLE];
    d[MIN_HOLE + HOLE_PAGE - 1] = 1;
    assert_eq!(
        zero_runs(&d),
        vec![
            (MIN_HOLE, true),
            (HOLE_PAGE, false),
            (MIN_HOLE - HOLE_PAGE, false)
        ]
        .into_iter()
        .fold(Vec::new(), |mut v: Vec<(usize, bool)>, (n, h)| {
            match v.last_mut() {
                Some((m, g)) if *g == h => *m += n,
                _ => v.push((n, h)),
            }
            v
        })
    );
    // Trailing zeros, a partial page among them, long enough: a hole at the end.
    let mut d = data(5, MIN_HOLE * 3 + 17);
    d[HOLE_PAGE..].fill(0);
    assert_eq!(
        zero_runs(&d),
        vec![(HOLE_PAGE, false), (MIN_HOLE * 3 + 17 - HOLE_PAGE, true)]
    );
    // The runs always cover the input.
    for seed in 0..50u64 {
        let mut d = data(seed, 700 * KIB + seed as usize);
        let mut r = seed;
        for _ in 0..6 {
            r = r
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (r >> 33) as usize % d.len();
            let n = (r >> 13) as usize % (200 * KIB);
            let b = (a + n).min(d.len());
            d[a..b].fill(0);
        }
        let runs = zero_runs(&d);
        assert_eq!(runs.iter().map(|r| r.0).sum::<usize>(), d.len());
        let mut at = 0;
        for (n, hole) in runs {
            if hole {
                assert!(d[at..at + n].iter().all(|b| *b == 0));
                assert!(n >= MIN_HOLE || n == d.len());
            }
            at += n;
        }
    }
}

/// A scrub of every chunk finds nothing missing or corrupt.
async fn scrub_finds_nothing(e: &Engine) {
    let rep = scrub(e).await;
    assert!(rep.unrecoverable.is_empty(), "{rep:?}");
    assert_eq!(rep.shards_corrupt + rep.shards_missing, 0, "{rep:?}");
}

/// Bytes the chunks some object references occupy (before coding).
fn stored_bytes(e: &Engine) -> u64 {
    e.chunk_records()
        .unwrap()
        .values()
        .filter(|r| r.refs > 0)
        .map(|r| r.len as u64)
        .sum()
}

fn one_mib_chunks(dir: &Path) -> EngineConfig {
    let mut c = config(dir);
    c.chunk_size = MIB;
    c
}

/// A body of three chunks and a bit: data, data with a run of zeros, all zeros, five zeros.
fn sparse_body() -> (Vec<u8>, u64) {
    let mut b = data(11, 3 * MIB + 5);
    b[MIB + 100 * KIB..MIB + 700 * KIB].fill(0);
    b[2 * MIB..].fill(0);
    (b, (600 * KIB + MIB + 5) as u64)
}

#[tokio::test]
async fn runs_of_zeros_take_no_space_and_read_back_as_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(one_mib_chunks(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let (body, holes) = sparse_body();
    let m = put(&e, "bkt", "img", &body).await;
    assert_eq!(m.hole_bytes, holes);
    assert_eq!(e.head_object("bkt", "img").unwrap().hole_bytes, holes);
    assert_eq!(stored_bytes(&e), body.len() as u64 - holes);
    assert_eq!(
        m.etag,
        hex::encode(<md5::Md5 as md5::Digest>::digest(&body))
    );
    assert!(get(&e, "bkt", "img", None).await.unwrap() == body);
    // Ranges inside holes, across their edges, across chunks.
    for (a, b) in [
        (0, 10),
        (MIB + 100 * KIB - 3, MIB + 100 * KIB + 3),
        (MIB + 200 * KIB, MIB + 300 * KIB),
        (MIB + 700 * KIB - 1, MIB + 700 * KIB + 1),
        (2 * MIB - 7, 2 * MIB + 7),
        (3 * MIB, 3 * MIB + 5),
        (5, 3 * MIB + 4),
    ] {
        let got = get(
            &e,
            "bkt",
            "img",
            Some(ByteRange::FromTo(a as u64, b as u64 - 1)),
        )
        .await
        .unwrap();
        assert!(got == body[a..b], "range {a}..{b}");
    }
    let (meta, ext) = e.object_extents("bkt", "img").unwrap();
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(
        ext,
        vec![
            (0, (MIB + 100 * KIB) as u64),
            ((MIB + 700 * KIB) as u64, 2 * MIB as u64)
        ]
    );
    // A copy shares the chunks and keeps the holes.
    let c = e
        .copy_object("bkt", "img", "bkt", "copy", CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(c.hole_bytes, holes);
    assert!(get(&e, "bkt", "copy", None).await.unwrap() == body);
    // Multipart: parts with holes, concatenated.
    let up = e
        .create_multipart_upload("bkt", "mp", Default::default())
        .await
        .unwrap();
    let mut p1 = data(12, 5 * MIB);
    p1[MIB..3 * MIB].fill(0);
    let p2 = vec![0u8; 2 * MIB];
    let mut parts = Vec::new();
    for (n, p) in [(1u32, &p1), (2, &p2)] {
        let info = e
            .upload_part("bkt", "mp", &up, n, &p[..], None)
            .await
            .unwrap();
        parts.push((n, info.etag));
    }
    let mp = e
        .complete_multipart_upload("bkt", "mp", &up, parts, Default::default())
        .await
        .unwrap();
    assert_eq!(mp.hole_bytes, 4 * MIB as u64);
    let whole: Vec<u8> = [p1.clone(), p2.clone()].concat();
    assert!(get(&e, "bkt", "mp", None).await.unwrap() == whole);
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    scrub_finds_nothing(&e).await;
    // Deleted, everything goes, holes included.
    for k in ["img", "copy", "mp"] {
        e.delete_object("bkt", k).await.unwrap();
    }
    e.gc(true).await.unwrap();
    assert_eq!(shard_files(dir.path()), 0);
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn version_3_and_4_directories_are_read_and_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let body = data(13, 300 * KIB);
    {
        let e = Engine::open(one_mib_chunks(dir.path())).unwrap();
        e.create_bucket("bkt").await.unwrap();
        put(&e, "bkt", "k", &body).await;
    }
    // Make it a version 3 directory, as the previous build left it.
    let set_version = |path: &Path, from: u32, to: u32| {
        let s = std::fs::read_to_string(path).unwrap();
        let s2 = s.replace(
            &format!("\"format_version\": {from}"),
            &format!("\"format_version\": {to}"),
        );
        assert_ne!(s, s2, "{}", path.display());
        std::fs::write(path, s2).unwrap();
    };
    let disks: Vec<PathBuf> = (0..6)
        .map(|i| {
            dir.path()
                .join(format!("disks/disk{i}/predastore-disk.json"))
        })
        .collect();
    let now = engine::testing::FORMAT_VERSION;
    set_version(&dir.path().join("predastore.json"), now, 3);
    for d in &disks {
        set_version(d, now, 3);
    }
    let e = Engine::open(one_mib_chunks(dir.path())).unwrap();
    assert!(get(&e, "bkt", "k", None).await.unwrap() == body);
    assert!(e
        .disk_status()
        .iter()
        .all(|d| d.state == engine::DiskState::Online));
    let f = std::fs::read_to_string(dir.path().join("predastore.json")).unwrap();
    assert!(f.contains(&format!("\"format_version\": {now}")), "{f}");
    // Holes can be written now.
    put(&e, "bkt", "zeros", &vec![0u8; 3 * MIB]).await;
    assert!(get(&e, "bkt", "zeros", None).await.unwrap() == vec![0u8; 3 * MIB]);
    drop(e);
    // A newer version is still refused.
    set_version(&dir.path().join("predastore.json"), now, now + 1);
    let err = Engine::open(one_mib_chunks(dir.path())).err().unwrap();
    assert!(
        matches!(err, Error::FormatVersion { found, .. } if found == now + 1),
        "{err}"
    );
}

#[tokio::test]
async fn full_disks_fail_a_put_with_no_space_and_harm_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // The six disks on one 24 MiB filesystem, the metadata beside it.
    let fs = SmallFs::mount(dir.path().join("small"), "24m");
    let mut cfg = one_mib_chunks(&dir.path().join("data"));
    cfg.disks = (0..6).map(|i| fs.0.join(format!("d{i}"))).collect();
    cfg.durability = engine::Durability::Fsync;
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let kept = data(14, 2 * MIB);
    put(&e, "bkt", "kept", &kept).await;
    // 20 MiB of data is 30 MiB of shards.
    let big = data(15, 20 * MIB);
    let err = e
        .put_object("bkt", "big", &big[..], Default::default())
        .await
        .expect_err("a put larger than the disks fails");
    assert!(err.is_no_space(), "{err}");
    assert!(matches!(err, Error::NoSpace { .. }), "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    // Nothing visible, nothing harmed, the space of the failed put given back.
    assert!(matches!(
        e.head_object("bkt", "big"),
        Err(Error::NoSuchKey { .. })
    ));
    assert!(get(&e, "bkt", "kept", None).await.unwrap() == kept);
    assert!(e.fsck().unwrap().is_clean());
    scrub_finds_nothing(&e).await;
    // The failed put's shards and the volumes' preallocation beyond their last shard were
    // given back: all but the kept object's 3 MiB of shards is free.
    let (total, free) = engine::maintenance::fs_capacity(&fs.0).unwrap();
    assert!(free >= total - (4 << 20), "{free} of {total} bytes free");
    e.gc(true).await.unwrap();
    // With the space back, a put that fits goes through.
    let fits = data(16, 6 * MIB);
    put(&e, "bkt", "fits", &fits).await;
    assert!(get(&e, "bkt", "fits", None).await.unwrap() == fits);
    drop(e);
}
