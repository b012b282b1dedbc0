//! Security headers and TLS hygiene (tests/tls_suite.py makes the HTTPS checks): headers on
//! every answer, TLS 1.2+ with modern suites, the certificate reloaded on SIGHUP, the generated
//! certificate's names, HSTS off on request and never over plain HTTP.

mod common;

use std::process::Command;

use common::*;

#[test]
fn headers_versions_and_reload() {
    let s = Server::start();
    s.python_suite("tls_suite.py", &[]);
    // The process survived every SIGHUP and still serves.
    assert!(s.log().contains("TLS certificate reloaded"), "{}", s.log());
    assert!(s.stop().success());
}

/// The names in the generated certificate's subjectAltName.
fn names_of(cert: &std::path::Path) -> String {
    let out = Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(cert)
        .output()
        .expect("openssl");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn generated_certificate_names_are_configurable() {
    let s = Server::start_with(
        tempfile::tempdir().unwrap(),
        &["--tls-name", "s3.edge.internal,10.9.8.7"],
        None,
    );
    let names = names_of(&s.ca());
    assert!(names.contains("DNS:s3.edge.internal"), "{names}");
    assert!(names.contains("IP Address:10.9.8.7"), "{names}");
    assert!(!names.contains("localhost"), "{names}");
    assert!(s.stop().success());
    // From the file this time; kept across a restart with the same names, made again when
    // they change.
    let yaml = "server: {tls: {names: [storage.lan, localhost]}}\n";
    let mut s = Server::with_config(yaml);
    let first = std::fs::read(s.ca()).unwrap();
    assert!(names_of(&s.ca()).contains("DNS:storage.lan"));
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    assert!(s.stop().success());
    let mut s = Server::start_with(dir, &[], Some(yaml));
    assert_eq!(
        std::fs::read(s.ca()).unwrap(),
        first,
        "the certificate is reused"
    );
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    assert!(s.stop().success());
    let s = Server::start_with(dir, &["--tls-name", "other.lan"], Some(yaml));
    assert_ne!(std::fs::read(s.ca()).unwrap(), first);
    assert!(names_of(&s.ca()).contains("DNS:other.lan"));
}

#[test]
fn hsts_can_be_turned_off_and_plain_http_has_none() {
    let s = Server::with_config("server: {hsts_max_age_secs: 0}\n");
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", "--cacert"])
        .arg(s.ca())
        .arg(format!("{}/-/health", s.endpoint))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(!head.contains("strict-transport-security"), "{head}");
    drop(s);
    let s = Server::start_with(tempfile::tempdir().unwrap(), &["--insecure-http"], None);
    let out = Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null"])
        .arg(format!("http://127.0.0.1:{}/nobucket/x", s.port))
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
    assert!(head.contains("server: predastore"), "{head}");
    assert!(head.contains("x-content-type-options: nosniff"), "{head}");
    assert!(!head.contains("strict-transport-security"), "{head}");
}
