//! Object versions: S3's rules for enabled and suspended versioning, delete markers, reads and
//! deletes by version id, ListObjectVersions paging — and a property test against a model.

mod common;

use std::collections::BTreeMap;

use common::*;
use engine::{CopyOptions, Engine, Error, ListQuery, VersionQuery, VersionSel, Versioning};
use futures::StreamExt;
use proptest::prelude::*;

async fn get_version(e: &Engine, key: &str, sel: &VersionSel) -> engine::Result<Vec<u8>> {
    let g = e
        .get_object_with("bkt", key, sel, |_, _| Ok::<_, Error>(None))
        .await??;
    let mut body = g.body;
    let mut out = Vec::new();
    while let Some(b) = body.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

fn all_versions(e: &Engine, prefix: &str) -> Vec<(String, String, bool, bool)> {
    let q = VersionQuery {
        prefix: prefix.into(),
        max_keys: 100_000,
        ..Default::default()
    };
    let page = e.list_object_versions("bkt", &q).unwrap();
    assert!(!page.is_truncated);
    page.versions
        .into_iter()
        .map(|v| {
            (
                v.meta.key.clone(),
                v.meta.version_id().unwrap_or("null").to_string(),
                v.meta.delete_marker,
                v.is_latest,
            )
        })
        .collect()
}

async fn engine(dir: &std::path::Path) -> Engine {
    let e = Engine::open(config(dir)).unwrap();
    e.create_bucket("bkt").await.unwrap();
    e
}

fn sel(id: &str) -> VersionSel {
    VersionSel::parse(id).unwrap()
}

#[tokio::test]
async fn enabled_bucket_keeps_every_version_and_deletes_make_markers() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    let bodies = [data(1, 100), data(2, 200 * 1024), data(3, 10)];
    let mut ids = Vec::new();
    for b in &bodies {
        let m = put(&e, "bkt", "k", b).await;
        assert!(m.versioned);
        ids.push(m.version_id().unwrap().to_string());
    }
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids sort by age: {ids:?}"
    );
    for (id, b) in ids.iter().zip(&bodies) {
        assert_eq!(&get_version(&e, "k", &sel(id)).await.unwrap(), b);
    }
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), bodies[2]);
    let listed = all_versions(&e, "");
    let want: Vec<_> = ids
        .iter()
        .rev()
        .enumerate()
        .map(|(i, id)| ("k".to_string(), id.clone(), false, i == 0))
        .collect();
    assert_eq!(listed, want);

    // A delete puts a marker on top: the key is gone for reads and listings, its versions stay.
    let d = e
        .delete_object_version("bkt", "k", VersionSel::Latest)
        .await
        .unwrap();
    assert!(d.existed && d.delete_marker);
    let marker = d.version_id.unwrap();
    match e.head_object("bkt", "k") {
        Err(Error::DeleteMarker {
            by_id: false,
            version_id,
            ..
        }) => assert_eq!(version_id, marker),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        e.head_object_version("bkt", "k", &sel(&marker)),
        Err(Error::DeleteMarker { by_id: true, .. })
    ));
    let page = e
        .list_objects(
            "bkt",
            &ListQuery {
                max_keys: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert!(page.objects.is_empty());
    assert_eq!(all_versions(&e, "").len(), 4);
    assert_eq!(
        get_version(&e, "k", &sel(&ids[1])).await.unwrap(),
        bodies[1]
    );

    // Removing the marker brings the object back; removing the latest version promotes the
    // one before it.
    let d = e
        .delete_object_version("bkt", "k", sel(&marker))
        .await
        .unwrap();
    assert!(d.existed && d.delete_marker);
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), bodies[2]);
    e.delete_object_version("bkt", "k", sel(&ids[2]))
        .await
        .unwrap();
    assert_eq!(get(&e, "bkt", "k", None).await.unwrap(), bodies[1]);
    assert!(matches!(
        e.head_object_version("bkt", "k", &sel(&ids[2])),
        Err(Error::NoSuchVersion { .. })
    ));
    // A bucket with versions is not empty.
    assert!(matches!(
        e.delete_bucket("bkt").await,
        Err(Error::BucketNotEmpty(_))
    ));
    assert!(e.fsck().unwrap().is_clean());

    // Deleting every version frees every chunk.
    for id in &ids[..2] {
        e.delete_object_version("bkt", "k", sel(id)).await.unwrap();
    }
    assert!(all_versions(&e, "").is_empty());
    e.gc(false).await.unwrap();
    assert!(e.chunk_records().unwrap().is_empty());
    assert!(e.fsck().unwrap().is_clean());
    e.delete_bucket("bkt").await.unwrap();
}

#[tokio::test]
async fn suspended_bucket_replaces_the_null_version_only() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    // Written before versioning: the null version, with no id shown.
    let before = put(&e, "bkt", "k", &data(1, 300 * 1024)).await;
    assert_eq!(before.version_id(), None);
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    let v1 = put(&e, "bkt", "k", &data(2, 300 * 1024)).await;
    assert_eq!(
        get_version(&e, "k", &VersionSel::Null).await.unwrap(),
        data(1, 300 * 1024)
    );
    e.set_bucket_versioning("bkt", Versioning::Suspended)
        .await
        .unwrap();
    let n = put(&e, "bkt", "k", &data(3, 300 * 1024)).await;
    assert_eq!(n.version_id(), Some("null"));
    let listed = all_versions(&e, "");
    assert_eq!(
        listed,
        vec![
            ("k".into(), "null".into(), false, true),
            ("k".into(), v1.version_id().unwrap().into(), false, false),
        ],
        "the old null version was replaced, the enabled one kept"
    );
    // A delete while suspended makes a null marker, replacing the null version.
    let d = e
        .delete_object_version("bkt", "k", VersionSel::Latest)
        .await
        .unwrap();
    assert_eq!(d.version_id.as_deref(), Some("null"));
    assert_eq!(all_versions(&e, "").len(), 2);
    e.gc(false).await.unwrap();
    let st = e.status().unwrap();
    assert_eq!(
        (st.objects, st.noncurrent_versions, st.delete_markers),
        (0, 1, 1)
    );
    assert_eq!(st.chunk_bytes, 300 * 1024, "only v1's data is kept");
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn copies_renames_tags_and_conditions_by_version() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    let v1 = put(&e, "bkt", "src", b"one").await;
    put(&e, "bkt", "src", b"two").await;
    let opts = CopyOptions {
        source_version: sel(v1.version_id().unwrap()),
        ..Default::default()
    };
    e.copy_object("bkt", "src", "bkt", "dst", opts)
        .await
        .unwrap();
    assert_eq!(get(&e, "bkt", "dst", None).await.unwrap(), b"one");

    // Tags on an old version stay on it.
    e.update_version_attrs("bkt", "src", sel(v1.version_id().unwrap()), |a| {
        a.tags.insert("t".into(), "1".into());
    })
    .await
    .unwrap();
    let old = e
        .head_object_version("bkt", "src", &sel(v1.version_id().unwrap()))
        .unwrap();
    assert_eq!(old.attrs.tags.get("t").map(String::as_str), Some("1"));
    assert!(e.head_object("bkt", "src").unwrap().attrs.tags.is_empty());

    // A rename is a new version of the target and a marker on the source.
    e.rename_object("bkt", "src", "bkt", "moved").await.unwrap();
    assert_eq!(get(&e, "bkt", "moved", None).await.unwrap(), b"two");
    assert!(matches!(
        e.head_object("bkt", "src"),
        Err(Error::DeleteMarker { .. })
    ));
    assert_eq!(
        all_versions(&e, "src").iter().filter(|v| v.2).count(),
        1,
        "one marker"
    );
    // A delete marker is no object to conditions: If-None-Match: * succeeds.
    let opts = engine::PutOptions {
        if_none_match: Some("*".into()),
        ..Default::default()
    };
    e.put_object("bkt", "src", &b"three"[..], opts)
        .await
        .unwrap();
    assert!(matches!(
        VersionSel::parse("not-a-version"),
        Err(Error::InvalidVersionId(_))
    ));
    assert!(e.fsck().unwrap().is_clean());
}

#[tokio::test]
async fn version_listing_pages_by_key_and_version() {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    e.set_bucket_versioning("bkt", Versioning::Enabled)
        .await
        .unwrap();
    for k in ["a", "d/x", "d/y", "e"] {
        for i in 0..3u8 {
            put(&e, "bkt", k, &[i]).await;
        }
    }
    e.delete_object("bkt", "e").await.unwrap();
    let full = all_versions(&e, "");
    assert_eq!(full.len(), 13);
    for max in 1..6 {
        let mut got = Vec::new();
        let mut q = VersionQuery {
            max_keys: max,
            ..Default::default()
        };
        loop {
            let p = e.list_object_versions("bkt", &q).unwrap();
            assert!(p.versions.len() <= max);
            got.extend(p.versions.into_iter().map(|v| {
                (
                    v.meta.key.clone(),
                    v.meta.version_id().unwrap().to_string(),
                    v.meta.delete_marker,
                    v.is_latest,
                )
            }));
            if !p.is_truncated {
                break;
            }
            q.key_marker = p.next_key_marker;
            q.version_id_marker = p.next_version_id_marker;
        }
        assert_eq!(got, full, "pages of {max}");
    }
    // With a delimiter: `d/` is one common prefix; a key marker skips it.
    let q = VersionQuery {
        delimiter: Some("/".into()),
        max_keys: 100,
        ..Default::default()
    };
    let p = e.list_object_versions("bkt", &q).unwrap();
    assert_eq!(p.common_prefixes, vec!["d/".to_string()]);
    assert_eq!(p.versions.len(), 7);
    let p = e
        .list_object_versions(
            "bkt",
            &VersionQuery {
                key_marker: Some("d/".into()),
                ..q.clone()
            },
        )
        .unwrap();
    assert!(p.common_prefixes.is_empty());
    assert!(p.versions.iter().all(|v| v.meta.key == "e"));
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Op {
    Put(usize, u8),
    Delete(usize),
    /// Deletes the n-th (modulo) listed version of a key.
    DeleteVersion(usize, usize),
    Versioning(bool),
}

const KEYS: [&str; 4] = ["a", "b/c", "b/d", "e"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..KEYS.len(), any::<u8>()).prop_map(|(k, b)| Op::Put(k, b)),
        2 => (0..KEYS.len()).prop_map(Op::Delete),
        2 => (0..KEYS.len(), 0..8usize).prop_map(|(k, n)| Op::DeleteVersion(k, n)),
        1 => any::<bool>().prop_map(Op::Versioning),
    ]
}

/// S3's rules, kept as simply as they can be said: per key, its versions newest first as
/// (version id, delete marker, body).
#[derive(Default)]
struct Model {
    state: Option<Versioning>,
    keys: BTreeMap<String, Vec<(String, bool, Vec<u8>)>>,
}

impl Model {
    fn write(&mut self, key: &str, id: Option<&str>, marker: bool, body: Vec<u8>) {
        let vs = self.keys.entry(key.to_string()).or_default();
        let id = match (self.state, id) {
            (Some(Versioning::Enabled), Some(id)) => id.to_string(),
            _ => {
                vs.retain(|v| v.0 != "null");
                "null".to_string()
            }
        };
        vs.insert(0, (id, marker, body));
    }
}

fn body_of(b: u8) -> Vec<u8> {
    // Every fourth body spans chunks, so versions share and free real chunks.
    if b.is_multiple_of(4) {
        data(b as u64, 150 * 1024)
    } else {
        vec![b; 1 + b as usize % 7]
    }
}

async fn run_ops(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let e = engine(dir.path()).await;
    let mut m = Model::default();
    for op in ops {
        match op {
            Op::Put(k, b) => {
                let meta = put(&e, "bkt", KEYS[k], &body_of(b)).await;
                m.write(KEYS[k], meta.version_id(), false, body_of(b));
            }
            Op::Delete(k) => {
                let d = e
                    .delete_object_version("bkt", KEYS[k], VersionSel::Latest)
                    .await
                    .unwrap();
                if m.state.is_none() {
                    m.keys.remove(KEYS[k]);
                } else {
                    m.write(KEYS[k], d.version_id.as_deref(), true, Vec::new());
                }
            }
            Op::DeleteVersion(k, n) => {
                let Some(vs) = m.keys.get_mut(KEYS[k]) else {
                    continue;
                };
                if vs.is_empty() || m.state.is_none() {
                    continue;
                }
                let (id, _, _) = vs.remove(n % vs.len());
                e.delete_object_version("bkt", KEYS[k], sel(&id))
                    .await
                    .unwrap();
            }
            Op::Versioning(on) => {
                let s = if on {
                    Versioning::Enabled
                } else {
                    Versioning::Suspended
                };
                e.set_bucket_versioning("bkt", s).await.unwrap();
                m.state = Some(s);
            }
        }
        m.keys.retain(|_, v| !v.is_empty());
        // The engine's versions, latest flags and bodies are the model's.
        let want: Vec<_> = m
            .keys
            .iter()
            .flat_map(|(k, vs)| {
                vs.iter()
                    .enumerate()
                    .map(move |(i, v)| (k.clone(), v.0.clone(), v.1, i == 0))
            })
            .collect();
        assert_eq!(all_versions(&e, ""), want);
        let live: Vec<String> = m
            .keys
            .iter()
            .filter(|(_, vs)| !vs[0].1)
            .map(|(k, _)| k.clone())
            .collect();
        let listed: Vec<String> = e
            .list_objects(
                "bkt",
                &ListQuery {
                    max_keys: 100,
                    ..Default::default()
                },
            )
            .unwrap()
            .objects
            .into_iter()
            .map(|o| o.key)
            .collect();
        assert_eq!(listed, live);
    }
    for (k, vs) in &m.keys {
        for (i, (id, marker, body)) in vs.iter().enumerate() {
            if *marker {
                assert!(get_version(&e, k, &sel(id)).await.is_err());
                continue;
            }
            assert_eq!(&get_version(&e, k, &sel(id)).await.unwrap(), body);
            if i == 0 {
                assert_eq!(&get(&e, "bkt", k, None).await.unwrap(), body);
            }
        }
    }
    let f = e.fsck().unwrap();
    assert!(f.is_clean(), "{f:?}");
    e.gc(false).await.unwrap();
    assert!(e.fsck().unwrap().is_clean());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn versions_match_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run_ops(ops));
    }
}
