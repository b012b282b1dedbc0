//! The shard service over real TLS on 127.0.0.1: a node's disks used by another through
//! [`ShardClient`] meet the shard I/O contract; peers without a certificate of the cluster, with
//! one of another cluster, or answering for another node are refused; malformed requests get
//! 400 and change nothing; a dead or silent node fails requests at their deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Engine, EngineConfig, ShardLoc, ShardRange, ShardRead, ShardTransport};
use predastore_cluster::client::Timeouts;
use predastore_cluster::{ClusterCa, ShardClient, ShardService};

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A node: an engine in a fresh directory, serving its disks on a free port.
struct Node {
    engine: Engine,
    service: Option<ShardService>,
    _dir: tempfile::TempDir,
}

async fn node(ca: &ClusterCa, id: &str) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::open(EngineConfig::new(dir.path())).unwrap();
    let me = ca.issue(id, &["127.0.0.1".into()]).unwrap();
    let service = ShardService::start(any_port(), &me, engine.local_shards())
        .await
        .unwrap();
    Node {
        engine,
        service: Some(service),
        _dir: dir,
    }
}

impl Node {
    fn addr(&self) -> String {
        self.service.as_ref().unwrap().local_addr().to_string()
    }
}

fn client(ca: &ClusterCa, me: &str, peer: &str, addr: &str) -> Arc<ShardClient> {
    let id = ca.issue(me, &[]).unwrap();
    Arc::new(ShardClient::new(&id, peer, addr, Timeouts::default()).unwrap())
}

/// Blocking work (the engine's seams are synchronous) from the test's runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peers_disks_meet_the_shard_io_contract_over_mutual_tls() {
    let ca = ClusterCa::generate("test-cluster").unwrap();
    let n1 = node(&ca, "node-1").await;
    let c = client(&ca, "node-2", "node-1", &n1.addr());
    let engine = n1.engine.clone();
    blocking(move || {
        for disk in [0, 3] {
            engine::testing::shard_transport_contract(&engine, c.clone(), disk);
        }
        // A disk the node does not have.
        assert!(!c.is_online(6));
    })
    .await;
    n1.service.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_outside_the_cluster_or_posing_as_another_node_are_refused() {
    let ca = ClusterCa::generate("a").unwrap();
    let n1 = node(&ca, "node-1").await;
    let addr = n1.addr();
    let (h, p) = engine::testing::contract_shard(&[1; 32], 0, 7);
    // A node of another cluster (its own CA, even with the same name).
    let other = ClusterCa::generate("a").unwrap();
    let stranger = client(&other, "node-2", "node-1", &addr);
    // A client that expects node-3 at node-1's address: the certificate names node-1.
    let confused = client(&ca, "node-2", "node-3", &addr);
    let (h2, p2) = (h.clone(), p.clone());
    blocking(move || {
        for (who, c) in [("stranger", stranger), ("wrong peer", confused)] {
            let e = c.append(0, &h2, &p2, true).unwrap_err().to_string();
            assert!(e.contains("TLS"), "{who}: {e}");
            assert!(!c.is_online(0), "{who} was let in");
        }
    })
    .await;
    // Plain TLS without a client certificate: the handshake fails, no HTTP answer.
    let out = std::process::Command::new("curl")
        .args(["-sk", "--http2", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("https://{addr}/v1/disks/0"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "000",
        "no certificate, no answer"
    );
    // The cluster's own node gets in.
    let ok = client(&ca, "node-2", "node-1", &addr);
    blocking(move || {
        assert!(ok.is_online(0));
        ok.append(0, &h, &p, true).unwrap();
    })
    .await;
    n1.service.unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_400_with_a_reason_and_change_nothing() {
    let ca = ClusterCa::generate("c").unwrap();
    let n1 = node(&ca, "node-1").await;
    let dir = tempfile::tempdir().unwrap();
    let me = ca.issue("node-2", &[]).unwrap();
    let (cert, key, cacert) = (
        dir.path().join("cert.pem"),
        dir.path().join("key.pem"),
        dir.path().join("ca.pem"),
    );
    std::fs::write(&cert, &me.cert_pem).unwrap();
    std::fs::write(&key, &me.key_pem).unwrap();
    std::fs::write(&cacert, &me.ca_pem).unwrap();
    let volume_bytes = |e: &Engine| -> u64 { walk(&e.data_dir().join("disks")) };
    let port = n1.service.as_ref().unwrap().local_addr().port();
    let before = volume_bytes(&n1.engine);
    for (method, path, body, want) in [
        ("GET", "/v1/disks/zero", "", "disk must be a decimal"),
        ("POST", "/v1/disks/0/shards", "x", "data is missing"),
        ("POST", "/v1/disks/0/shards?data=1", "short", "header"),
        ("GET", "/v1/disks/0/shards/1/0?chunk=00", "", "64 hex"),
        ("DELETE", "/v1/disks/0/shards/1/0", "", "len is missing"),
        ("PATCH", "/v1/disks/0", "", "no such request"),
    ] {
        let out = std::process::Command::new("curl")
            .args(["-s", "--http2", "-X", method, "--data-binary", body])
            .args([
                "--cert",
                cert.to_str().unwrap(),
                "--key",
                key.to_str().unwrap(),
            ])
            .args(["--cacert", cacert.to_str().unwrap()])
            .args([
                "--resolve",
                &format!("node-1.node.predastore:{port}:127.0.0.1"),
            ])
            .args(["-w", "\n%{http_code}"])
            .arg(format!("https://node-1.node.predastore:{port}{path}"))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (msg, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        let want_code = if want == "header" { "422" } else { "400" };
        assert_eq!(code, want_code, "{method} {path}: {text}");
        assert!(
            msg.contains(want),
            "{method} {path}: {msg:?} lacks {want:?}"
        );
    }
    assert_eq!(
        volume_bytes(&n1.engine),
        before,
        "a refused request stored something"
    );
    n1.service.unwrap().stop().await;
}

/// Bytes of the files under `dir`.
fn walk(dir: &std::path::Path) -> u64 {
    let mut n = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            n += walk(&p);
        } else {
            n += e.metadata().map(|m| m.len()).unwrap_or(0);
        }
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_or_silent_node_fails_requests_at_their_deadline_not_never() {
    let ca = ClusterCa::generate("d").unwrap();
    // Silent: accepts TCP connections and never says a word.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    // Dead: a port nobody listens on.
    let dead_addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    let me = ca.issue("node-2", &[]).unwrap();
    let t = Timeouts {
        connect: Duration::from_millis(500),
        read: Duration::from_millis(500),
        write: Duration::from_millis(500),
        down_for: Duration::from_secs(5),
    };
    let range = ShardRange {
        chunk: [2; 32],
        index: 0,
        loc: ShardLoc {
            volume: 1,
            offset: 0,
        },
        shard_len: 100,
        lo: 0,
        hi: 100,
    };
    blocking(move || {
        for addr in [silent_addr, dead_addr] {
            let c = ShardClient::new(&me, "node-1", &addr, t).unwrap();
            let start = Instant::now();
            assert!(matches!(c.read(0, &range), ShardRead::Missing));
            let first = start.elapsed();
            assert!(first < Duration::from_secs(20), "{addr}: {first:?}");
            // Taken for down now: the next request fails without waiting again.
            let start = Instant::now();
            assert!(!c.is_online(0));
            assert!(c.append(0, &[0; 8], &[1; 8], true).is_err());
            assert!(start.elapsed() < first + Duration::from_secs(5));
        }
        drop(silent);
    })
    .await;
}
