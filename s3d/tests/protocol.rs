//! Raw HTTP against a real s3d with curl (which signs SigV4 itself): endpoints beside the API,
//! Expect: 100-continue, and malformed or mis-signed requests.

mod common;

use std::process::Command;

use common::*;

/// curl with the generated CA; `signed` adds SigV4 with the test keys. Returns (status, body).
fn curl(s: &Server, signed: bool, args: &[&str], path: &str) -> (u16, String) {
    let mut c = Command::new("curl");
    c.args([
        "-sS",
        "--cacert",
        s.ca().to_str().unwrap(),
        "-w",
        "\n%{http_code}",
    ]);
    if signed {
        c.args([
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &format!("{AK}:{SK}"),
        ]);
        // S3 requires the payload hash header with SigV4; curl 7.88 does not add it.
        if !args.iter().any(|a| a.starts_with("x-amz-content-sha256")) {
            c.args(["-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD"]);
        }
    }
    let out = c
        .args(args)
        .arg(format!("{}{path}", s.endpoint))
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

#[test]
fn endpoints_and_bad_requests() {
    let s = Server::start();
    assert_eq!(curl(&s, false, &[], "/-/health"), (200, "ok\n".into()));
    assert_eq!(curl(&s, false, &[], "/-/ready").0, 200);

    // Unauthenticated S3 requests are refused.
    let (code, body) = curl(&s, false, &[], "/");
    assert_eq!(code, 403, "{body}");
    assert!(body.contains("AccessDenied"), "{body}");

    let (code, body) = curl(&s, true, &["-X", "PUT"], "/proto");
    assert_eq!(code, 200, "{body}");

    // Expect: 100-continue upload.
    let f = s.dir.path().join("up.bin");
    write_file(&f, 1, 2_000_000);
    let (code, body) = curl(
        &s,
        true,
        &["-H", "Expect: 100-continue", "-T", f.to_str().unwrap()],
        "/proto/up.bin",
    );
    assert_eq!(code, 200, "{body}");
    let back = s.dir.path().join("back.bin");
    let (code, _) = curl(&s, true, &["-o", back.to_str().unwrap()], "/proto/up.bin");
    assert_eq!(code, 200);
    assert_eq!(md5_file(&back), md5_file(&f));
    // Expect: 100-continue to a bucket that does not exist: a final error, no upload.
    let (code, body) = curl(
        &s,
        true,
        &["-H", "Expect: 100-continue", "-T", f.to_str().unwrap()],
        "/nosuchbucket/up.bin",
    );
    assert_eq!(code, 404, "{body}");
    assert!(body.contains("NoSuchBucket"), "{body}");

    // A body that does not match its declared SHA-256 is refused and not stored.
    let (code, body) = curl(
        &s,
        true,
        &[
            "-X", "PUT", "--data-binary", "hello",
            "-H", "x-amz-content-sha256: 0000000000000000000000000000000000000000000000000000000000000000",
        ],
        "/proto/sha",
    );
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("XAmzContentSHA256Mismatch") || body.contains("BadDigest"),
        "{body}"
    );
    assert_eq!(curl(&s, true, &["-I"], "/proto/sha").0, 404);

    // Malformed XML in DeleteObjects and CompleteMultipartUpload.
    let (code, body) = curl(
        &s,
        true,
        &[
            "-X",
            "POST",
            "--data-binary",
            "<Delete><Object><Key>x</Key>",
        ],
        "/proto?delete=",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("<Code>"), "{body}");
    let (code, body) = curl(
        &s,
        true,
        &["-X", "POST", "--data-binary", "not xml at all"],
        "/proto/up.bin?uploadId=00000000000000000000000000000000",
    );
    assert_eq!(code, 400, "{body}");

    // The stored object is untouched by all of the above.
    let (code, _) = curl(&s, true, &["-o", back.to_str().unwrap()], "/proto/up.bin");
    assert_eq!(code, 200);
    assert_eq!(md5_file(&back), md5_file(&f));

    // Oversized user metadata, oversized headers, a malformed Authorization header, and a
    // presigned URL valid for longer than a week.
    let big = format!("x-amz-meta-big: {}", "v".repeat(3000));
    let (code, body) = curl(
        &s,
        true,
        &["-X", "PUT", "--data-binary", "x", "-H", &big],
        "/proto/meta",
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("MetadataTooLarge"), "{body}");
    let hfile = s.dir.path().join("huge-header.txt");
    std::fs::write(&hfile, format!("x-junk: {}\n", "j".repeat(1024 * 1024))).unwrap();
    let harg = format!("@{}", hfile.display());
    let (code, _) = curl(&s, true, &["-H", &harg], "/proto/up.bin");
    assert!(
        code == 431 || code == 400 || code == 0,
        "oversized header accepted: {code}"
    );
    let (code, body) = curl(
        &s,
        false,
        &[
            "-H",
            "Authorization: AWS4-HMAC-SHA256 Credential=nonsense",
            "-H",
            "x-amz-date: 20260101T000000Z",
        ],
        "/proto/up.bin",
    );
    assert!(code == 400 || code == 403, "{code} {body}");
    assert!(
        body.contains("AuthorizationHeaderMalformed")
            || body.contains("InvalidRequest")
            || body.contains("InvalidArgument"),
        "{body}"
    );
    let (code, body) = curl(
        &s,
        false,
        &[],
        &format!("/proto/up.bin?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F20260101%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20260101T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host&X-Amz-Signature=00"),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("AuthorizationQueryParametersError"), "{body}");
    assert!(s.log().contains("request"), "the server survived");
    assert_eq!(curl(&s, false, &[], "/-/health").0, 200);

    // Virtual-hosted-style: proto.s3.localhost names the bucket.
    ok(Command::new("curl")
        .args(["-sS", "--fail", "--cacert", s.ca().to_str().unwrap()])
        .args([
            "--resolve",
            &format!("proto.s3.localhost:{}:127.0.0.1", s.port),
        ])
        .args([
            "--aws-sigv4",
            "aws:amz:us-east-1:s3",
            "--user",
            &format!("{AK}:{SK}"),
        ])
        .args([
            "-H",
            "x-amz-content-sha256: UNSIGNED-PAYLOAD",
            "-o",
            back.to_str().unwrap(),
        ])
        .arg(format!("https://proto.s3.localhost:{}/up.bin", s.port))
        .output()
        .unwrap());
    assert_eq!(md5_file(&back), md5_file(&f));

    // Metrics reflect the traffic.
    let (code, m) = curl(&s, false, &[], "/-/metrics");
    assert_eq!(code, 200);
    assert!(
        m.contains("predastore_requests_total{op=\"PutObject\"}"),
        "{m}"
    );
    assert!(
        m.contains("predastore_responses_total{op=\"GetObject\",status=\"200\"}"),
        "{m}"
    );
    assert!(m.contains("predastore_disk_online{disk=\"5\"} 1"), "{m}");
    assert!(
        m.contains("predastore_request_duration_seconds_bucket"),
        "{m}"
    );
}
