//! The background jobs of an open data dir: a degraded read repaired without an operator.

mod common;

use std::time::{Duration, Instant};

use common::*;
use engine::background::Schedule;
use engine::Engine;

fn fast() -> Schedule {
    Schedule {
        gc_every: Duration::ZERO,
        repair_every: Duration::from_millis(50),
        scrub_every: Duration::ZERO,
        scrub_rate: 100_000_000,
        lifecycle_every: Duration::ZERO,
        lifecycle_rate: 1,
    }
}

async fn wait_for(what: &str, f: impl Fn() -> bool) {
    let t = Instant::now();
    while !f() {
        assert!(t.elapsed() < Duration::from_secs(20), "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jobs_run_here_when_no_other_process_runs_them() {
    // (Two processes side by side, and the takeover when one exits: mountd/tests/mount.rs,
    // `a_mountd_only_host_heals_and_reads_s3ds_config`.)
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    let jobs = e.spawn_background(fast());
    wait_for("the jobs run here", || jobs.runs_jobs()).await;
    jobs.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_degraded_read_is_repaired_by_the_background_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let body = data(7, 3 << 20);
    put(&e, "bkt", "obj", &body).await;
    // Punch every shard 0 on the disks (a lost sector reads back as zeros).
    let mut punched = Vec::new();
    for d in std::fs::read_dir(dir.path().join("disks")).unwrap() {
        for (_, vol) in engine::testing::list_volumes(&d.unwrap().path()) {
            for (off, h) in engine::testing::scan_shards(&vol).unwrap() {
                if h.index == 0 {
                    assert!(engine::testing::punch(&vol, off, 4096).unwrap());
                    punched.push(vol.clone());
                }
            }
        }
    }
    assert!(!punched.is_empty());
    assert_eq!(
        get(&e, "bkt", "obj", None).await.unwrap(),
        body,
        "served from parity"
    );
    assert!(
        e.status().unwrap().repair_queue > 0,
        "and queued for repair"
    );
    let jobs = e.spawn_background(fast());
    wait_for("the queue drains", || e.status().unwrap().repair_queue == 0).await;
    jobs.stop().await;
    let rep = e
        .heal(
            engine::HealOptions {
                mode: engine::HealMode::Scrub,
                rate_limit: None,
                cancel: None,
                resume: false,
            },
            Box::new(|_| {}),
        )
        .await
        .unwrap();
    assert_eq!((rep.shards_corrupt, rep.shards_missing), (0, 0), "{rep:?}");
}
