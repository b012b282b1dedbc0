//! A node's own part of the cluster on disk and at start: its identity in
//! `<data dir>/cluster/` (`ca.pem`, `node.pem`, `node.key`, written by `s3d cluster join`),
//! and the shard placement it starts with — the members recorded in the store, a client of
//! each other member's shard service.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use engine::kv::Store;
use engine::{ClusterShards, ShardTransport};

use crate::ca::NodeIdentity;
use crate::client::{ShardClient, Timeouts};
use crate::membership;
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

/// Where shards go for node `me`: the layout of the members in `store` (this node among them,
/// with `disks` disks, as it joined), and a client of each other member's shard service.
pub fn shards(
    store: &Store,
    me: &NodeIdentity,
    disks: usize,
    data: usize,
    parity: usize,
) -> Result<ClusterShards, ClusterError> {
    let members = membership::members(store)?;
    let Some(pos) = members.iter().position(|m| m.id == me.node_id) else {
        return Err(ClusterError::Store(format!(
            "node {} is not a member: run `s3d cluster join` on it",
            me.node_id
        )));
    };
    if members[pos].disks as usize != disks {
        return Err(ClusterError::Store(format!(
            "node {} joined with {} disks and has {disks} now: join again",
            me.node_id, members[pos].disks
        )));
    }
    let layout = membership::layout(&members, data, parity)?;
    let mut transports = Vec::with_capacity(members.len());
    for (i, m) in members.iter().enumerate() {
        transports.push(if i == pos {
            None
        } else {
            let c = ShardClient::new(me, &m.id, &m.address, Timeouts::default())?;
            Some(Arc::new(c) as Arc<dyn ShardTransport>)
        });
    }
    Ok(ClusterShards {
        layout,
        me: pos,
        transports,
    })
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
