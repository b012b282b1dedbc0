//! Three nodes of one store in this process, each an engine with its own data directory and
//! two disks, their metadata on one real etcd, their shards spread over all six disks through
//! each other's shard services (real TLS on 127.0.0.1). What one node writes the others read
//! bit-exact and list; with one node's service stopped, the other two still read everything
//! and still write (4 + 2 on three nodes: each holds two shards of a chunk).

#[path = "../../tests/support/etcd.rs"]
mod etcd;

use std::net::SocketAddr;
use std::sync::Arc;

use engine::{
    ClusterShards, Durability, Engine, EngineConfig, Layout, ListQuery, Member, Metadata,
    PutOptions, ShardTransport,
};
use futures::StreamExt;
use predastore_cluster::client::Timeouts;
use predastore_cluster::{ClusterCa, ShardClient, ShardService};

const NODES: usize = 3;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

struct Node {
    engine: Engine,
    service: Option<ShardService>,
    _dir: tempfile::TempDir,
}

/// Three nodes: ids `node-0..2`, each serving its two disks at a free address.
async fn cluster(etcd: &etcd::Etcd) -> Vec<Node> {
    let ca = ClusterCa::generate("three").unwrap();
    let ids: Vec<String> = (0..NODES).map(|i| format!("node-{i}")).collect();
    let addrs: Vec<SocketAddr> = (0..NODES).map(|_| free_addr()).collect();
    let members: Vec<Member> = ids
        .iter()
        .map(|id| Member {
            id: id.clone(),
            disks: 2,
        })
        .collect();
    let layout = Layout::new(members, 4, 2).unwrap();
    assert_eq!(layout.cap(), 2);
    let mut nodes = Vec::new();
    for me in 0..NODES {
        let identity = ca.issue(&ids[me], &["127.0.0.1".into()]).unwrap();
        let transports = (0..NODES)
            .map(|peer| {
                (peer != me).then(|| {
                    let c = ShardClient::new(
                        &identity,
                        &ids[peer],
                        &addrs[peer].to_string(),
                        Timeouts::default(),
                    )
                    .unwrap();
                    Arc::new(c) as Arc<dyn ShardTransport>
                })
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = EngineConfig::new(dir.path());
        cfg.disks = vec![dir.path().join("d0"), dir.path().join("d1")];
        cfg.chunk_size = 64 << 10;
        cfg.inline_threshold = 1024;
        cfg.durability = Durability::Fsync;
        cfg.gc_interval = std::time::Duration::ZERO;
        cfg.metadata = Metadata::Etcd {
            endpoints: vec![etcd.endpoint.clone()],
            prefix: "/predastore/three/".into(),
        };
        cfg.cluster = Some(ClusterShards {
            layout: layout.clone(),
            me,
            transports,
        });
        let engine = Engine::open(cfg).unwrap();
        let service = ShardService::start(addrs[me], &identity, engine.local_shards())
            .await
            .unwrap();
        nodes.push(Node {
            engine,
            service: Some(service),
            _dir: dir,
        });
    }
    nodes
}

async fn get(e: &Engine, bucket: &str, key: &str) -> engine::Result<Vec<u8>> {
    let mut body = e.get_object(bucket, key, None).await?.body;
    let mut out = Vec::new();
    while let Some(b) = body.next().await {
        out.extend_from_slice(&b?);
    }
    Ok(out)
}

fn keys(e: &Engine, bucket: &str) -> Vec<String> {
    let q = ListQuery {
        prefix: String::new(),
        delimiter: None,
        start_after: None,
        max_keys: 1000,
    };
    let page = e.list_objects(bucket, &q).unwrap();
    page.objects.into_iter().map(|o| o.key).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_one_node_writes_the_others_read_and_one_node_may_be_lost() {
    let etcd = etcd::Etcd::start(etcd::DEPLOYMENT_LIMITS);
    let mut nodes = cluster(&etcd).await;
    let e0 = nodes[0].engine.clone();
    e0.create_bucket("bkt").await.unwrap();
    let big = engine::testing::pseudo_random(1, 1 << 20);
    let small = b"a small object, stored inline".to_vec();
    e0.put_object("bkt", "big", &big[..], PutOptions::default())
        .await
        .unwrap();
    nodes[1]
        .engine
        .put_object("bkt", "small", &small[..], PutOptions::default())
        .await
        .unwrap();
    // Every node reads both, bit-exact, and lists both.
    for n in &nodes {
        assert_eq!(get(&n.engine, "bkt", "big").await.unwrap(), big);
        assert_eq!(get(&n.engine, "bkt", "small").await.unwrap(), small);
        assert_eq!(keys(&n.engine, "bkt"), ["big", "small"]);
    }
    // The shards are on every node: each holds at most two of each chunk, and some.
    let records = e0.chunk_records().unwrap();
    assert_eq!(records.len(), 16, "1 MiB in 64 KiB chunks");
    let mut per_node = [0usize; NODES];
    for h in records.keys() {
        let places = e0.shard_locations(h).unwrap();
        let mut of_chunk = [0usize; NODES];
        for p in places.iter().flatten() {
            of_chunk[p.disk / 2] += 1;
        }
        assert!(of_chunk.iter().all(|&c| c <= 2), "{of_chunk:?}");
        assert_eq!(of_chunk.iter().sum::<usize>(), 6);
        for (t, c) in per_node.iter_mut().zip(of_chunk) {
            *t += c;
        }
    }
    assert!(per_node.iter().all(|&c| c > 0), "{per_node:?}");
    // Node 2 goes away: the others read everything from the four shards left, and write.
    nodes[2].service.take().unwrap().stop().await;
    for n in &nodes[..2] {
        assert_eq!(get(&n.engine, "bkt", "big").await.unwrap(), big);
    }
    let more = engine::testing::pseudo_random(2, 300 << 10);
    nodes[1]
        .engine
        .put_object(
            "bkt",
            "while-node-2-is-down",
            &more[..],
            PutOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(get(&e0, "bkt", "while-node-2-is-down").await.unwrap(), more);
}
