//! The cluster's records in its metadata store (etcd), through the engine's metadata seam: the
//! CA (`state` `cluster/ca`), the members (`members`: id → address, disks, state) and the
//! layout generations (`state` `cluster/layout/<generation>`: the members that place chunks).
//! `s3d cluster init` makes the CA; `join` issues a node its identity and registers it;
//! `drain` and `remove` take a member out of the layout. Each change of the active members
//! that makes a layout able to lose a member records a new generation: new chunks go by it at
//! once (every node follows the records, [`crate::node::Follower`]) and rebalance moves the
//! older generations' chunks to it.

use engine::kv::{Read, Store, Table, Write};
use engine::{Layout, Member};
use serde::{Deserialize, Serialize};

use crate::ca::{valid_node_id, ClusterCa, NodeIdentity};
use crate::ClusterError;

/// Where the CA is kept.
const CA_KEY: &[u8] = b"cluster/ca";

/// A member as the store records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Its id (also its certificate's name).
    pub id: String,
    /// Its shard service, `host:port`, as the other nodes reach it.
    pub address: String,
    /// How many disks it offers.
    pub disks: u32,
    /// [`ACTIVE`], [`DRAINING`] or [`REMOVED`].
    pub state: String,
}

/// A member that takes new chunks.
pub const ACTIVE: &str = "active";
/// A member out of the newest layout whose shards rebalance copies off; it keeps serving them.
pub const DRAINING: &str = "draining";
/// A member out of the newest layout whose shards are no longer read (the node is gone):
/// rebalance rebuilds them from the others.
pub const REMOVED: &str = "removed";

/// One generation of the layout: the members (id, disks) that place the chunks recorded with
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayoutRecord {
    /// Its number; the highest is the current one.
    pub generation: u32,
    /// The members, by id, with their disks.
    pub members: Vec<(String, u32)>,
    /// When it was made (ms since the epoch, the maker's clock; for status).
    pub made_unix_ms: u64,
}

impl LayoutRecord {
    /// Its layout for a `data + parity` codec.
    pub fn layout(&self, data: usize, parity: usize) -> Result<Layout, ClusterError> {
        let ms = self
            .members
            .iter()
            .map(|(id, disks)| Member {
                id: id.clone(),
                disks: *disks,
            })
            .collect();
        Layout::new(ms, data, parity).map_err(|e| ClusterError::Layout(e.to_string()))
    }
}

/// Prefix of the layout generations' keys in the `state` table.
const LAYOUT_PREFIX: &[u8] = b"cluster/layout/";

fn layout_key(generation: u32) -> Vec<u8> {
    let mut k = LAYOUT_PREFIX.to_vec();
    k.extend_from_slice(&generation.to_be_bytes());
    k
}

/// Every layout generation in `txn`, oldest first.
fn read_layouts(txn: &dyn Read) -> engine::Result<Vec<LayoutRecord>> {
    let mut end = LAYOUT_PREFIX.to_vec();
    end.push(0xff);
    let mut out = Vec::new();
    for r in txn.range(
        Table::State,
        std::ops::Bound::Included(LAYOUT_PREFIX),
        std::ops::Bound::Excluded(end.as_slice()),
    )? {
        let (_, v) = r?;
        let rec: LayoutRecord = serde_json::from_slice(&v)
            .map_err(|e| engine::Error::Decode(format!("cluster layout record: {e}")))?;
        out.push(rec);
    }
    Ok(out)
}

/// Every member in `txn`, by id.
fn read_members(txn: &dyn Read) -> engine::Result<Vec<MemberRecord>> {
    let mut out = Vec::new();
    for r in txn.all(Table::Members)? {
        let (k, v) = r?;
        let m: MemberRecord = serde_json::from_slice(&v).map_err(|e| {
            engine::Error::Decode(format!("member {}: {e}", String::from_utf8_lossy(&k)))
        })?;
        out.push(m);
    }
    Ok(out)
}

/// What a change of the members did to the layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LayoutChange {
    /// A new generation places new chunks (and rebalance moves the others to it).
    New(u32),
    /// The active members are those of the current generation.
    Same,
    /// The active members cannot make a layout yet (the reason): no generation until they can.
    NotYet(String),
}

/// Records a new layout generation in `txn` when the active members (of `members`, as they
/// will be) differ from the current generation's and make a layout; `Err` (the reason) when
/// they do not and `must` says a layout must follow (a drain, a removal).
fn advance_layout(
    txn: &mut dyn Write,
    members: &[MemberRecord],
    data: usize,
    parity: usize,
) -> engine::Result<LayoutChange> {
    let mut active: Vec<(String, u32)> = members
        .iter()
        .filter(|m| m.state == ACTIVE)
        .map(|m| (m.id.clone(), m.disks))
        .collect();
    active.sort();
    let layouts = read_layouts(txn)?;
    let current = layouts.last();
    if current.is_some_and(|c| {
        let mut had = c.members.clone();
        had.sort();
        had == active
    }) {
        return Ok(LayoutChange::Same);
    }
    let rec = LayoutRecord {
        generation: current.map(|c| c.generation + 1).unwrap_or(1),
        members: active,
        made_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0),
    };
    if let Err(e) = rec.layout(data, parity) {
        return Ok(LayoutChange::NotYet(e.to_string()));
    }
    txn.put(Table::State, &layout_key(rec.generation), &json(&rec))?;
    Ok(LayoutChange::New(rec.generation))
}

/// Every layout generation, oldest first.
pub fn layouts(store: &Store) -> Result<Vec<LayoutRecord>, ClusterError> {
    let txn = store.read().map_err(meta)?;
    read_layouts(&txn).map_err(meta)
}

#[derive(Serialize, Deserialize)]
struct StoredCa {
    id: String,
    cert_pem: String,
    key_pem: String,
}

fn meta(e: engine::Error) -> ClusterError {
    ClusterError::Store(e.to_string())
}

fn json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// Makes the CA of cluster `cluster_id` and keeps it in `store`; refused when the store has a
/// cluster already.
pub fn init(store: &Store, cluster_id: &str) -> Result<ClusterCa, ClusterError> {
    let ca = ClusterCa::generate(cluster_id)?;
    let rec = json(&StoredCa {
        id: cluster_id.to_string(),
        cert_pem: ca.cert_pem().to_string(),
        key_pem: ca.key_pem(),
    });
    let made = store
        .committer()
        .run_blocking(move |txn: &mut dyn Write| {
            if let Some(b) = txn.get(Table::State, CA_KEY)? {
                let had: Option<StoredCa> = serde_json::from_slice(&b).ok();
                return Ok(Err(had.map(|c| c.id).unwrap_or_default()));
            }
            txn.put(Table::State, CA_KEY, &rec)?;
            Ok(Ok(()))
        })
        .map_err(meta)?;
    match made {
        Ok(()) => Ok(ca),
        Err(had) => Err(ClusterError::Store(format!(
            "this store already holds cluster {had:?}: init runs once per cluster"
        ))),
    }
}

/// The CA kept in `store`.
pub fn ca(store: &Store) -> Result<ClusterCa, ClusterError> {
    let txn = store.read().map_err(meta)?;
    let b = txn
        .get(Table::State, CA_KEY)
        .map_err(meta)?
        .ok_or_else(|| {
            ClusterError::Store("no cluster here: run `s3d cluster init` first".into())
        })?;
    let c: StoredCa = serde_json::from_slice(&b)
        .map_err(|e| ClusterError::Store(format!("the cluster CA record: {e}")))?;
    ClusterCa::load(&c.id, &c.cert_pem, &c.key_pem)
}

/// Registers node `id` (its shard service at `address`, `disks` disks) as an active member
/// and issues its identity; a node that joined before is registered again with what it says
/// now (a new address). The layout gets a new generation when the active members changed and
/// can make one for a `data + parity` codec.
///
/// A member's disk count is part of every layout that names it: changing it is refused once
/// the cluster holds chunks (drain and remove the member, and join it under a new id).
pub fn join(
    store: &Store,
    id: &str,
    address: &str,
    disks: u32,
    data: usize,
    parity: usize,
) -> Result<(NodeIdentity, LayoutChange), ClusterError> {
    if !valid_node_id(id) {
        return Err(ClusterError::Store(format!(
            "{id:?} is not a node id: 1 to 63 lowercase letters, digits and dashes"
        )));
    }
    let host = address
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']).to_string())
        .ok_or_else(|| ClusterError::Store(format!("{address:?} is not host:port")))?;
    let identity = ca(store)?.issue(id, &[host])?;
    let rec = MemberRecord {
        id: id.to_string(),
        address: address.to_string(),
        disks,
        state: ACTIVE.into(),
    };
    // Whether the cluster holds chunks, from a snapshot: its first page of keys, where a scan
    // inside the write transaction would fetch every chunk record from etcd.
    let holds_chunks = store
        .read()
        .and_then(|t| Ok(t.all(Table::Chunks)?.next().is_some()))
        .map_err(meta)?;
    let done = store
        .committer()
        .run_blocking(move |txn: &mut dyn Write| {
            let mut members = read_members(txn)?;
            match members.iter_mut().find(|m| m.id == rec.id) {
                Some(m) if m.disks != rec.disks && holds_chunks => {
                    return Ok(Err(m.disks));
                }
                Some(m) => *m = rec.clone(),
                None => members.push(rec.clone()),
            }
            txn.put(Table::Members, rec.id.as_bytes(), &json(&rec))?;
            Ok(Ok(advance_layout(txn, &members, data, parity)?))
        })
        .map_err(meta)?;
    match done {
        Ok(change) => Ok((identity, change)),
        Err(was) => Err(ClusterError::Store(format!(
            "{id} joined with {was} disks, not {disks}, and the cluster holds data: its disks \
             are part of the layouts that placed it. Drain and remove {id}, then join this \
             machine under a new id"
        ))),
    }
}

/// Takes member `id` out of the layout: `draining` (its shards are copied off by rebalance
/// while it keeps serving them) or `removed` (the node is gone: its shards are rebuilt from the
/// others). Refused, changing nothing, when the members left could not make a layout that may
/// lose one of them.
pub fn retire(
    store: &Store,
    id: &str,
    state: &'static str,
    data: usize,
    parity: usize,
) -> Result<LayoutChange, ClusterError> {
    let id = id.to_string();
    let done = store
        .committer()
        .run_blocking(move |txn: &mut dyn Write| {
            let mut members = read_members(txn)?;
            let Some(m) = members.iter_mut().find(|m| m.id == id) else {
                return Ok(Err(format!("{id} is not a member")));
            };
            m.state = state.to_string();
            let rec = m.clone();
            let change = advance_layout(txn, &members, data, parity)?;
            if let LayoutChange::NotYet(why) = change {
                return Ok(Err(format!(
                    "the members left could not hold the data ({why}); add a member first, \
                     or replace the node under its id (docs/cluster.md)"
                )));
            }
            txn.put(Table::Members, rec.id.as_bytes(), &json(&rec))?;
            Ok(Ok(change))
        })
        .map_err(meta)?;
    done.map_err(ClusterError::Store)
}

/// Every member, by id.
pub fn members(store: &Store) -> Result<Vec<MemberRecord>, ClusterError> {
    let txn = store.read().map_err(meta)?;
    read_members(&txn).map_err(meta)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), 1 << 26, false, None).unwrap();
        (d, s)
    }

    #[test]
    fn init_once_join_many_and_members_make_the_layout() {
        let (_d, s) = store();
        let ca = init(&s, "c1").unwrap();
        let again = init(&s, "c2").err().unwrap().to_string();
        assert!(again.contains("\"c1\""), "{again}");
        assert_eq!(super::ca(&s).unwrap().cert_pem(), ca.cert_pem());
        // Two members with 4 + 2 cannot lose one: no layout until the third.
        let mut changes = Vec::new();
        for (i, disks) in [2, 2, 3].into_iter().enumerate() {
            let (id, change) = join(
                &s,
                &format!("n{i}"),
                &format!("10.0.0.{i}:8444"),
                disks,
                4,
                2,
            )
            .unwrap();
            assert!(id.cert_pem.contains("BEGIN CERTIFICATE"));
            changes.push(change);
        }
        assert!(matches!(&changes[1], LayoutChange::NotYet(why) if why.contains("lose")));
        assert_eq!(changes[2], LayoutChange::New(1));
        // Joining again with a new address replaces the record, not the layout.
        let (_, change) = join(&s, "n2", "10.0.0.9:8444", 3, 4, 2).unwrap();
        assert_eq!(change, LayoutChange::Same);
        let ms = members(&s).unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[2].address, "10.0.0.9:8444");
        let ls = layouts(&s).unwrap();
        assert_eq!(ls.len(), 1);
        assert_eq!(ls[0].layout(4, 2).unwrap().cap(), 2);
        assert!(join(&s, "Bad_Id", "h:1", 1, 4, 2).is_err());
        assert!(join(&s, "ok", "no-port", 1, 4, 2).is_err());
    }

    #[test]
    fn joins_drains_and_removals_make_generations() {
        let (_d, s) = store();
        init(&s, "c").unwrap();
        for i in 0..3 {
            join(&s, &format!("n{i}"), "10.0.0.1:8444", 2, 4, 2).unwrap();
        }
        s.committer()
            .run_blocking(|txn: &mut dyn Write| txn.put(Table::Chunks, &[7; 32], b"rec"))
            .unwrap();
        // With data: a new member makes generation 2; another disk count is refused.
        let (_, change) = join(&s, "n3", "10.0.0.3:8444", 2, 4, 2).unwrap();
        assert_eq!(change, LayoutChange::New(2));
        let e = join(&s, "n2", "10.0.0.2:8444", 3, 4, 2)
            .unwrap_err()
            .to_string();
        assert!(e.contains("joined with 2 disks, not 3"), "{e}");
        // Draining n3 makes generation 3 without it; n3 stays a member, draining.
        assert_eq!(
            retire(&s, "n3", DRAINING, 4, 2).unwrap(),
            LayoutChange::New(3)
        );
        let ls = layouts(&s).unwrap();
        let ids = |g: usize| {
            ls[g]
                .members
                .iter()
                .map(|m| m.0.as_str())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(1), ["n0", "n1", "n2", "n3"]);
        assert_eq!(ids(2), ["n0", "n1", "n2"]);
        assert_eq!(members(&s).unwrap()[3].state, DRAINING);
        // Removing n3 now changes no layout; removing n2 would leave two: refused, unchanged.
        assert_eq!(retire(&s, "n3", REMOVED, 4, 2).unwrap(), LayoutChange::Same);
        let e = retire(&s, "n2", REMOVED, 4, 2).unwrap_err().to_string();
        assert!(e.contains("could not hold the data"), "{e}");
        assert_eq!(members(&s).unwrap()[2].state, ACTIVE);
        assert_eq!(layouts(&s).unwrap().len(), 3);
        assert!(retire(&s, "nobody", DRAINING, 4, 2).is_err());
    }

    #[test]
    fn join_needs_a_cluster() {
        let (_d, s) = store();
        let e = join(&s, "n0", "h:1", 1, 4, 2).unwrap_err().to_string();
        assert!(e.contains("cluster init"), "{e}");
    }
}
