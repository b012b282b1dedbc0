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
