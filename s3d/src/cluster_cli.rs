//! Cluster mode in s3d (docs/cluster.md): `s3d cluster init | join | status`, and a node's
//! start — its shard placement over the members, its shard service beside the S3 port. Built
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
    /// The members, and whether this node reaches each one's shard service.
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
    pub async fn start(_s: &Settings, _engine: &engine::Engine) -> Result<Option<Node>, String> {
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

    use engine::kv::Store;
    use engine::ShardTransport;
    use predastore_cluster::client::{ShardClient, Timeouts};
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
                let id = membership::join(&st, &c.node_id, advertise, disks)
                    .map_err(|e| e.to_string())?;
                node::save_identity(&s.engine.data_dir, &id).map_err(|e| e.to_string())?;
                println!(
                    "Node {} is a member of cluster {} ({disks} disks, shard service at \
                     {advertise}); its certificate is in {}.",
                    c.node_id,
                    c.id,
                    node::identity_dir(&s.engine.data_dir).display()
                );
            }
            ClusterCommand::Status => {
                let members = membership::members(&st).map_err(|e| e.to_string())?;
                let me = node::load_identity(&s.engine.data_dir).ok();
                println!("cluster {}: {} member(s)", c.id, members.len());
                for m in &members {
                    let reach = match &me {
                        Some(me) if me.node_id == m.id => "this node".to_string(),
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
                match membership::layout(&members, s.engine.data_shards, s.engine.parity_shards) {
                    Ok(l) => println!(
                        "layout: {}+{} shards, at most {} per member: any {} member(s) may be lost",
                        s.engine.data_shards,
                        s.engine.parity_shards,
                        l.cap(),
                        l.tolerated_member_losses()
                    ),
                    Err(e) => println!("no layout yet: {e}"),
                }
            }
        }
        Ok(ExitCode::SUCCESS)
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

    /// A running node's cluster parts: its shard service.
    pub struct Node {
        service: ShardService,
    }

    impl Node {
        /// In cluster mode, serves `engine`'s disks to the other members on `cluster.listen`.
        pub async fn start(s: &Settings, engine: &engine::Engine) -> Result<Option<Node>, String> {
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
            println!(
                "Cluster {}: node {}, shard service on {}",
                c.id,
                c.node_id,
                service.local_addr()
            );
            Ok(Some(Node { service }))
        }

        /// Stops the shard service.
        pub async fn stop(self) {
            self.service.stop().await;
        }
    }
}
