//! The running server's own work: background repair after a degraded read, JSON request logs.

mod common;

#[path = "../../tests/support/small_fs.rs"]
mod small_fs;
use small_fs::SmallFs;

use std::time::{Duration, Instant};

use common::*;

/// Where the data shards 0 of all chunks on a disk are: `(volume file, offset)`.
fn data_shards(disk: &std::path::Path) -> Vec<(std::path::PathBuf, u64)> {
    let mut out = Vec::new();
    for (_, vol) in engine::testing::list_volumes(disk) {
        for (off, h) in engine::testing::scan_shards(&vol).unwrap() {
            if h.index == 0 {
                out.push((vol.clone(), off));
            }
        }
    }
    out
}

/// Whether a shard 0 header is back at `off` of `vol`.
fn shard_back(vol: &std::path::Path, off: u64) -> bool {
    engine::testing::scan_shards(vol)
        .unwrap()
        .iter()
        .any(|(o, h)| *o == off && h.index == 0)
}

#[test]
fn degraded_read_is_repaired_in_the_background() {
    let s = Server::with_config("server:\n  repair_interval_secs: 1\n  scrub_interval_hours: 0\n");
    ok(s.aws_line("s3 mb s3://repairbkt"));
    let f = s.dir.path().join("obj.bin");
    write_file(&f, 31, 9 * 1024 * 1024);
    ok(s.aws_line(&format!("s3 cp {} s3://repairbkt/obj.bin", f.display())));
    // Wipe every data shard 0 that lives on the first disk holding any (the block with its
    // header becomes a hole, as a lost sector would read back).
    let disks = s.dir.path().join("data/disks");
    let mut removed = Vec::new();
    for d in 0..6 {
        for (vol, off) in data_shards(&disks.join(format!("disk{d}"))) {
            assert!(engine::testing::punch(&vol, off, 4096).unwrap());
            assert!(!shard_back(&vol, off));
            removed.push((vol, off));
        }
        if !removed.is_empty() {
            break;
        }
    }
    assert!(!removed.is_empty());
    // The read is served from parity, and queues the chunks for repair.
    let back = s.dir.path().join("back.bin");
    ok(s.aws_line(&format!("s3 cp s3://repairbkt/obj.bin {}", back.display())));
    assert_eq!(md5_file(&back), md5_file(&f));
    let t = Instant::now();
    // The shards come back during the pass; its summary line is logged once it ends.
    while !(removed.iter().all(|(vol, off)| shard_back(vol, *off))
        && s.log().contains("background repair pass"))
    {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "background repair did not restore the shards\n{}",
            s.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        s.log().contains("degraded read"),
        "the read noticed the missing shard"
    );
}

#[test]
fn json_request_logs() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(dir, &["--log-format", "json"], None);
    ok(s.aws_line("s3 mb s3://jsonlog"));
    ok(s.aws_line("s3 ls s3://jsonlog"));
    let log = s.log();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| l.contains("\"request\""))
        .map(|l| serde_json::from_str(l).expect("each log line is JSON"))
        .collect();
    assert!(lines.len() >= 2, "{log}");
    let create = lines
        .iter()
        .find(|l| l["fields"]["op"] == "CreateBucket")
        .expect("a CreateBucket line");
    assert_eq!(create["fields"]["status"], 200);
    assert!(create["fields"]["request_id"].is_string());
    assert!(create["fields"]["latency_ms"].is_number());
    // Each line names the operation the S3 layer routed the request to, also for requests a
    // guess from method and path gets wrong, and those it refuses.
    let f = s.dir.path().join("small.bin");
    write_file(&f, 3, 6 << 20);
    ok(s.aws_line(&format!("s3 cp {} s3://jsonlog/a.bin", f.display())));
    let _ = s.aws_line("s3api get-bucket-policy --bucket jsonlog");
    let _ = s.aws_line("s3api get-bucket-lifecycle-configuration --bucket jsonlog");
    let _ = s.aws(&[
        "s3api",
        "put-bucket-lifecycle-configuration",
        "--bucket",
        "jsonlog",
        "--lifecycle-configuration",
        r#"{"Rules":[{"ID":"x","Status":"Enabled","Filter":{"Prefix":"tmp/"},"Expiration":{"Days":1}}]}"#,
    ]);
    ok(s.aws_line("s3api copy-object --bucket jsonlog --key b.bin --copy-source jsonlog/a.bin"));
    let up = ok(s.aws_line(
        "s3api create-multipart-upload --bucket jsonlog --key c.bin --query UploadId --output text",
    ));
    ok(s.aws(&[
        "s3api",
        "upload-part-copy",
        "--bucket",
        "jsonlog",
        "--key",
        "c.bin",
        "--upload-id",
        up.trim(),
        "--part-number",
        "1",
        "--copy-source",
        "jsonlog/a.bin",
    ]));
    let ops: Vec<(String, u64)> = s
        .log()
        .lines()
        .filter(|l| l.contains("\"request\""))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .map(|v| {
            (
                v["fields"]["op"].as_str().unwrap_or("").to_string(),
                v["fields"]["status"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    for want in [
        "GetBucketPolicy",
        "GetBucketLifecycleConfiguration",
        "PutBucketLifecycleConfiguration",
        "CopyObject",
        "UploadPartCopy",
        "CreateMultipartUpload",
    ] {
        assert!(ops.iter().any(|(o, _)| o == want), "{want} not in {ops:?}");
    }
    assert!(!ops.iter().any(|(o, _)| o == "Other"), "{ops:?}");
    // The metrics count them under the same names.
    let o = std::process::Command::new("curl")
        .args(["-sS", "--cacert", s.ca().to_str().unwrap()])
        .arg(format!("https://127.0.0.1:{}/-/metrics", s.port))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&o.stdout);
    assert!(
        metrics.contains("op=\"CopyObject\"") && metrics.contains("op=\"UploadPartCopy\""),
        "{metrics}"
    );
}

#[test]
fn example_keys_off_loopback_warn_loudly() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_s3d"))
        .args(["--host", "0.0.0.0", "--port", "0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--access-key",
            "AKIAIOSFODNN7EXAMPLE",
            "--secret-key",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = out.id();
    std::thread::sleep(Duration::from_millis(1500));
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let o = out.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("EXAMPLE ACCESS KEY IS IN USE"), "{err}");
    assert!(!err.contains("wJalrXUtnFEMI"), "the secret is never logged");
}

#[test]
fn slow_clients_time_out() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(
        dir,
        &["--insecure-http"],
        Some("server:\n  header_timeout_secs: 1\n  body_idle_timeout_secs: 1\n  scrub_interval_hours: 0\n"),
    );
    // Half a request head, then silence: the server hangs up.
    let mut c = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let t = Instant::now();
    let mut buf = Vec::new();
    let _ = c.read_to_end(&mut buf);
    assert!(t.elapsed() < Duration::from_secs(8), "connection kept open");

    // A signed upload whose body stalls: the request fails and nothing is stored.
    let base = format!("http://127.0.0.1:{}", s.port);
    ok(signed_curl()
        .args(["-sS", "--fail", "-X", "PUT"])
        .arg(format!("{base}/slowbkt"))
        .output()
        .unwrap());
    let mut up = signed_curl()
        .args(["-sS", "-T", "-"])
        .args(["-H", "Content-Length: 1000", "-w", "\n%{http_code}"])
        .arg(format!("{base}/slowbkt/stalled"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = up.stdin.take().unwrap();
    stdin.write_all(&[b'x'; 100]).unwrap();
    stdin.flush().unwrap();
    let t = Instant::now();
    loop {
        if up.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "stalled upload not cut off"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(stdin);
    let out = up.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.trim_end().ends_with("200"), "{text}");
    let head = signed_curl()
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I"])
        .arg(format!("{base}/slowbkt/stalled"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&head.stdout), "404");
}

#[test]
fn several_key_pairs_from_the_config_file() {
    let s = Server::with_config("auth:\n  keys:\n    - {access_key: PSSECONDKEY000000001, secret_key: second-secret-0123456789abcdefghij}\n");
    // The pair from the flags and the pair from the file both work; a wrong secret does not.
    ok(s.aws_line("s3 mb s3://twokeys"));
    ok(s.aws_with(
        &["s3", "ls", "s3://twokeys"],
        "PSSECONDKEY000000001",
        "second-secret-0123456789abcdefghij",
    ));
    fails_with(
        s.aws_with(
            &["s3", "ls"],
            "PSSECONDKEY000000001",
            "second-secret-wrong-0000000000000000",
        ),
        "SignatureDoesNotMatch",
    );
    assert!(
        !s.log().contains("second-secret"),
        "secrets never appear in logs"
    );
}

#[test]
fn full_disks_answer_507_insufficient_storage() {
    let small_dir = tempfile::tempdir().unwrap();
    let small = SmallFs::mount(small_dir.path().join("small"), "24m");
    let disks: String = (0..6)
        .map(|i| format!("    - {}\n", small.0.join(format!("d{i}")).display()))
        .collect();
    let s = Server::with_config(&format!("storage:\n  gc_interval: 0.2\n  disks:\n{disks}"));
    ok(s.aws_line("s3 mb s3://fullbkt"));
    let kept = s.dir.path().join("kept.bin");
    write_file(&kept, 60, 3 << 20);
    ok(s.aws_line(&format!("s3 cp {} s3://fullbkt/kept.bin", kept.display())));
    // 20 MiB of data is 30 MiB of shards on 24 MiB of disk.
    let big = s.dir.path().join("big.bin");
    write_file(&big, 61, 20 << 20);
    let o = s.aws_line(&format!(
        "s3api put-object --bucket fullbkt --key big.bin --body {}",
        big.display()
    ));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    fails_with(o, "InsufficientStorage");
    assert!(err.contains("no space left"), "{err}");
    s.aws_fails("s3api head-object --bucket fullbkt --key big.bin", "404");
    // The same through a multipart upload (aws s3 cp cuts 8 MiB parts).
    fails_with(
        s.aws_line(&format!("s3 cp {} s3://fullbkt/big.bin", big.display())),
        "InsufficientStorage",
    );
    let back = s.dir.path().join("back.bin");
    ok(s.aws_line(&format!("s3 cp s3://fullbkt/kept.bin {}", back.display())));
    assert_eq!(md5_file(&back), md5_file(&kept));
    // A delete gives the space back by itself (the background GC, every 0.2 s here): 3 MiB of
    // data, 4.5 MiB of shards.
    let free = || engine::maintenance::fs_capacity(&small.0).unwrap().1;
    let before = free();
    ok(s.aws_line("s3 rm s3://fullbkt/kept.bin"));
    let t = std::time::Instant::now();
    while free() < before + (9 << 19) {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(20),
            "free {before} -> {}",
            free()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(s);
}

/// curl signing its request with SigV4 (the body unsigned) with the server's key.
fn signed_curl() -> std::process::Command {
    let mut c = std::process::Command::new("curl");
    c.args([
        "--aws-sigv4",
        "aws:amz:us-east-1:s3",
        "--user",
        &format!("{AK}:{SK}"),
    ])
    .args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
    c
}
