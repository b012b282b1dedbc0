//! Event notifications: every change a rule matches leaves its record in the outbox in the
//! same transaction, whichever way it was made; nothing without a rule.

mod common;

use common::*;
use engine::events::{EventName, NotificationConfig, NotificationRule};
use engine::{Engine, Versioning};

fn rule(id: &str, events: &[&str], prefix: &str, suffix: &str) -> NotificationRule {
    NotificationRule {
        id: id.into(),
        events: events.iter().map(|s| s.to_string()).collect(),
        prefix: prefix.into(),
        suffix: suffix.into(),
        subject: format!("s3.events.{id}"),
    }
}

fn drain(e: &Engine) -> Vec<(EventName, String, String)> {
    let p = e.pending_events(1000).unwrap();
    let out = p
        .iter()
        .map(|(_, r)| (r.name, r.key.clone(), r.subject.clone()))
        .collect();
    futures::executor::block_on(e.events_published(p.into_iter().map(|(k, _)| k).collect()))
        .unwrap();
    out
}

#[tokio::test]
async fn changes_leave_their_events_in_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let e = Engine::open(config(dir.path())).unwrap();
    e.create_bucket("bkt").await.unwrap();
    put(&e, "bkt", "before.txt", b"no rule yet").await;
    assert!(e.pending_events(10).unwrap().is_empty());
    e.set_bucket_notifications(
        "bkt",
        Some(NotificationConfig {
            rules: vec![
                rule("all", &["s3:ObjectCreated:*", "s3:ObjectRemoved:*"], "", ""),
                rule("jpg", &["s3:ObjectCreated:Put"], "cam/", ".jpg"),
            ],
        }),
    )
    .await
    .unwrap();
    assert_eq!(e.bucket_notifications("bkt").unwrap().rules.len(), 2);
    put(&e, "bkt", "cam/1.jpg", b"jpeg").await;
    put(&e, "bkt", "cam/1.txt", b"text").await;
    let mut ev = drain(&e);
    // One change's records share a time: their order among themselves is free.
    ev.sort();
    assert_eq!(
        ev,
        vec![
            (EventName::Put, "cam/1.jpg".into(), "s3.events.all".into()),
            (EventName::Put, "cam/1.jpg".into(), "s3.events.jpg".into()),
            (EventName::Put, "cam/1.txt".into(), "s3.events.all".into()),
        ]
    );
    assert_eq!(ev.len(), 3);
    e.copy_object("bkt", "cam/1.jpg", "bkt", "copy.jpg", Default::default())
        .await
        .unwrap();
    e.rename_object("bkt", "copy.jpg", "bkt", "moved.jpg")
        .await
        .unwrap();
    e.delete_object("bkt", "moved.jpg").await.unwrap();
    // Deleting what is not there reports nothing.
    e.delete_object("bkt", "never.jpg").await.unwrap();
    let ev: Vec<(EventName, String)> = drain(&e).into_iter().map(|(n, k, _)| (n, k)).collect();
    assert_eq!(
        ev,
        [
            (EventName::Copy, "copy.jpg".to_string()),
            (EventName::Copy, "moved.jpg".to_string()),
            (EventName::Delete, "copy.jpg".to_string()),
            (EventName::Delete, "moved.jpg".to_string()),
        ]
    );
    // Multipart, and a delete marker in a versioned bucket.
    let id = e
        .create_multipart_upload("bkt", "mp.bin", Default::default())
        .await
        .unwrap();
    let p = e
        .upload_part("bkt", "mp.bin", &id, 1, &b"part"[..], None)
        .await
        .unwrap();
    e.complete_multipart_upload("bkt", "mp.bin", &id, vec![(1, p.etag)], Default::default())
        .await
        .unwrap();
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    e.delete_object("bkt", "mp.bin").await.unwrap();
    let ev: Vec<EventName> = drain(&e).into_iter().map(|(n, _, _)| n).collect();
    assert_eq!(
        ev,
        [
            EventName::CompleteMultipartUpload,
            EventName::DeleteMarkerCreated
        ]
    );
    assert_eq!(e.event_backlog().unwrap(), 0);
    // A record carries what a subscriber needs.
    put(&e, "bkt", "last.txt", b"12345").await;
    let p = e.pending_events(10).unwrap();
    let r = &p[0].1;
    assert_eq!((r.bucket.as_str(), r.size), ("bkt", 5));
    assert_eq!(r.etag, md5_hex(b"12345"));
    assert!(r.version_id.is_some());
    // Invalid rules are refused and change nothing.
    assert!(e
        .set_bucket_notifications(
            "bkt",
            Some(NotificationConfig {
                rules: vec![rule("bad", &["s3:ObjectCreated:Teleport"], "", "")]
            })
        )
        .await
        .is_err());
    assert_eq!(e.bucket_notifications("bkt").unwrap().rules.len(), 2);
    e.set_bucket_notifications("bkt", None).await.unwrap();
    put(&e, "bkt", "after.txt", b"x").await;
    assert_eq!(e.event_backlog().unwrap(), 1, "only last.txt's");
}

#[tokio::test]
async fn lifecycle_expirations_are_events_of_their_own() {
    use engine::lifecycle::{LifecycleConfig, LifecycleRun, Rule};
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.lifecycle_day = std::time::Duration::from_secs(1);
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    e.set_bucket_notifications(
        "bkt",
        Some(NotificationConfig {
            rules: vec![rule("expiry", &["s3:LifecycleExpiration:*"], "", "")],
        }),
    )
    .await
    .unwrap();
    put(&e, "bkt", "tmp/x", b"scratch").await;
    e.delete_object("bkt", "never-there").await.unwrap();
    assert!(
        e.pending_events(10).unwrap().is_empty(),
        "the rule wants expirations only"
    );
    e.set_bucket_lifecycle(
        "bkt",
        Some(LifecycleConfig {
            rules: vec![Rule {
                id: "scratch".into(),
                enabled: true,
                prefix: "tmp/".into(),
                expiration_days: Some(1),
                ..Default::default()
            }],
        }),
    )
    .await
    .unwrap();
    e.run_lifecycle(LifecycleRun {
        now_ns: Some(engine::meta::now_ns() + 2_000_000_000),
        ..Default::default()
    })
    .await
    .unwrap();
    let ev = drain(&e);
    assert_eq!(
        ev,
        [(
            EventName::LifecycleDelete,
            "tmp/x".to_string(),
            "s3.events.expiry".to_string()
        )]
    );
}
