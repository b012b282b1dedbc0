//! The mount's write-back window (docs/semantics.md): a closed file is visible on the mount at
//! once and durable, and visible over S3, within the window; `fsync` is durable before it
//! returns; `kill -9` loses at most the last window, never an fsync'd file, never tears one.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use md5::Digest;

mod common;
use common::{Mount, S3dBeside};

fn md5_hex(b: &[u8]) -> String {
    hex::encode(md5::Md5::digest(b))
}

/// CLOCK_MONOTONIC in seconds: the clock of Python's `time.monotonic()`.
fn monotonic() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a plain syscall filling a local struct.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9
}

/// An engine on the mount's data dir opened now, without settling the mount: what another
/// process (s3d) sees.
fn outside_view(m: &Mount) -> engine::Engine {
    engine::Engine::open(engine::EngineConfig::new(m.dir.path().join("data"))).unwrap()
}

#[test]
fn a_closed_file_is_seen_here_at_once_and_over_s3_within_the_window() {
    // A long window, so that "not yet" can be seen.
    let m = Mount::start_args(&["--writeback-ms", "3000"]);
    std::fs::create_dir(m.mnt.join("window")).unwrap();
    m.settle();
    let t0 = Instant::now();
    std::fs::write(m.mnt.join("window/a.txt"), b"closed, not fsync'd").unwrap();
    // This mount sees it at once, also through a fresh lookup and listing.
    assert_eq!(
        std::fs::read(m.mnt.join("window/a.txt")).unwrap(),
        b"closed, not fsync'd"
    );
    assert!(common::names(&m.mnt.join("window")).contains(&"a.txt".to_string()));
    let e = outside_view(&m);
    if t0.elapsed() < Duration::from_millis(2500) {
        assert!(
            e.head_object("window", "a.txt").is_err(),
            "another process saw the file before the window ended"
        );
    }
    // Within the window (and a margin for a slow machine), without any fsync.
    let t = Instant::now();
    while e.head_object("window", "a.txt").is_err() {
        assert!(t.elapsed() < Duration::from_secs(30), "never committed");
        std::thread::sleep(Duration::from_millis(50));
    }
    // fsync makes a change durable and visible before it returns.
    let mut f = std::fs::File::create(m.mnt.join("window/b.txt")).unwrap();
    std::io::Write::write_all(&mut f, b"fsync'd").unwrap();
    f.sync_all().unwrap();
    assert_eq!(e.head_object("window", "b.txt").unwrap().size, 7);
    drop(f);
    // So does an fsync of a directory (here: everything the mount changed).
    std::fs::rename(m.mnt.join("window/b.txt"), m.mnt.join("window/c.txt")).unwrap();
    std::fs::File::open(m.mnt.join("window"))
        .unwrap()
        .sync_all()
        .unwrap();
    assert!(e.head_object("window", "b.txt").is_err());
    assert_eq!(e.head_object("window", "c.txt").unwrap().size, 7);
}

#[test]
fn an_s3_write_inside_the_window_wins_and_the_next_fsync_reports_the_dropped_change() {
    let m = Mount::start_args(&["--writeback-ms", "60000"]);
    std::fs::create_dir(m.mnt.join("race")).unwrap();
    std::fs::write(m.mnt.join("race/kept.txt"), b"old").unwrap();
    m.settle();
    let s3 = S3dBeside::start(&m);
    // Closed on the mount, not yet committed...
    std::fs::write(m.mnt.join("race/f.txt"), b"from the mount").unwrap();
    std::fs::write(m.mnt.join("race/kept.txt"), b"new from the mount").unwrap();
    // ...when an S3 client writes the same key: S3's acknowledged write is never lost to the
    // mount's later commit.
    let src = m.dir.path().join("s3.txt");
    std::fs::write(&src, b"from s3").unwrap();
    s3.aws_now(&["s3", "cp", src.to_str().unwrap(), "s3://race/f.txt"]);
    let err = std::fs::File::open(&m.mnt)
        .unwrap()
        .sync_all()
        .expect_err("the dropped change is reported");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");
    // Reported once; the other change of the window was committed.
    m.settle();
    let out = m.dir.path().join("out.txt");
    s3.aws_now(&["s3", "cp", "s3://race/f.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"from s3");
    s3.aws_now(&["s3", "cp", "s3://race/kept.txt", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(&out).unwrap(), b"new from the mount");
    // The mount shows what S3 holds once its attribute cache (1 s) has expired.
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(std::fs::read(m.mnt.join("race/f.txt")).unwrap(), b"from s3");
    let e = outside_view(&m);
    assert!(e.fsck().unwrap().is_clean());
}

/// Writes files in a stream until the mount dies: small (inline) and larger (chunked) ones,
/// new files and overwrites, every 40th fsync'd. Logs `B name md5` before writing a version,
/// `C name md5 t` once closed, `S name md5 t` once fsync'd and closed.
const STREAM: &str = r#"
import hashlib, os, random, sys, time
d, log = sys.argv[1], open(sys.argv[2], "w", buffering=1)
rnd = random.Random(int(sys.argv[3]))
i = 0
try:
    while True:
        i += 1
        name = "s%05d" % (rnd.randrange(i - 20, i) if i > 40 and i % 5 == 0 else i)
        size = rnd.choice([0, 100, 3000, 40000, 70000, 300000])
        body = rnd.randbytes(size)
        h = hashlib.md5(body).hexdigest()
        log.write("B %s %s\n" % (name, h))
        fd = os.open(os.path.join(d, name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.write(fd, body)
        sync = i % 40 == 0
        if sync:
            os.fsync(fd)
        os.close(fd)
        log.write("%s %s %s %.6f\n" % ("S" if sync else "C", name, h, time.monotonic()))
except OSError:
    pass
"#;

struct Version {
    md5: String,
    closed_at: Option<f64>,
    synced: bool,
}

fn parse_log(log: &Path) -> BTreeMap<String, Vec<Version>> {
    let mut files: BTreeMap<String, Vec<Version>> = BTreeMap::new();
    for line in std::fs::read_to_string(log).unwrap().lines() {
        let f: Vec<&str> = line.split(' ').collect();
        match f.as_slice() {
            ["B", name, h] => files.entry(name.to_string()).or_default().push(Version {
                md5: h.to_string(),
                closed_at: None,
                synced: false,
            }),
            [kind @ ("C" | "S"), name, h, t] => {
                let v = files
                    .get_mut(*name)
                    .and_then(|v| v.last_mut())
                    .filter(|v| v.md5 == *h)
                    .expect("closed after begun");
                v.closed_at = Some(t.parse().unwrap());
                v.synced = *kind == "S";
            }
            _ => {} // a line cut short by the kill
        }
    }
    files
}

#[test]
fn kill_9_in_a_stream_of_closes_loses_at_most_the_window_and_never_an_fsynced_file() {
    // What a window may lose, with a wide margin for a slow, noisy machine (the window is
    // the default, 100 ms).
    const GRACE: f64 = 3.0;
    let mut m = Mount::start();
    std::fs::create_dir(m.mnt.join("crash")).unwrap();
    let mut checked_old = 0;
    for round in 0..3u64 {
        let dir = m.mnt.join("crash").join(format!("r{round}"));
        std::fs::create_dir(&dir).unwrap();
        let log = m.dir.path().join(format!("stream{round}.log"));
        let mut writer = Command::new("python3")
            .arg("-c")
            .arg(STREAM)
            .arg(&dir)
            .arg(&log)
            .arg(round.to_string())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(4500 + round * 700));
        let killed_at = monotonic();
        m.kill_9();
        writer.wait().unwrap();
        m = m.restart();
        let files = parse_log(&log);
        assert!(files.len() > 50, "round {round}: the writer wrote little");
        for (name, versions) in &files {
            let got = std::fs::read(dir.join(name)).ok();
            // The newest version that must have survived: fsync'd, or closed well before the
            // kill.
            let must = versions
                .iter()
                .rposition(|v| v.synced || v.closed_at.is_some_and(|t| t < killed_at - GRACE));
            let Some(got) = got else {
                assert!(must.is_none(), "round {round}: {name} lost");
                continue;
            };
            let h = md5_hex(&got);
            // Never torn: exactly a version that was written (or the empty file creat(2)
            // made before the first one's contents).
            let at = versions.iter().rposition(|v| v.md5 == h);
            match (at, must) {
                (Some(at), Some(must)) => {
                    assert!(
                        at >= must,
                        "round {round}: {name} went back to an older version"
                    );
                    checked_old += 1;
                }
                (Some(_), None) => {}
                (None, _) => assert!(
                    got.is_empty() && must.is_none(),
                    "round {round}: {name} holds bytes never written as one version ({} bytes)",
                    got.len()
                ),
            }
        }
    }
    assert!(
        checked_old > 100,
        "too few files old enough to check: {checked_old}"
    );
    let dir = m.unmount();
    common::assert_collected_and_clean(&dir.path().join("data"));
}
