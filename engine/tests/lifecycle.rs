//! Lifecycle rules applied by the engine: expiration of current versions by age, date, prefix,
//! tags and size; non-current versions with NewerNoncurrentVersions; lone delete markers;
//! stale multipart uploads; dry runs; and the background job doing it by itself.

mod common;

use std::time::Duration;

use common::*;
use engine::lifecycle::{ActionKind, LifecycleConfig, LifecycleRun, Rule};
use engine::{Engine, ObjectAttrs, PutOptions, VersionQuery, VersionSel, Versioning};

const SEC: i64 = 1_000_000_000;

/// An engine whose lifecycle "day" is one second, with bucket `bkt`.
async fn engine(dir: &std::path::Path) -> Engine {
    let mut cfg = config(dir);
    cfg.lifecycle_day = Duration::from_secs(1);
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    e
}

fn rule(id: &str) -> Rule {
    Rule {
        id: id.into(),
        enabled: true,
        ..Default::default()
    }
}

async fn set(e: &Engine, rules: Vec<Rule>) {
    e.set_bucket_lifecycle("bkt", Some(LifecycleConfig { rules }))
        .await
        .unwrap();
}

/// A pass as if run `days` (seconds) from now.
async fn pass_in(e: &Engine, days: i64, dry_run: bool) -> engine::lifecycle::LifecycleReport {
    e.run_lifecycle(LifecycleRun {
        dry_run,
        now_ns: Some(engine::meta::now_ns() + days * SEC),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn keys(e: &Engine) -> Vec<String> {
    let q = engine::ListQuery {
        max_keys: 1000,
        ..Default::default()
    };
    e.list_objects("bkt", &q)
        .unwrap()
        .objects
        .into_iter()
        .map(|o| o.key)
        .collect()
}

async fn put_tagged(e: &Engine, key: &str, size: usize, tag: Option<&str>) {
    let mut attrs = ObjectAttrs::default();
    if let Some(t) = tag {
        attrs.tags.insert("class".into(), t.into());
    }
    let opts = PutOptions {
        attrs,
        ..Default::default()
    };
    e.put_object("bkt", key, &data(1, size)[..], opts)
        .await
        .unwrap();
}

#[tokio::test]
async fn current_versions_expire_by_age_prefix_tags_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    put_tagged(&e, "logs/a", 10, None).await;
    put_tagged(&e, "logs/big", 200_000, None).await;
    put_tagged(&e, "tmp/x", 10, Some("scratch")).await;
    put_tagged(&e, "tmp/y", 10, Some("keep")).await;
    put_tagged(&e, "data/z", 10, None).await;
    set(
        &e,
        vec![
            Rule {
                prefix: "logs/".into(),
                expiration_days: Some(3),
                size_less_than: Some(100_000),
                ..rule("logs")
            },
            Rule {
                tags: [("class".to_string(), "scratch".to_string())].into(),
                expiration_days: Some(1),
                ..rule("scratch")
            },
            Rule {
                prefix: "data/".into(),
                expiration_days: Some(1),
                enabled: false,
                ..rule("off")
            },
        ],
    )
    .await;
    // x-amz-expiration: the earliest rule that applies.
    let m = e.head_object("bkt", "tmp/x").unwrap();
    let (at, id) = e.expiration_of("bkt", &m).unwrap();
    assert_eq!(id, "scratch");
    assert_eq!(at, m.last_modified_ns + SEC);
    assert!(e
        .expiration_of("bkt", &e.head_object("bkt", "data/z").unwrap())
        .is_none());

    // Not old enough yet: nothing.
    assert!(pass_in(&e, 0, false).await.actions.is_empty());
    // Two days on: the scratch object only. A dry run first changes nothing.
    let dry = pass_in(&e, 2, true).await;
    assert_eq!(dry.actions.len(), 1);
    assert_eq!(
        (dry.actions[0].key.as_str(), dry.actions[0].rule.as_str()),
        ("tmp/x", "scratch")
    );
    assert_eq!(keys(&e).len(), 5);
    let r = pass_in(&e, 2, false).await;
    assert_eq!(r.count(ActionKind::ExpireCurrent), 1);
    assert_eq!(keys(&e), vec!["data/z", "logs/a", "logs/big", "tmp/y"]);
    // Four days on: small logs too; the big one is outside the size filter.
    pass_in(&e, 4, false).await;
    assert_eq!(keys(&e), vec!["data/z", "logs/big", "tmp/y"]);
    assert!(e.fsck().unwrap().is_clean());
    // Removing the configuration stops it.
    e.set_bucket_lifecycle("bkt", None).await.unwrap();
    assert!(e.bucket_lifecycle("bkt").unwrap().is_none());
    assert!(pass_in(&e, 100, false).await.actions.is_empty());
}

#[tokio::test]
async fn versioned_buckets_expire_noncurrent_versions_and_lone_markers() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    for i in 0..5u8 {
        put(&e, "bkt", "k", &data(i as u64, 70_000)).await;
    }
    set(
        &e,
        vec![
            Rule {
                noncurrent_days: Some(2),
                newer_noncurrent_versions: Some(1),
                ..rule("old-versions")
            },
            Rule {
                expiration_days: Some(10),
                ..rule("expire")
            },
            Rule {
                prefix: "k".into(),
                expired_object_delete_marker: true,
                ..rule("markers")
            },
        ],
    )
    .await;
    let versions = |e: &Engine| -> Vec<(bool, bool)> {
        let q = VersionQuery {
            max_keys: 100,
            ..Default::default()
        };
        e.list_object_versions("bkt", &q)
            .unwrap()
            .versions
            .into_iter()
            .map(|v| (v.meta.delete_marker, v.is_latest))
            .collect()
    };
    // Three days on: of the four non-current versions the newest stays (NewerNoncurrent 1).
    let r = pass_in(&e, 3, false).await;
    assert_eq!(r.count(ActionKind::DeleteNoncurrent), 3);
    assert_eq!(versions(&e), vec![(false, true), (false, false)]);
    // Eleven days on: the current version expires — a delete marker on top, as S3 does.
    let r = pass_in(&e, 11, false).await;
    assert_eq!(r.count(ActionKind::ExpireCurrent), 1);
    assert!(matches!(
        e.head_object("bkt", "k"),
        Err(engine::Error::DeleteMarker { .. })
    ));
    // Later, the versions under the marker go but the newest non-current one, still kept by
    // NewerNoncurrentVersions, so the marker is not alone and stays.
    pass_in(&e, 40, false).await;
    assert_eq!(versions(&e), vec![(true, true), (false, false)]);
    // Without that limit the last version goes, and in the same pass the marker left alone.
    set(
        &e,
        vec![
            Rule {
                noncurrent_days: Some(2),
                ..rule("old-versions")
            },
            Rule {
                expired_object_delete_marker: true,
                ..rule("markers")
            },
        ],
    )
    .await;
    let r = pass_in(&e, 40, false).await;
    assert_eq!(r.count(ActionKind::RemoveMarker), 1);
    assert!(versions(&e).is_empty(), "{:?}", versions(&e));
    e.gc(false).await.unwrap();
    assert!(e.chunk_records().unwrap().is_empty(), "space came back");
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn stale_multipart_uploads_are_aborted() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let old = e
        .create_multipart_upload("bkt", "up/old", ObjectAttrs::default())
        .await
        .unwrap();
    e.upload_part("bkt", "up/old", &old, 1, &data(3, 100_000)[..], None)
        .await
        .unwrap();
    let other = e
        .create_multipart_upload("bkt", "elsewhere", ObjectAttrs::default())
        .await
        .unwrap();
    set(
        &e,
        vec![Rule {
            prefix: "up/".into(),
            abort_incomplete_upload_days: Some(2),
            ..rule("abort")
        }],
    )
    .await;
    assert!(pass_in(&e, 1, false).await.actions.is_empty());
    let r = pass_in(&e, 3, false).await;
    assert_eq!(r.count(ActionKind::AbortUpload), 1);
    assert!(e.upload_attrs("bkt", "up/old", &old).is_err());
    assert!(e.upload_attrs("bkt", "elsewhere", &other).is_ok());
    e.gc(false).await.unwrap();
    assert!(e.chunk_records().unwrap().is_empty());
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn a_version_written_after_the_scan_is_not_expired_and_bad_rules_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    put(&e, "bkt", "k", b"old").await;
    set(
        &e,
        vec![Rule {
            expiration_days: Some(1),
            ..rule("r")
        }],
    )
    .await;
    // The plan names the version it saw; a new version under the key is left alone.
    let dry = pass_in(&e, 5, true).await;
    assert_eq!(dry.actions.len(), 1);
    put(&e, "bkt", "k", b"new").await;
    // A pass "now" sees the new version as young.
    assert!(pass_in(&e, 0, false).await.actions.is_empty());
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), b"new");
    // Refused configurations change nothing.
    let bad = LifecycleConfig {
        rules: vec![rule("no-action")],
    };
    assert!(matches!(
        e.set_bucket_lifecycle("bkt", Some(bad)).await,
        Err(engine::Error::InvalidLifecycle { .. })
    ));
    assert_eq!(e.bucket_lifecycle("bkt").unwrap().unwrap().rules[0].id, "r");
    let _ = VersionSel::Latest;
}

#[tokio::test]
async fn the_background_job_applies_rules_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    put(&e, "bkt", "soon-gone", b"x").await;
    set(
        &e,
        vec![Rule {
            expiration_days: Some(1),
            ..rule("r")
        }],
    )
    .await;
    let bg = e.spawn_background(engine::background::Schedule {
        repair_every: Duration::from_millis(100),
        lifecycle_every: Duration::from_millis(200),
        ..Default::default()
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while e.head_object("bkt", "soon-gone").is_ok() {
        assert!(
            std::time::Instant::now() < deadline,
            "not expired by the job"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bg.stop().await;
}

#[tokio::test]
async fn a_lone_delete_marker_goes_under_expiration_by_days() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    let m = put(&e, "bkt", "k", b"x").await;
    e.delete_object("bkt", "k").await.unwrap();
    let id = VersionSel::parse(m.version_id().unwrap()).unwrap();
    e.delete_object_version("bkt", "k", id).await.unwrap();
    set(
        &e,
        vec![Rule {
            expiration_days: Some(2),
            ..rule("days")
        }],
    )
    .await;
    assert!(
        pass_in(&e, 1, false).await.actions.is_empty(),
        "not old enough"
    );
    let r = pass_in(&e, 3, false).await;
    assert_eq!(r.count(ActionKind::RemoveMarker), 1);
    let q = VersionQuery {
        max_keys: 10,
        ..Default::default()
    };
    assert!(e
        .list_object_versions("bkt", &q)
        .unwrap()
        .versions
        .is_empty());
}
