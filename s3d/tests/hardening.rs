//! The holes an outside attack found, each closed (tests/hardening_suite.py makes the attacks):
//! unsigned `x-amz-*` headers, SigV2 without a time window, cut `aws-chunked` streams, region
//! checks, oversized documents, log amplification, browser forms held in memory, idle
//! connections and descriptor exhaustion, world-readable data and secrets on the command line.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// Runs one group of the attack suite against `s`.
fn suite(s: &Server, group: &str) {
    s.python_suite("hardening_suite.py", &[group]);
}

#[test]
fn signatures_bodies_logs_and_forms() {
    let s = Server::start();
    suite(&s, "requests");
}

#[test]
fn idle_connections_are_closed() {
    let s = Server::with_config("server: {idle_timeout_secs: 2}\n");
    suite(&s, "idle");
}

#[test]
fn connections_stay_below_a_small_descriptor_limit() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_custom(dir, &[], None, |cmd| {
        // SAFETY: setrlimit in the child before exec touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                let r = libc::rlimit {
                    rlim_cur: 128,
                    rlim_max: 128,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &r) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    suite(&s, "caps");
    assert!(
        s.log().contains("at most 64 open, 16 per client address"),
        "{}",
        s.log()
    );
}

/// Every directory under `root` is 0700 and every file 0600.
fn assert_private(root: &Path) {
    for e in walk(root) {
        let md = std::fs::symlink_metadata(&e).unwrap();
        let want = if md.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(md.mode() & 0o777, want, "{}", e.display());
    }
}

fn walk(p: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![p.to_path_buf()];
    if p.is_dir() {
        for e in std::fs::read_dir(p).unwrap() {
            out.extend(walk(&e.unwrap().path()));
        }
    }
    out
}

#[test]
fn data_is_private_whatever_the_umask_and_status_warns_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_custom(dir, &[], None, |cmd| {
        // SAFETY: umask in the child before exec touches only the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::umask(0);
                Ok(())
            });
        }
    });
    ok(s.aws_line("s3 mb s3://private"));
    let f = s.dir.path().join("big.bin");
    write_file(&f, 3, 9_000_000);
    ok(s.aws_line(&format!("s3 cp {} s3://private/big.bin", f.display())));
    let data = s.dir.path().join("data");
    assert!(walk(&data)
        .iter()
        .any(|p| p.to_string_lossy().contains("volumes/")));
    assert_private(&data);
    // Looser modes (an older version, a hand-made copy) are pointed out by `s3d status`.
    let status = || {
        let o = Command::new(env!("CARGO_BIN_EXE_s3d"))
            .arg("--data-dir")
            .arg(&data)
            .arg("status")
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    assert!(!status().contains("WARNING"), "{}", status());
    let volume = walk(&data)
        .into_iter()
        .find(|p| p.is_file() && p.to_string_lossy().contains("volumes/"))
        .unwrap();
    std::fs::set_permissions(&volume, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = status();
    assert!(
        out.contains(&format!("WARNING: {} has mode 0644", volume.display()))
            && out.contains(&format!("WARNING: {} has mode 0755", data.display())),
        "{out}"
    );
}

#[test]
fn secret_key_from_a_file_not_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, format!("{SK}\n")).unwrap();
    let port = free_port();
    let help = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("--secret-key-file") && help.contains("visible"),
        "{help}"
    );
    // No --secret-key on the command line: the common harness passes one, so start by hand.
    let mut child = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--access-key",
            AK,
        ])
        .arg("--secret-key-file")
        .arg(&secret)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for_port(port);
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(SK));
    let o = Command::new("aws")
        .args([
            "--endpoint-url",
            &format!("https://127.0.0.1:{port}"),
            "--region",
            "us-east-1",
        ])
        .args(["s3", "ls"])
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_CA_BUNDLE", dir.path().join("data/tls/cert.pem"))
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
