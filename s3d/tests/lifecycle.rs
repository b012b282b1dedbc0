//! Lifecycle over S3 (boto3: tests/lifecycle_suite.py) against an s3d whose lifecycle day is
//! one second, and `s3d lifecycle [--dry-run]` beside a running server.

mod common;

use std::process::Command;

use common::*;

/// A lifecycle day of one second and a pass every second.
const FAST: &str =
    "lifecycle:\n  day_secs: 1\n  interval_secs: 1\nserver:\n  repair_interval_secs: 1\n";

#[test]
fn lifecycle_suite() {
    let s = Server::with_config(FAST);
    s.python_suite("lifecycle_suite.py", &[]);
    // The passes' work shows in the metrics, by action.
    let o = Command::new("curl")
        .args(["-sS", "--cacert", s.ca().to_str().unwrap()])
        .arg(format!("https://127.0.0.1:{}/-/metrics", s.port))
        .output()
        .unwrap();
    let metrics = String::from_utf8_lossy(&o.stdout);
    let count = |action: &str| -> u64 {
        let prefix = format!("predastore_lifecycle_actions_total{{action=\"{action}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {action} in {metrics}"))
    };
    assert!(
        count("expire") >= 1 && count("delete-noncurrent") >= 1,
        "{metrics}"
    );
    assert!(count("abort-upload") >= 1, "{metrics}");
    assert!(
        metrics.contains("predastore_lifecycle_passes_total "),
        "{metrics}"
    );
}

#[test]
fn lifecycle_command_dry_run_then_for_real() {
    // The server's own passes are off; the command does the work.
    let s = Server::with_config("lifecycle:\n  interval_secs: 0\n");
    ok(s.aws_line("s3api create-bucket --bucket lcc"));
    let rules = r#"{"Rules":[{"ID":"short","Status":"Enabled","Filter":{"Prefix":"t/"},"Expiration":{"Days":1}}]}"#;
    ok(s.aws(&[
        "s3api",
        "put-bucket-lifecycle-configuration",
        "--bucket",
        "lcc",
        "--lifecycle-configuration",
        rules,
    ]));
    let w = tempfile::tempdir().unwrap();
    write_file(&w.path().join("f"), 1, 100);
    for k in ["t/one", "t/two", "kept"] {
        ok(s.aws(&[
            "s3",
            "cp",
            w.path().join("f").to_str().unwrap(),
            &format!("s3://lcc/{k}"),
        ]));
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
            .arg("--data-dir")
            .arg(s.dir.path().join("data"))
            .arg("lifecycle")
            .args(extra)
            .env("PREDASTORE_LIFECYCLE_DAY_SECS", "1")
            .env_remove("PREDASTORE_CONFIG")
            .current_dir(w.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dry = run(&["--dry-run"]);
    assert!(
        dry.contains("expire\tlcc/t/one") && dry.contains("expire\tlcc/t/two"),
        "{dry}"
    );
    assert!(
        !dry.contains("kept") && dry.contains("would 2 actions"),
        "{dry}"
    );
    let ls = ok(s.aws_line("s3 ls s3://lcc/ --recursive"));
    assert!(ls.contains("t/one"), "a dry run changed nothing: {ls}");
    let done = run(&[]);
    assert!(done.contains("did 2 actions"), "{done}");
    let ls = ok(s.aws_line("s3 ls s3://lcc/ --recursive"));
    assert!(!ls.contains("t/one") && ls.contains("kept"), "{ls}");
    // A bad variable is a configuration error, not a silent default.
    let out = Command::new(env!("CARGO_BIN_EXE_s3d"))
        .arg("--data-dir")
        .arg(s.dir.path().join("data"))
        .args(["lifecycle", "--dry-run"])
        .env("PREDASTORE_LIFECYCLE_DAY_SECS", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("PREDASTORE_LIFECYCLE_DAY_SECS"));
}
