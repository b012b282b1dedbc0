//! A node's own part of the cluster on disk and at start: its identity in
//! `<data dir>/cluster/` (`ca.pem`, `node.pem`, `node.key`, written by `s3d cluster join`),
//! and the shard placement it starts with — the members recorded in the store, a client of
//! each other member's shard service.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::kv::Store;
use engine::{ClusterShards, ShardTransport};

use crate::ca::NodeIdentity;
use crate::client::{ShardClient, Timeouts};
use crate::membership::{self, LayoutRecord, MemberRecord};
use crate::ClusterError;

/// `<data dir>/cluster`.
pub fn identity_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("cluster")
}

/// Writes node identity `id` under `data_dir` (the key readable by the owner only).
pub fn save_identity(data_dir: &Path, id: &NodeIdentity) -> Result<(), ClusterError> {
    use std::io::Write;
    let dir = identity_dir(data_dir);
    engine::private::create_dir_all(&dir)?;
    for (name, text) in [
        ("node.key", &id.key_pem),
        ("node.pem", &id.cert_pem),
        ("ca.pem", &id.ca_pem),
        ("node-id", &id.node_id),
    ] {
        let mut f = engine::private::open_options()
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join(name))?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
    }
    Ok(())
}

/// The identity `s3d cluster join` left under `data_dir`.
pub fn load_identity(data_dir: &Path) -> Result<NodeIdentity, ClusterError> {
    let dir = identity_dir(data_dir);
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).map_err(|e| {
            ClusterError::Store(format!(
                "{}: {e} (has this node run `s3d cluster join`?)",
                dir.join(name).display()
            ))
        })
    };
    Ok(NodeIdentity {
        node_id: read("node-id")?.trim().to_string(),
        cert_pem: read("node.pem")?,
        key_pem: read("node.key")?,
        ca_pem: read("ca.pem")?,
    })
}

/// Where shards go for node `me` (with `disks` disks, a `data + parity` codec): every layout
/// generation recorded in `store`, and a client of each other member's shard service.
pub fn shards(
    store: &Store,
    me: &NodeIdentity,
    disks: usize,
    data: usize,
    parity: usize,
) -> Result<ClusterShards, ClusterError> {
    let members = membership::members(store)?;
    let layouts = membership::layouts(store)?;
    build_shards(
        &members,
        &layouts,
        me,
        disks,
        data,
        parity,
        &mut Clients::new(),
    )
}

/// Clients of the other members' shard services, by (member id, address): kept from one
/// membership change to the next, with their connections.
type Clients = BTreeMap<(String, String), Arc<dyn ShardTransport>>;

/// [`shards`] from records already read.
fn build_shards(
    members: &[MemberRecord],
    layouts: &[LayoutRecord],
    me: &NodeIdentity,
    disks: usize,
    data: usize,
    parity: usize,
    clients: &mut Clients,
) -> Result<ClusterShards, ClusterError> {
    let Some(mine) = members.iter().find(|m| m.id == me.node_id) else {
        return Err(ClusterError::Store(format!(
            "node {} is not a member: run `s3d cluster join` on it",
            me.node_id
        )));
    };
    if mine.state == membership::REMOVED {
        return Err(ClusterError::Store(format!(
            "node {} was removed from the cluster: run `s3d cluster join` on it to come back",
            me.node_id
        )));
    }
    if mine.disks as usize != disks {
        return Err(ClusterError::Store(format!(
            "node {} joined with {} disks and has {disks} now: join again",
            me.node_id, mine.disks
        )));
    }
    if layouts.is_empty() {
        let active = members.iter().filter(|m| m.state == membership::ACTIVE);
        let why = LayoutRecord {
            generation: 0,
            members: active.map(|m| (m.id.clone(), m.disks)).collect(),
            made_unix_ms: 0,
        }
        .layout(data, parity)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_else(|| "no member has joined since".into());
        return Err(ClusterError::Layout(format!(
            "the cluster has no layout yet: {why}"
        )));
    }
    let mut gens = BTreeMap::new();
    for l in layouts {
        gens.insert(l.generation, l.layout(data, parity)?);
    }
    let mut transports = BTreeMap::new();
    let mut kept = Clients::new();
    for m in members {
        if m.id == me.node_id || m.state == membership::REMOVED {
            continue;
        }
        let key = (m.id.clone(), m.address.clone());
        let t = match clients.get(&key) {
            Some(t) => t.clone(),
            None => {
                let c = ShardClient::new(me, &m.id, &m.address, Timeouts::default())?;
                Arc::new(c) as Arc<dyn ShardTransport>
            }
        };
        transports.insert(m.id.clone(), t.clone());
        kept.insert(key, t);
    }
    *clients = kept;
    Ok(ClusterShards {
        layouts: gens,
        me: me.node_id.clone(),
        transports,
    })
}

/// Keeps a running engine's placement in step with the cluster's records: every `every`, reads
/// the members and layout generations and, when they changed (a join, a drain, a removal, a
/// new address), places shards by them from then on ([`engine::Engine::set_cluster`]). It
/// also re-probes the node's own disks every few ticks, so that a disk replaced and formatted
/// by `s3d heal` in another process serves the other nodes again without a restart. Stops
/// when dropped.
pub struct Follower {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Follower {
    /// Follows the records in `store` for `engine`, node `me` of a `data + parity` cluster.
    pub fn start(
        engine: engine::Engine,
        store: Arc<Store>,
        me: NodeIdentity,
        every: Duration,
    ) -> Follower {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("cluster-follower".into())
            .spawn(move || follow_records(engine, store, me, every, flag))
            .ok();
        Follower { stop, thread }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn follow_records(
    engine: engine::Engine,
    store: Arc<Store>,
    me: NodeIdentity,
    every: Duration,
    stop: Arc<AtomicBool>,
) {
    let cfg = engine.config().clone();
    let mut seen: Option<(Vec<MemberRecord>, Vec<LayoutRecord>)> = None;
    let mut clients = Clients::new();
    let mut tick = 0u64;
    while !stop.load(Ordering::Relaxed) {
        tick += 1;
        if tick.is_multiple_of(DISK_PROBE_TICKS) {
            engine.refresh_disks();
        }
        // Drafts of this node's processes that died pin chunks until this node (which alone
        // sees their owners' lock files) releases them; GC runs on one node only.
        if tick.is_multiple_of(DRAFT_TICKS) {
            match engine.release_stale_drafts() {
                Ok(0) => {}
                Ok(n) => tracing::info!("released {n} drafts of this node's processes that died"),
                Err(e) => tracing::warn!("stale drafts not released: {e}"),
            }
            // A removed member judges its drafts no more: any node releases them.
            let removed = seen
                .iter()
                .flat_map(|(m, _)| m)
                .filter(|m| m.state == membership::REMOVED && m.id != me.node_id);
            for m in removed {
                match engine.release_drafts_of_member(&m.id) {
                    Ok(0) => {}
                    Ok(n) => tracing::info!("released {n} drafts of removed member {}", m.id),
                    Err(e) => tracing::warn!("drafts of removed member {} kept: {e}", m.id),
                }
            }
        }
        let records =
            membership::members(&store).and_then(|m| Ok((m, membership::layouts(&store)?)));
        match records {
            Ok(now) if seen.as_ref() != Some(&now) => {
                let (members, layouts) = &now;
                let applied = build_shards(
                    members,
                    layouts,
                    &me,
                    cfg.disk_paths().len(),
                    cfg.data_shards,
                    cfg.parity_shards,
                    &mut clients,
                )
                .and_then(|c| {
                    engine
                        .set_cluster(&c)
                        .map_err(|e| ClusterError::Layout(e.to_string()))
                });
                match applied {
                    Ok(()) => {
                        if seen.is_some() {
                            tracing::info!(
                                generation = engine.current_layout(),
                                "cluster membership changed: shards placed by the new layout"
                            );
                        }
                        seen = Some(now);
                    }
                    Err(e) => tracing::warn!("cluster membership not applied: {e}"),
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cluster records unreadable: {e}"),
        }
        let until = std::time::Instant::now() + every;
        while std::time::Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// The identity under `data_dir`, which must be node `node_id`'s.
pub fn identity_of(data_dir: &Path, node_id: &str) -> Result<NodeIdentity, ClusterError> {
    let identity = load_identity(data_dir)?;
    if identity.node_id != node_id {
        return Err(ClusterError::Store(format!(
            "{} holds the identity of node {}, not {node_id}",
            identity_dir(data_dir).display(),
            identity.node_id
        )));
    }
    Ok(identity)
}

/// The cluster's records: its keys in etcd (`/predastore/<cluster id>/`).
#[cfg(feature = "etcd")]
pub fn open_store(cluster_id: &str, etcd: &[String]) -> Result<Store, ClusterError> {
    Store::connect_etcd(etcd, format!("/predastore/{cluster_id}/").as_bytes())
        .map_err(|e| ClusterError::Store(format!("etcd at {}: {e}", etcd.join(","))))
}

/// `cfg` (its metadata already on the cluster's etcd) made node `node_id`'s of cluster
/// `cluster_id`: its shards over the members' disks, as recorded in etcd now. Both doors open
/// their engine with it.
#[cfg(feature = "etcd")]
pub fn engine_config(
    mut cfg: engine::EngineConfig,
    cluster_id: &str,
    node_id: &str,
    etcd: &[String],
) -> Result<engine::EngineConfig, ClusterError> {
    let identity = identity_of(&cfg.data_dir, node_id)?;
    let st = open_store(cluster_id, etcd)?;
    cfg.cluster = Some(shards(
        &st,
        &identity,
        cfg.disk_paths().len(),
        cfg.data_shards,
        cfg.parity_shards,
    )?);
    Ok(cfg)
}

/// Every how many ticks of the follower the node's own disks are probed again.
const DISK_PROBE_TICKS: u64 = 5;

/// Every how many ticks the drafts of this node's dead processes are released.
const DRAFT_TICKS: u64 = 30;

/// How often a node reads the membership records for changes.
pub const FOLLOW_EVERY: Duration = Duration::from_secs(1);

/// A [`Follower`] for `engine`, node `node_id` of cluster `cluster_id` (its own connection to
/// the cluster's etcd).
#[cfg(feature = "etcd")]
pub fn follow(
    engine: &engine::Engine,
    cluster_id: &str,
    node_id: &str,
    etcd: &[String],
) -> Result<Follower, ClusterError> {
    let identity = identity_of(&engine.config().data_dir, node_id)?;
    let st = open_store(cluster_id, etcd)?;
    Ok(Follower::start(
        engine.clone(),
        Arc::new(st),
        identity,
        FOLLOW_EVERY,
    ))
}
