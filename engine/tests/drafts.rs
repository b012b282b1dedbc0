//! Drafts: a writer editing an object chunk by chunk keeps the chunks it started from readable
//! whatever happens to the object, commits atomically, and leaves nothing behind — also when
//! its process dies.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use engine::draft::multipart_etag;
use engine::{DraftCommit, DraftContent, DraftData, Engine, StoredChunk};
use md5::Digest;

fn commit_info(etag: String, part_sizes: Vec<u64>) -> DraftCommit {
    DraftCommit {
        etag,
        part_sizes,
        attrs: Box::new(|old| old.map(|m| m.attrs.clone()).unwrap_or_default()),
        replaces: None,
    }
}

fn chunks_of(base: &engine::DraftBase) -> Vec<engine::ChunkRef> {
    match &base.content {
        DraftContent::Chunks(c) => c.clone(),
        DraftContent::Inline(_) => panic!("inline"),
    }
}

fn read_all(e: &Engine, chunks: &[engine::ChunkRef]) -> Vec<u8> {
    let mut out = Vec::new();
    for c in chunks {
        let c = StoredChunk::existing(*c);
        for p in e
            .read_stored_chunk(&c, 0, c.chunk_ref().len as usize)
            .unwrap()
        {
            out.extend_from_slice(&p);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_survive_overwrite_delete_and_gc_and_commit_replaces_one_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    // 5 chunks of 64 KiB.
    let body = data(1, 5 * 64 * 1024);
    put(&e, "bkt", "f", &body).await;
    let (mut draft, base) = e.open_draft("bkt", "f", true).await.unwrap();
    assert!(draft.is_some(), "a chunked object is pinned");
    let chunks = chunks_of(&base);
    assert_eq!(chunks.len(), 5);
    assert_eq!(e.draft_count().unwrap(), 1);
    // Someone else overwrites, then deletes the object; GC runs. The draft still reads.
    put(&e, "bkt", "f", &data(2, 200_000)).await;
    e.delete_object("bkt", "f").await.unwrap();
    e.gc(true).await.unwrap();
    assert_eq!(read_all(&e, &chunks), body);
    assert!(e.fsck().unwrap().is_clean());

    // Change the third chunk only and commit: one new chunk, four kept.
    let mut third = body[2 * 65536..3 * 65536].to_vec();
    third[100] ^= 0xff;
    let mut want = body.clone();
    want[2 * 65536 + 100] ^= 0xff;
    let guard = e.write_guard().await.unwrap();
    let e2 = e.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let r = e2.store_draft_data(&guard, engine::Compression::Off, &third);
        (r, guard)
    })
    .await
    .unwrap();
    let (mut pieces, guard) = (stored.0.unwrap(), stored.1);
    assert_eq!(pieces.len(), 1, "data without runs of zeros is one piece");
    let new_chunk = pieces.remove(0);
    let mut list: Vec<(StoredChunk, Option<[u8; 16]>)> = chunks
        .iter()
        .map(|c| (StoredChunk::existing(*c), None))
        .collect();
    list[2] = (new_chunk.clone(), None);
    let refs: Vec<_> = list.iter().map(|(c, _)| c.chunk_ref()).collect();
    // The fresh chunk is read from where it was stored, the others from their records.
    let stored: Vec<StoredChunk> = list.iter().map(|(c, _)| c.clone()).collect();
    let md5s = e.chunk_md5s(&stored).unwrap();
    let etag = multipart_etag(&md5s);
    let sizes = refs.iter().map(|r| r.len as u64).collect();
    let before: std::collections::BTreeSet<_> = e.chunk_records().unwrap().into_keys().collect();
    let meta = e
        .commit_draft(
            &mut draft,
            "bkt",
            "f",
            DraftData::Chunks(list),
            commit_info(etag.clone(), sizes),
            true,
        )
        .await
        .unwrap();
    drop(guard);
    assert!(draft.is_some(), "kept open");
    assert_eq!(meta.etag, etag);
    assert!(etag.ends_with("-5"));
    assert_eq!(meta.parts_count, 5);
    assert_eq!(get(&e, "bkt", "f", None).await.unwrap(), want);
    let after: std::collections::BTreeSet<_> = e.chunk_records().unwrap().into_keys().collect();
    assert_eq!(after.difference(&before).count(), 1, "one new chunk");
    // The multipart-style ETag is S3's: MD5 of the parts' MD5s, parts being the chunks.
    let mut h = md5::Md5::new();
    for p in want.chunks(65536) {
        h.update(md5::Md5::digest(p));
    }
    assert_eq!(etag, format!("{}-5", hex::encode(h.finalize())));
    // The parts are addressable as S3 parts.
    assert_eq!(e.part_range("bkt", "f", 3).unwrap(), (131072, 196608));
    assert!(e.fsck().unwrap().is_clean(), "pins counted as references");

    // Close: the draft's pins go, GC removes exactly the replaced chunk.
    e.close_draft(draft.take().unwrap());
    e.gc(true).await.unwrap();
    assert_eq!(e.draft_count().unwrap(), 0);
    assert_eq!(get(&e, "bkt", "f", None).await.unwrap(), want);
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    assert_eq!(e.chunk_records().unwrap().len(), 5);
    assert_no_orphans(&e, dir.path(), "after close and GC");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_and_absent_objects_need_no_pin_and_inline_commits_release_pins() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let (d, base) = e.open_draft("bkt", "new", true).await.unwrap();
    assert!(d.is_none() && base.meta.is_none());
    put(&e, "bkt", "small", b"tiny").await;
    let (d, base) = e.open_draft("bkt", "small", true).await.unwrap();
    assert!(d.is_none());
    assert!(matches!(base.content, DraftContent::Inline(ref v) if v == b"tiny"));
    assert_eq!(e.draft_count().unwrap(), 0);
    // A big object shrunk to a small one: committed inline, the pins are dropped with the
    // commit even though the writer keeps the file open.
    put(&e, "bkt", "big", &data(3, 300_000)).await;
    let (mut d, _) = e.open_draft("bkt", "big", true).await.unwrap();
    let small = b"now small".to_vec();
    let etag = hex::encode(md5::Md5::digest(&small));
    e.commit_draft(
        &mut d,
        "bkt",
        "big",
        DraftData::Inline(small.clone()),
        commit_info(etag.clone(), Vec::new()),
        true,
    )
    .await
    .unwrap();
    assert!(d.is_none());
    assert_eq!(e.draft_count().unwrap(), 0);
    assert_eq!(e.head_object("bkt", "big").unwrap().etag, etag);
    e.gc(true).await.unwrap();
    assert!(e.chunk_records().unwrap().is_empty());
    assert!(e.fsck().unwrap().is_clean());
    // A commit into a bucket that is gone fails and changes nothing.
    let (mut d, _) = e.open_draft("bkt", "small", true).await.unwrap();
    e.delete_object("bkt", "small").await.unwrap();
    e.delete_object("bkt", "big").await.unwrap();
    e.delete_bucket("bkt").await.unwrap();
    let r = e
        .commit_draft(
            &mut d,
            "bkt",
            "small",
            DraftData::Inline(b"x".to_vec()),
            commit_info("x".into(), Vec::new()),
            false,
        )
        .await;
    assert!(matches!(r, Err(engine::Error::NoSuchBucket(_))), "{r:?}");
}

/// Child: opens a draft of `bkt/f`, says so, and waits to be killed.
#[test]
fn draft_child() {
    let Ok(dir) = std::env::var("PREDASTORE_DRAFT_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let e = Engine::open(config(std::path::Path::new(&dir))).unwrap();
        let (d, _) = e.open_draft("bkt", "f", true).await.unwrap();
        assert!(d.is_some());
        println!("@@DRAFT");
        tokio::time::sleep(Duration::from_secs(60)).await;
        drop(d);
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drafts_of_a_killed_process_are_released_by_gc() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    {
        let e = Engine::open(config(dir.path())).unwrap();
        e.create_bucket("bkt").await.unwrap();
        put(&e, "bkt", "f", &data(4, 400_000)).await;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new(&exe)
        .args(["--exact", "draft_child", "--nocapture", "--test-threads=1"])
        .env("PREDASTORE_DRAFT_CHILD", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in out.lines() {
        if line.unwrap().contains("@@DRAFT") {
            break;
        }
    }
    // This process, beside the live child: its draft is alive and stays.
    let e = Engine::open(config(dir.path())).unwrap();
    assert_eq!(e.draft_count().unwrap(), 1);
    e.delete_object("bkt", "f").await.unwrap();
    let gc = e.gc(true).await.unwrap();
    assert_eq!(gc.stale_drafts_released, 0);
    assert_eq!(
        e.chunk_records().unwrap().len(),
        7,
        "pinned by the live draft"
    );
    child.kill().unwrap();
    child.wait().unwrap();
    // Once the child is dead, GC releases its draft and then the chunks.
    let gc = e.gc(true).await.unwrap();
    assert_eq!(gc.stale_drafts_released, 1, "{gc:?}");
    assert_eq!(e.draft_count().unwrap(), 0);
    assert!(e.chunk_records().unwrap().is_empty());
    assert!(e.fsck().unwrap().is_clean());
    assert_no_orphans(&e, dir.path(), "after the stale draft is gone");
    assert_eq!(
        std::fs::read_dir(dir.path().join("owners"))
            .unwrap()
            .count(),
        0,
        "the dead owner's lock file is removed"
    );
}
