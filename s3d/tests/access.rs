//! Access control through the real clients: keys made with `s3d key` beside a running server
//! (an owner that creates its bucket, a device key that may only write under `device-7/`, a
//! read-only key, another key that may create buckets), then boto3 sessions with each, the aws
//! cli, anonymous curl and presigned URLs against them (`tests/access_suite.py`): every
//! allowed action works, every other one is 403 and changes nothing.

mod common;

use common::*;

#[test]
fn keys_grants_policies_and_anonymous_access() {
    let s = Server::start();
    let owner = create_key(&s, &["--name", "owner", "--create-buckets"]);
    let device = create_key(&s, &["--name", "device-7"]);
    let reader = create_key(&s, &["--name", "reader"]);
    let other = create_key(&s, &["--name", "other", "--create-buckets"]);
    // A name is one key's only.
    let dup = key_cmd(&s, &["create", "--name", "owner"]);
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("exists already"));

    // The owner makes its bucket over S3; grants name a bucket that exists.
    ok(s.aws_with(
        &["s3api", "create-bucket", "--bucket", "fleet"],
        &owner.0,
        &owner.1,
    ));
    ok(key_cmd(
        &s,
        &["allow", "device-7", "fleet/device-7/", "--write"],
    ));
    ok(key_cmd(&s, &["allow", &reader.0, "fleet", "--read"]));
    let missing = key_cmd(&s, &["allow", "reader", "nosuchbucket", "--read"]);
    assert!(!missing.status.success());
    let info = ok(key_cmd(&s, &["info", "device-7"]));
    assert!(
        info.contains("fleet/device-7/") && info.contains("write"),
        "{info}"
    );
    let list = ok(key_cmd(&s, &["list"]));
    assert!(
        list.contains(&device.0) && !list.contains(&device.1),
        "secrets never listed: {list}"
    );

    s.python_suite(
        "access_suite.py",
        &[
            &owner.0, &owner.1, &device.0, &device.1, &reader.0, &reader.1, &other.0, &other.1,
        ],
    );

    // The aws cli as the device key: its own prefix only.
    let w = tempfile::tempdir().unwrap();
    let f = w.path().join("clip.mp4");
    write_file(&f, 7, 300_000);
    let f = f.to_str().unwrap();
    ok(s.aws_with(
        &["s3", "cp", f, "s3://fleet/device-7/clip.mp4"],
        &device.0,
        &device.1,
    ));
    fails_with(
        s.aws_with(
            &["s3", "cp", f, "s3://fleet/device-8/clip.mp4"],
            &device.0,
            &device.1,
        ),
        "AccessDenied",
    );
    fails_with(
        s.aws_with(&["s3", "ls", "s3://fleet/device-7/"], &device.0, &device.1),
        "AccessDenied",
    );
    let listing = ok(s.aws_with(
        &["s3", "ls", "--recursive", "s3://fleet/"],
        &reader.0,
        &reader.1,
    ));
    assert!(
        listing.contains("device-7/clip.mp4") && !listing.contains("device-8"),
        "{listing}"
    );

    // Disabled, expired and deleted keys are refused at the door; enabled again, it works.
    ok(key_cmd(&s, &["disable", "reader"]));
    fails_with(
        s.aws_with(&["s3", "ls", "s3://fleet/"], &reader.0, &reader.1),
        "InvalidAccessKeyId",
    );
    ok(key_cmd(&s, &["enable", "reader"]));
    ok(s.aws_with(&["s3", "ls", "s3://fleet/"], &reader.0, &reader.1));
    ok(key_cmd(&s, &["expire", "reader", "2001-01-01"]));
    fails_with(
        s.aws_with(&["s3", "ls", "s3://fleet/"], &reader.0, &reader.1),
        "InvalidAccessKeyId",
    );
    ok(key_cmd(&s, &["delete", "reader"]));
    fails_with(
        s.aws_with(&["s3", "ls", "s3://fleet/"], &reader.0, &reader.1),
        "InvalidAccessKeyId",
    );
    // Nothing secret in the log.
    let log = s.log();
    for secret in [&owner.1, &device.1, &reader.1, &other.1] {
        assert!(!log.contains(secret.as_str()), "a secret in the log");
    }
}
