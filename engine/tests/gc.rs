//! Collecting unreferenced chunks without an operator: `try_collect` and the background GC the
//! front doors run.

mod common;

#[path = "../../tests/support/held_files.rs"]
mod held_files;
use held_files::held_bytes;

use std::time::{Duration, Instant};

use common::*;
use engine::Engine;

/// `try_collect` (blocking) off the runtime's threads.
async fn collect(e: &Engine) -> Option<engine::GcReport> {
    let e = e.clone();
    tokio::task::spawn_blocking(move || e.try_collect())
        .await
        .unwrap()
        .unwrap()
}

fn candidates(e: &Engine) -> u64 {
    e.status().unwrap().gc_candidates
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn try_collect_never_waits_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let disks = dir.path().join("disks");
    let kept = data(1, 300_000);
    put(&e, "bkt", "kept", &kept).await;
    // Nothing to collect: nothing done, nothing reported.
    assert!(collect(&e).await.is_none());
    put(&e, "bkt", "gone", &data(2, 1 << 20)).await;
    // (Volumes preallocate ahead, so the put itself need not change this.)
    let with = held_bytes(&disks);
    e.delete_object("bkt", "gone").await.unwrap();
    assert_eq!(candidates(&e), 16, "1 MiB in 64 KiB chunks");
    // A writer between its dedup check and its commit holds the shared lock: no collection,
    // and no waiting for it either.
    let guard = e.write_guard().await.unwrap();
    let t = Instant::now();
    assert!(collect(&e).await.is_none());
    assert!(t.elapsed() < Duration::from_secs(2));
    assert_eq!(candidates(&e), 16);
    drop(guard);
    let rep = collect(&e)
        .await
        .expect("collected once the writer is gone");
    assert_eq!(rep.chunks_removed, 16);
    assert_eq!(rep.bytes_freed, 1 << 20);
    assert_eq!(candidates(&e), 0);
    // Its 1.5 MiB of shards were punched out of the volumes.
    let after = held_bytes(&disks);
    assert!(after + (3 << 19) <= with, "{with} -> {after}");
    assert!(get(&e, "bkt", "kept", None).await.unwrap() == kept);
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_gc_frees_deleted_objects_until_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let auto = e.spawn_auto_gc(Duration::from_millis(50));
    put(&e, "bkt", "a", &data(3, 1 << 20)).await;
    // Overwritten: the old version's chunks lose their last reference.
    put(&e, "bkt", "a", &data(4, 1 << 20)).await;
    e.delete_object("bkt", "a").await.unwrap();
    let t = Instant::now();
    while !e.chunk_records().unwrap().is_empty() {
        assert!(t.elapsed() < Duration::from_secs(20), "not collected");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(candidates(&e), 0);
    // Stopped with its handle.
    drop(auto);
    put(&e, "bkt", "b", &data(5, 1 << 20)).await;
    e.delete_object("bkt", "b").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(candidates(&e), 16);
    assert_eq!(e.chunk_records().unwrap().len(), 16);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writers_that_never_pause_cannot_keep_gc_out_for_long() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.gc_starvation = Duration::from_millis(300);
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    put(&e, "bkt", "gone", &data(7, 1 << 20)).await;
    e.delete_object("bkt", "gone").await.unwrap();
    assert_eq!(candidates(&e), 16);
    // Writers that overlap without pause (as a busy server's or a mount's do): at every
    // moment some write holds the shared lock, but each only for a while.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let passes = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut writers = Vec::new();
    for w in 0..3u64 {
        let (e, stop, passes) = (e.clone(), stop.clone(), passes.clone());
        writers.push(tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(w * 7)).await;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let g = e.write_guard().await.unwrap();
                tokio::time::sleep(Duration::from_millis(20)).await;
                drop(g);
                passes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    // At first GC is kept out without waiting, as before.
    let t = Instant::now();
    assert!(collect(&e).await.is_none());
    assert!(t.elapsed() < Duration::from_millis(200));
    // Once kept out for gc_starvation, it holds new writers back and gets in.
    let t = Instant::now();
    let rep = loop {
        if let Some(r) = collect(&e).await {
            break r;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "GC starved by overlapping writers"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(rep.chunks_removed, 16);
    assert_eq!(candidates(&e), 0);
    // The writers were held back only briefly: they go on.
    let before = passes.load(std::sync::atomic::Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(passes.load(std::sync::atomic::Ordering::Relaxed) > before);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    assert!(e.fsck().unwrap().is_clean());
}
