//! The real aws cli against a real s3d (TLS with the generated certificate) on 127.0.0.1.

mod common;

use common::*;

#[test]
fn buckets_objects_sync_presign_and_errors() {
    let s = Server::start();
    let work = tempfile::tempdir().unwrap();
    let w = work.path();

    // Buckets.
    ok(s.aws_line("s3 mb s3://alpha"));
    s.aws_fails(
        "s3api create-bucket --bucket alpha",
        "BucketAlreadyOwnedByYou",
    );
    s.aws_fails("s3api create-bucket --bucket Bad_Name", "InvalidBucketName");
    ok(s.aws_line("s3api create-bucket --bucket beta --create-bucket-configuration LocationConstraint=us-east-1"));
    let ls = ok(s.aws_line("s3 ls"));
    assert!(ls.contains("alpha") && ls.contains("beta"), "{ls}");
    ok(s.aws_line("s3api head-bucket --bucket alpha"));
    s.aws_fails("s3api head-bucket --bucket nope", "404");
    let v = ok(s.aws_line("s3api get-bucket-versioning --bucket alpha"));
    assert!(!v.contains("Enabled"), "{v}");
    ok(s.aws_line("s3api get-bucket-location --bucket alpha"));

    // cp up and down: small, empty, and large enough for multipart.
    write_file(&w.join("small.bin"), 1, 1000);
    write_file(&w.join("empty.bin"), 2, 0);
    write_file(&w.join("big.bin"), 3, 64 * 1024 * 1024 + 17);
    for f in ["small.bin", "empty.bin", "big.bin"] {
        ok(s.aws(&[
            "s3",
            "cp",
            w.join(f).to_str().unwrap(),
            &format!("s3://alpha/in/{f}"),
        ]));
        let back = w.join(format!("{f}.back"));
        ok(s.aws(&[
            "s3",
            "cp",
            &format!("s3://alpha/in/{f}"),
            back.to_str().unwrap(),
        ]));
        assert_eq!(md5_file(&w.join(f)), md5_file(&back), "{f}");
    }
    let head = ok(s.aws_line("s3api head-object --bucket alpha --key in/big.bin"));
    assert!(head.contains("-"), "multipart ETag: {head}");
    let head = ok(s.aws_line("s3api head-object --bucket alpha --key in/small.bin"));
    assert!(
        head.contains(&md5_file(&w.join("small.bin"))),
        "ETag is the MD5: {head}"
    );

    // sync both ways; a second sync uploads nothing.
    let tree = w.join("tree");
    std::fs::create_dir_all(tree.join("a/b")).unwrap();
    for (i, p) in ["x.txt", "a/y.txt", "a/b/z.bin"].iter().enumerate() {
        write_file(&tree.join(p), 10 + i as u64, 5000 * (i + 1));
    }
    ok(s.aws_line(&format!("s3 sync {} s3://beta/tree", tree.display())));
    let again = ok(s.aws_line(&format!("s3 sync {} s3://beta/tree", tree.display())));
    assert!(!again.contains("upload"), "nothing to sync: {again}");
    let down = w.join("down");
    ok(s.aws_line(&format!("s3 sync s3://beta/tree {}", down.display())));
    for p in ["x.txt", "a/y.txt", "a/b/z.bin"] {
        assert_eq!(md5_file(&tree.join(p)), md5_file(&down.join(p)), "{p}");
    }

    // mv, listing with delimiter, rm --recursive.
    ok(s.aws_line("s3 mv s3://beta/tree/x.txt s3://beta/moved.txt"));
    s.aws_fails("s3api head-object --bucket beta --key tree/x.txt", "404");
    let l = ok(s.aws_line("s3api list-objects-v2 --bucket beta --delimiter /"));
    assert!(l.contains("tree/") && l.contains("moved.txt"), "{l}");
    let l = ok(s.aws_line("s3api list-objects-v2 --bucket beta --max-keys 1 --prefix tree/"));
    assert!(l.contains("NextContinuationToken"), "{l}");
    let l = ok(s.aws_line("s3api list-objects --bucket beta --prefix tree/a/"));
    assert!(l.contains("tree/a/b/z.bin"), "{l}");
    ok(s.aws_line("s3 rm --recursive s3://beta/tree"));
    let l = ok(s.aws_line("s3 ls --recursive s3://beta"));
    assert!(!l.contains("tree/"), "{l}");

    // presign, then curl with the generated CA.
    let url = ok(s.aws_line("s3 presign s3://alpha/in/small.bin --expires-in 300"));
    let got = w.join("presigned.bin");
    let c = std::process::Command::new("curl")
        .args([
            "-sS",
            "--fail",
            "--cacert",
            s.ca().to_str().unwrap(),
            "-o",
            got.to_str().unwrap(),
            url.trim(),
        ])
        .output()
        .unwrap();
    assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    assert_eq!(md5_file(&got), md5_file(&w.join("small.bin")));
    // A tampered presigned URL is refused.
    let bad = url.trim().replace("small.bin", "big.bin");
    let c = std::process::Command::new("curl")
        .args(["-sS", "--cacert", s.ca().to_str().unwrap(), &bad])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&c.stdout).contains("SignatureDoesNotMatch"));

    // s3api: copy (COPY and REPLACE), tagging, delete-objects, versions, ranges.
    ok(s.aws_line(
        "s3api copy-object --bucket beta --key copy.bin --copy-source alpha/in/small.bin",
    ));
    ok(s.aws_line("s3api copy-object --bucket beta --key copy.bin --copy-source beta/copy.bin --metadata-directive REPLACE --content-type text/x-test --metadata color=blue"));
    let h = ok(s.aws_line("s3api head-object --bucket beta --key copy.bin"));
    assert!(h.contains("text/x-test") && h.contains("blue"), "{h}");
    s.aws_fails(
        "s3api copy-object --bucket beta --key copy.bin --copy-source beta/copy.bin",
        "InvalidRequest",
    );
    ok(s.aws_line("s3api put-object-tagging --bucket beta --key copy.bin --tagging TagSet=[{Key=k1,Value=v1}]"));
    let t = ok(s.aws_line("s3api get-object-tagging --bucket beta --key copy.bin"));
    assert!(t.contains("k1") && t.contains("v1"), "{t}");
    ok(s.aws_line("s3api delete-object-tagging --bucket beta --key copy.bin"));
    let t = ok(s.aws_line("s3api get-object-tagging --bucket beta --key copy.bin"));
    assert!(!t.contains("k1"), "{t}");
    let r = w.join("range.bin");
    ok(s.aws_line(&format!(
        "s3api get-object --bucket alpha --key in/small.bin --range bytes=10-19 {}",
        r.display()
    )));
    assert_eq!(
        std::fs::read(&r).unwrap(),
        std::fs::read(w.join("small.bin")).unwrap()[10..20]
    );
    fails_with(
        s.aws_line(&format!(
            "s3api get-object --bucket alpha --key in/small.bin --range bytes=5000-6000 {}",
            r.display()
        )),
        "InvalidRange",
    );
    let v = ok(s.aws_line("s3api list-object-versions --bucket alpha"));
    assert!(v.contains("\"VersionId\": \"null\""), "{v}");
    ok(s.aws_line("s3api head-object --bucket alpha --key in/small.bin --version-id null"));
    let d = ok(s.aws_line("s3api delete-objects --bucket alpha --delete Objects=[{Key=in/small.bin},{Key=in/empty.bin},{Key=missing}]"));
    assert!(d.contains("in/small.bin") && d.contains("missing"), "{d}");
    fails_with(
        s.aws_line(&format!(
            "s3api get-object --bucket alpha --key in/small.bin {}",
            r.display()
        )),
        "NoSuchKey",
    );
    s.aws_fails("s3api delete-bucket --bucket alpha", "BucketNotEmpty");
    s.aws_fails("s3api list-objects-v2 --bucket nope", "NoSuchBucket");

    // Authentication errors.
    fails_with(
        s.aws_with(&["s3", "ls"], AK, "wrong-secret-key-000000000000000000000"),
        "SignatureDoesNotMatch",
    );
    fails_with(
        s.aws_with(&["s3", "ls"], "PSUNKNOWNKEY00000000", SK),
        "InvalidAccessKeyId",
    );

    // Graceful stop.
    let log = s.log();
    assert!(log.contains("request_id"), "one log line per request");
    assert!(!log.contains(SK), "secrets never appear in logs");
    assert!(s.stop().success());
}

#[test]
fn restart_keeps_data_and_certificate() {
    let s = Server::start();
    ok(s.aws_line("s3 mb s3://keep"));
    let f = s.dir.path().join("f.bin");
    write_file(&f, 7, 300_000);
    ok(s.aws_line(&format!("s3 cp {} s3://keep/f.bin", f.display())));
    let cert = std::fs::read(s.ca()).unwrap();
    let Server { .. } = &s;
    let dir = {
        let mut s = s;
        let d = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
        assert!(s.stop().success());
        d
    };
    let s = Server::start_in(dir);
    assert_eq!(
        std::fs::read(s.ca()).unwrap(),
        cert,
        "the certificate is reused"
    );
    let back = s.dir.path().join("back.bin");
    ok(s.aws_line(&format!("s3 cp s3://keep/f.bin {}", back.display())));
    assert_eq!(md5_file(&f), md5_file(&back));
}

/// Versioning with `s3api`: enable, put twice, list versions, read the old one by id, delete
/// (a marker), and bring the object back by deleting the marker.
#[test]
fn versioning_with_s3api() {
    let s = Server::start();
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    ok(s.aws_line("s3api create-bucket --bucket vers"));
    ok(s.aws_line(
        "s3api put-bucket-versioning --bucket vers --versioning-configuration Status=Enabled",
    ));
    let v = ok(s.aws_line("s3api get-bucket-versioning --bucket vers"));
    assert!(v.contains("\"Enabled\""), "{v}");
    let version_of = |out: &str| -> String {
        let v: serde_json::Value = serde_json::from_str(out).unwrap();
        v["VersionId"].as_str().unwrap().to_string()
    };
    let mut ids = Vec::new();
    for (i, n) in [(1, 1000), (2, 3000)] {
        let f = w.join(format!("v{i}"));
        write_file(&f, i, n);
        let out = ok(s.aws_line(&format!(
            "s3api put-object --bucket vers --key doc --body {}",
            f.display()
        )));
        ids.push(version_of(&out));
    }
    let l: serde_json::Value =
        serde_json::from_str(&ok(s.aws_line("s3api list-object-versions --bucket vers"))).unwrap();
    let listed: Vec<&str> = l["Versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["VersionId"].as_str().unwrap())
        .collect();
    assert_eq!(listed, vec![ids[1].as_str(), ids[0].as_str()]);
    let back = w.join("back");
    ok(s.aws_line(&format!(
        "s3api get-object --bucket vers --key doc --version-id {} {}",
        ids[0],
        back.display()
    )));
    assert_eq!(md5_file(&back), md5_file(&w.join("v1")));
    let d = ok(s.aws_line("s3api delete-object --bucket vers --key doc"));
    let d: serde_json::Value = serde_json::from_str(&d).unwrap();
    assert_eq!(d["DeleteMarker"], serde_json::Value::Bool(true), "{d}");
    s.aws_fails("s3api head-object --bucket vers --key doc", "404");
    let marker = d["VersionId"].as_str().unwrap();
    ok(s.aws_line(&format!(
        "s3api delete-object --bucket vers --key doc --version-id {marker}"
    )));
    ok(s.aws_line(&format!("s3 cp s3://vers/doc {}", back.display())));
    assert_eq!(md5_file(&back), md5_file(&w.join("v2")));
    s.aws_fails(
        "s3api get-object --bucket vers --key doc --version-id bogus /dev/null",
        "InvalidArgument",
    );
}

/// Debian's aws cli v2 (the pip one on PATH is v1): the same kinds of calls.
#[test]
fn aws_cli_v2() {
    let s = Server::start();
    let v = ok(s.aws2(&["--version"]));
    assert!(v.starts_with("aws-cli/2."), "{v}");
    let w = tempfile::tempdir().unwrap();
    let w = w.path();
    ok(s.aws2(&["s3", "mb", "s3://vtwo"]));
    write_file(&w.join("big.bin"), 21, 40 * 1024 * 1024 + 5);
    ok(s.aws2(&[
        "s3",
        "cp",
        w.join("big.bin").to_str().unwrap(),
        "s3://vtwo/big.bin",
    ]));
    ok(s.aws2(&[
        "s3",
        "cp",
        "s3://vtwo/big.bin",
        w.join("back.bin").to_str().unwrap(),
    ]));
    assert_eq!(md5_file(&w.join("big.bin")), md5_file(&w.join("back.bin")));
    let tree = w.join("tree");
    std::fs::create_dir_all(tree.join("d")).unwrap();
    write_file(&tree.join("d/x"), 22, 10_000);
    write_file(&tree.join("y"), 23, 0);
    ok(s.aws2(&["s3", "sync", tree.to_str().unwrap(), "s3://vtwo/tree"]));
    ok(s.aws2(&[
        "s3",
        "sync",
        "s3://vtwo/tree",
        w.join("down").to_str().unwrap(),
    ]));
    assert_eq!(md5_file(&tree.join("d/x")), md5_file(&w.join("down/d/x")));
    let l = ok(s.aws2(&[
        "s3api",
        "list-objects-v2",
        "--bucket",
        "vtwo",
        "--prefix",
        "tree/",
    ]));
    assert!(l.contains("tree/d/x") && l.contains("tree/y"), "{l}");
    fails_with(
        s.aws2(&["s3api", "head-object", "--bucket", "vtwo", "--key", "nope"]),
        "404",
    );
    ok(s.aws2(&["s3", "rm", "--recursive", "s3://vtwo"]));
    ok(s.aws2(&["s3", "rb", "s3://vtwo"]));
}
