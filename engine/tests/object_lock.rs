//! Object lock: default and explicit retention, legal hold, GOVERNANCE bypass, and that no
//! path deletes a locked version for good — S3 deletes by id, lifecycle, GC.

mod common;

use std::time::Duration;

use common::*;
use engine::lifecycle::{LifecycleConfig, LifecycleRun, Rule};
use engine::{
    DefaultRetention, Engine, Error, LockMode, LockRequest, ObjectAttrs, PutOptions, Retention,
    VersionSel, Versioning,
};

const DAY: i64 = 86_400 * 1_000_000_000;

async fn engine(dir: &std::path::Path) -> Engine {
    let mut cfg = config(dir);
    cfg.lifecycle_day = Duration::from_secs(1);
    let e = Engine::open(cfg).unwrap();
    e.create_locked_bucket("vault").await.unwrap();
    e
}

async fn put_locked(e: &Engine, key: &str, body: &[u8], lock: LockRequest) -> engine::ObjectMeta {
    let opts = PutOptions {
        attrs: ObjectAttrs {
            lock: Some(lock),
            ..Default::default()
        },
        ..Default::default()
    };
    e.put_object("vault", key, body, opts).await.unwrap()
}

fn by_id(m: &engine::ObjectMeta) -> VersionSel {
    VersionSel::parse(m.version_id().unwrap()).unwrap()
}

fn locked(r: engine::Result<impl std::fmt::Debug>) -> bool {
    matches!(r, Err(Error::ObjectLocked { .. }))
}

#[tokio::test]
async fn default_retention_governance_bypass_and_markers() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    assert_eq!(
        e.head_bucket("vault").unwrap().versioning,
        Some(Versioning::Enabled)
    );
    assert!(matches!(
        e.set_bucket_versioning("vault", Versioning::Suspended)
            .await,
        Err(Error::InvalidBucketState(_))
    ));
    e.set_object_lock(
        "vault",
        Some(DefaultRetention {
            mode: LockMode::Governance,
            days: 1,
        }),
    )
    .await
    .unwrap();
    let m = put(&e, "vault", "k", &data(1, 200_000)).await;
    let r = m.retention.unwrap();
    assert_eq!(r.mode, LockMode::Governance);
    assert_eq!(r.until_ns, m.last_modified_ns + DAY);
    // A delete without a version id puts a marker on top: allowed, nothing is destroyed.
    e.delete_object("vault", "k").await.unwrap();
    // Deleting the version itself is refused, unless GOVERNANCE is bypassed.
    assert!(locked(
        e.delete_object_version("vault", "k", by_id(&m)).await
    ));
    assert!(e.head_object_version("vault", "k", &by_id(&m)).is_ok());
    e.delete_object_version_bypassing("vault", "k", by_id(&m), true)
        .await
        .unwrap();
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn compliance_and_legal_hold_hold_against_everyone() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let until = engine::meta::now_ns() + 10 * DAY;
    let c = put_locked(
        &e,
        "c",
        &data(2, 100_000),
        LockRequest {
            retention: Some(Retention {
                mode: LockMode::Compliance,
                until_ns: until,
            }),
            legal_hold: false,
        },
    )
    .await;
    assert!(locked(
        e.delete_object_version_bypassing("vault", "c", by_id(&c), true)
            .await
    ));
    // COMPLIANCE can be extended, never shortened or removed.
    let shorter = Retention {
        mode: LockMode::Compliance,
        until_ns: until - DAY,
    };
    assert!(locked(
        e.set_retention("vault", "c", by_id(&c), Some(shorter), true)
            .await
    ));
    assert!(locked(
        e.set_retention("vault", "c", by_id(&c), None, true).await
    ));
    let longer = Retention {
        mode: LockMode::Compliance,
        until_ns: until + DAY,
    };
    let m = e
        .set_retention("vault", "c", by_id(&c), Some(longer), false)
        .await
        .unwrap();
    assert_eq!(m.retention, Some(longer));

    // A legal hold keeps even an unretained version, bypass or not, until lifted.
    let h = put_locked(
        &e,
        "h",
        b"held",
        LockRequest {
            retention: None,
            legal_hold: true,
        },
    )
    .await;
    assert!(h.legal_hold);
    assert!(locked(
        e.delete_object_version_bypassing("vault", "h", by_id(&h), true)
            .await
    ));
    e.set_legal_hold("vault", "h", by_id(&h), false)
        .await
        .unwrap();
    e.delete_object_version("vault", "h", by_id(&h))
        .await
        .unwrap();

    // Lifecycle expires around locked versions: the current one gets a marker, the
    // non-current locked one stays; GC keeps its data.
    put(&e, "vault", "c", b"newer").await;
    e.set_bucket_lifecycle(
        "vault",
        Some(LifecycleConfig {
            rules: vec![Rule {
                id: "all".into(),
                enabled: true,
                expiration_days: Some(1),
                noncurrent_days: Some(1),
                ..Default::default()
            }],
        }),
    )
    .await
    .unwrap();
    for _ in 0..3 {
        e.run_lifecycle(LifecycleRun {
            now_ns: Some(engine::meta::now_ns() + 5 * 1_000_000_000),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    e.gc(true).await.unwrap();
    assert_eq!(
        get_v(&e, "c", &by_id(&c)).await,
        data(2, 100_000),
        "the locked version survived lifecycle and GC"
    );
    assert!(e.fsck().unwrap().is_clean());

    // Lock settings in a bucket without object lock are refused, as is enabling it on a
    // bucket without versioning.
    e.create_bucket("plain").await.unwrap();
    let opts = PutOptions {
        attrs: ObjectAttrs {
            lock: Some(LockRequest {
                retention: None,
                legal_hold: true,
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    assert!(matches!(
        e.put_object("plain", "x", &b"x"[..], opts).await,
        Err(Error::LockNotEnabled)
    ));
    assert!(matches!(
        e.set_object_lock("plain", None).await,
        Err(Error::InvalidBucketState(_))
    ));
}

async fn get_v(e: &Engine, key: &str, sel: &VersionSel) -> Vec<u8> {
    let g = e
        .get_object_with("vault", key, sel, |_, _| Ok::<_, Error>(None))
        .await
        .unwrap()
        .unwrap();
    let mut out = Vec::new();
    let mut body = g.body;
    while let Some(b) = futures::StreamExt::next(&mut body).await {
        out.extend_from_slice(&b.unwrap());
    }
    out
}
