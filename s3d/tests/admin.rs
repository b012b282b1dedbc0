//! `s3d status | heal | scrub | gc` against the data dir of a running server.

mod common;

use std::process::Command;

use common::*;

fn admin(s: &Server, cmd: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--data-dir")
        .arg(s.dir.path().join("data"))
        .arg(cmd)
        .output()
        .expect("s3d admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn admin_commands_while_serving() {
    let s = Server::start();
    ok(s.aws_line("s3 mb s3://adminbkt"));
    let f = s.dir.path().join("obj.bin");
    write_file(&f, 9, 9 * 1024 * 1024);
    ok(s.aws_line(&format!("s3 cp {} s3://adminbkt/obj.bin", f.display())));
    ok(s.aws_line(&format!("s3 cp {} s3://adminbkt/copy.bin", f.display())));

    let (good, out) = admin(&s, "status");
    assert!(good, "{out}");
    assert!(
        out.contains("objects: 2") && out.contains("dedup ratio: 2.00"),
        "{out}"
    );

    // Lose a disk under the running server: reads go on, status says so, heal repairs.
    std::fs::remove_dir_all(s.dir.path().join("data/disks/disk2")).unwrap();
    let back = s.dir.path().join("back.bin");
    ok(s.aws_line(&format!("s3 cp s3://adminbkt/obj.bin {}", back.display())));
    assert_eq!(md5_file(&back), md5_file(&f));
    let (good, out) = admin(&s, "status");
    assert!(!good && out.contains("MISSING"), "{out}");
    let (good, out) = admin(&s, "heal");
    assert!(good, "{out}");
    assert!(out.contains("formatted replacement disk 2"), "{out}");
    let (good, out) = admin(&s, "scrub");
    assert!(good && out.contains("0 missing, 0 corrupt"), "{out}");
    ok(s.aws_line("s3 rm s3://adminbkt/copy.bin"));
    ok(s.aws_line("s3 rm s3://adminbkt/obj.bin"));
    let (good, out) = admin(&s, "gc");
    assert!(good && out.contains("chunks removed"), "{out}");
    let (good, out) = admin(&s, "status");
    assert!(good, "{out}");
    assert!(
        out.contains("objects: 0") && out.contains("chunks: 0"),
        "{out}"
    );
    // The server is still fine.
    ok(s.aws_line(&format!("s3 cp {} s3://adminbkt/again.bin", f.display())));
    ok(s.aws_line(&format!("s3 cp s3://adminbkt/again.bin {}", back.display())));
    assert_eq!(md5_file(&back), md5_file(&f));
}

#[test]
fn the_seeds_config_file_starts_the_server_and_flags_follow_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("seed.yaml");
    let data = dir.path().join("seed-data");
    // The configuration as the project's seed wrote it: tls.cert_file/key_file, a size with a
    // unit, backend "file", one auth.access_key/secret_key pair.
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(
        &cfg,
        format!(
            "server:\n  host: 127.0.0.1\n  tls:\n    cert_file: {}\n    key_file: {}\nstorage:\n  backend: \"file\"\n  data_dir: {}\n  chunk_size: \"4MB\"\nauth:\n  access_key: {AK}\n  secret_key: {SK}\n",
            cert.display(),
            key.display(),
            data.display()
        ),
    )
    .unwrap();
    // A certificate for the files the seed names: made by a first start without them.
    let boot = Server::start();
    std::fs::copy(boot.ca(), &cert).unwrap();
    std::fs::copy(boot.dir.path().join("data/tls/key.pem"), &key).unwrap();
    drop(boot);
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--config")
        .arg(&cfg)
        .args(["--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let o = Command::new("aws")
        .args(["--endpoint-url", &format!("https://127.0.0.1:{port}")])
        .args(["--region", "us-east-1", "s3", "mb", "s3://seedbkt"])
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_CA_BUNDLE", &cert)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // `--config` after the subcommand, as users type it.
    let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("status")
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("buckets: 1"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
    // The chunk size from the variable, with a unit.
    ok(Command::new(env!("CARGO_BIN_EXE_s3d"))
        .args(["status", "--data-dir"])
        .arg(&data)
        .env("PREDASTORE_CHUNK_SIZE", "4MiB")
        .output()
        .unwrap());
    let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .args(["status", "--data-dir"])
        .arg(&data)
        .env("PREDASTORE_CHUNK_SIZE", "4 parsecs")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a size"));
}

/// Runs `s3d ARGS…` on the server's data dir.
fn admin_args(s: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--data-dir")
        .arg(s.dir.path().join("data"))
        .args(args)
        .output()
        .expect("s3d admin");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn bucket_compression_beside_a_running_server() {
    let s = Server::start();
    ok(s.aws_line("s3 mb s3://logs"));
    ok(s.aws_line("s3 mb s3://media"));
    let (good, out) = admin_args(&s, &["bucket", "compression", "logs"]);
    assert!(
        good && out.contains("logs: compression off (the store's default)"),
        "{out}"
    );
    let (good, out) = admin_args(&s, &["bucket", "compression", "logs", "zstd:6"]);
    assert!(good && out.contains("logs: compression zstd:6"), "{out}");
    let (good, out) = admin_args(&s, &["bucket", "compression", "logs", "brotli"]);
    assert!(!good && out.contains("zstd:LEVEL"), "{out}");
    let (good, out) = admin_args(&s, &["bucket", "compression", "nosuchbucket", "zstd"]);
    assert!(!good && out.contains("nosuchbucket"), "{out}");
    // Text into the compressed bucket (multipart: 12 MB), the same random bytes into both.
    let text_file = s.dir.path().join("app.log");
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < 12_000_000 {
        text.extend_from_slice(format!("{i} GET /index.html 200 {}\n", i % 977).as_bytes());
        i += 1;
    }
    std::fs::write(&text_file, &text).unwrap();
    let noise = s.dir.path().join("noise.bin");
    write_file(&noise, 3, 5_000_000);
    ok(s.aws_line(&format!("s3 cp {} s3://logs/app.log", text_file.display())));
    ok(s.aws_line(&format!("s3 cp {} s3://logs/noise.bin", noise.display())));
    ok(s.aws_line(&format!("s3 cp {} s3://media/noise.bin", noise.display())));
    let (good, out) = admin(&s, "status");
    assert!(good, "{out}");
    assert!(out.contains("objects: 3"), "{out}");
    let saved = out
        .lines()
        .find(|l| l.starts_with("compression: "))
        .unwrap_or_default()
        .to_string();
    assert!(
        saved.contains(" chunks compressed, ") && !saved.starts_with("compression: 0 "),
        "{out}"
    );
    // Bytes back whole and in a range, the ETags those of the plain data.
    let back = s.dir.path().join("back.log");
    ok(s.aws_line(&format!("s3 cp s3://logs/app.log {}", back.display())));
    assert_eq!(md5_file(&back), md5_file(&text_file));
    ok(s.aws(&[
        "s3api",
        "get-object",
        "--bucket",
        "logs",
        "--key",
        "app.log",
        "--range",
        "bytes=8388600-8388700",
        back.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&back).unwrap(), &text[8_388_600..=8_388_700]);
    for bucket in ["logs", "media"] {
        ok(s.aws_line(&format!("s3 cp s3://{bucket}/noise.bin {}", back.display())));
        assert_eq!(md5_file(&back), md5_file(&noise), "{bucket}");
    }
    // Dedup across the two settings: the random file is stored once.
    assert!(out.contains("dedup ratio: "), "{out}");
    let (good, out) = admin_args(&s, &["bucket", "compression", "logs", "default"]);
    assert!(good && out.contains("(the store's default)"), "{out}");
}

#[test]
fn health_probe_answers_for_the_configured_server() {
    let probe = |port: u16, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_s3d"))
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(extra)
            .arg("health")
            .env_remove("PREDASTORE_CONFIG")
            .output()
            .expect("s3d health")
    };
    // Nothing listens: exit 1 with the reason.
    let o = probe(free_port(), &[]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("cannot connect"),
        "{o:?}"
    );
    let s = Server::start();
    let o = probe(s.port, &[]);
    assert!(o.status.success(), "{o:?}");
    assert!(String::from_utf8_lossy(&o.stdout).contains("/-/health: HTTP/1.1 200"));
    let o = probe(s.port, &[]);
    assert!(o.status.success());
    let ready = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .args(["--host", "0.0.0.0", "--port", &s.port.to_string()])
        .args(["health", "--ready"])
        .output()
        .unwrap();
    assert!(ready.status.success(), "{ready:?}");
    // Plain HTTP spoken to a TLS port is no answer.
    let o = probe(s.port, &["--insecure-http"]);
    assert!(!o.status.success(), "{o:?}");
    drop(s);
    let s = Server::start_with(tempfile::tempdir().unwrap(), &["--insecure-http"], None);
    let o = probe(s.port, &["--insecure-http"]);
    assert!(o.status.success(), "{o:?}");
}
