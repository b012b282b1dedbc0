//! What references in pieces cost: the metadata time of a draft commit (fresh chunks, kept
//! open) and of dropping a deleted object's references, per chunk, for an object that fits one
//! transaction (`REFS_PER_COMMIT` chunks) and for one ten times larger that goes in pieces.
//! Chunks are 4 KiB so that only metadata counts; the chunks are stored before the clock runs.
//!
//! `cargo run --release -p predastore-engine --example pieces [--features etcd] -- DATA_DIR [ETCD_URL] [ROUNDS]`
//! (with an etcd URL the metadata is there: run etcd with `--max-txn-ops=10000
//! --max-request-bytes=8388608`)

use std::time::{Duration, Instant};

use engine::{
    Compression, DraftCommit, DraftData, Durability, Engine, EngineConfig, StoredChunk,
    REFS_PER_COMMIT,
};

fn commit_info() -> DraftCommit {
    DraftCommit {
        etag: "e".into(),
        part_sizes: Vec::new(),
        attrs: Box::new(|_| engine::ObjectAttrs::default()),
        replaces: None,
    }
}

/// Stores `n` distinct 4 KiB chunks for a draft (`seed` makes them distinct across runs).
async fn store(e: &Engine, n: usize, seed: u64) -> Vec<(StoredChunk, Option<[u8; 16]>)> {
    let guard = e.write_guard().await.unwrap();
    let e2 = e.clone();
    let data = engine::testing::pseudo_random(seed, n * 4096);
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for c in data.chunks(4096) {
            for sc in e2.store_draft_data(&guard, Compression::Off, c).unwrap() {
                out.push((sc, None));
            }
        }
        out
    })
    .await
    .unwrap()
}

/// One round for an object of `n` chunks: (commit, delete + GC's drain) time per chunk.
async fn round(e: &Engine, n: usize, seed: u64) -> (Duration, Duration) {
    let chunks = store(e, n, seed).await;
    let key = format!("obj-{seed}");
    let mut draft = None;
    let t = Instant::now();
    e.commit_draft(
        &mut draft,
        "bkt",
        &key,
        DraftData::Chunks(chunks),
        commit_info(),
        true,
    )
    .await
    .unwrap();
    let commit = t.elapsed();
    if let Some(d) = draft {
        e.close_draft(d);
    }
    while e.draft_count().unwrap() > 0 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let t = Instant::now();
    e.delete_object("bkt", &key).await.unwrap();
    let e2 = e.clone();
    tokio::task::spawn_blocking(move || e2.drain_releases().unwrap())
        .await
        .unwrap();
    let release = t.elapsed();
    e.gc(false).await.unwrap();
    (commit / n as u32, release / n as u32)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = args.get(1).expect("DATA_DIR [ETCD_URL] [ROUNDS]");
    let mut cfg = EngineConfig::new(dir);
    cfg.chunk_size = 4096;
    cfg.inline_threshold = 0;
    cfg.durability = Durability::Fsync;
    cfg.gc_interval = Duration::ZERO;
    let etcd = args.get(2).filter(|a| a.starts_with("http"));
    if let Some(url) = etcd {
        cfg.metadata = engine::Metadata::Etcd {
            endpoints: vec![url.clone()],
            prefix: "/predastore/pieces-bench/".into(),
        };
    }
    let rounds: usize = args
        .iter()
        .skip(2)
        .find_map(|a| a.parse().ok())
        .unwrap_or(5);
    let e = Engine::open(cfg).unwrap();
    let _ = e.create_bucket("bkt").await;
    let small = REFS_PER_COMMIT;
    let large = 10 * REFS_PER_COMMIT;
    let (mut sc, mut sr, mut lc, mut lr) = (vec![], vec![], vec![], vec![]);
    for i in 0..rounds as u64 {
        let (c, r) = round(&e, small, 1000 + i).await;
        sc.push(c);
        sr.push(r);
        let (c, r) = round(&e, large, 2000 + i).await;
        lc.push(c);
        lr.push(r);
    }
    let (sc, sr, lc, lr) = (median(sc), median(sr), median(lc), median(lr));
    let store = if etcd.is_some() { "etcd" } else { "LMDB" };
    println!("metadata on {store}, medians of {rounds} rounds, per chunk:");
    println!(
        "  commit (kept open): {small} chunks in one transaction {:?}, {large} in pieces {:?}: ratio {:.2}",
        sc,
        lc,
        lc.as_secs_f64() / sc.as_secs_f64()
    );
    println!(
        "  delete + drop references: {small} chunks at once {:?}, {large} queued and dropped in pieces {:?}: ratio {:.2}",
        sr,
        lr,
        lr.as_secs_f64() / sr.as_secs_f64()
    );
}
