//! Crash safety: a child process putting, overwriting and deleting is killed with SIGKILL at
//! random moments; after reopening, every acknowledged write reads back, nothing torn is visible,
//! the metadata adds up and GC leaves no orphan shard.
//!
//! The child is this test binary itself, re-run with `PREDASTORE_CRASH_CHILD` set.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use engine::{Durability, Engine, EngineConfig};

const KEYS: usize = 6;
const SIZES: [usize; 5] = [0, 1000, 70_000, 200_000, 64 * 1024 * 5];

fn crash_config(dir: &std::path::Path) -> EngineConfig {
    let mut c = config(dir);
    c.durability = Durability::Fsync;
    c
}

/// In a child run (the test binary re-run by a parent test): its data dir (from `var`) and
/// seed; `None` in a normal run.
fn child_args(var: &str) -> Option<(String, u64)> {
    let dir = std::env::var(var).ok()?;
    let seed = std::env::var("PREDASTORE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    Some((dir, seed))
}

/// Runs the child test `test` on `dir` with `seed` (its data dir in variable `var`), kills it
/// with SIGKILL after `delay_ms`, and returns the fields of every protocol line it printed
/// (whatever follows the last `@@` of a line: libtest may print before it on the same line).
fn run_and_kill(test: &str, var: &str, dir: &Path, seed: u64, delay_ms: u64) -> Vec<Vec<String>> {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(var, dir)
        .env("PREDASTORE_CRASH_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let pid = child.id();
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(delay_ms));
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    });
    let mut lines = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let Ok(line) = line else { break };
        if let Some(pos) = line.rfind("@@") {
            lines.push(line[pos + 2..].split(' ').map(str::to_string).collect());
        }
    }
    killer.join().unwrap();
    child.wait().unwrap();
    lines
}

/// The next number of a xorshift sequence.
fn next(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}

/// The child's workload: endless ops, each announced before (`@@B`) and acknowledged after
/// (`@@A`).
#[test]
fn crash_child() {
    let Some((dir, seed)) = child_args("PREDASTORE_CRASH_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let e = Engine::open(crash_config(std::path::Path::new(&dir))).unwrap();
        let _ = e.create_bucket("bkt").await;
        let mut x = seed | 1;
        let mut op = 0u64;
        loop {
            next(&mut x);
            op += 1;
            let key = format!("k{}", x % KEYS as u64);
            if (x >> 8).is_multiple_of(5) {
                println!("@@B {op} {key} delete -");
                e.delete_object("bkt", &key).await.unwrap();
            } else {
                let size = SIZES[((x >> 16) % SIZES.len() as u64) as usize];
                // Shared content across ops so dedup and refcounts get exercised.
                let body = data((x >> 32) % 4, size);
                println!("@@B {op} {key} put {}", md5_hex(&body));
                put(&e, "bkt", &key, &body).await;
            }
            println!("@@A {op}");
        }
    });
}

#[test]
fn sigkill_at_random_moments() {
    let rounds: u64 = std::env::var("PREDASTORE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25);
    let dir = tempfile::tempdir().unwrap();
    // Acknowledged state of each key: Some(md5) or None (deleted / never written).
    let mut acked: HashMap<String, Option<String>> = HashMap::new();
    let mut total_acks = 0;
    for round in 0..rounds {
        let delay = 150 + (round * 137) % 500;
        let seed = round * 7919 + 13;
        let lines = run_and_kill(
            "crash_child",
            "PREDASTORE_CRASH_CHILD",
            dir.path(),
            seed,
            delay,
        );
        let mut pending: Option<(String, Option<String>)> = None;
        let log: Vec<String> = lines.iter().map(|f| f.join(" ")).collect();
        for f in &lines {
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            match f.as_slice() {
                ["B", _, key, "delete", _] => pending = Some((key.to_string(), None)),
                ["B", _, key, "put", md5] => {
                    pending = Some((key.to_string(), Some(md5.to_string())))
                }
                ["A", _] => {
                    if let Some((k, v)) = pending.take() {
                        acked.insert(k, v);
                        total_acks += 1;
                    }
                }
                _ => {}
            }
        }

        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let e = Engine::open(crash_config(dir.path())).unwrap();
            let _ = e.create_bucket("bkt").await;
            for i in 0..KEYS {
                let key = format!("k{i}");
                let want = acked.get(&key).cloned().flatten();
                let got = match e.head_object("bkt", &key) {
                    Ok(m) => {
                        let body = get(&e, "bkt", &key, None).await.unwrap();
                        assert_eq!(md5_hex(&body), m.etag, "torn object {key}");
                        Some(m.etag)
                    }
                    Err(engine::Error::NoSuchKey { .. }) => None,
                    Err(err) => panic!("{err}"),
                };
                let in_flight = pending.as_ref().filter(|(k, _)| *k == key).map(|(_, v)| v.clone());
                assert!(
                    got == want || Some(&got) == in_flight.as_ref(),
                    "round {round} {key}: got {got:?}, acknowledged {want:?}, in flight {in_flight:?}\nlog:\n{}",
                    log.join("\n")
                );
                // What survived is now the acknowledged state.
                acked.insert(key, got);
            }
            let fsck = e.fsck().unwrap();
            assert!(fsck.is_clean(), "round {round}: {fsck:?}");
            e.gc(true).await.unwrap();
            let chunks = e.chunk_records().unwrap();
            assert!(chunks.values().all(|c| c.refs > 0));
            assert_eq!(shard_files(dir.path()), chunks.len() * 6, "round {round}");
            assert_no_orphans(&e, dir.path(), &format!("round {round}, after GC"));
        });
    }
    assert!(
        total_acks > rounds as usize,
        "the child made too little progress"
    );
}

/// The child's workload in a versioned bucket: puts, deletes (markers) and deletes of versions
/// it made, each announced (`@@B`) and acknowledged with the version id it made (`@@A`).
#[test]
fn versioned_crash_child() {
    let Some((dir, seed)) = child_args("PREDASTORE_VCRASH_CHILD") else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let e = Engine::open(crash_config(std::path::Path::new(&dir))).unwrap();
        let _ = e.create_bucket("vbkt").await;
        e.set_bucket_versioning("vbkt", engine::Versioning::Enabled)
            .await
            .unwrap();
        let mut made: Vec<(String, String)> = Vec::new();
        let mut x = seed | 1;
        let mut op = 0u64;
        loop {
            next(&mut x);
            op += 1;
            let key = format!("k{}", x % 3);
            match (x >> 8) % 6 {
                0 => {
                    println!("@@B {op} {key} delete -");
                    let d = e
                        .delete_object_version("vbkt", &key, engine::VersionSel::Latest)
                        .await
                        .unwrap();
                    let vid = d.version_id.unwrap();
                    made.push((key, vid.clone()));
                    println!("@@A {op} {vid}");
                }
                1 if !made.is_empty() => {
                    let (k, vid) = made.swap_remove(((x >> 20) % made.len() as u64) as usize);
                    println!("@@B {op} {k} delv {vid}");
                    e.delete_object_version("vbkt", &k, engine::VersionSel::parse(&vid).unwrap())
                        .await
                        .unwrap();
                    println!("@@A {op} -");
                }
                _ => {
                    let size = SIZES[((x >> 16) % SIZES.len() as u64) as usize];
                    let body = data((x >> 32) % 4, size);
                    println!("@@B {op} {key} put {}", md5_hex(&body));
                    let m = put(&e, "vbkt", &key, &body).await;
                    let vid = m.version_id().unwrap().to_string();
                    made.push((key, vid.clone()));
                    println!("@@A {op} {vid}");
                }
            }
        }
    });
}

/// One version as the parent knows it: its key and its content's MD5 (`None`: a marker).
type Known = (String, Option<String>);

#[test]
fn sigkill_during_versioned_writes() {
    let rounds: u64 = std::env::var("PREDASTORE_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map(|n: u64| n / 2)
        .unwrap_or(12);
    let dir = tempfile::tempdir().unwrap();
    // Every acknowledged version still there: id → (key, md5 or marker).
    let mut acked: HashMap<String, Known> = HashMap::new();
    let mut total_acks = 0;
    for round in 0..rounds {
        let delay = 200 + (round * 173) % 500;
        let seed = round * 7919 + 29;
        let lines = run_and_kill(
            "versioned_crash_child",
            "PREDASTORE_VCRASH_CHILD",
            dir.path(),
            seed,
            delay,
        );
        // The announced op: (key, what, argument).
        let mut pending: Option<(String, String, String)> = None;
        for f in &lines {
            let f: Vec<&str> = f.iter().map(String::as_str).collect();
            match f.as_slice() {
                ["B", _, key, what, arg] => {
                    pending = Some((key.to_string(), what.to_string(), arg.to_string()))
                }
                ["A", _, vid] => {
                    let Some((key, what, arg)) = pending.take() else {
                        continue;
                    };
                    total_acks += 1;
                    match what.as_str() {
                        "put" => {
                            acked.insert(vid.to_string(), (key, Some(arg)));
                        }
                        "delete" => {
                            acked.insert(vid.to_string(), (key, None));
                        }
                        _ => {
                            acked.remove(&arg);
                        }
                    }
                }
                _ => {}
            }
        }

        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let e = Engine::open(crash_config(dir.path())).unwrap();
            let q = engine::VersionQuery {
                max_keys: 100_000,
                ..Default::default()
            };
            let listed = match e.list_object_versions("vbkt", &q) {
                Ok(p) => p.versions,
                Err(engine::Error::NoSuchBucket(_)) => Vec::new(),
                Err(err) => panic!("{err}"),
            };
            let mut found: HashMap<String, Known> = HashMap::new();
            for v in listed {
                let vid = v.meta.version_id().unwrap().to_string();
                let md5 = if v.meta.delete_marker {
                    None
                } else {
                    let sel = engine::VersionSel::parse(&vid).unwrap();
                    let g = e
                        .get_object_with("vbkt", &v.meta.key, &sel, |_, _| {
                            Ok::<_, engine::Error>(None)
                        })
                        .await
                        .unwrap()
                        .unwrap();
                    let mut body = Vec::new();
                    let mut s = g.body;
                    while let Some(b) = futures::StreamExt::next(&mut s).await {
                        body.extend_from_slice(&b.unwrap());
                    }
                    assert_eq!(md5_hex(&body), v.meta.etag, "torn version {vid}");
                    Some(v.meta.etag.clone())
                };
                found.insert(vid, (v.meta.key.clone(), md5));
            }
            // Every acknowledged version is there as it was acknowledged…
            for (vid, want) in &acked {
                let removing = matches!(&pending, Some((_, w, a)) if w == "delv" && a == vid);
                match found.get(vid) {
                    Some(got) => assert_eq!(got, want, "round {round}: version {vid}"),
                    None => assert!(removing, "round {round}: acknowledged version {vid} lost"),
                }
            }
            // …and anything else is what the op in flight made: one version or one marker.
            let extra: Vec<_> = found.keys().filter(|v| !acked.contains_key(*v)).collect();
            assert!(
                extra.len() <= 1,
                "round {round}: unexplained versions {extra:?}"
            );
            if let Some(vid) = extra.first() {
                let (key, md5) = &found[*vid];
                let Some((pk, what, arg)) = &pending else {
                    panic!("round {round}: version {vid} with no op in flight");
                };
                assert_eq!(key, pk, "round {round}");
                match what.as_str() {
                    "put" => assert_eq!(md5.as_deref(), Some(arg.as_str())),
                    "delete" => assert!(md5.is_none(), "round {round}: a half marker"),
                    _ => panic!("round {round}: a version deletion made {vid}"),
                }
            }
            acked = found;
            let fsck = e.fsck().unwrap();
            assert!(fsck.is_clean(), "round {round}: {fsck:?}");
            e.gc(true).await.unwrap();
            assert_no_orphans(&e, dir.path(), &format!("round {round}, after GC"));
        });
    }
    assert!(
        total_acks > rounds as usize,
        "the child made too little progress"
    );
}
