//! Cluster mode in s3d (docs/cluster.md): `s3d cluster init | join | drain | remove | status`,
//! and a node's start — its shard placement over the members (followed as they change), its
//! shard service beside the S3 port, and its part in the election of the node that does the
//! cluster's background work (scrub, repair, GC, lifecycle, rebalance). Built
//! with the `cluster` feature (the etcd client's build needs protoc); without it, a
//! configuration that asks for a cluster is refused with how to get one.

#[cfg(not(feature = "cluster"))]
use std::process::ExitCode;

#[cfg(not(feature = "cluster"))]
use crate::config::Settings;

/// `s3d cluster …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum ClusterCommand {
    /// Make the cluster: its certificate authority, kept in etcd (once per cluster).
    Init,
    /// Make this node a member: issue its certificate into <data dir>/cluster/ and record its
    /// shard service's address (cluster.advertise) and its disks. Again after a change.
    Join,
    /// Take a member out of the layout while it keeps running: new chunks go to the others
    /// at once, and rebalance copies its shards off. `status` shows when nothing is left on
    /// it; then `remove` it and stop it.
    Drain {
        /// The member's node id.
        node_id: String,
    },
    /// Take a member out for good (a lost or drained node): its shards are no longer read,
    /// and rebalance rebuilds what was left on it from the others.
    Remove {
        /// The member's node id.
        node_id: String,
    },
    /// The members, whether this node reaches each one's shard service, the layout
    /// generations, how many chunks each placed (rebalance moves them to the newest), and
    /// which node leads the background work.
    Status,
}

/// Why this build cannot do it.
#[cfg(not(feature = "cluster"))]
fn not_built() -> String {
    "this s3d is built without cluster mode: build it with `cargo build --release --features \
     s3d/cluster` (needs Debian's protobuf-compiler), or `make build-cluster`"
        .into()
}

/// Runs a cluster command.
#[cfg(not(feature = "cluster"))]
pub async fn run(_s: Settings, _cmd: ClusterCommand) -> Result<ExitCode, String> {
    Err(not_built())
}

/// The engine's configuration for this node (a cluster needs the `cluster` feature).
#[cfg(not(feature = "cluster"))]
pub fn engine_config(s: &Settings) -> Result<engine::EngineConfig, String> {
    match s.cluster {
        Some(_) => Err(not_built()),
        None => Ok(s.engine.clone()),
    }
}

/// A running node's cluster parts (nothing without cluster mode).
#[cfg(not(feature = "cluster"))]
pub struct Node;

#[cfg(not(feature = "cluster"))]
impl Node {
    /// Nothing to start without cluster mode.
    pub async fn start(
        _s: &Settings,
        _engine: &engine::Engine,
        _schedule: engine::background::Schedule,
    ) -> Result<Option<Node>, String> {
        Ok(None)
    }

    /// Stops the node's parts.
    pub async fn stop(self) {}
}

#[cfg(feature = "cluster")]
pub use built::*;

#[cfg(feature = "cluster")]
mod built {
    use std::process::ExitCode;

    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use engine::kv::Store;
    use engine::ShardTransport;
    use predastore_cluster::client::{ShardClient, Timeouts};
    use predastore_cluster::leader::Leadership;
    use predastore_cluster::{membership, node, ShardService};

    use super::ClusterCommand;
    use crate::config::{ClusterSettings, Settings};

    fn cluster(s: &Settings) -> Result<&ClusterSettings, String> {
        s.cluster.as_ref().ok_or_else(|| {
            "no cluster configured: set cluster.id, cluster.node_id and cluster.etcd \
             (PREDASTORE_CLUSTER_ID, PREDASTORE_NODE_ID, PREDASTORE_ETCD)"
                .into()
        })
    }

    /// The cluster's records (on etcd).
    fn store(c: &ClusterSettings) -> Result<Store, String> {
        node::open_store(&c.id, &c.etcd).map_err(|e| e.to_string())
    }

    /// Runs a cluster command.
    pub async fn run(s: Settings, cmd: ClusterCommand) -> Result<ExitCode, String> {
        tokio::task::spawn_blocking(move || run_blocking(&s, cmd))
            .await
            .map_err(|e| e.to_string())?
    }

    fn run_blocking(s: &Settings, cmd: ClusterCommand) -> Result<ExitCode, String> {
        let c = cluster(s)?;
        let st = store(c)?;
        match cmd {
            ClusterCommand::Init => {
                membership::init(&st, &c.id).map_err(|e| e.to_string())?;
                println!(
                    "Cluster {} made (its CA is kept in etcd under /predastore/{}/): run `s3d \
                     cluster join` on each node, then start them.",
                    c.id, c.id
                );
            }
            ClusterCommand::Join => {
                let advertise = c.advertise.as_deref().ok_or(
                    "join needs the address other nodes reach this one's shard service at \
                     (cluster.advertise, PREDASTORE_CLUSTER_ADVERTISE)",
                )?;
                let disks = s.engine.disk_paths().len() as u32;
                let (id, change) = membership::join(
                    &st,
                    &c.node_id,
                    advertise,
                    disks,
                    s.engine.data_shards,
                    s.engine.parity_shards,
                )
                .map_err(|e| e.to_string())?;
                node::save_identity(&s.engine.data_dir, &id).map_err(|e| e.to_string())?;
                println!(
                    "Node {} is a member of cluster {} ({disks} disks, shard service at \
                     {advertise}); its certificate is in {}.",
                    c.node_id,
                    c.id,
                    node::identity_dir(&s.engine.data_dir).display()
                );
                print_change(&change);
            }
            ClusterCommand::Drain { node_id } => {
                let change = membership::retire(
                    &st,
                    &node_id,
                    membership::DRAINING,
                    s.engine.data_shards,
                    s.engine.parity_shards,
                )
                .map_err(|e| e.to_string())?;
                println!(
                    "{node_id} is draining: it takes no new chunks, and rebalance copies its \
                     shards off. Keep it running until `s3d cluster status` shows no chunk on \
                     a layout that names it, then `s3d cluster remove {node_id}`."
                );
                print_change(&change);
            }
            ClusterCommand::Remove { node_id } => {
                let change = membership::retire(
                    &st,
                    &node_id,
                    membership::REMOVED,
                    s.engine.data_shards,
                    s.engine.parity_shards,
                )
                .map_err(|e| e.to_string())?;
                println!(
                    "{node_id} is removed: its shards are no longer read; rebalance rebuilds \
                     what was left on it from the other members' shards."
                );
                print_change(&change);
            }
            ClusterCommand::Status => status(s, c, &st)?,
        }
        Ok(ExitCode::SUCCESS)
    }

    fn print_change(change: &membership::LayoutChange) {
        match change {
            membership::LayoutChange::New(g) => println!(
                "Layout generation {g} places new chunks from now on; the leading node's \
                 rebalance moves the older ones to it."
            ),
            membership::LayoutChange::Same => println!("The layout is unchanged."),
            membership::LayoutChange::NotYet(why) => {
                println!("No layout yet: {why}")
            }
        }
    }

    /// `s3d cluster status`.
    fn status(s: &Settings, c: &ClusterSettings, st: &Store) -> Result<(), String> {
        let members = membership::members(st).map_err(|e| e.to_string())?;
        let me = node::load_identity(&s.engine.data_dir).ok();
        println!("cluster {}: {} member(s)", c.id, members.len());
        for m in &members {
            let reach = match &me {
                Some(me) if me.node_id == m.id => "this node".to_string(),
                _ if m.state == membership::REMOVED => "-".into(),
                Some(me) => {
                    let cl = ShardClient::new(me, &m.id, &m.address, Timeouts::default())
                        .map_err(|e| e.to_string())?;
                    if cl.is_online(0) {
                        "reachable".into()
                    } else {
                        "UNREACHABLE".into()
                    }
                }
                None => "not checked (this node has not joined)".into(),
            };
            println!(
                "  {:<20} {:<24} {} disk(s)  {:<8} {reach}",
                m.id, m.address, m.disks, m.state
            );
        }
        let layouts = membership::layouts(st).map_err(|e| e.to_string())?;
        let counts = engine::chunks_by_layout(st).map_err(|e| e.to_string())?;
        let Some(newest) = layouts.last() else {
            println!("no layout yet: too few active members to lose one");
            return Ok(());
        };
        let l = newest
            .layout(s.engine.data_shards, s.engine.parity_shards)
            .map_err(|e| e.to_string())?;
        println!(
            "layout: generation {}, {}+{} shards, at most {} per member: any {} member(s) may be lost",
            newest.generation,
            s.engine.data_shards,
            s.engine.parity_shards,
            l.cap(),
            l.tolerated_member_losses()
        );
        let mut older = 0;
        for g in &layouts {
            let n = counts.get(&g.generation).copied().unwrap_or(0);
            if g.generation != newest.generation {
                older += n;
            }
            let ids: Vec<&str> = g.members.iter().map(|(id, _)| id.as_str()).collect();
            println!(
                "  generation {:<4} {:>10} chunk(s)  {}",
                g.generation,
                n,
                ids.join(" ")
            );
        }
        println!("rebalance: {older} chunk(s) on older generations");
        match predastore_cluster::leader::holder(st).map_err(|e| e.to_string())? {
            Some(n) => println!("background work: led by {n}"),
            None => println!("background work: no leader yet"),
        }
        Ok(())
    }

    /// The engine's configuration for this node: in cluster mode its shards over the members'
    /// disks (blocking: it reads the members from etcd).
    pub fn engine_config(s: &Settings) -> Result<engine::EngineConfig, String> {
        match &s.cluster {
            None => Ok(s.engine.clone()),
            Some(c) => node::engine_config(s.engine.clone(), &c.id, &c.node_id, &c.etcd)
                .map_err(|e| e.to_string()),
        }
    }

    /// A running node's cluster parts: its shard service, the follower of the membership
    /// records, and the task that does the background work while this node leads.
    pub struct Node {
        service: ShardService,
        _follower: node::Follower,
        stop: Arc<AtomicBool>,
        lead: tokio::task::JoinHandle<()>,
        /// Every node, leader or not, sweeps its own disks for orphaned shards, every half
        /// write limit (see `engine/src/chunk/orphans.rs`).
        _sweeps: engine::AutoGc,
    }

    /// How long the leader's lease lasts unrenewed.
    const LEADER_TTL: Duration = Duration::from_secs(6);
    /// The wait before a rebalance pass that left chunks behind is tried again, and its most.
    const RETRY_FIRST: Duration = Duration::from_secs(5);
    const RETRY_MAX: Duration = Duration::from_secs(300);

    impl Node {
        /// In cluster mode, serves `engine`'s disks to the other members on `cluster.listen`,
        /// follows the membership, and campaigns to do the background work on `schedule`.
        pub async fn start(
            s: &Settings,
            engine: &engine::Engine,
            schedule: engine::background::Schedule,
        ) -> Result<Option<Node>, String> {
            let Some(c) = &s.cluster else {
                return Ok(None);
            };
            let identity =
                node::identity_of(&s.engine.data_dir, &c.node_id).map_err(|e| e.to_string())?;
            let listen = c
                .listen
                .parse()
                .map_err(|_| format!("cluster.listen {:?} is not host:port", c.listen))?;
            let service = ShardService::start(listen, &identity, engine.local_shards())
                .await
                .map_err(|e| format!("shard service on {}: {e}", c.listen))?;
            let records = {
                let c = c.clone();
                tokio::task::spawn_blocking(move || node::open_store(&c.id, &c.etcd))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| e.to_string())?
            };
            let records = Arc::new(records);
            let follower = node::Follower::start(
                engine.clone(),
                records.clone(),
                identity,
                node::FOLLOW_EVERY,
            );
            let leadership = Leadership::start(records, &c.node_id, LEADER_TTL);
            let stop = Arc::new(AtomicBool::new(false));
            let sweeps =
                engine.spawn_orphan_sweeps((c.write_limit / 2).max(Duration::from_secs(1)));
            let lead = tokio::spawn(lead(
                engine.clone(),
                leadership,
                schedule,
                c.rebalance_rate,
                stop.clone(),
            ));
            println!(
                "Cluster {}: node {}, shard service on {}",
                c.id,
                c.node_id,
                service.local_addr()
            );
            Ok(Some(Node {
                service,
                _follower: follower,
                stop,
                lead,
                _sweeps: sweeps,
            }))
        }

        /// Stops the background work (if this node leads), then the shard service.
        pub async fn stop(self) {
            self.stop.store(true, Ordering::Relaxed);
            let _ = self.lead.await;
            self.service.stop().await;
        }
    }

    /// While this node leads: the background jobs (GC, repair, scrub, lifecycle) and rebalance
    /// passes, one whenever the layout has a generation not yet balanced, and one more a while
    /// after a clean pass (for chunks a node still on the older layout wrote meanwhile).
    async fn lead(
        engine: engine::Engine,
        leadership: Leadership,
        schedule: engine::background::Schedule,
        rate: Option<u64>,
        stop: Arc<AtomicBool>,
    ) {
        let mut background: Option<engine::background::Background> = None;
        let mut balanced: Option<u32> = None;
        let mut next_pass = Instant::now();
        // After a pass that left chunks behind (a member down, say): 5 s, doubling to 5 min.
        let mut retry = RETRY_FIRST;
        while !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if !leadership.is_leader() {
                if let Some(b) = background.take() {
                    b.stop().await;
                }
                balanced = None;
                continue;
            }
            if background.is_none() {
                background = Some(engine.spawn_background(schedule.clone()));
            }
            let generation = engine.current_layout();
            let due = match balanced {
                // The layout changed since the last clean pass.
                Some(g) if g != generation => true,
                // The check after a clean pass, or the retry after a failed one.
                _ => Instant::now() >= next_pass,
            };
            if !due {
                continue;
            }
            let opts = engine::RebalanceOptions {
                rate_limit: rate,
                cancel: Some(stop.clone()),
            };
            match engine.rebalance(opts).await {
                Ok(r) => {
                    if r.chunks_moved > 0 || r.chunks_failed > 0 {
                        tracing::info!(
                            "rebalance to layout {}: {} chunks moved ({} shards, {} rebuilt, \
                             {} bytes) in {:?}; {} left{}",
                            r.to_layout,
                            r.chunks_moved,
                            r.shards_moved,
                            r.shards_rebuilt,
                            r.bytes_written,
                            r.elapsed,
                            r.chunks_left,
                            r.last_error
                                .map(|e| format!(" (last failure: {e})"))
                                .unwrap_or_default()
                        );
                    }
                    if r.chunks_left == 0 && r.complete {
                        // Clean: once more after a while, then idle until the layout changes.
                        next_pass = match balanced == Some(r.to_layout) {
                            true => Instant::now() + Duration::from_secs(3600),
                            false => Instant::now() + Duration::from_secs(10),
                        };
                        balanced = Some(r.to_layout);
                        retry = RETRY_FIRST;
                    } else {
                        balanced = None;
                        next_pass = Instant::now() + retry;
                        retry = (retry * 2).min(RETRY_MAX);
                    }
                }
                Err(e) => {
                    tracing::warn!("rebalance: {e}");
                    balanced = None;
                    next_pass = Instant::now() + retry;
                    retry = (retry * 2).min(RETRY_MAX);
                }
            }
        }
        if let Some(b) = background.take() {
            b.stop().await;
        }
        // Its thread may be waiting on etcd: not on a runtime worker.
        let _ = tokio::task::spawn_blocking(move || drop(leadership)).await;
    }
}
