//! Disk loss, swapped disks, bitrot, heal and scrub — on real files.

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use engine::{DiskState, Engine, Error, HealMode, HealOptions};

const SIZES: [usize; 5] = [3_000, 64 * 1024, 64 * 1024 + 1, 300_000, 1_000_000];

async fn populated(dir: &Path) -> Engine {
    let e = Engine::open(config(dir)).unwrap();
    e.create_bucket("bkt").await.unwrap();
    for (i, s) in SIZES.iter().enumerate() {
        put(&e, "bkt", &format!("obj{i}"), &data(i as u64, *s)).await;
    }
    e
}

async fn all_read_back(e: &Engine) {
    for (i, s) in SIZES.iter().enumerate() {
        let got = get(e, "bkt", &format!("obj{i}"), None).await.unwrap();
        assert_eq!(md5_hex(&got), md5_hex(&data(i as u64, *s)), "obj{i}");
    }
}

fn disk(dir: &Path, i: usize) -> std::path::PathBuf {
    dir.join("disks").join(format!("disk{i}"))
}

fn heal_opts(mode: HealMode) -> HealOptions {
    HealOptions {
        mode,
        ..Default::default()
    }
}

#[tokio::test]
async fn two_disks_lost_then_healed_third_lost_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = populated(dir.path()).await;
    let full = shard_files(dir.path());
    drop(e);
    std::fs::remove_dir_all(disk(dir.path(), 1)).unwrap();
    std::fs::remove_dir_all(disk(dir.path(), 4)).unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    let st = e.status().unwrap();
    assert_eq!(st.disks[1].state, DiskState::Missing);
    assert_eq!(st.disks[4].state, DiskState::Missing);
    all_read_back(&e).await;
    // Writes still succeed with 2 disks gone (write quorum = data shards).
    put(&e, "bkt", "degraded", &data(99, 200_000)).await;
    let rep = e
        .heal(heal_opts(HealMode::Heal), Box::new(|_| {}))
        .await
        .unwrap();
    assert!(rep.complete);
    assert_eq!(rep.disks_formatted, vec![1, 4]);
    assert!(rep.unrecoverable.is_empty());
    assert!(rep.shards_repaired > 0);
    assert_eq!(shard_files(dir.path()), full + 4 * 6);
    let rep = scrub(&e).await;
    assert_eq!(rep.shards_corrupt + rep.shards_missing, 0, "{rep:?}");
    all_read_back(&e).await;
    // After heal, any 2 disks may go again; a third one at once is too many.
    std::fs::remove_dir_all(disk(dir.path(), 0)).unwrap();
    std::fs::remove_dir_all(disk(dir.path(), 2)).unwrap();
    all_read_back(&e).await;
    std::fs::remove_dir_all(disk(dir.path(), 5)).unwrap();
    let r = get(&e, "bkt", "obj3", None).await;
    assert!(matches!(r, Err(Error::ReadQuorum { .. })), "{r:?}");
    // Inline objects live in LMDB and are unaffected.
    assert_eq!(get(&e, "bkt", "obj0", None).await.unwrap().len(), 3_000);
}

#[tokio::test]
async fn degraded_writes_are_healed() {
    let dir = tempfile::tempdir().unwrap();
    let e = populated(dir.path()).await;
    drop(e);
    std::fs::remove_dir_all(disk(dir.path(), 3)).unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    put(&e, "bkt", "new", &data(50, 500_000)).await;
    assert!(e.status().unwrap().repair_queue > 0);
    let rep = e
        .heal(heal_opts(HealMode::Heal), Box::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(rep.disks_formatted, vec![3]);
    assert_eq!(e.status().unwrap().repair_queue, 0);
    // Every chunk now has all 6 shards: lose two other disks and read.
    std::fs::remove_dir_all(disk(dir.path(), 0)).unwrap();
    std::fs::remove_dir_all(disk(dir.path(), 1)).unwrap();
    all_read_back(&e).await;
    assert_eq!(
        md5_hex(&get(&e, "bkt", "new", None).await.unwrap()),
        md5_hex(&data(50, 500_000))
    );
}

#[tokio::test]
async fn swapped_disks_are_recognised_and_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = populated(dir.path()).await;
    drop(e);
    let tmp = dir.path().join("swap");
    std::fs::rename(disk(dir.path(), 0), &tmp).unwrap();
    std::fs::rename(disk(dir.path(), 2), disk(dir.path(), 0)).unwrap();
    std::fs::rename(&tmp, disk(dir.path(), 2)).unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    let st = e.status().unwrap();
    assert!(matches!(st.disks[0].state, DiskState::Foreign(_)));
    assert!(matches!(st.disks[2].state, DiskState::Foreign(_)));
    all_read_back(&e).await;
    let rep = e
        .heal(heal_opts(HealMode::Heal), Box::new(|_| {}))
        .await
        .unwrap();
    assert_eq!(rep.disks_refused.len(), 2);
    // A disk of another set is refused too.
    let other = tempfile::tempdir().unwrap();
    let o = Engine::open(config(other.path())).unwrap();
    drop(o);
    std::fs::remove_dir_all(disk(dir.path(), 3)).unwrap();
    std::fs::rename(disk(other.path(), 3), disk(dir.path(), 3)).unwrap();
    e.refresh_disks();
    let st = e.status().unwrap();
    match &st.disks[3].state {
        DiskState::Foreign(why) => assert!(why.contains("set"), "{why}"),
        s => panic!("{s:?}"),
    }
}

#[tokio::test]
async fn bitrot_is_detected_read_through_and_scrubbed() {
    let dir = tempfile::tempdir().unwrap();
    let e = populated(dir.path()).await;
    let flipped = rot(dir.path(), 2);
    assert!(flipped > 0);
    all_read_back(&e).await;
    let rep = scrub(&e).await;
    assert_eq!(rep.shards_corrupt as usize, flipped);
    assert_eq!(rep.shards_repaired as usize, flipped);
    assert!(rep.unrecoverable.is_empty());
    let again = scrub(&e).await;
    assert_eq!(again.shards_corrupt, 0);
    assert_eq!(again.shards_missing, 0);
    // Three bad shards of a chunk cannot be rebuilt: an error, never wrong bytes.
    rot(dir.path(), 3);
    let r = get(&e, "bkt", "obj4", None).await;
    assert!(
        matches!(r, Err(Error::ReadQuorum { .. })),
        "{:?}",
        r.map(|v| v.len())
    );
    let rep = scrub(&e).await;
    assert!(!rep.unrecoverable.is_empty());
}

#[tokio::test]
async fn heal_can_be_interrupted_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_chunk_engine(dir.path()).await;
    put(&e, "bkt", "many", &data(7, 4096 * 700)).await;
    let total = e.chunk_records().unwrap().len() as u64;
    assert!(total > 600);
    std::fs::remove_dir_all(disk(dir.path(), 5)).unwrap();
    let cancel = Arc::new(AtomicBool::new(false));
    let c2 = cancel.clone();
    let rep1 = e
        .heal(
            HealOptions {
                mode: HealMode::Heal,
                cancel: Some(cancel.clone()),
                rate_limit: Some(1 << 30),
                resume: false,
            },
            Box::new(move |p| {
                assert!(p.chunks_done <= p.chunks_total);
                c2.store(true, Ordering::Relaxed);
            }),
        )
        .await
        .unwrap();
    assert!(!rep1.complete);
    assert!(rep1.chunks_checked < total);
    let rep2 = e
        .heal(
            HealOptions {
                mode: HealMode::Heal,
                resume: true,
                ..Default::default()
            },
            Box::new(|_| {}),
        )
        .await
        .unwrap();
    assert!(rep2.complete);
    assert_eq!(rep1.chunks_checked + rep2.chunks_checked, total);
    assert_eq!(rep1.shards_repaired + rep2.shards_repaired, total);
    assert_eq!(shard_files(dir.path()) as u64, total * 6);
}

#[tokio::test]
async fn status_reports_counts_and_dedup() {
    let dir = tempfile::tempdir().unwrap();
    let e = populated(dir.path()).await;
    put(&e, "bkt", "dup", &data(4, 1_000_000)).await;
    let st = e.status().unwrap();
    assert_eq!(st.buckets, 1);
    assert_eq!(st.objects, 6);
    assert!(st.dedup_ratio > 1.5, "{}", st.dedup_ratio);
    assert!(st.disks.iter().all(|d| d.state == DiskState::Online));
    assert!(st.disks.iter().all(|d| d.total_bytes > 0));
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn range_reads_read_only_their_blocks_and_see_through_rot() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.chunk_size = 4 << 20; // shards of 1 MiB: 16 blocks of 64 KiB each
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let body = data(9, (9 << 20) + 12_345);
    put(&e, "bkt", "big", &body).await;
    let len = body.len() as u64;
    let ranges = move |seed: u64| {
        let mut x = seed;
        (0..300).map(move |_| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let a = (x >> 11) % len;
            let n = 1 + (x >> 40) % 300_000;
            (a, (a + n - 1).min(len - 1))
        })
    };
    let check = |(a, b): (u64, u64)| {
        let e = e.clone();
        let want = body[a as usize..=b as usize].to_vec();
        async move {
            let got = get(&e, "bkt", "big", Some(engine::ByteRange::FromTo(a, b)))
                .await
                .unwrap();
            assert!(got == want, "range {a}-{b}");
        }
    };
    for r in ranges(1) {
        check(r).await;
    }
    // One byte rotted in the middle block of two shards of every chunk: ranges that touch it
    // are rebuilt from the other shards, the others read as they are; all return the right
    // bytes, and scrub finds exactly the rotted shards.
    let flipped = rot(dir.path(), 2);
    assert_eq!(flipped, 6);
    for r in ranges(2) {
        check(r).await;
    }
    let rep = scrub(&e).await;
    assert_eq!(rep.shards_corrupt as usize, flipped);
    assert_eq!(rep.shards_repaired as usize, flipped);
    for r in ranges(3) {
        check(r).await;
    }
}
