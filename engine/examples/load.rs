//! End-to-end load run: puts one large object streamed from a generator (never in memory), reads
//! it back, and reports throughput and peak RSS.
//!
//! `cargo run --release -p predastore-engine --example load -- DATA_DIR SIZE_MIB [DEPTH [nosync|direct|nocache]]`
//! (`LOAD_COLD_GET=1`: drop the page cache before the get, to read from the disks;
//! `LOAD_REPEAT=N`: N back-to-back puts of the key, the last one measured)
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

/// CPU seconds (user + system) this process has used so far, over all its threads.
fn cpu_s() -> f64 {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into a valid rusage struct.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
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

fn main() {
    // The allocator settings of the front doors (s3d, mountd), so that the engine alone is
    // measured as they run it.
    engine::process::tune_allocator();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(run());
}

async fn run() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 4 && args[2] == "keys" {
        let n = args[3].parse().expect("N must be a number");
        return keys_mode(&args[1], n).await;
    }
    if args.len() < 3 {
        eprintln!("usage: load DATA_DIR SIZE_MIB [PIPELINE_DEPTH [nosync|direct|nocache]]");
        std::process::exit(2);
    }
    let mib: u64 = args[2].parse().expect("SIZE_MIB must be a number");
    let mut cfg = EngineConfig::new(&args[1]);
    if let Some(d) = args.get(3) {
        cfg.pipeline_depth = d.parse().expect("PIPELINE_DEPTH must be a number");
    }
    match args.get(4).map(String::as_str) {
        Some("nosync") => cfg.durability = engine::Durability::None,
        Some("direct") => cfg.direct_io = true,
        Some("nocache") => cfg.cache_writes = false,
        _ => {}
    }
    let e = Engine::open(cfg).expect("open");
    let _ = e.create_bucket("load").await;
    let size = mib << 20;
    // `LOAD_REPEAT=N`: N - 1 puts of the same key before the measured one, back to back (as
    // criterion's iterations run), each reported.
    let repeat: u32 = std::env::var("LOAD_REPEAT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for r in 1..repeat {
        let t = Instant::now();
        let c = cpu_s();
        e.put_object(
            "load",
            "big",
            Gen {
                left: size,
                x: 0x9e37_79b9_7f4a_7c15 ^ u64::from(r),
            },
            PutOptions::default(),
        )
        .await
        .expect("put");
        let s = t.elapsed().as_secs_f64();
        println!(
            "put {r}: {:.1} MB/s, {:.2} CPU s/GB",
            size as f64 / s / 1e6,
            (cpu_s() - c) / (size as f64 / 1e9)
        );
    }
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
    if std::env::var_os("LOAD_COLD_GET").is_some() {
        // Read from the disks, not from the page cache (needs root).
        let _ = std::fs::write("/proc/sys/vm/drop_caches", "3");
    }
    // The get right after the put (from the disks unless the put's pages stayed cached), then
    // the same get again (from the page cache).
    let (get_s, get_cpu_s_per_gb) = timed_get(&e, m.size).await;
    let (again_s, again_cpu_s_per_gb) = timed_get(&e, m.size).await;
    let rss = max_rss_mib();
    let (put, get) = (size as f64 / put_s / 1e6, size as f64 / get_s / 1e6);
    let again = size as f64 / again_s / 1e6;
    let (md5, write, read) = if std::env::var_os("LOAD_NO_LIMITS").is_some() {
        (f64::NAN, f64::NAN, f64::NAN)
    } else {
        machine_limits(&args[1], mib.min(1024))
    };
    println!(
        "size_mib={mib} put_MBps={put:.1} get_MBps={get:.1} get_cpu_s_per_GB={get_cpu_s_per_gb:.2} \
         get_again_MBps={again:.1} get_again_cpu_s_per_GB={again_cpu_s_per_gb:.2} max_rss_mib={rss:.1} \
         md5_MBps={md5:.1} disk_write_MBps={write:.1} disk_read_MBps={read:.1} \
         put_vs_limit={:.2} get_vs_disk_read={:.2}",
        put / md5.min(write / 1.5),
        get / read
    );
}

/// Reads the object back; returns seconds and CPU seconds per GB (what a get costs the
/// machine, whatever its speed).
async fn timed_get(e: &Engine, size: u64) -> (f64, f64) {
    let t = Instant::now();
    let cpu0 = cpu_s();
    let g = e.get_object("load", "big", None).await.expect("get");
    let mut body = g.body;
    let mut n = 0u64;
    while let Some(b) = body.next().await {
        n += b.expect("read").len() as u64;
    }
    assert_eq!(n, size);
    (
        t.elapsed().as_secs_f64(),
        (cpu_s() - cpu0) / (size as f64 / 1e9),
    )
}

/// The machine's limits, measured right after the run on the same disk: MD5 on one core,
/// sequential `O_DIRECT` write + fsync and cold sequential read (page cache dropped for the
/// file) of `mib` MiB. All in MB/s.
fn machine_limits(dir: &str, mib: u64) -> (f64, f64, f64) {
    use md5::Digest;
    use std::io::{Read, Write};
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let block: Vec<u8> = (0..4 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    let t = Instant::now();
    let mut h = md5::Md5::new();
    for _ in 0..64 {
        h.update(&block);
    }
    std::hint::black_box(h.finalize());
    let md5 = 256.0 * 1048576.0 / t.elapsed().as_secs_f64() / 1e6;
    let path = std::path::Path::new(dir).join("limits.tmp");
    let bytes = (mib << 20) as f64;
    // The device's write speed: O_DIRECT from an aligned buffer (as the engine writes), fsync.
    let mut aligned = vec![0u8; (4 << 20) + 4096];
    let at = aligned.as_ptr().align_offset(4096);
    aligned[at..at + (4 << 20)].copy_from_slice(&block);
    let t = Instant::now();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .or_else(|_| std::fs::File::create(&path))
        .expect("create");
    for _ in 0..mib / 4 {
        f.write_all(&aligned[at..at + (4 << 20)]).expect("write");
    }
    f.sync_all().expect("fsync");
    let write = bytes / t.elapsed().as_secs_f64() / 1e6;
    drop(f);
    let mut f = std::fs::File::open(&path).expect("open");
    // SAFETY: plain syscall on an open descriptor.
    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_DONTNEED) };
    let mut buf = vec![0u8; 4 << 20];
    let t = Instant::now();
    while f.read(&mut buf).expect("read") > 0 {}
    let read = bytes / t.elapsed().as_secs_f64() / 1e6;
    let _ = std::fs::remove_file(&path);
    (md5, write, read)
}
