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
    identity: predastore_cluster::NodeIdentity,
    _dir: tempfile::TempDir,
}

/// The nodes' ids and shard service addresses.
struct Names {
    ids: Vec<String>,
    addrs: Vec<SocketAddr>,
}

impl Names {
    fn new(n: usize) -> Names {
        Names {
            ids: (0..n).map(|i| format!("node-{i}")).collect(),
            addrs: (0..n).map(|_| free_addr()).collect(),
        }
    }

    /// The layout of members `of` (two disks each).
    fn layout(&self, of: &[usize]) -> Layout {
        let members = of
            .iter()
            .map(|&i| Member {
                id: self.ids[i].clone(),
                disks: 2,
            })
            .collect();
        Layout::new(members, 4, 2).unwrap()
    }

    /// Node `me`'s placement: generations `gens` (number, members), clients of `reach`.
    fn shards(
        &self,
        me: &predastore_cluster::NodeIdentity,
        gens: &[(u32, &[usize])],
        reach: &[usize],
    ) -> ClusterShards {
        let transports = reach
            .iter()
            .filter(|&&peer| self.ids[peer] != me.node_id)
            .map(|&peer| {
                let c = ShardClient::new(
                    me,
                    &self.ids[peer],
                    &self.addrs[peer].to_string(),
                    Timeouts::default(),
                )
                .unwrap();
                (
                    self.ids[peer].clone(),
                    Arc::new(c) as Arc<dyn ShardTransport>,
                )
            })
            .collect();
        ClusterShards {
            layouts: gens.iter().map(|(g, of)| (*g, self.layout(of))).collect(),
            me: me.node_id.clone(),
            transports,
        }
    }
}

/// Nodes `0..n` of `names`, placing by generation 1 over the first `first` of them.
async fn cluster(etcd: &etcd::Etcd, names: &Names, first: usize) -> Vec<Node> {
    cluster_limited(etcd, names, first, engine::DEFAULT_WRITE_LIMIT).await
}

/// [`cluster`], with writes limited to `write_limit` from their first shard to their commit.
async fn cluster_limited(
    etcd: &etcd::Etcd,
    names: &Names,
    first: usize,
    write_limit: std::time::Duration,
) -> Vec<Node> {
    let ca = ClusterCa::generate("three").unwrap();
    let n = names.ids.len();
    let all: Vec<usize> = (0..n).collect();
    let gen1: Vec<usize> = (0..first).collect();
    assert_eq!(names.layout(&gen1).cap(), 2);
    let mut nodes = Vec::new();
    for me in 0..n {
        let identity = ca.issue(&names.ids[me], &["127.0.0.1".into()]).unwrap();
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
        cfg.cluster = Some(names.shards(&identity, &[(1, &gen1)], &all));
        cfg.write_limit = write_limit;
        let engine = Engine::open(cfg).unwrap();
        let service = ShardService::start(names.addrs[me], &identity, engine.local_shards())
            .await
            .unwrap();
        nodes.push(Node {
            engine,
            service: Some(service),
            identity,
            _dir: dir,
        });
    }
    nodes
}

/// Shards of each chunk per node (slots are numbered two per node, in node order).
fn shards_per_node(e: &Engine, nodes: usize) -> Vec<Vec<usize>> {
    let records = e.chunk_records().unwrap();
    records
        .keys()
        .map(|h| {
            let mut of_chunk = vec![0usize; nodes];
            for p in e.shard_locations(h).unwrap().iter().flatten() {
                of_chunk[p.disk / 2] += 1;
            }
            of_chunk
        })
        .collect()
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
    let names = Names::new(NODES);
    let mut nodes = cluster(&etcd, &names, NODES).await;
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
    for of_chunk in shards_per_node(&e0, NODES) {
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

/// Membership changes under data: a fourth node joins (generation 2) and rebalance moves
/// the chunks to it; then a node is lost and removed (generation 3) and rebalance rebuilds
/// its shards on the others from parity. After each, every object reads bit-exact with any
/// one node of the newest layout gone, and no node holds more shards of a chunk than the
/// layout allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_join_and_a_lost_node_are_rebalanced_and_every_object_survives() {
    let etcd = etcd::Etcd::start(etcd::DEPLOYMENT_LIMITS);
    let names = Names::new(4);
    let mut nodes = cluster(&etcd, &names, 3).await;
    let e0 = nodes[0].engine.clone();
    e0.create_bucket("bkt").await.unwrap();
    let mut objects = Vec::new();
    for i in 0..4u64 {
        let body = engine::testing::pseudo_random(10 + i, 300 << 10);
        nodes[i as usize % 3]
            .engine
            .put_object("bkt", &format!("o{i}"), &body[..], PutOptions::default())
            .await
            .unwrap();
        objects.push(body);
    }
    let check_all = |nodes: &[Node], readers: Vec<usize>| {
        let objects = objects.clone();
        let engines: Vec<Engine> = readers.iter().map(|&r| nodes[r].engine.clone()).collect();
        async move {
            for e in engines {
                for (i, body) in objects.iter().enumerate() {
                    let got = get(&e, "bkt", &format!("o{i}")).await.unwrap();
                    assert!(got == *body, "o{i} differs");
                }
            }
        }
    };
    assert!(shards_per_node(&e0, 4).iter().all(|c| c[3] == 0));

    // Node 3 joins: generation 2 over all four; every node follows; node 0 rebalances.
    let all: Vec<usize> = (0..4).collect();
    for n in &nodes {
        let c = names.shards(&n.identity, &[(1, &[0, 1, 2]), (2, &all)], &all);
        n.engine.set_cluster(&c).unwrap();
    }
    assert_eq!(e0.current_layout(), 2);
    let rep = e0.rebalance(Default::default()).await.unwrap();
    let chunks = e0.chunk_records().unwrap().len() as u64;
    assert_eq!(rep.chunks_moved, chunks, "{rep:?}");
    assert_eq!((rep.chunks_failed, rep.chunks_left), (0, 0), "{rep:?}");
    assert_eq!(
        rep.shards_rebuilt, 0,
        "every old place was readable: {rep:?}"
    );
    // Only the shards whose place changed moved: node 3's share and what its cap pushed.
    assert!(rep.shards_moved < chunks * 6 / 2, "{rep:?}");
    let spread = shards_per_node(&e0, 4);
    assert!(spread
        .iter()
        .all(|c| c.iter().all(|&n| n <= 2) && c.iter().sum::<usize>() == 6));
    assert!(spread.iter().any(|c| c[3] > 0), "node 3 got shards");
    assert_eq!(
        e0.chunks_by_layout()
            .await
            .unwrap()
            .keys()
            .collect::<Vec<_>>(),
        [&2]
    );
    // A second pass finds nothing to do.
    let again = e0.rebalance(Default::default()).await.unwrap();
    assert_eq!((again.chunks_moved, again.chunks_left), (0, 0));
    // Any one node may be lost: node 0's service goes away, the others read everything.
    let s0 = nodes[0].service.take().unwrap();
    s0.stop().await;
    check_all(&nodes, vec![1, 2, 3]).await;
    nodes[0].service = Some(
        ShardService::start(names.addrs[0], &nodes[0].identity, e0.local_shards())
            .await
            .unwrap(),
    );

    // Node 1 is lost for good and removed: generation 3 over 0, 2, 3, nobody reads node 1.
    nodes[1].service.take().unwrap().stop().await;
    let left = [0usize, 2, 3];
    for &i in &left {
        let c = names.shards(
            &nodes[i].identity,
            &[(1, &[0, 1, 2]), (2, &all), (3, &left)],
            &left,
        );
        nodes[i].engine.set_cluster(&c).unwrap();
    }
    let rep = e0.rebalance(Default::default()).await.unwrap();
    assert_eq!(rep.chunks_moved, chunks, "{rep:?}");
    assert!(
        rep.shards_rebuilt > 0,
        "node 1's shards were rebuilt: {rep:?}"
    );
    assert_eq!(rep.chunks_left, 0, "{rep:?}");
    let spread = shards_per_node(&e0, 4);
    assert!(spread
        .iter()
        .all(|c| c[1] == 0 && c.iter().all(|&n| n <= 2)));
    // Now node 3 goes too: 0 and 2 still hold four shards of every chunk.
    nodes[3].service.take().unwrap().stop().await;
    check_all(&nodes, vec![0, 2]).await;
}

/// A file open for writing on a node's mount is a draft owned by that node's process: GC, which
/// runs on one node, must not take it for a dead process's; the node itself releases the drafts
/// of its processes that died.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_node_judges_only_its_own_processes_drafts() {
    let etcd = etcd::Etcd::start(etcd::DEPLOYMENT_LIMITS);
    let names = Names::new(NODES);
    let nodes = cluster(&etcd, &names, NODES).await;
    let (e0, e1) = (nodes[0].engine.clone(), nodes[1].engine.clone());
    e0.create_bucket("bkt").await.unwrap();
    let data = engine::testing::pseudo_random(2, 256 << 10);
    e0.put_object("bkt", "open", &data[..], PutOptions::default())
        .await
        .unwrap();
    // Node 1 opens the object for writing: its chunks are pinned by node 1's draft.
    let (draft, _) = e1.open_draft("bkt", "open", true).await.unwrap();
    let draft = draft.expect("a draft pins the object's chunks");
    // GC on node 0 leaves it alone, and so does node 0 releasing stale drafts.
    let rep = e0.gc(false).await.unwrap();
    assert_eq!(rep.stale_drafts_released, 0, "node 1's live draft taken");
    assert_eq!(e0.draft_count().unwrap(), 1);
    // Another process of node 1 opens the object too, and dies without closing its draft.
    let other = Engine::open(e1.config().clone()).unwrap();
    let (lost, _) = other.open_draft("bkt", "open", true).await.unwrap();
    assert!(lost.is_some());
    drop(other);
    assert_eq!(e0.draft_count().unwrap(), 2);
    // (Blocking: off the runtime's workers, as GC runs it.)
    let release = |e: &Engine| {
        let e = e.clone();
        tokio::task::spawn_blocking(move || e.release_stale_drafts().unwrap())
    };
    assert_eq!(release(&e0).await.unwrap(), 0, "not node 0's to judge");
    assert_eq!(release(&e1).await.unwrap(), 1, "node 1's dead process");
    assert_eq!(e0.draft_count().unwrap(), 1);
    // The live draft still reads what it pinned, after a GC, with the object deleted meanwhile.
    e0.delete_object("bkt", "open").await.unwrap();
    e0.gc(false).await.unwrap();
    let pinned = e0.chunk_records().unwrap();
    assert_eq!(pinned.len(), 4, "the open file's chunks are kept");
    // Node 1 removed from the cluster with the file still open: another node releases its
    // drafts (node 1 never its own), and the chunks go at the next GC.
    let of_member = |e: &Engine, member: &'static str| {
        let e = e.clone();
        tokio::task::spawn_blocking(move || e.release_drafts_of_member(member).unwrap())
    };
    assert_eq!(of_member(&e1, "node-1").await.unwrap(), 0, "its own");
    assert_eq!(of_member(&e0, "node-1").await.unwrap(), 1);
    assert_eq!(e0.draft_count().unwrap(), 0);
    e0.gc(false).await.unwrap();
    assert!(e0.chunk_records().unwrap().is_empty());
    e1.close_draft(draft);
}

/// Stores `data` for a later draft commit on `e` (blocking, off the runtime's workers).
async fn store_for_draft(e: &Engine, data: Vec<u8>) -> Vec<engine::StoredChunk> {
    let e = e.clone();
    let guard = e.write_guard().await.unwrap();
    tokio::task::spawn_blocking(move || {
        e.store_draft_data(&guard, engine::compression::Compression::Off, &data)
            .unwrap()
    })
    .await
    .unwrap()
}

/// Commits `chunks` as the object `key` through a new draft on `e`.
async fn commit_chunks(
    e: &Engine,
    key: &str,
    draft: Option<engine::Draft>,
    chunks: Vec<engine::StoredChunk>,
) -> engine::Result<engine::ObjectMeta> {
    let mut draft = draft;
    e.commit_draft(
        &mut draft,
        "bkt",
        key,
        engine::DraftData::Chunks(chunks.into_iter().map(|c| (c, None)).collect()),
        engine::DraftCommit {
            etag: "0".repeat(32),
            part_sizes: Vec::new(),
            attrs: Box::new(|_| engine::ObjectAttrs::default()),
            replaces: None,
        },
        false,
    )
    .await
}

/// Each node's orphan sweep (blocking, off the runtime's workers), summed: bytes freed,
/// bytes waiting, volumes removed.
async fn sweep_all(nodes: &[Node]) -> (u64, u64, u64) {
    let mut sum = (0, 0, 0);
    for n in nodes {
        let e = n.engine.clone();
        let r = tokio::task::spawn_blocking(move || e.sweep_orphans())
            .await
            .unwrap()
            .unwrap();
        sum.0 += r.orphan_bytes_freed;
        sum.1 += r.orphan_bytes_waiting;
        sum.2 += r.volumes_removed;
    }
    sum
}

/// Shards of writes that never committed are freed by the nodes' own sweeps once unnamed
/// for twice the write limit; a write still within the limit, and chunks a draft pinned, are
/// left alone however long they wait; a commit later than the limit is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orphaned_shards_are_freed_after_twice_the_write_limit_and_live_writes_kept() {
    use std::time::{Duration, Instant};
    const LIMIT: Duration = Duration::from_secs(3);
    let etcd = etcd::Etcd::start(etcd::DEPLOYMENT_LIMITS);
    let names = Names::new(NODES);
    let nodes = cluster_limited(&etcd, &names, NODES, LIMIT).await;
    let (e0, e1, e2) = (&nodes[0].engine, &nodes[1].engine, &nodes[2].engine);
    e0.create_bucket("bkt").await.unwrap();
    // A draft stores what it is given as one chunk (the mount gives a chunk-sized slot): one
    // of 256 KiB is six shards of 64 KiB, each in a region of 68 KiB (header, alignment).
    let write_regions = 6 * 69_632u64;
    let data = |seed: u64| engine::testing::pseudo_random(seed, 256 << 10);
    let committed = data(1);
    e0.put_object("bkt", "committed", &committed[..], PutOptions::default())
        .await
        .unwrap();
    // A write that crashed before its commit: its shards on every node, named by nothing.
    let crashed = store_for_draft(e1, data(2)).await;
    drop(crashed);
    // Another process of node 1 that stored a chunk and died: what it wrote on node 1 is in
    // volumes of its own, which nothing appends to any more.
    let dead = Engine::open(e1.config().clone()).unwrap();
    drop(store_for_draft(&dead, data(6)).await);
    drop(dead);
    // A write that will come to its commit too late, one in flight that commits in time,
    // and an open file whose draft pins what it stored.
    let late = store_for_draft(e2, data(3)).await;
    let in_flight = store_for_draft(e0, data(4)).await;
    let (pinned_draft, _) = e1.open_draft("bkt", "open", false).await.unwrap();
    assert!(pinned_draft.is_none(), "a new file pins nothing yet");
    let mut pinned_draft = pinned_draft;
    let open = store_for_draft(e1, data(5)).await;
    let open = e1.pin_draft_chunks(&mut pinned_draft, open).await.unwrap();
    assert_eq!(e1.draft_count().unwrap(), 1);
    // First sweep: the unnamed shards are seen, none freed (only space in the dead process's
    // volumes that holds no shard, if its preallocation counts as data here).
    let first_sweep = Instant::now();
    let (_, waiting, _) = sweep_all(&nodes).await;
    assert_eq!(waiting, 4 * write_regions, "crashed, dead, late, in flight");
    // The write in flight commits within the limit: its shards are named from now on.
    commit_chunks(e0, "in-flight", None, in_flight)
        .await
        .unwrap();
    // Past the limit, the late one is refused and changes nothing.
    tokio::time::sleep(LIMIT.saturating_sub(first_sweep.elapsed()) + Duration::from_millis(300))
        .await;
    match commit_chunks(e2, "late", None, late).await {
        Err(engine::Error::WriteTooSlow { held, limit }) => {
            assert!(held > limit && limit == LIMIT, "{held:?} {limit:?}")
        }
        other => panic!("a commit past the write limit: {other:?}"),
    }
    assert!(matches!(
        get(e1, "bkt", "late").await,
        Err(engine::Error::NoSuchKey { .. })
    ));
    // Before twice the limit since they were first seen, the orphans still wait.
    let r = sweep_all(&nodes).await;
    assert_eq!(r, (0, 3 * write_regions, 0), "crashed, dead and late wait");
    // After it, each node frees its part of them.
    tokio::time::sleep(
        (2 * LIMIT).saturating_sub(first_sweep.elapsed()) + Duration::from_millis(300),
    )
    .await;
    // The dead process's two volumes on node 1 held nothing else: they go.
    let r = sweep_all(&nodes).await;
    assert_eq!(r, (3 * write_regions, 0, 2));
    // The pinned chunks, older than the limit now, commit with the open file.
    commit_chunks(e1, "open", pinned_draft, open).await.unwrap();
    assert_eq!(e1.draft_count().unwrap(), 0);
    for e in [e0, e1, e2] {
        assert_eq!(get(e, "bkt", "committed").await.unwrap(), committed);
        assert_eq!(get(e, "bkt", "in-flight").await.unwrap(), data(4));
        assert_eq!(get(e, "bkt", "open").await.unwrap(), data(5));
    }
    // Every shard of every named chunk is where its record says, intact.
    let scrub = engine::HealOptions {
        mode: engine::HealMode::Scrub,
        ..Default::default()
    };
    let rep = e0.heal(scrub, Box::new(|_| {})).await.unwrap();
    assert_eq!(rep.chunks_checked, 4 + 1 + 1);
    assert_eq!(
        (rep.shards_missing, rep.shards_corrupt),
        (0, 0),
        "a named shard was freed"
    );
    assert_eq!(sweep_all(&nodes).await, (0, 0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn content_deleted_and_written_again_elsewhere_survives_another_nodes_gc() {
    let etcd = etcd::Etcd::start(etcd::DEPLOYMENT_LIMITS);
    let names = Names::new(NODES);
    let nodes = cluster(&etcd, &names, NODES).await;
    let (e0, e1) = (nodes[0].engine.clone(), nodes[1].engine.clone());
    e0.create_bucket("bkt").await.unwrap();
    let data = engine::testing::pseudo_random(3, 256 << 10);
    e0.put_object("bkt", "a", &data[..], PutOptions::default())
        .await
        .unwrap();
    e0.delete_object("bkt", "a").await.unwrap();
    // Node 1 writes the same bytes while the old chunks wait, unreferenced, for GC. Node 0's
    // GC does not wait for node 1's writers: node 1 must store the chunks again rather than
    // count on ones that GC takes before its commit.
    let mut stored = Vec::new();
    for piece in data.chunks(e1.config().chunk_size) {
        stored.extend(store_for_draft(&e1, piece.to_vec()).await);
    }
    let rep = e0.gc(false).await.unwrap();
    assert_eq!(
        rep.chunks_removed, 4,
        "the deleted object's chunks collected"
    );
    commit_chunks(&e1, "b", None, stored)
        .await
        .expect("the commit finds its chunks");
    assert_eq!(get(&nodes[2].engine, "bkt", "b").await.unwrap(), data);
    let fsck = e0.fsck().unwrap();
    assert!(fsck.is_clean(), "{fsck:?}");
    assert_eq!(e0.chunk_records().unwrap().len(), 4);
}
