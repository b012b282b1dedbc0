//! Many tasks on the same and different keys; two processes on one data directory.

mod common;

use std::process::Command;

use common::*;
use engine::Engine;

/// Self-describing content: every body starts with its own key and version.
fn body(key: &str, version: u64, len: usize) -> Vec<u8> {
    let mut b = format!("{key}:{version}:").into_bytes();
    b.extend(data(version, len));
    b
}

fn check_body(key: &str, b: &[u8]) {
    let s = String::from_utf8_lossy(&b[..b.len().min(40)]).into_owned();
    let mut it = s.splitn(3, ':');
    assert_eq!(it.next(), Some(key), "{s}");
    let v: u64 = it.next().unwrap().parse().unwrap();
    let head = format!("{key}:{v}:").len();
    assert_eq!(
        &b[head..],
        &data(v, b.len() - head)[..],
        "{key} v{v} is torn"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_tasks_same_and_different_keys() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..12u64 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let mut x = t * 31 + 7;
            for i in 0..40u64 {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let shared = format!("shared{}", (x >> 33) % 4);
                let own = format!("own{t}-{}", i % 5);
                let len = [10usize, 5000, 70_000, 150_000][((x >> 40) % 4) as usize];
                match (x >> 50) % 4 {
                    0 => {
                        e.delete_object("bkt", &shared).await.unwrap();
                    }
                    1 => {
                        if let Ok(b) = get(&e, "bkt", &shared, None).await {
                            check_body(&shared, &b);
                        }
                    }
                    _ => {
                        put(&e, "bkt", &shared, &body(&shared, x % 8, len)).await;
                    }
                }
                put(&e, "bkt", &own, &body(&own, x % 8, len)).await;
                let b = get(&e, "bkt", &own, None).await.unwrap();
                check_body(&own, &b);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let page = e
        .list_objects(
            "bkt",
            &engine::ListQuery {
                max_keys: 1000,
                ..Default::default()
            },
        )
        .unwrap();
    for o in &page.objects {
        let b = get(&e, "bkt", &o.key, None).await.unwrap();
        assert_eq!(md5_hex(&b), o.etag);
        check_body(&o.key, &b);
    }
    assert_clean_after_gc(&e, dir.path()).await;
}

/// The second process: puts `child/i` objects (sharing content with the parent's) and exits.
#[test]
fn second_process() {
    let Ok(dir) = std::env::var("PREDASTORE_SECOND_PROCESS") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let e = Engine::open(config(std::path::Path::new(&dir))).unwrap();
        for i in 0..60u64 {
            let key = format!("child/{i}");
            put(&e, "bkt", &key, &body("shared", i % 6, 130_000)).await;
            if i.is_multiple_of(3) {
                e.gc(false).await.unwrap();
            }
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PREDASTORE_SECOND_PROCESS", dir.path())
        .spawn()
        .unwrap();
    // Meanwhile: the same contents written, deleted and collected here, racing the child's
    // dedup checks against our GC.
    for i in 0..60u64 {
        let key = format!("parent/{}", i % 7);
        put(&e, "bkt", &key, &body("shared", i % 6, 130_000)).await;
        if i.is_multiple_of(2) {
            e.delete_object("bkt", &key).await.unwrap();
        }
        e.gc(false).await.unwrap();
    }
    assert!(child.wait().unwrap().success());
    for i in 0..60u64 {
        let b = get(&e, "bkt", &format!("child/{i}"), None).await.unwrap();
        check_body("shared", &b);
    }
    assert_clean_after_gc(&e, dir.path()).await;
}

/// A conditional get decides on the version it serves: under constant overwrites, the ETag
/// its check saw is always the MD5 of the bytes it returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_get_decides_on_the_version_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    put(&e, "bkt", "k", &data(0, 100_000)).await;
    let w = e.clone();
    let writer = tokio::spawn(async move {
        for i in 1..150u64 {
            put(&w, "bkt", "k", &data(i, 90_000 + i as usize * 7)).await;
        }
    });
    let mut checked = 0;
    while !writer.is_finished() {
        let mut seen = None;
        let g = e
            .get_object_with("bkt", "k", &engine::VersionSel::Latest, |m, _| {
                seen = Some(m.etag.clone());
                Ok::<_, ()>(Some(engine::ByteRange::From(0)))
            })
            .await
            .unwrap()
            .unwrap();
        let mut body = g.body;
        let mut bytes = Vec::new();
        while let Some(b) = futures::StreamExt::next(&mut body).await {
            bytes.extend_from_slice(&b.unwrap());
        }
        assert_eq!(seen.as_deref(), Some(md5_hex(&bytes).as_str()));
        assert_eq!(g.meta.etag, md5_hex(&bytes));
        checked += 1;
    }
    writer.await.unwrap();
    assert!(checked > 0);
    // A failed precondition is the caller's own error, and nothing is read.
    let r = e
        .get_object_with("bkt", "k", &engine::VersionSel::Latest, |_, _| {
            Err::<Option<engine::ByteRange>, _>("nope")
        })
        .await
        .unwrap();
    assert!(matches!(r, Err("nope")));
}

/// Metadata adds up, and after a full GC every shard file belongs to a recorded chunk (six
/// shards each) and no volume holds orphans.
async fn assert_clean_after_gc(e: &Engine, dir: &std::path::Path) {
    assert!(e.fsck().unwrap().is_clean());
    e.gc(true).await.unwrap();
    assert_eq!(shard_files(dir), e.chunk_records().unwrap().len() * 6);
    assert_no_orphans(e, dir, "after GC");
}
