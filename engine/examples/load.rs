//! End-to-end load run: puts one large object streamed from a generator (never in memory), reads
//! it back, and reports throughput and peak RSS.
//!
//! `cargo run --release -p predastore-engine --example load -- DATA_DIR SIZE_MIB [DEPTH [nosync]]`
//! `cargo run --release -p predastore-engine --example load -- DATA_DIR keys N` (listing of N keys)

use std::time::Instant;

use engine::{Engine, EngineConfig, PutOptions};
use futures::StreamExt;
use tokio::io::AsyncRead;

/// An endless pseudo-random byte source of a fixed length.
struct Gen {
    left: u64,
    x: u64,
}

impl AsyncRead for Gen {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let n = (buf.remaining() as u64).min(self.left).min(1 << 20) as usize;
        let mut out = vec![0u8; n];
        for c in out.chunks_mut(8) {
            self.x ^= self.x << 13;
            self.x ^= self.x >> 7;
            self.x ^= self.x << 17;
            let b = self.x.to_le_bytes();
            c.copy_from_slice(&b[..c.len()]);
        }
        buf.put_slice(&out);
        self.left -= n as u64;
        std::task::Poll::Ready(Ok(()))
    }
}

fn max_rss_mib() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into a valid rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    ru.ru_maxrss as f64 / 1024.0
}

/// `load DIR keys N`: puts N tiny objects (64 concurrent writers), then times list pages.
async fn keys_mode(dir: &str, n: u64) {
    let mut cfg = EngineConfig::new(dir);
    cfg.map_size = 1 << 36;
    let e = Engine::open(cfg).expect("open");
    let _ = e.create_bucket("keys").await;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..64u64 {
        let e = e.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < n {
                let key = format!("d{:02}/k{:08}", i % 16, i);
                e.put_object("keys", &key, &b"x"[..], PutOptions::default())
                    .await
                    .expect("put");
                i += 64;
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    println!(
        "keys={n} put_rate={:.0}/s",
        n as f64 / t.elapsed().as_secs_f64()
    );
    let queries = [
        (
            "first page",
            engine::ListQuery {
                max_keys: 1000,
                ..Default::default()
            },
        ),
        (
            "page from the middle",
            engine::ListQuery {
                start_after: Some(format!("d08/k{:08}", n / 2)),
                max_keys: 1000,
                ..Default::default()
            },
        ),
        (
            "prefix page",
            engine::ListQuery {
                prefix: "d15/".into(),
                max_keys: 1000,
                ..Default::default()
            },
        ),
        (
            "delimiter (16 common prefixes)",
            engine::ListQuery {
                delimiter: Some("/".into()),
                max_keys: 1000,
                ..Default::default()
            },
        ),
    ];
    for (name, q) in queries {
        let mut times = Vec::new();
        let mut len = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let p = e.list_objects("keys", &q).expect("list");
            times.push(t.elapsed().as_secs_f64() * 1e3);
            len = p.objects.len() + p.common_prefixes.len();
        }
        times.sort_by(|a, b| a.total_cmp(b));
        println!("list {name}: {len} entries, median {:.2} ms", times[2]);
    }
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[2] == "keys" {
        let n = args[3].parse().expect("N must be a number");
        return keys_mode(&args[1], n).await;
    }
    if args.len() < 3 {
        eprintln!("usage: load DATA_DIR SIZE_MIB [PIPELINE_DEPTH [nosync]]");
        std::process::exit(2);
    }
    let mib: u64 = args[2].parse().expect("SIZE_MIB must be a number");
    let mut cfg = EngineConfig::new(&args[1]);
    if let Some(d) = args.get(3) {
        cfg.pipeline_depth = d.parse().expect("PIPELINE_DEPTH must be a number");
    }
    if args.get(4).map(|s| s == "nosync").unwrap_or(false) {
        cfg.durability = engine::Durability::None;
    }
    let e = Engine::open(cfg).expect("open");
    let _ = e.create_bucket("load").await;
    let size = mib << 20;
    let t = Instant::now();
    let m = e
        .put_object(
            "load",
            "big",
            Gen {
                left: size,
                x: 0x1234_5678_9abc_def1 ^ (t.elapsed().as_nanos() as u64),
            },
            PutOptions::default(),
        )
        .await
        .expect("put");
    let put_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let g = e.get_object("load", "big", None).await.expect("get");
    let mut body = g.body;
    let mut n = 0u64;
    while let Some(b) = body.next().await {
        n += b.expect("read").len() as u64;
    }
    let get_s = t.elapsed().as_secs_f64();
    assert_eq!(n, m.size);
    println!(
        "size_mib={mib} put_MBps={:.1} get_MBps={:.1} max_rss_mib={:.1}",
        size as f64 / put_s / 1e6,
        size as f64 / get_s / 1e6,
        max_rss_mib()
    );
}
