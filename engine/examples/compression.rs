//! Compression off and on, side by side in one run: PUT and GET throughput and the space taken
//! for log text and for random data (what a camera's JPEG or video looks like to a compressor).
//!
//! `cargo run --release -p predastore-engine --example compression -- DIR SIZE_MIB ROUNDS`
//!
//! Each round puts SIZE_MIB of each data kind into a fresh store per setting (off, zstd:1,
//! zstd:3), fsync'd as always, and reads it back; settings alternate within a round so the
//! machine's noise falls on all of them. Prints every round and the medians.

use std::time::Instant;

use engine::{Compression, Engine, EngineConfig, PutOptions};
use futures::StreamExt;

/// Access-log lines with varying addresses, paths, sizes and times: real logs' entropy, not
/// one line repeated.
fn log_text(n: usize, seed: u64) -> Vec<u8> {
    let paths = [
        "/index.html",
        "/api/v1/frames",
        "/static/app.js",
        "/api/v1/cameras/7/status",
        "/favicon.ico",
        "/login",
    ];
    let agents = [
        "curl/8.5.0",
        "Mozilla/5.0 (X11; Linux x86_64)",
        "boto3/1.34",
        "rclone/v1.66",
    ];
    let mut x = seed | 1;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut out = Vec::with_capacity(n + 200);
    let mut t = 1_796_000_000u64;
    while out.len() < n {
        let r = next();
        t += r % 3;
        out.extend_from_slice(
            format!(
                "10.{}.{}.{} - - [{t}] \"GET {} HTTP/1.1\" {} {} \"-\" \"{}\" rt={}.{:03}\n",
                r % 4,
                (r >> 8) % 256,
                (r >> 16) % 256,
                paths[(r >> 24) as usize % paths.len()],
                [200, 200, 200, 304, 404][(r >> 28) as usize % 5],
                (r >> 32) % 200_000,
                agents[(r >> 40) as usize % agents.len()],
                (r >> 44) % 3,
                (r >> 48) % 1000
            )
            .as_bytes(),
        );
    }
    out.truncate(n);
    out
}

fn random(n: usize, seed: u64) -> Vec<u8> {
    engine::testing::pseudo_random(seed, n)
}

struct Sample {
    put_mbs: f64,
    get_mbs: f64,
    stored_ratio: f64,
}

async fn one(dir: &std::path::Path, setting: Compression, data: &[u8]) -> Sample {
    let _ = std::fs::remove_dir_all(dir);
    let mut cfg = EngineConfig::new(dir);
    cfg.compression = setting;
    let e = Engine::open(cfg).expect("open");
    e.create_bucket("bench").await.expect("bucket");
    let t = Instant::now();
    e.put_object("bench", "obj", data, PutOptions::default())
        .await
        .expect("put");
    let put = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let g = e.get_object("bench", "obj", None).await.expect("get");
    let mut body = g.body;
    let mut n = 0usize;
    while let Some(b) = body.next().await {
        n += b.expect("read").len();
    }
    let get = t.elapsed().as_secs_f64();
    assert_eq!(n, data.len());
    let st = e.status().expect("status");
    let mb = data.len() as f64 / 1e6;
    drop(e);
    let _ = std::fs::remove_dir_all(dir);
    Sample {
        put_mbs: mb / put,
        get_mbs: mb / get,
        stored_ratio: st.chunk_bytes as f64 / data.len() as f64,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("usage: compression DIR SIZE_MIB ROUNDS");
        std::process::exit(2);
    }
    let dir = std::path::PathBuf::from(&args[1]);
    let size: usize = args[2].parse::<usize>().expect("SIZE_MIB") << 20;
    let rounds: usize = args[3].parse().expect("ROUNDS");
    let kinds = [("log text", log_text(size, 7)), ("random", random(size, 9))];
    let settings = [Compression::Off, Compression::Zstd(1), Compression::Zstd(3)];
    let mut all: Vec<Vec<Vec<Sample>>> = (0..kinds.len())
        .map(|_| (0..settings.len()).map(|_| Vec::new()).collect())
        .collect();
    for round in 0..rounds {
        for (ki, (kind, data)) in kinds.iter().enumerate() {
            // Rotate the order each round.
            for j in 0..settings.len() {
                let si = (j + round) % settings.len();
                let s = one(&dir, settings[si], data).await;
                println!(
                    "round {round} {kind:9} {:7}: put {:7.1} MB/s  get {:7.1} MB/s  stored {:.3} of the data",
                    settings[si].to_string(),
                    s.put_mbs,
                    s.get_mbs,
                    s.stored_ratio
                );
                all[ki][si].push(s);
            }
        }
    }
    println!(
        "\nmedians over {rounds} rounds, {} MiB per object:",
        size >> 20
    );
    println!("| data | setting | PUT MB/s | GET MB/s | stored / data | PUT vs off | GET vs off |");
    println!("|---|---|---|---|---|---|---|");
    for (ki, (kind, _)) in kinds.iter().enumerate() {
        let m = |si: usize, f: &dyn Fn(&Sample) -> f64| median(all[ki][si].iter().map(f).collect());
        let (put_off, get_off) = (m(0, &|s| s.put_mbs), m(0, &|s| s.get_mbs));
        for (si, setting) in settings.iter().enumerate() {
            let (p, g) = (m(si, &|s| s.put_mbs), m(si, &|s| s.get_mbs));
            println!(
                "| {kind} | {setting} | {p:.0} | {g:.0} | {:.3} | {:.2} | {:.2} |",
                m(si, &|s| s.stored_ratio),
                p / put_off,
                g / get_off
            );
        }
    }
}
