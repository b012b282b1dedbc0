//! rclone, s3cmd and restic (Debian's packages) against a real s3d over TLS.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn make_tree(root: &Path) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    write_file(&root.join("empty"), 1, 0);
    write_file(&root.join("one"), 2, 1);
    write_file(&root.join("sub/mid.bin"), 3, 700_000);
    write_file(&root.join("sub/deeper/big.bin"), 4, 9 * 1024 * 1024 + 3);
    std::fs::write(
        root.join("sub/name with spaces & ü.txt"),
        "unicode and spaces\n",
    )
    .unwrap();
}

fn assert_same_tree(a: &Path, b: &Path) {
    for p in [
        "empty",
        "one",
        "sub/mid.bin",
        "sub/deeper/big.bin",
        "sub/name with spaces & ü.txt",
    ] {
        assert_eq!(md5_file(&a.join(p)), md5_file(&b.join(p)), "{p}");
    }
}

fn run(c: &mut Command) -> Output {
    c.output().expect("run tool")
}

/// Runs rclone with the remote `ps:` pointing at `s`.
fn rclone_on(s: &Server, args: &[&str]) -> Output {
    run(Command::new("rclone")
        .args(args)
        // rclone 1.60's --ca-cert fails on its S3 transport; Go reads SSL_CERT_FILE.
        .args(["--config", "/dev/null"])
        .env("SSL_CERT_FILE", s.ca())
        .env_remove("AWS_CA_BUNDLE")
        .env("RCLONE_CONFIG_PS_TYPE", "s3")
        .env("RCLONE_CONFIG_PS_PROVIDER", "Other")
        .env("RCLONE_CONFIG_PS_ACCESS_KEY_ID", AK)
        .env("RCLONE_CONFIG_PS_SECRET_ACCESS_KEY", SK)
        .env("RCLONE_CONFIG_PS_ENDPOINT", &s.endpoint)
        .env("RCLONE_CONFIG_PS_REGION", "us-east-1"))
}

#[test]
fn rclone_copy_check_and_back() {
    let s = Server::start();
    let w = tempfile::tempdir().unwrap();
    make_tree(&w.path().join("src"));
    let rclone = |args: &[&str]| rclone_on(&s, args);
    ok(rclone(&["mkdir", "ps:rclonebkt"]));
    ok(rclone(&[
        "copy",
        w.path().join("src").to_str().unwrap(),
        "ps:rclonebkt/tree",
    ]));
    // rclone check compares sizes and MD5 (ETags) of every file.
    ok(rclone(&[
        "check",
        w.path().join("src").to_str().unwrap(),
        "ps:rclonebkt/tree",
    ]));
    ok(rclone(&[
        "copy",
        "ps:rclonebkt/tree",
        w.path().join("back").to_str().unwrap(),
    ]));
    assert_same_tree(&w.path().join("src"), &w.path().join("back"));
    let l = ok(rclone(&["lsf", "-R", "ps:rclonebkt"]));
    assert!(l.contains("tree/sub/deeper/big.bin"), "{l}");
    ok(rclone(&["purge", "ps:rclonebkt/tree"]));
    assert_eq!(ok(rclone(&["lsf", "-R", "ps:rclonebkt"])).trim(), "");
}

/// rclone's `--s3-versions` on a versioned bucket: old versions listed beside the current one,
/// readable by their names, and removed by `backend cleanup-hidden`.
#[test]
fn rclone_sees_old_versions() {
    let s = Server::start();
    let rclone = |args: &[&str]| rclone_on(&s, args);
    let w = tempfile::tempdir().unwrap();
    let f = w.path().join("notes.txt");
    ok(rclone(&["mkdir", "ps:rcv"]));
    ok(s.aws_line(
        "s3api put-bucket-versioning --bucket rcv --versioning-configuration Status=Enabled",
    ));
    for body in ["first\n", "second\n"] {
        std::fs::write(&f, body).unwrap();
        ok(rclone(&["copyto", f.to_str().unwrap(), "ps:rcv/notes.txt"]));
        std::thread::sleep(std::time::Duration::from_millis(1100));
    }
    assert_eq!(ok(rclone(&["lsf", "ps:rcv"])).trim(), "notes.txt");
    let all = ok(rclone(&["lsf", "--s3-versions", "ps:rcv"]));
    let names: Vec<&str> = all.lines().collect();
    assert_eq!(names.len(), 2, "{all}");
    let old = names
        .iter()
        .find(|n| n.starts_with("notes-v") && n.ends_with(".txt"))
        .unwrap_or_else(|| panic!("no old version listed: {all}"));
    let back = ok(rclone(&["cat", "--s3-versions", &format!("ps:rcv/{old}")]));
    assert_eq!(back, "first\n");
    assert_eq!(ok(rclone(&["cat", "ps:rcv/notes.txt"])), "second\n");
    // A delete hides the file; its versions stay until cleaned up.
    ok(rclone(&["delete", "ps:rcv/notes.txt"]));
    assert_eq!(ok(rclone(&["lsf", "ps:rcv"])).trim(), "");
    assert_eq!(
        ok(rclone(&["lsf", "--s3-versions", "ps:rcv"]))
            .lines()
            .count(),
        2
    );
    ok(rclone(&["backend", "cleanup-hidden", "ps:rcv"]));
    let v = ok(s.aws_line("s3api list-object-versions --bucket rcv"));
    assert!(!v.contains("notes.txt"), "{v}");
}

#[test]
fn s3cmd_put_get_sync() {
    let s = Server::start();
    let w = tempfile::tempdir().unwrap();
    make_tree(&w.path().join("src"));
    let cfg = w.path().join("s3cfg");
    std::fs::write(
        &cfg,
        format!(
            "[default]\naccess_key = {AK}\nsecret_key = {SK}\nhost_base = 127.0.0.1:{p}\nhost_bucket = 127.0.0.1:{p}\nuse_https = True\nca_certs_file = {ca}\ncheck_ssl_certificate = True\nsignature_v2 = False\nbucket_location = us-east-1\n",
            p = s.port,
            ca = s.ca().display()
        ),
    )
    .unwrap();
    let s3cmd = |args: &[&str]| run(Command::new("s3cmd").arg("-c").arg(&cfg).args(args));
    ok(s3cmd(&["mb", "s3://s3cmdbkt"]));
    let src = format!("{}/", w.path().join("src").display());
    ok(s3cmd(&["sync", &src, "s3://s3cmdbkt/tree/"]));
    let again = ok(s3cmd(&["sync", &src, "s3://s3cmdbkt/tree/"]));
    assert!(!again.contains("upload:"), "{again}");
    let back = format!("{}/", w.path().join("back").display());
    std::fs::create_dir_all(w.path().join("back")).unwrap();
    ok(s3cmd(&["sync", "s3://s3cmdbkt/tree/", &back]));
    assert_same_tree(&w.path().join("src"), &w.path().join("back"));
    let one = w.path().join("one.get");
    ok(s3cmd(&[
        "get",
        "s3://s3cmdbkt/tree/sub/mid.bin",
        one.to_str().unwrap(),
    ]));
    assert_eq!(md5_file(&one), md5_file(&w.path().join("src/sub/mid.bin")));
    // s3cmd's own record of mode, owner and times is what the mount shows (and S3 too).
    {
        use std::os::unix::fs::MetadataExt;
        let st = std::fs::metadata(w.path().join("src/sub/mid.bin")).unwrap();
        let info = ok(s3cmd(&["info", "s3://s3cmdbkt/tree/sub/mid.bin"]));
        for want in [
            format!("x-amz-meta-mode: 0{:o}", st.mode()),
            format!("x-amz-meta-uid: {}", st.uid()),
            format!("x-amz-meta-mtime: {}", st.mtime()),
        ] {
            assert!(info.contains(&want), "{want} not in {info}");
        }
    }
    ok(s3cmd(&[
        "del",
        "--recursive",
        "--force",
        "s3://s3cmdbkt/tree/",
    ]));
    ok(s3cmd(&["rb", "s3://s3cmdbkt"]));
}

#[test]
fn restic_backup_check_restore() {
    let s = Server::start();
    let w = tempfile::tempdir().unwrap();
    make_tree(&w.path().join("src"));
    ok(s.aws_line("s3 mb s3://resticbkt"));
    let restic = |args: &[&str]| {
        run(Command::new("restic")
            .args(args)
            .args(["--cacert", s.ca().to_str().unwrap(), "--no-cache"])
            .env(
                "RESTIC_REPOSITORY",
                format!("s3:{}/resticbkt/repo", s.endpoint),
            )
            .env("RESTIC_PASSWORD", "test-password")
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_DEFAULT_REGION", "us-east-1"))
    };
    ok(restic(&["init"]));
    ok(restic(&["backup", w.path().join("src").to_str().unwrap()]));
    ok(restic(&["backup", w.path().join("src").to_str().unwrap()]));
    ok(restic(&["check", "--read-data"]));
    let target = w.path().join("restore");
    ok(restic(&[
        "restore",
        "latest",
        "--target",
        target.to_str().unwrap(),
    ]));
    let restored = target.join(w.path().join("src").strip_prefix("/").unwrap());
    assert_same_tree(&w.path().join("src"), &restored);
    let snaps = ok(restic(&["snapshots", "--json"]));
    assert_eq!(snaps.matches("\"time\"").count(), 2, "{snaps}");
}

/// Issue 17's backup scenario: restic backs up into a versioned bucket with object lock
/// (GOVERNANCE, one day); someone holding the keys runs `forget` + `prune` and then deletes
/// every version by id — refused, so removing the delete markers brings the repository back
/// whole. A legitimate prune later leaves non-current versions: lifecycle (one-second days)
/// leaves them alone while they are locked, aborts a stale upload, and once the operator lifts
/// the retention (bypass) expires them and the markers; the repository still checks and
/// `s3d status` shows the old versions gone.
#[test]
fn restic_on_a_locked_versioned_bucket_survives_forget_prune_and_deletes() {
    let s = Server::with_config(
        "lifecycle:\n  day_secs: 1\n  interval_secs: 1\nserver:\n  repair_interval_secs: 1\n",
    );
    let w = tempfile::tempdir().unwrap();
    let src = w.path().join("src");
    make_tree(&src);
    ok(s.aws_line("s3api create-bucket --bucket vault --object-lock-enabled-for-bucket"));
    ok(s.aws(&[
        "s3api",
        "put-object-lock-configuration",
        "--bucket",
        "vault",
        "--object-lock-configuration",
        r#"{"ObjectLockEnabled":"Enabled","Rule":{"DefaultRetention":{"Mode":"GOVERNANCE","Days":1}}}"#,
    ]));
    let restic = |args: &[&str]| {
        run(Command::new("restic")
            .args(args)
            .args(["--cacert", s.ca().to_str().unwrap(), "--no-cache"])
            .env("RESTIC_REPOSITORY", format!("s3:{}/vault/repo", s.endpoint))
            .env("RESTIC_PASSWORD", "test-password")
            .env("AWS_ACCESS_KEY_ID", AK)
            .env("AWS_SECRET_ACCESS_KEY", SK)
            .env("AWS_DEFAULT_REGION", "us-east-1"))
    };
    let versions = || -> serde_json::Value {
        let out = ok(s.aws_line("s3api list-object-versions --bucket vault"));
        serde_json::from_str(if out.trim().is_empty() { "{}" } else { &out }).unwrap()
    };
    let list = |v: &serde_json::Value, what: &str| -> Vec<(String, String, bool)> {
        v[what]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["Key"].as_str().unwrap().to_string(),
                            x["VersionId"].as_str().unwrap().to_string(),
                            x["IsLatest"].as_bool().unwrap(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let snapshot_ids = || -> Vec<String> {
        let out = ok(restic(&["snapshots", "--json"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|s| s["id"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    ok(restic(&["init"]));
    ok(restic(&["backup", src.to_str().unwrap()]));
    write_file(&src.join("sub/changed.bin"), 9, 300_000);
    ok(restic(&["backup", src.to_str().unwrap()]));
    assert_eq!(snapshot_ids().len(), 2);
    let before = list(&versions(), "Versions");

    // The attack: forget everything, prune, then delete every version by id.
    let mut forget = vec!["forget".to_string()];
    forget.extend(snapshot_ids());
    ok(restic(
        &forget.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    ok(restic(&["prune"]));
    assert!(snapshot_ids().is_empty());
    let objects: Vec<serde_json::Value> = list(&versions(), "Versions")
        .iter()
        .map(|(k, v, _)| serde_json::json!({"Key": k, "VersionId": v}))
        .collect();
    for chunk in objects.chunks(500) {
        let del = serde_json::json!({ "Objects": chunk, "Quiet": true }).to_string();
        let out = ok(s.aws(&[
            "s3api",
            "delete-objects",
            "--bucket",
            "vault",
            "--delete",
            &del,
        ]));
        let r: serde_json::Value = serde_json::from_str(&out).unwrap();
        let errors = r["Errors"].as_array().map(Vec::len).unwrap_or(0);
        assert_eq!(errors, chunk.len(), "every locked version refused: {out}");
        assert!(out.contains("AccessDenied"), "{out}");
    }
    // Nothing was lost: remove the delete markers and the repository is back.
    let v = versions();
    let markers = list(&v, "DeleteMarkers");
    assert!(!markers.is_empty());
    for (k, id, _) in &markers {
        ok(s.aws(&[
            "s3api",
            "delete-object",
            "--bucket",
            "vault",
            "--key",
            k,
            "--version-id",
            id,
        ]));
    }
    let after: Vec<(String, String)> = list(&versions(), "Versions")
        .into_iter()
        .map(|(k, v, _)| (k, v))
        .collect();
    for (k, v, _) in &before {
        assert!(after.contains(&(k.clone(), v.clone())), "{k} {v} lost");
    }
    // Removing every marker also brought back the lock files restic had removed: stale locks
    // of dead processes, which `restic unlock` clears as after any crash.
    ok(restic(&["unlock"]));
    assert_eq!(snapshot_ids().len(), 2);
    ok(restic(&["check", "--read-data"]));

    // A legitimate prune: the first snapshot goes; what it alone used becomes non-current.
    let first = snapshot_ids()[0].clone();
    ok(restic(&["forget", &first]));
    ok(restic(&["prune"]));
    let stale = ok(s.aws_line("s3api create-multipart-upload --bucket vault --key repo/stale"));
    assert!(stale.contains("UploadId"), "{stale}");
    let rules = r#"{"Rules":[{"ID":"cleanup","Status":"Enabled","Filter":{"Prefix":""},
        "NoncurrentVersionExpiration":{"NoncurrentDays":1},
        "Expiration":{"ExpiredObjectDeleteMarker":true},
        "AbortIncompleteMultipartUpload":{"DaysAfterInitiation":1}}]}"#;
    ok(s.aws(&[
        "s3api",
        "put-bucket-lifecycle-configuration",
        "--bucket",
        "vault",
        "--lifecycle-configuration",
        rules,
    ]));
    let wait = |what: &str, cond: &dyn Fn() -> bool| {
        let t = std::time::Instant::now();
        while !cond() {
            assert!(t.elapsed().as_secs() < 60, "not within 60 s: {what}");
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    };
    wait("the stale upload aborted", &|| {
        !ok(s.aws_line("s3api list-multipart-uploads --bucket vault")).contains("repo/stale")
    });
    let noncurrent = |v: &serde_json::Value| {
        list(v, "Versions")
            .into_iter()
            .filter(|x| !x.2)
            .collect::<Vec<_>>()
    };
    let old = noncurrent(&versions());
    assert!(!old.is_empty(), "the prune left non-current versions");
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        noncurrent(&versions()).len(),
        old.len(),
        "locked versions outlive lifecycle"
    );

    // The operator lifts the retention of the old versions (GOVERNANCE, with the bypass).
    let soon = String::from_utf8(
        Command::new("date")
            .args(["-u", "-d", "+2 seconds", "+%Y-%m-%dT%H:%M:%SZ"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let retention = format!(
        r#"{{"Mode":"GOVERNANCE","RetainUntilDate":"{}"}}"#,
        soon.trim()
    );
    for (k, id, _) in &old {
        ok(s.aws(&[
            "s3api",
            "put-object-retention",
            "--bucket",
            "vault",
            "--key",
            k,
            "--version-id",
            id,
            "--bypass-governance-retention",
            "--retention",
            &retention,
        ]));
    }
    wait("old versions and lone markers expired", &|| {
        let v = versions();
        noncurrent(&v).is_empty() && list(&v, "DeleteMarkers").is_empty()
    });
    // Before restic runs again (each of its commands leaves a lock file's version and marker,
    // under the bucket's default retention), the old versions' space is gone.
    let status = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--data-dir")
        .arg(s.dir.path().join("data"))
        .arg("status")
        .env_remove("PREDASTORE_CONFIG")
        .current_dir(w.path())
        .output()
        .unwrap();
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert!(
        status.contains("old versions: 0 (0.0 B)  delete markers: 0"),
        "{status}"
    );
    ok(restic(&["check", "--read-data"]));
    assert_eq!(snapshot_ids().len(), 1);
}
