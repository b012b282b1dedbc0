//! One node at a time does the cluster's background work (scrub, repair, GC, lifecycle,
//! rebalance): the holder of a lease kept in the cluster's records (`state` `cluster/leader`:
//! the holder and a term it moves on every renewal).
//!
//! No clock is compared between nodes: the holder renews every `ttl / 4` and stops leading
//! when it has not renewed for `ttl / 2`; another node takes over only after seeing the same
//! record, unmoved, for a whole `ttl` by its own clock. Both need only that clocks run at
//! about the same rate. Every take-over and renewal is a transaction on the record as read,
//! so two nodes never both win one.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::kv::{Store, Table, Write};
use serde::{Deserialize, Serialize};

/// Where the lease is kept.
const LEASE_KEY: &[u8] = b"cluster/leader";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Lease {
    node: String,
    term: u64,
}

/// This node's part in the election; stops (without handing over: the lease runs out) when
/// dropped.
pub struct Leadership {
    leading: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Leadership {
    /// Campaigns for node `node` on `store` with leases of `ttl`.
    pub fn start(store: Arc<Store>, node: &str, ttl: Duration) -> Leadership {
        let leading = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (l, s, node) = (leading.clone(), stop.clone(), node.to_string());
        let thread = std::thread::Builder::new()
            .name("cluster-leader".into())
            .spawn(move || campaign(&store, &node, ttl, &l, &s))
            .ok();
        Leadership {
            leading,
            stop,
            thread,
        }
    }

    /// Whether this node leads now.
    pub fn is_leader(&self) -> bool {
        self.leading.load(Ordering::Relaxed)
    }
}

impl Drop for Leadership {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.leading.store(false, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The holder of the lease now, if any (for status).
pub fn holder(store: &Store) -> Result<Option<String>, crate::ClusterError> {
    use engine::kv::Read;
    let txn = store
        .read()
        .map_err(|e| crate::ClusterError::Store(e.to_string()))?;
    let b = txn
        .get(Table::State, LEASE_KEY)
        .map_err(|e| crate::ClusterError::Store(e.to_string()))?;
    Ok(b.and_then(|b| serde_json::from_slice::<Lease>(&b).ok())
        .map(|l| l.node))
}

fn campaign(store: &Store, node: &str, ttl: Duration, leading: &AtomicBool, stop: &AtomicBool) {
    // The record as last seen and since when (this node's clock).
    let mut seen: Option<(Option<Lease>, Instant)> = None;
    let mut renewed: Option<Instant> = None;
    while !stop.load(Ordering::Relaxed) {
        let me = node.to_string();
        let patience = ttl;
        let last = seen.clone();
        let outcome = store.committer().run_blocking(move |txn: &mut dyn Write| {
            let now: Option<Lease> = txn
                .get(Table::State, LEASE_KEY)?
                .and_then(|b| serde_json::from_slice(&b).ok());
            let take = match &now {
                None => true,
                Some(l) if l.node == me => true,
                // Someone else's: taken over once it has not moved for a whole lease.
                Some(_) => last
                    .as_ref()
                    .is_some_and(|(was, since)| *was == now && since.elapsed() >= patience),
            };
            if !take {
                return Ok((false, now));
            }
            let next = Lease {
                node: me.clone(),
                term: now.as_ref().map(|l| l.term + 1).unwrap_or(1),
            };
            let bytes = serde_json::to_vec(&next).unwrap_or_default();
            txn.put(Table::State, LEASE_KEY, &bytes)?;
            Ok((true, Some(next)))
        });
        match outcome {
            Ok((true, _)) => {
                if !leading.swap(true, Ordering::Relaxed) {
                    tracing::info!("this node leads the cluster's background work");
                }
                renewed = Some(Instant::now());
                seen = None;
            }
            Ok((false, now)) => {
                if leading.swap(false, Ordering::Relaxed) {
                    tracing::warn!("another node took the lead");
                }
                if seen.as_ref().is_none_or(|(was, _)| *was != now) {
                    seen = Some((now, Instant::now()));
                }
            }
            Err(e) => tracing::warn!("leader lease not renewed: {e}"),
        }
        // Not renewed for half a lease: others may take over at a whole one.
        if renewed.is_some_and(|r| r.elapsed() >= ttl / 2) && leading.swap(false, Ordering::Relaxed)
        {
            tracing::warn!("leader lease not renewed in time: background work stops here");
        }
        let until = Instant::now() + ttl / 4;
        while Instant::now() < until && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Arc<Store>) {
        let d = tempfile::tempdir().unwrap();
        let s = Store::open(d.path(), 1 << 26, false, None).unwrap();
        (d, Arc::new(s))
    }

    fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
        let t = Instant::now();
        while !f() {
            assert!(t.elapsed() < Duration::from_secs(10), "{what}: timed out");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn one_leader_at_a_time_and_another_after_it_stops() {
        let (_d, s) = store();
        let ttl = Duration::from_millis(600);
        let a = Leadership::start(s.clone(), "a", ttl);
        wait_for("a leads", || a.is_leader());
        let b = Leadership::start(s.clone(), "b", ttl);
        // b never leads while a renews.
        let t = Instant::now();
        while t.elapsed() < ttl * 3 {
            assert!(!b.is_leader(), "two leaders");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(holder(&s).unwrap().as_deref(), Some("a"));
        drop(a);
        wait_for("b takes over", || b.is_leader());
        assert_eq!(holder(&s).unwrap().as_deref(), Some("b"));
    }
}
