//! Group commit on etcd: the commits of concurrent write transactions go to etcd as one `Txn`
//! when they cannot interfere — none writes a key another read or wrote, or into a range
//! another scanned — so that many writers cost one request and one raft entry instead of one
//! each. Every transaction still reads on its own thread, side by side with the others; only
//! its commit (its compares and its writes) is merged. One merged `Txn` is in flight at a time:
//! the commits that arrive meanwhile make the next one.
//!
//! A merged `Txn` whose compares fail does not say whose did: each of its transactions then
//! commits alone, and those that met a concurrent change run again as before. A merged one
//! etcd refuses as too large commits alone too (etcd refuses before applying anything).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};

use etcd_client::{Compare, CompareOp, Txn, TxnOp};

use super::{Call, Conn, EtcdFailure};
use crate::error::{Error, Result, StoreError};

/// etcd's default `--max-txn-ops`: the most compares, and the most operations, one `Txn` may
/// have. A merged `Txn` stays within it; a single transaction beyond it goes alone (and fails
/// where etcd keeps the default, as it did before merging).
const MAX_OPS: usize = 128;
/// The most bytes of keys and values one merged `Txn` carries (etcd's default
/// `--max-request-bytes` is 1.5 MiB).
const MAX_BYTES: usize = 1 << 20;

/// What one write transaction asks of its commit.
#[derive(Debug, Default)]
pub(super) struct Commit {
    /// The revision its reads were taken at.
    pub rev: i64,
    /// Each key it read, with the revision that last changed it (0: absent).
    pub keys: BTreeMap<Vec<u8>, i64>,
    /// The key ranges it scanned.
    pub ranges: Vec<(Vec<u8>, Vec<u8>)>,
    /// The deletion marks of the tables it scanned.
    pub scanned: BTreeSet<Vec<u8>>,
    /// Its writes: key → new value, or `None` for a delete.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// The deletion marks it moves on (of the tables it deletes from).
    pub marks: BTreeSet<Vec<u8>>,
}

impl Commit {
    /// Bytes of keys and values it sends.
    fn bytes(&self) -> usize {
        let writes: usize = self
            .writes
            .iter()
            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len))
            .sum();
        let reads: usize = self.keys.keys().map(Vec::len).sum();
        writes + reads
    }

    /// Whether a key it writes is in `[start, end)` of a range.
    fn writes_into(&self, start: &[u8], end: &[u8]) -> bool {
        start < end
            && self
                .writes
                .range::<[u8], _>((
                    std::ops::Bound::Included(start),
                    std::ops::Bound::Excluded(end),
                ))
                .next()
                .is_some()
    }
}

/// How a commit went.
#[derive(Debug)]
pub(super) enum Outcome {
    /// Applied.
    Committed,
    /// Not applied: something it read has changed (run the transaction again).
    Conflict,
    /// Not applied, and to commit alone ([`commit_alone`]): its merged `Txn` failed for one
    /// of its members, or was refused.
    Alone(Commit),
    /// The request failed (it may or may not have been applied, as for any one `Txn`).
    Failed(Error),
}

/// The commits of one merged `Txn`.
#[derive(Default)]
struct Batch {
    commits: Vec<(Commit, SyncSender<Outcome>)>,
    /// Every key written, and every deletion mark moved on.
    written: BTreeSet<Vec<u8>>,
    marks: BTreeSet<Vec<u8>>,
    /// Every key read, at the revision it had.
    read: BTreeMap<Vec<u8>, i64>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    scanned: BTreeSet<Vec<u8>>,
    compares: usize,
    bytes: usize,
}

impl Batch {
    /// Whether `c` may join: it neither interferes with a commit already in nor makes the
    /// `Txn` too large. The first always joins.
    fn admits(&self, c: &Commit) -> bool {
        if self.commits.is_empty() {
            return true;
        }
        let compares = self.compares + c.keys.len() + c.ranges.len() + c.scanned.len();
        let ops = self.written.len() + self.marks.len() + c.writes.len() + c.marks.len();
        if compares > MAX_OPS || ops > MAX_OPS || self.bytes + c.bytes() > MAX_BYTES {
            return false;
        }
        // Its writes against what the others read or wrote.
        let writes_read = c.writes.keys().any(|k| {
            self.written.contains(k)
                || self.read.contains_key(k)
                || self
                    .ranges
                    .iter()
                    .any(|(a, b)| k.as_slice() >= a.as_slice() && k.as_slice() < b.as_slice())
        });
        // Its reads against what the others wrote (or read at another revision).
        let reads_written = c
            .keys
            .iter()
            .any(|(k, m)| self.written.contains(k) || self.read.get(k).is_some_and(|r| r != m));
        let scans_written = c.ranges.iter().any(|(a, b)| {
            a < b
                && self
                    .written
                    .range::<[u8], _>((
                        std::ops::Bound::Included(a.as_slice()),
                        std::ops::Bound::Excluded(b.as_slice()),
                    ))
                    .next()
                    .is_some()
        });
        let others_scan = self.ranges.iter().any(|(a, b)| c.writes_into(a, b));
        let marks = c.marks.iter().any(|m| self.scanned.contains(m))
            || c.scanned.iter().any(|m| self.marks.contains(m));
        !(writes_read || reads_written || scans_written || others_scan || marks)
    }

    fn add(&mut self, c: Commit, reply: SyncSender<Outcome>) {
        self.compares += c
            .keys
            .keys()
            .filter(|k| !self.read.contains_key(*k))
            .count()
            + c.ranges.len()
            + c.scanned.len();
        self.bytes += c.bytes();
        self.written.extend(c.writes.keys().cloned());
        self.marks.extend(c.marks.iter().cloned());
        self.read
            .extend(c.keys.iter().map(|(k, m)| (k.clone(), *m)));
        self.ranges.extend(c.ranges.iter().cloned());
        self.scanned.extend(c.scanned.iter().cloned());
        self.commits.push((c, reply));
    }

    /// The one `Txn` of every commit in: each key read compared once, each scan and scanned
    /// table at its commit's revision, every write, each deletion mark moved once.
    fn txn(&self) -> Txn {
        let mut when: Vec<Compare> = self
            .read
            .iter()
            .map(|(k, m)| Compare::mod_revision(k.clone(), CompareOp::Equal, *m))
            .collect();
        let mut ops = Vec::new();
        for (c, _) in &self.commits {
            when.extend(c.ranges.iter().map(|(start, end)| {
                Compare::mod_revision(start.clone(), CompareOp::Less, c.rev + 1)
                    .with_range(end.clone())
            }));
            when.extend(
                c.scanned
                    .iter()
                    .map(|m| Compare::mod_revision(m.clone(), CompareOp::Less, c.rev + 1)),
            );
            ops.extend(c.writes.iter().map(|(k, v)| match v {
                Some(v) => TxnOp::put(k.clone(), v.clone(), None),
                None => TxnOp::delete(k.clone(), None),
            }));
        }
        ops.extend(self.marks.iter().map(|m| TxnOp::put(m.clone(), [], None)));
        Txn::new().when(when).and_then(ops)
    }
}

type Request = (Commit, SyncSender<Outcome>);

/// How many commits went to etcd, in how many `Txn`s.
#[derive(Debug, Default)]
pub struct CommitStats {
    /// Merged `Txn`s sent (a commit sent alone after its merged one failed not counted).
    pub txns: AtomicU64,
    /// Commits in them.
    pub commits: AtomicU64,
    /// Commits sent alone after their merged `Txn` failed.
    pub alone: AtomicU64,
}

/// The thread that merges commits, and the channel to it.
pub(super) struct Batcher {
    tx: Mutex<Option<Sender<Request>>>,
    pub(super) stats: Arc<CommitStats>,
}

impl Batcher {
    /// Starts the merging thread, which sends through `conn`.
    pub(super) fn start(conn: Conn) -> Result<Batcher> {
        let (tx, rx) = mpsc::channel::<Request>();
        let stats = Arc::new(CommitStats::default());
        let counts = stats.clone();
        std::thread::Builder::new()
            .name("etcd-commit".into())
            .spawn(move || run(conn, rx, &counts))?;
        Ok(Batcher {
            tx: Mutex::new(Some(tx)),
            stats,
        })
    }

    /// Commits `c` with whatever other commits it may go with; waits for the outcome.
    pub(super) fn commit(&self, c: Commit) -> Outcome {
        let (reply, outcome) = mpsc::sync_channel(1);
        let sent = match self.tx.lock() {
            Ok(tx) => tx.as_ref().is_some_and(|tx| tx.send((c, reply)).is_ok()),
            Err(_) => false,
        };
        if !sent {
            return Outcome::Failed(super::failure(EtcdFailure::Stopped));
        }
        crate::blocking::wait_off_worker(|| outcome.recv())
            .unwrap_or_else(|_| Outcome::Failed(super::failure(EtcdFailure::Stopped)))
    }

    /// Lets the thread end once the commits sent are answered.
    pub(super) fn stop(&self) {
        if let Ok(mut tx) = self.tx.lock() {
            tx.take();
        }
    }
}

/// How many recently written keys the merging thread remembers ([`Recent`]).
const RECENT_KEYS: usize = 1 << 16;

/// The keys this store's commits wrote lately, with the revision they were written at: a
/// commit that read one of them at an older revision cannot succeed, and is answered so at
/// once instead of failing a merged `Txn` (writes of other nodes are not known here: theirs
/// still do).
#[derive(Default)]
struct Recent(BTreeMap<Vec<u8>, i64>);

impl Recent {
    /// Whether something `c` read has been written since: a key it read (last changed at
    /// `m`, as of its revision or, for a setting taken from memory, as of then) written by
    /// this store later than both; a range or table it scanned written since its revision.
    fn outdates(&self, c: &Commit) -> bool {
        let newer = |k: &[u8], than: i64| self.0.get(k).is_some_and(|r| *r > than);
        c.keys.iter().any(|(k, m)| newer(k, c.rev.max(*m)))
            || c.scanned.iter().any(|m| newer(m, c.rev))
            || c.ranges.iter().any(|(a, b)| {
                a < b
                    && self
                        .0
                        .range::<[u8], _>((
                            std::ops::Bound::Included(a.as_slice()),
                            std::ops::Bound::Excluded(b.as_slice()),
                        ))
                        .any(|(_, r)| *r > c.rev)
            })
    }

    /// Notes the keys `batch` wrote at `rev`.
    fn wrote(&mut self, batch: &Batch, rev: i64) {
        if self.0.len() + batch.written.len() + batch.marks.len() > RECENT_KEYS {
            // Forgetting only costs a merged `Txn` now and then.
            self.0.clear();
        }
        for k in batch.written.iter().chain(&batch.marks) {
            self.0.insert(k.clone(), rev);
        }
    }
}

/// The merging thread: takes every commit waiting, answers at once those that read what this
/// store wrote since, puts those that go together in one `Txn` (the others wait for the next,
/// first in line), sends it, answers each.
fn run(conn: Conn, rx: Receiver<Request>, stats: &CommitStats) {
    let mut waiting: VecDeque<Request> = VecDeque::new();
    let mut recent = Recent::default();
    loop {
        if waiting.is_empty() {
            match rx.recv() {
                Ok(r) => waiting.push_back(r),
                Err(_) => return,
            }
        }
        waiting.extend(rx.try_iter());
        let mut batch = Batch::default();
        let mut later = VecDeque::new();
        for (c, reply) in waiting.drain(..) {
            if recent.outdates(&c) {
                let _ = reply.send(Outcome::Conflict);
            } else if batch.admits(&c) {
                batch.add(c, reply);
            } else {
                later.push_back((c, reply));
            }
        }
        waiting = later;
        if batch.commits.is_empty() {
            continue;
        }
        stats.txns.fetch_add(1, Ordering::Relaxed);
        stats
            .commits
            .fetch_add(batch.commits.len() as u64, Ordering::Relaxed);
        send(&conn, batch, &mut recent);
    }
}

/// Sends one merged `Txn`, notes what it wrote in `recent`, and answers its commits.
fn send(conn: &Conn, batch: Batch, recent: &mut Recent) {
    let merged = batch.commits.len() > 1;
    let txn = batch.txn();
    let r = conn.call(Call::Txn, move |mut kv| {
        let txn = txn.clone();
        async move { kv.txn(txn).await }
    });
    if let Ok(t) = &r {
        if let (true, Some(h)) = (t.succeeded(), t.header()) {
            recent.wrote(&batch, h.revision());
            for (c, _) in &batch.commits {
                conn.committed(&c.writes, h.revision());
            }
        }
    }
    for (c, reply) in batch.commits {
        let outcome = match &r {
            Ok(t) if t.succeeded() => Outcome::Committed,
            Ok(_) if merged => Outcome::Alone(c),
            Ok(_) => Outcome::Conflict,
            // Refused before anything was applied (too many operations, too large): alone,
            // each is what it was before merging.
            Err(EtcdFailure::Client(etcd_client::Error::GRpcStatus(s)))
                if merged && s.code() == tonic::Code::InvalidArgument =>
            {
                Outcome::Alone(c)
            }
            Err(e) => Outcome::Failed(shared(e)),
        };
        let _ = reply.send(outcome);
    }
}

/// Sends `c` as a `Txn` of its own (after its merged one failed).
pub(super) fn commit_alone(conn: &Conn, c: Commit) -> Outcome {
    let mut one = Batch::default();
    one.add(c, mpsc::sync_channel(1).0);
    let txn = one.txn();
    match conn.call(Call::Txn, move |mut kv| {
        let txn = txn.clone();
        async move { kv.txn(txn).await }
    }) {
        Ok(t) if t.succeeded() => {
            if let (Some(h), Some((c, _))) = (t.header(), one.commits.first()) {
                conn.committed(&c.writes, h.revision());
            }
            Outcome::Committed
        }
        Ok(_) => Outcome::Conflict,
        Err(e) => Outcome::Failed(super::failure(e)),
    }
}

/// The failure of a merged `Txn`, for each of its commits.
fn shared(e: &EtcdFailure) -> Error {
    let no_space = matches!(
        e,
        EtcdFailure::Client(etcd_client::Error::GRpcStatus(s))
            if s.code() == tonic::Code::ResourceExhausted
    );
    Error::Meta(StoreError::new(
        std::io::Error::other(e.to_string()),
        no_space,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(reads: &[&str], writes: &[&str]) -> Commit {
        Commit {
            rev: 10,
            keys: reads.iter().map(|k| (k.as_bytes().to_vec(), 3)).collect(),
            writes: writes
                .iter()
                .map(|k| (k.as_bytes().to_vec(), Some(b"v".to_vec())))
                .collect(),
            ..Commit::default()
        }
    }

    fn batch_of(c: Commit) -> Batch {
        let mut b = Batch::default();
        b.add(c, mpsc::sync_channel(1).0);
        b
    }

    #[test]
    fn commits_that_touch_other_keys_go_together() {
        let b = batch_of(commit(&["a", "bucket"], &["a"]));
        // Both read the bucket at the same revision and write keys of their own.
        assert!(b.admits(&commit(&["b", "bucket"], &["b"])));
    }

    #[test]
    fn a_commit_that_reads_or_writes_what_another_writes_waits() {
        let b = batch_of(commit(&["a"], &["a"]));
        assert!(!b.admits(&commit(&["a"], &["a"])), "the same key");
        assert!(
            !b.admits(&commit(&["a"], &["b"])),
            "reads what the first writes"
        );
        assert!(
            !b.admits(&commit(&["c"], &["a"])),
            "writes what the first wrote"
        );
        let b = batch_of(commit(&["x"], &["y"]));
        assert!(
            !b.admits(&commit(&["z"], &["x"])),
            "writes what the first read"
        );
        let mut other_rev = commit(&["x"], &["w"]);
        other_rev.keys.insert(b"x".to_vec(), 4);
        assert!(
            !b.admits(&other_rev),
            "read the same key at another revision"
        );
    }

    #[test]
    fn scans_and_deletion_marks_keep_commits_apart() {
        let mut scan = commit(&[], &["s"]);
        scan.ranges.push((b"k/".to_vec(), b"k0".to_vec()));
        scan.scanned.insert(b"t~".to_vec());
        let b = batch_of(scan);
        assert!(
            !b.admits(&commit(&[], &["k/new"])),
            "writes into a scanned range"
        );
        assert!(b.admits(&commit(&[], &["l/new"])));
        let mut deletes = commit(&[], &["q"]);
        deletes.marks.insert(b"t~".to_vec());
        assert!(!b.admits(&deletes), "deletes from a scanned table");
        let mut w = commit(&[], &["k/x"]);
        w.ranges.clear();
        let b = batch_of(w);
        let mut scan = commit(&[], &["z"]);
        scan.ranges.push((b"k/".to_vec(), b"k0".to_vec()));
        assert!(!b.admits(&scan), "scans what the first wrote");
    }

    #[test]
    fn a_commit_that_read_what_this_store_wrote_since_is_known_to_fail() {
        let mut recent = Recent::default();
        recent.wrote(&batch_of(commit(&[], &["k/a"])), 20);
        assert!(recent.outdates(&commit(&["k/a"], &["z"])), "read at 10");
        let mut fresh = commit(&["k/a"], &["z"]);
        fresh.rev = 20;
        assert!(!recent.outdates(&fresh), "read at 20");
        let mut scan = commit(&[], &["z"]);
        scan.ranges.push((b"k/".to_vec(), b"k0".to_vec()));
        assert!(recent.outdates(&scan), "scanned at 10");
        let mut elsewhere = commit(&[], &["z"]);
        elsewhere.ranges.push((b"l/".to_vec(), b"l0".to_vec()));
        assert!(!recent.outdates(&elsewhere));
    }

    #[test]
    fn a_merged_txn_stays_within_etcds_default_limits() {
        let mut b = Batch::default();
        let mut n = 0;
        loop {
            let c = commit(&[], &[&format!("key-{n}")]);
            if !b.admits(&c) {
                break;
            }
            b.add(c, mpsc::sync_channel(1).0);
            n += 1;
        }
        assert_eq!(n, MAX_OPS);
        // One commit alone goes whatever its size.
        let big: Vec<String> = (0..300).map(|i| format!("k{i}")).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        assert!(Batch::default().admits(&commit(&[], &big)));
    }
}
