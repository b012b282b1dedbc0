//! `make bench`: engine put/get next to the machine's own limits, measured in the same run.
//!
//! Groups: `machine/*` (memcpy, BLAKE3, MD5, hole detection, Reed-Solomon with both candidate
//! crates, sequential disk write with fsync), `placement/*` (a cluster's shard placement of one
//! chunk over 3 to 100 members) and `engine/*` (small-object put rate, 1 MiB and 64 MiB
//! put/get, range reads, degraded reads with 2 of 6 disks missing).

use std::io::Write;
use std::time::Duration;

#[path = "../tests/common/mod.rs"]
mod common;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use engine::{ByteRange, Engine, EngineConfig, PutOptions};
use futures::StreamExt;
use md5::Digest;

const MIB: usize = 1024 * 1024;

fn bytes(len: usize) -> Vec<u8> {
    common::data(1, len)
}

fn bench_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn machine(c: &mut Criterion) {
    // The allocator settings of the front doors (s3d, mountd): the engine as they run it.
    engine::process::tune_allocator();
    let data = bytes(4 * MIB);
    let mut g = c.benchmark_group("machine");
    g.measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("memcpy_4MiB", |b| {
        let mut dst = vec![0u8; data.len()];
        b.iter(|| {
            dst.copy_from_slice(std::hint::black_box(&data));
            std::hint::black_box(&dst);
        })
    });
    g.bench_function("blake3_4MiB", |b| b.iter(|| blake3::hash(&data)));
    g.bench_function("md5_4MiB", |b| b.iter(|| md5::Md5::digest(&data)));
    // What finding runs of zeros (holes) costs every stored chunk: on data, a glance per page;
    // on zeros, a full scan.
    g.bench_function("zero_runs_data_4MiB", |b| {
        b.iter(|| engine::zero_runs(std::hint::black_box(&data)))
    });
    let zeros = vec![0u8; 4 * MIB];
    g.bench_function("zero_runs_zeros_4MiB", |b| {
        b.iter(|| engine::zero_runs(std::hint::black_box(&zeros)))
    });
    let shards: Vec<&[u8]> = data.chunks(MIB).collect();
    g.bench_function("rs_simd_encode_4+2_4MiB", |b| {
        // One encoder, reset per chunk, as the engine uses it.
        let mut enc = reed_solomon_simd::ReedSolomonEncoder::new(4, 2, MIB).unwrap();
        b.iter(|| {
            enc.reset(4, 2, MIB).unwrap();
            for s in &shards {
                enc.add_original_shard(s).unwrap();
            }
            enc.encode().unwrap().recovery(0).map(|r| r[0])
        })
    });
    let rse = reed_solomon_erasure::galois_8::ReedSolomon::new(4, 2).unwrap();
    g.bench_function("rs_erasure_encode_4+2_4MiB", |b| {
        let mut all: Vec<Vec<u8>> = shards.iter().map(|s| s.to_vec()).collect();
        all.push(vec![0; MIB]);
        all.push(vec![0; MIB]);
        b.iter(|| rse.encode(&mut all).unwrap())
    });
    g.finish();

    let mut g = c.benchmark_group("machine");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(5));
    let big = bytes(64 * MIB);
    g.throughput(Throughput::Bytes(big.len() as u64));
    let dir = bench_dir();
    g.bench_function("disk_write_fsync_64MiB", |b| {
        b.iter(|| {
            let p = dir.path().join("seq");
            let mut f = std::fs::File::create(&p).unwrap();
            for c in big.chunks(MIB) {
                f.write_all(c).unwrap();
            }
            f.sync_all().unwrap();
        })
    });
    // What a 256 MiB put has to write for 4 + 2 (1.5 x 256 MiB), back to back as the put
    // benchmark does: a virtual disk's write cache makes a short burst faster than a sustained
    // stream, so the short probe alone overstates what a large put can get.
    g.throughput(Throughput::Bytes(6 * big.len() as u64));
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("disk_write_fsync_384MiB", |b| {
        b.iter(|| {
            let p = dir.path().join("seq");
            let mut f = std::fs::File::create(&p).unwrap();
            for _ in 0..6 {
                for c in big.chunks(MIB) {
                    f.write_all(c).unwrap();
                }
            }
            f.sync_all().unwrap();
        })
    });
    g.finish();
}

fn open(dir: &std::path::Path) -> Engine {
    Engine::open(EngineConfig::new(dir)).unwrap()
}

async fn read_all(e: &Engine, key: &str, range: Option<ByteRange>) -> usize {
    let g = e.get_object("bench", key, range).await.unwrap();
    let mut body = g.body;
    let mut n = 0;
    while let Some(b) = body.next().await {
        n += b.unwrap().len();
    }
    n
}

fn engine_benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = bench_dir();
    let e = open(dir.path());
    rt.block_on(e.create_bucket("bench")).unwrap();

    // Small objects: 64 concurrent 4 KiB puts per iteration (group commit shares the fsyncs).
    let mut g = c.benchmark_group("engine");
    g.measurement_time(Duration::from_secs(4));
    let small = bytes(4096);
    g.throughput(Throughput::Elements(64));
    let mut n = 0u64;
    g.bench_function("put_4KiB_x64_concurrent", |b| {
        b.iter(|| {
            n += 1;
            rt.block_on(async {
                let mut tasks = Vec::new();
                for i in 0..64 {
                    let e = e.clone();
                    let body = small.clone();
                    let key = format!("small/{n}/{i}");
                    tasks.push(tokio::spawn(async move {
                        e.put_object("bench", &key, &body[..], PutOptions::default())
                            .await
                            .unwrap()
                    }));
                }
                for t in tasks {
                    t.await.unwrap();
                }
            })
        })
    });
    g.throughput(Throughput::Elements(1));
    // Its own object: the benchmark runs alone too (`--bench engine/get_4KiB`).
    rt.block_on(e.put_object("bench", "get/4KiB", &small[..], PutOptions::default()))
        .unwrap();
    g.bench_function("get_4KiB", |b| {
        b.iter(|| rt.block_on(read_all(&e, "get/4KiB", None)))
    });
    // A listing page: 1,000 keys of 5,000 under a prefix (ListObjectsV2's default page).
    rt.block_on(async {
        for batch in 0..50 {
            let puts = (0..100).map(|i| {
                let e = e.clone();
                async move {
                    let key = format!("list/{:06}", batch * 100 + i);
                    e.put_object("bench", &key, &b"x"[..], PutOptions::default())
                        .await
                        .unwrap()
                }
            });
            futures::future::join_all(puts).await;
        }
    });
    g.throughput(Throughput::Elements(1000));
    g.bench_function("list_1000_page", |b| {
        b.iter(|| {
            let page = e
                .list_objects(
                    "bench",
                    &engine::ListQuery {
                        prefix: "list/".into(),
                        delimiter: Some("/".into()),
                        start_after: Some("list/002000".into()),
                        max_keys: 1000,
                    },
                )
                .unwrap();
            assert_eq!(page.objects.len(), 1000);
            page
        })
    });
    g.finish();

    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    for size in [MIB, 64 * MIB, 256 * MIB] {
        // Fresh content each iteration, so dedup does not skip the work.
        let base = bytes(size);
        g.throughput(Throughput::Bytes(size as u64));
        let mut i = 0u64;
        g.bench_with_input(BenchmarkId::new("put", size), &size, |b, _| {
            b.iter_batched(
                || {
                    // Fresh content, made outside the measurement.
                    i += 1;
                    let mut body = base.clone();
                    for c in body.chunks_mut(4 * MIB) {
                        c[..8].copy_from_slice(&i.to_le_bytes());
                    }
                    body
                },
                |body| {
                    rt.block_on(e.put_object(
                        "bench",
                        &format!("big{size}"),
                        &body[..],
                        PutOptions::default(),
                    ))
                    .unwrap()
                },
                BatchSize::PerIteration,
            )
        });
        rt.block_on(e.gc(false)).unwrap();
        g.bench_with_input(BenchmarkId::new("get", size), &size, |b, _| {
            b.iter(|| rt.block_on(read_all(&e, &format!("big{size}"), None)))
        });
    }
    g.throughput(Throughput::Bytes(4096));
    g.bench_function("range_4KiB_of_64MiB", |b| {
        let mut off = 0u64;
        b.iter(|| {
            off = (off + 7_777_777) % (60 * MIB as u64);
            rt.block_on(read_all(
                &e,
                &format!("big{}", 64 * MIB),
                Some(ByteRange::FromTo(off, off + 4095)),
            ))
        })
    });
    // Degraded: two disks gone.
    for d in [1, 4] {
        std::fs::remove_dir_all(dir.path().join("disks").join(format!("disk{d}"))).unwrap();
    }
    g.throughput(Throughput::Bytes(64 * MIB as u64));
    g.bench_function("get_64MiB_degraded_2_of_6_missing", |b| {
        b.iter(|| rt.block_on(read_all(&e, &format!("big{}", 64 * MIB), None)))
    });
    g.finish();
}

/// Where should small objects live? 16 concurrent puts of each size, inline in LMDB vs as shards.
fn inline_threshold(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("inline_threshold");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(3));
    for size in [4 * 1024, 64 * 1024, 256 * 1024] {
        for inline in [true, false] {
            let dir = bench_dir();
            let mut cfg = EngineConfig::new(dir.path());
            cfg.inline_threshold = if inline { 1024 * 1024 } else { 0 };
            let e = Engine::open(cfg).unwrap();
            rt.block_on(e.create_bucket("bench")).unwrap();
            let body = bytes(size);
            g.throughput(Throughput::Elements(16));
            let mut n = 0u64;
            let name = if inline { "inline" } else { "shards" };
            g.bench_with_input(BenchmarkId::new(name, size), &size, |b, _| {
                b.iter(|| {
                    n += 1;
                    rt.block_on(async {
                        let mut tasks = Vec::new();
                        for i in 0..16u64 {
                            let e = e.clone();
                            let mut body = body.clone();
                            body[..8].copy_from_slice(&(n * 100 + i).to_le_bytes());
                            tasks.push(tokio::spawn(async move {
                                e.put_object(
                                    "bench",
                                    &format!("o{i}"),
                                    &body[..],
                                    PutOptions::default(),
                                )
                                .await
                                .unwrap()
                            }));
                        }
                        for t in tasks {
                            t.await.unwrap();
                        }
                    })
                })
            });
        }
    }
    g.finish();
}

/// Versioning's cost: the same puts, overwrites and reads with versioning off and on, each in
/// an engine of its own (so neither works on a metadata store the other grew), side by side in
/// one run; and a ListObjectVersions page of 1,000 from a bucket of 1,000,000 versions.
fn versioning(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let modes = ["versioning-off", "versioning-on"];
    let dirs: Vec<_> = modes.iter().map(|_| bench_dir()).collect();
    let engines: Vec<Engine> = dirs
        .iter()
        .zip(modes)
        .map(|(d, m)| {
            let e = open(d.path());
            rt.block_on(async {
                e.create_bucket("bench").await.unwrap();
                if m == "versioning-on" {
                    e.set_bucket_versioning("bench", engine::Versioning::Enabled)
                        .await
                        .unwrap();
                }
            });
            e
        })
        .collect();
    let small = bytes(4096);
    let put64 = |e: &Engine, n: u64, new_keys: bool| {
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..64 {
                let e = e.clone();
                let mut body = small.clone();
                body[..8].copy_from_slice(&n.to_le_bytes());
                let key = match new_keys {
                    true => format!("new/{n}/{i}"),
                    false => format!("same/{i}"),
                };
                tasks.push(tokio::spawn(async move {
                    e.put_object("bench", &key, &body[..], PutOptions::default())
                        .await
                        .unwrap()
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    // Paired: every iteration does the same work on both engines, back to back, in alternating
    // order, and times each; criterion reports the versioned engine's time, and the ratio of the
    // two totals (on / off) is printed at the end — the disk's fsync latency, which drifts by
    // tens of percent within minutes here, is then the same for both sides.
    let mut g = c.benchmark_group("versioning");
    g.measurement_time(Duration::from_secs(4));
    let paired = |g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
                  name: &str,
                  op: &mut dyn FnMut(&Engine, u64)| {
        let (mut on, mut off) = (Duration::ZERO, Duration::ZERO);
        let mut n = 0u64;
        g.bench_function(format!("{name}/versioning-on"), |b| {
            b.iter_custom(|iters| {
                let mut timed = Duration::ZERO;
                for _ in 0..iters {
                    n += 1;
                    let order: [usize; 2] = if n.is_multiple_of(2) { [0, 1] } else { [1, 0] };
                    for side in order {
                        let t = std::time::Instant::now();
                        op(&engines[side], n);
                        let d = t.elapsed();
                        if side == 1 {
                            on += d;
                            timed += d;
                        } else {
                            off += d;
                        }
                    }
                }
                timed
            })
        });
        println!(
            "versioning/{name}: on/off = {:.3} (totals {:.3} s / {:.3} s over {n} paired iterations)",
            on.as_secs_f64() / off.as_secs_f64(),
            on.as_secs_f64(),
            off.as_secs_f64()
        );
    };
    g.throughput(Throughput::Elements(64));
    paired(&mut g, "put_4KiB_x64_concurrent", &mut |e, n| {
        put64(e, n, true)
    });
    g.throughput(Throughput::Elements(1));
    paired(&mut g, "get_4KiB", &mut |e, _| {
        rt.block_on(read_all(e, "new/1/7", None));
    });
    // Overwrites: with versioning on each one keeps the version it supersedes (4 KiB objects
    // live inline, so their data stays in the metadata store): not the same work.
    g.throughput(Throughput::Elements(64));
    paired(&mut g, "overwrite_4KiB_x64_concurrent", &mut |e, n| {
        put64(e, n, false)
    });
    g.finish();
    let mut g = c.benchmark_group("versioning");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(6));
    let base = bytes(MIB);
    g.throughput(Throughput::Bytes(MIB as u64));
    paired(&mut g, "overwrite_1MiB", &mut |e, i| {
        let mut body = base.clone();
        body[..8].copy_from_slice(&i.to_le_bytes());
        rt.block_on(e.put_object("bench", "big", &body[..], PutOptions::default()))
            .unwrap();
    });
    g.finish();
    drop(engines);

    // 1,000,000 versions: 10,000 keys × 100 versions, written without fsync (the listing's
    // speed does not depend on how durably the records were written).
    let dir = bench_dir();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.durability = engine::Durability::None;
    let e = Engine::open(cfg).unwrap();
    rt.block_on(async {
        e.create_bucket("many").await.unwrap();
        e.set_bucket_versioning("many", engine::Versioning::Enabled)
            .await
            .unwrap();
        for round in 0..100u32 {
            for batch in 0..(10_000 / 500) {
                let puts = (0..500).map(|i| {
                    let e = e.clone();
                    async move {
                        let key = format!("k/{:05}", batch * 500 + i);
                        e.put_object(
                            "many",
                            &key,
                            &round.to_le_bytes()[..],
                            PutOptions::default(),
                        )
                        .await
                        .unwrap()
                    }
                });
                futures::future::join_all(puts).await;
            }
        }
    });
    let mut g = c.benchmark_group("versioning");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("list_versions_1000_page_of_1M", |b| {
        let mut k = 0u32;
        b.iter(|| {
            k = (k + 997) % 9_000;
            let page = e
                .list_object_versions(
                    "many",
                    &engine::VersionQuery {
                        prefix: "k/".into(),
                        key_marker: Some(format!("k/{k:05}")),
                        max_keys: 1000,
                        ..Default::default()
                    },
                )
                .unwrap();
            assert_eq!(page.versions.len(), 1000);
            page
        })
    });
    g.finish();
}

/// A 20-statement policy of the kind the access benchmark puts on a bucket: none of it refuses
/// the bench key, so every statement is evaluated on every request.
fn twenty_statements(bucket: &str) -> String {
    let mut st = Vec::new();
    for i in 0..10 {
        st.push(format!(
            r#"{{"Effect":"Deny","Principal":"*","Action":["s3:DeleteObject","s3:PutObject"],"Resource":"arn:aws:s3:::{bucket}/locked-{i}/*","Condition":{{"NotIpAddress":{{"aws:SourceIp":["10.0.0.0/8","192.168.0.0/16"]}}}}}}"#
        ));
    }
    for i in 0..9 {
        st.push(format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/public-{i}/*","Condition":{{"StringEquals":{{"aws:username":"viewer-{i}"}}}}}}"#
        ));
    }
    st.push(format!(
        r#"{{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::{bucket}","arn:aws:s3:::{bucket}/*"],"Condition":{{"Bool":{{"aws:SecureTransport":"false"}}}}}}"#
    ));
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        st.join(",")
    )
}

/// What authorization costs a request: `authorize` for a key with a read grant on a bucket
/// without a policy and on one with a 20-statement policy, next to the engine's 4 KiB GET
/// (the rest of the request's engine work) in the same run.
fn access(c: &mut Criterion) {
    use engine::access::{AccessRequest, Action, Grant, KeyChange, NewKey, Origin};
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = bench_dir();
    let e = open(dir.path());
    let key = rt.block_on(async {
        let k = e.create_key(NewKey::default()).await.unwrap();
        for b in ["plain", "policed"] {
            e.create_bucket(b).await.unwrap();
            e.put_object(b, "k4", &bytes(4096)[..], PutOptions::default())
                .await
                .unwrap();
            let g = Grant {
                bucket: b.into(),
                read: true,
                ..Default::default()
            };
            e.change_key(&k.id, KeyChange::Allow(g)).await.unwrap();
        }
        e.set_bucket_policy("policed", &twenty_statements("policed"))
            .await
            .unwrap();
        k
    });
    let who = engine::Principal::Key(key.id);
    let origin = Origin {
        secure_transport: true,
        source_ip: Some("127.0.0.1".parse().unwrap()),
    };
    let mut g = c.benchmark_group("access");
    for b in ["plain", "policed"] {
        g.bench_function(format!("authorize_get_{b}"), |bn| {
            bn.iter(|| {
                e.authorize(
                    &who,
                    origin,
                    AccessRequest::new(Action::GetObject, b, Some("k4")),
                )
                .unwrap()
            })
        });
    }
    g.bench_function("engine_get_4KiB", |bn| {
        bn.iter(|| {
            rt.block_on(async {
                let mut body = e.get_object("plain", "k4", None).await.unwrap().body;
                let mut n = 0;
                while let Some(b) = body.next().await {
                    n += b.unwrap().len();
                }
                assert_eq!(n, 4096);
            })
        })
    });
    g.finish();
}

/// Where a cluster places one chunk's 4 + 2 shards (`Layout::place`: a BLAKE3 score per
/// shard, member and disk, sorted), for clusters of growing size — next to `machine/blake3_4MiB`,
/// the hashing every 4 MiB chunk costs anyway.
fn placement(c: &mut Criterion) {
    let mut g = c.benchmark_group("placement");
    g.measurement_time(Duration::from_secs(3));
    for (members, disks) in [(3u32, 6u32), (12, 6), (100, 12)] {
        let ms = (0..members)
            .map(|i| engine::Member {
                id: format!("node-{i}"),
                disks,
            })
            .collect();
        let layout = engine::Layout::new(ms, 4, 2).unwrap();
        let mut chunk = [0u8; 32];
        let mut n = 0u64;
        g.bench_function(format!("place_{members}x{disks}"), |b| {
            b.iter(|| {
                n += 1;
                chunk[..8].copy_from_slice(&n.to_le_bytes());
                std::hint::black_box(layout.place(&chunk))
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    machine,
    placement,
    engine_benches,
    inline_threshold,
    versioning,
    access
);
criterion_main!(benches);
