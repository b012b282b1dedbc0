//! Objects of more chunks than one metadata transaction may count (`REFS_PER_COMMIT`): their
//! references are dropped, pinned, committed and copied in pieces, every count stays exact
//! (fsck) at every step, and nothing is lost or leaked — also when a commit fails. Run on LMDB
//! and on etcd (`scripts/engine-tests-on-etcd.sh`, where a piece must fit etcd's
//! `--max-txn-ops`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use engine::{
    CopyOptions, DraftCommit, DraftContent, DraftData, Engine, StoredChunk, Versioning,
    REFS_PER_COMMIT,
};

/// Chunks of a "large" object: more than two pieces' worth.
const LARGE: usize = 2 * REFS_PER_COMMIT + 100;

fn commit_info() -> DraftCommit {
    DraftCommit {
        etag: "e".into(),
        part_sizes: Vec::new(),
        attrs: Box::new(|old| old.map(|m| m.attrs.clone()).unwrap_or_default()),
        replaces: None,
    }
}

/// Waits until `n` draft records are left (a draft closed or replaced is released by
/// commits spawned without waiting).
async fn wait_drafts(e: &Engine, n: u64) {
    let t = Instant::now();
    while e.draft_count().unwrap() != n {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "{} draft records, not {n}",
            e.draft_count().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn assert_clean(e: &Engine) {
    let f = e.fsck().unwrap();
    assert!(f.is_clean(), "{f:?}");
}

/// Stores `bytes` for a draft under a write guard: fresh chunks, in order.
async fn store(e: &Engine, bytes: Vec<u8>) -> Vec<StoredChunk> {
    let guard = e.write_guard().await.unwrap();
    let e2 = e.clone();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for c in bytes.chunks(4096) {
            out.extend(
                e2.store_draft_data(&guard, engine::Compression::Off, c)
                    .unwrap(),
            );
        }
        out
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_object_deleted_or_replaced_has_its_references_dropped_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_chunk_engine(dir.path()).await;
    let body = data(1, LARGE * 4096);
    put(&e, "bkt", "big", &body).await;
    put(&e, "bkt", "other", &data(2, 10 * 4096)).await;
    assert_eq!(e.chunk_records().unwrap().len(), LARGE + 10);
    assert_clean(&e);
    // Replaced, then the replacement deleted: each let go in its transaction, counted in pieces
    // later. Meanwhile every count is still right (fsck counts what is queued).
    put(&e, "bkt", "big", &data(3, LARGE * 4096)).await;
    e.delete_object("bkt", "big").await.unwrap();
    assert_clean(&e);
    assert_eq!(e.chunk_records().unwrap().len(), 2 * LARGE + 10);
    let r = e.gc(false).await.unwrap();
    assert_eq!(r.manifests_released, 2);
    assert_eq!(r.chunks_removed, 2 * LARGE as u64);
    assert_clean(&e);
    assert_eq!(e.chunk_records().unwrap().len(), 10);
    assert_eq!(
        get(&e, "bkt", "other", None).await.unwrap(),
        data(2, 10 * 4096)
    );
    // Nothing queued is left: a second GC has nothing to do.
    assert_eq!(e.gc(false).await.unwrap().manifests_released, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_of_a_large_object_pins_and_commits_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_chunk_engine(dir.path()).await;
    let body = data(4, LARGE * 4096);
    put(&e, "bkt", "f", &body).await;
    let (mut draft, base) = e.open_draft("bkt", "f", true).await.unwrap();
    let DraftContent::Chunks(chunks) = base.content else {
        panic!("inline");
    };
    assert_eq!(chunks.len(), LARGE);
    assert_eq!(e.draft_count().unwrap(), 3, "pinned in three records");
    assert_clean(&e);
    // Overwritten and deleted by someone else, collected: the draft's chunks stay.
    put(&e, "bkt", "f", &data(5, 3 * 4096)).await;
    e.delete_object("bkt", "f").await.unwrap();
    e.gc(false).await.unwrap();
    assert_eq!(
        e.chunk_records().unwrap().len(),
        LARGE,
        "only what the draft pins"
    );
    assert_clean(&e);

    // Commit with the last 200 chunks rewritten (fresh) and kept open: the new chunks are
    // pinned by the draft first, the references taken in pieces and handed over.
    let mut want = body.clone();
    let tail = data(6, 200 * 4096);
    want[(LARGE - 200) * 4096..].copy_from_slice(&tail);
    let fresh = store(&e, tail).await;
    assert_eq!(fresh.len(), 200);
    let mut list: Vec<(StoredChunk, Option<[u8; 16]>)> = chunks[..LARGE - 200]
        .iter()
        .map(|c| (StoredChunk::existing(*c), None))
        .collect();
    list.extend(fresh.into_iter().map(|c| (c, None)));
    let meta = e
        .commit_draft(
            &mut draft,
            "bkt",
            "f",
            DraftData::Chunks(list.clone()),
            commit_info(),
            true,
        )
        .await
        .unwrap();
    assert_eq!(meta.size, want.len() as u64);
    assert!(draft.is_some(), "kept open");
    assert_eq!(get(&e, "bkt", "f", None).await.unwrap(), want);
    wait_drafts(&e, 3).await; // the next pins; the old ones released
    assert_clean(&e);
    e.gc(false).await.unwrap();
    assert_eq!(
        e.chunk_records().unwrap().len(),
        LARGE,
        "the 200 replaced chunks collected, the new ones kept"
    );

    // A commit that fails (no such bucket) changes nothing and leaks nothing; the draft
    // still pins what it did.
    let committed: Vec<(StoredChunk, Option<[u8; 16]>)> = list
        .iter()
        .map(|(c, _)| (StoredChunk::existing(c.chunk_ref()), None))
        .collect();
    let err = e
        .commit_draft(
            &mut draft,
            "nope",
            "f",
            DraftData::Chunks(committed.clone()),
            commit_info(),
            true,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, engine::Error::NoSuchBucket(_)), "{err}");
    wait_drafts(&e, 3).await;
    assert_clean(&e);
    assert_eq!(get(&e, "bkt", "f", None).await.unwrap(), want);

    // Shrunk to three chunks and closed: the pins go, the object keeps its three.
    e.commit_draft(
        &mut draft,
        "bkt",
        "f",
        DraftData::Chunks(committed[..3].to_vec()),
        commit_info(),
        false,
    )
    .await
    .unwrap();
    assert!(draft.is_none());
    wait_drafts(&e, 0).await;
    assert_clean(&e);
    let r = e.gc(false).await.unwrap();
    assert_eq!(
        r.manifests_released, 1,
        "the large version let go in pieces"
    );
    assert_eq!(e.chunk_records().unwrap().len(), 3);
    assert_eq!(get(&e, "bkt", "f", None).await.unwrap(), want[..3 * 4096]);
    assert_clean(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinning_many_fresh_chunks_fills_records_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_chunk_engine(dir.path()).await;
    let body = data(7, LARGE * 4096);
    let fresh = store(&e, body.clone()).await;
    let mut draft = None;
    // A few first (one record), then the rest in pieces of at most REFS_PER_COMMIT, each
    // into the last record while it has room, else into a new one: 10 | 1000 | 1000 | 90.
    let first = e
        .pin_draft_chunks(&mut draft, fresh[..10].to_vec())
        .await
        .unwrap();
    assert_eq!(e.draft_count().unwrap(), 1);
    let rest = e
        .pin_draft_chunks(&mut draft, fresh[10..].to_vec())
        .await
        .unwrap();
    assert_eq!(e.draft_count().unwrap(), 4);
    assert_clean(&e);
    e.gc(true).await.unwrap();
    let list: Vec<(StoredChunk, Option<[u8; 16]>)> =
        first.into_iter().chain(rest).map(|c| (c, None)).collect();
    e.commit_draft(
        &mut draft,
        "bkt",
        "g",
        DraftData::Chunks(list),
        commit_info(),
        false,
    )
    .await
    .unwrap();
    wait_drafts(&e, 0).await;
    assert_eq!(get(&e, "bkt", "g", None).await.unwrap(), body);
    assert_clean(&e);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copying_and_renaming_a_large_object_hand_over_references_held_in_pieces() {
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_chunk_engine(dir.path()).await;
    let body = data(8, LARGE * 4096);
    put(&e, "bkt", "src", &body).await;
    e.copy_object("bkt", "src", "bkt", "copy", CopyOptions::default())
        .await
        .unwrap();
    assert_eq!(e.draft_count().unwrap(), 0, "the hold was handed over");
    assert_clean(&e);
    e.delete_object("bkt", "src").await.unwrap();
    e.gc(false).await.unwrap();
    assert_eq!(
        e.chunk_records().unwrap().len(),
        LARGE,
        "the copy keeps them"
    );
    assert_eq!(get(&e, "bkt", "copy", None).await.unwrap(), body);
    // A rename in a bucket with versioning copies too (the old name gets a delete marker).
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    e.rename_object("bkt", "copy", "bkt", "moved")
        .await
        .unwrap();
    assert_eq!(e.draft_count().unwrap(), 0);
    assert_clean(&e);
    assert_eq!(get(&e, "bkt", "moved", None).await.unwrap(), body);
    assert!(get(&e, "bkt", "copy", None).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoning_fresh_copies_of_chunks_a_record_names_frees_nothing() {
    // A writer whose commit went through but looked failed (a lost reply) gives its fresh
    // shards up: those a record names must stay.
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_chunk_engine(dir.path()).await;
    let body = data(9, 3 * 4096);
    let fresh = store(&e, body.clone()).await;
    let mut draft = None;
    let pinned = e.pin_draft_chunks(&mut draft, fresh.clone()).await.unwrap();
    let e2 = e.clone();
    tokio::task::spawn_blocking(move || e2.abandon_chunks_now(fresh))
        .await
        .unwrap();
    e.gc(true).await.unwrap();
    let e2 = e.clone();
    let read = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for c in &pinned {
            for p in e2.read_stored_chunk(c, 0, 4096).unwrap() {
                out.extend_from_slice(&p);
            }
        }
        out
    })
    .await
    .unwrap();
    assert_eq!(read, body);
    let r = scrub(&e).await;
    assert_eq!(r.chunks_checked, 3);
    assert_eq!((r.shards_missing, r.shards_corrupt), (0, 0), "{r:?}");
    assert_clean(&e);
}
