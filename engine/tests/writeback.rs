//! An engine in write-back mode (the mount's): changes visible to it at once, committed per
//! window; GC in the same process never takes the chunks of a queued change, and closing the
//! engine commits the queue.

mod common;
use common::*;

use engine::{Durability, Engine};

fn writeback_engine(dir: &std::path::Path) -> Engine {
    let mut cfg = config(dir);
    cfg.durability = Durability::Fsync;
    // Longer than the test: only flush, GC and closing commit.
    cfg.writeback = Some(std::time::Duration::from_secs(60));
    Engine::open(cfg).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_changes_are_read_back_collected_around_and_committed_at_close() {
    let dir = tempfile::tempdir().unwrap();
    let e = writeback_engine(dir.path());
    e.create_bucket("wb-bucket").await.unwrap();
    let big = data(1, 1_000_000); // 16 chunks of 64 KiB
    let small = data(2, 1000); // inline
    put(&e, "wb-bucket", "big", &big).await;
    put(&e, "wb-bucket", "small", &small).await;
    put(&e, "wb-bucket", "gone", &small).await;
    e.delete_object("wb-bucket", "gone").await.unwrap();
    // Read back before any commit: object, listing, chunks.
    assert_eq!(get(&e, "wb-bucket", "big", None).await.unwrap(), big);
    assert_eq!(get(&e, "wb-bucket", "small", None).await.unwrap(), small);
    assert!(e.head_object("wb-bucket", "gone").is_err());
    assert_eq!(e.chunk_records().unwrap().len(), 16);
    // GC with the orphan sweep, from this process, while all of it is queued: nothing that a
    // queued change refers to goes.
    let rep = e.gc(true).await.unwrap();
    assert_eq!(rep.chunks_removed, 0, "{rep:?}");
    assert_eq!(get(&e, "wb-bucket", "big", None).await.unwrap(), big);
    // More queued changes, then the engine closes: they are committed.
    put(&e, "wb-bucket", "late", &small).await;
    e.delete_object("wb-bucket", "small").await.unwrap();
    drop(e);
    let mut cfg = config(dir.path());
    cfg.durability = Durability::Fsync;
    let e = Engine::open(cfg).unwrap();
    assert_eq!(get(&e, "wb-bucket", "big", None).await.unwrap(), big);
    assert_eq!(get(&e, "wb-bucket", "late", None).await.unwrap(), small);
    assert!(e.head_object("wb-bucket", "small").is_err());
    assert!(e.head_object("wb-bucket", "gone").is_err());
    e.gc(true).await.unwrap();
    assert_no_orphans(&e, dir.path(), "after write-back");
    assert!(e.fsck().unwrap().is_clean());
}
