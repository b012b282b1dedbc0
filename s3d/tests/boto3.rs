//! boto3 (with its default checksum settings) against a real s3d: runs tests/boto3_suite.py.

mod common;

use common::*;

#[test]
fn boto3_suite() {
    let s = Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/boto3_suite.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .env("S3_ENDPOINT", &s.endpoint)
        .env("S3_CA", s.ca())
        .env("AWS_ACCESS_KEY_ID", AK)
        .env("AWS_SECRET_ACCESS_KEY", SK)
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        s.log()
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(stdout.contains(" passed, 0 failed"), "{stdout}");
}
