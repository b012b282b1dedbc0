//! The engine on an etcd with etcd's own default limits (128 compares and 128 operations a
//! transaction): what must fit in them does. A multipart upload completes with more chunks
//! than one transaction could reference, because the parts hand their chunk references over
//! to the object instead of the completion counting each chunk again. Needs Debian's
//! `etcd-server`.

#[path = "../../tests/support/etcd.rs"]
mod etcd;

use engine::{Engine, EngineConfig, Metadata, ObjectAttrs, PutOptions};
use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_multipart_upload_of_more_chunks_than_one_transaction_takes_completes() {
    let server = etcd::Etcd::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = EngineConfig::new(dir.path());
    cfg.chunk_size = 4096;
    cfg.inline_threshold = 0;
    cfg.gc_interval = std::time::Duration::ZERO;
    cfg.metadata = Metadata::Etcd {
        endpoints: vec![server.endpoint.clone()],
        prefix: "/predastore/limits/".into(),
    };
    let e = Engine::open(cfg).unwrap();
    e.create_bucket("bkt").await.unwrap();
    let id = e
        .create_multipart_upload("bkt", "big", ObjectAttrs::default())
        .await
        .unwrap();
    // Four parts of 40 chunks each: each part's commit fits in a transaction, the 160 chunks
    // together would not (a compare and a put each).
    let mut whole = Vec::new();
    let mut parts = Vec::new();
    for n in 1..=4u32 {
        let body = engine::testing::pseudo_random(100 + n as u64, 40 * 4096);
        let info = e
            .upload_part("bkt", "big", &id, n, &body[..], None)
            .await
            .unwrap();
        parts.push((n, info.etag));
        whole.extend_from_slice(&body);
    }
    let opts = PutOptions {
        min_part_size: Some(1),
        ..Default::default()
    };
    let meta = e
        .complete_multipart_upload("bkt", "big", &id, parts, opts)
        .await
        .unwrap();
    assert_eq!(meta.size, whole.len() as u64);
    let mut body = e.get_object("bkt", "big", None).await.unwrap().body;
    let mut got = Vec::new();
    while let Some(b) = body.next().await {
        got.extend_from_slice(&b.unwrap());
    }
    assert!(got == whole, "the object reads back bit-exact");
    // Every chunk counts exactly the manifests that use it, and the parts are gone.
    let fsck = e.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    assert_eq!(fsck.unreferenced_manifests, 0);
    assert_eq!(e.chunk_records().unwrap().len(), 160);
    assert!(e.chunk_records().unwrap().values().all(|r| r.refs == 1));
    // A put referencing the same 160 chunks in one commit meets the limit this avoids.
    assert!(e
        .put_object("bkt", "again", &whole[..], PutOptions::default())
        .await
        .is_err());
}
