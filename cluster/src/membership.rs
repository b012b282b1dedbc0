//! The cluster's records in its metadata store (etcd), through the engine's metadata seam: the
//! CA (`state` `cluster/ca`) and the members (`members`: id → address, disks, state). `s3d
//! cluster init` makes the CA; `s3d cluster join` issues a node its identity and registers it;
//! a node starting reads the members to make its layout.

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
    /// `active` (draining and removal come with step 5 of the plan).
    pub state: String,
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

/// Registers node `id` (its shard service at `address`, `disks` disks) and issues its identity;
/// a node that joined before is registered again with what it says now (a new address).
///
/// Refused once the cluster holds chunks, when it would change the layout (a new member, or a
/// member's disk count): shards are found where the layout places them, and moving them to a
/// new layout (rebalance, step 5 of docs/cluster-plan.md) is not built yet.
pub fn join(
    store: &Store,
    id: &str,
    address: &str,
    disks: u32,
) -> Result<NodeIdentity, ClusterError> {
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
        state: "active".into(),
    };
    let key = id.as_bytes().to_vec();
    let value = json(&rec);
    // Whether the cluster holds chunks, from a snapshot: its first page of keys, where a scan
    // inside the write transaction would fetch every chunk record from etcd. (A first chunk
    // written between this look and the join's commit would slip by: join is an operator's
    // step before the cluster takes data or with rebalance, step 5.)
    let holds_chunks = store
        .read()
        .and_then(|t| Ok(t.all(Table::Chunks)?.next().is_some()))
        .map_err(meta)?;
    let refused = store
        .committer()
        .run_blocking(move |txn: &mut dyn Write| {
            let was: Option<MemberRecord> = txn
                .get(Table::Members, &key)?
                .and_then(|b| serde_json::from_slice(&b).ok());
            let changes_layout = was.as_ref().is_none_or(|w| w.disks != disks);
            if changes_layout && holds_chunks {
                return Ok(Some(was.map(|w| w.disks)));
            }
            txn.put(Table::Members, &key, &value)?;
            Ok(None)
        })
        .map_err(meta)?;
    match refused {
        None => Ok(identity),
        Some(was) => Err(ClusterError::Store(format!(
            "the cluster holds data and {}: the shards of its chunks would no longer be where \
             the layout places them, and moving them (rebalance) is not built yet",
            match was {
                None => format!("{id} is not a member yet"),
                Some(n) => format!("{id} joined with {n} disks, not {disks}"),
            }
        ))),
    }
}

/// Every member, by id.
pub fn members(store: &Store) -> Result<Vec<MemberRecord>, ClusterError> {
    let txn = store.read().map_err(meta)?;
    let mut out = Vec::new();
    for r in txn.all(Table::Members).map_err(meta)? {
        let (k, v) = r.map_err(meta)?;
        let m: MemberRecord = serde_json::from_slice(&v).map_err(|e| {
            ClusterError::Store(format!("member {}: {e}", String::from_utf8_lossy(&k)))
        })?;
        out.push(m);
    }
    Ok(out)
}

/// The layout of `members` for a `data + parity` codec, refused (with the reason) when it
/// could not lose a member.
pub fn layout(
    members: &[MemberRecord],
    data: usize,
    parity: usize,
) -> Result<Layout, ClusterError> {
    let ms = members
        .iter()
        .map(|m| Member {
            id: m.id.clone(),
            disks: m.disks,
        })
        .collect();
    Layout::new(ms, data, parity).map_err(|e| ClusterError::Layout(e.to_string()))
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
        for (i, disks) in [2, 2, 3].into_iter().enumerate() {
            let id = join(&s, &format!("n{i}"), &format!("10.0.0.{i}:8444"), disks).unwrap();
            assert!(id.cert_pem.contains("BEGIN CERTIFICATE"));
        }
        // Joining again replaces the record.
        join(&s, "n2", "10.0.0.9:8444", 2).unwrap();
        let ms = members(&s).unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!(ms[2].address, "10.0.0.9:8444");
        let l = layout(&ms, 4, 2).unwrap();
        assert_eq!(l.cap(), 2);
        let e = layout(&ms[..2], 4, 2).unwrap_err().to_string();
        assert!(e.contains("lose"), "{e}");
        assert!(join(&s, "Bad_Id", "h:1", 1).is_err());
        assert!(join(&s, "ok", "no-port", 1).is_err());
    }

    #[test]
    fn once_the_cluster_holds_chunks_the_layout_stays() {
        let (_d, s) = store();
        init(&s, "c").unwrap();
        for i in 0..3 {
            join(&s, &format!("n{i}"), "10.0.0.1:8444", 2).unwrap();
        }
        s.committer()
            .run_blocking(|txn: &mut dyn Write| txn.put(Table::Chunks, &[7; 32], b"rec"))
            .unwrap();
        // A new address is fine; a new member or another disk count is not.
        join(&s, "n1", "10.0.0.9:8444", 2).unwrap();
        let e = join(&s, "n3", "10.0.0.3:8444", 2).unwrap_err().to_string();
        assert!(
            e.contains("n3 is not a member yet") && e.contains("rebalance"),
            "{e}"
        );
        let e = join(&s, "n2", "10.0.0.2:8444", 3).unwrap_err().to_string();
        assert!(e.contains("joined with 2 disks, not 3"), "{e}");
        let ms = members(&s).unwrap();
        assert_eq!(ms.len(), 3);
        assert_eq!((ms[1].address.as_str(), ms[2].disks), ("10.0.0.9:8444", 2));
    }

    #[test]
    fn join_needs_a_cluster() {
        let (_d, s) = store();
        let e = join(&s, "n0", "h:1", 1).unwrap_err().to_string();
        assert!(e.contains("cluster init"), "{e}");
    }
}
