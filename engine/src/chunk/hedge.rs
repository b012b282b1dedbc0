//! Reads that do not wait for a slow node (cluster mode).
//!
//! A shard on another node is read on a thread of its own. When it has not come back within
//! the hedge delay — a few times the usual time of a remote shard read, at least
//! [`MIN_DELAY`] — the read goes on without it: other shards are read in its place, and the
//! slot it is on is passed over by reads for [`SLOW_FOR`]. A late answer is still taken if it
//! comes before the others'; one that comes after the chunk is read is dropped (its request
//! ends at the transport's own deadline). Shards on this node's disks are read as before, in
//! the caller's threads: a local disk that fails answers, it does not go quiet.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::remote::RemoteDisk;
use super::shard_io::{ShardAt, ShardIo, ShardRead};
use super::ChunkStore;
use crate::meta::ChunkRecord;

/// The shortest hedge delay: well above a remote shard read on a healthy network, so that
/// hedging does not read extra shards under ordinary load.
pub(crate) const MIN_DELAY: Duration = Duration::from_millis(100);
/// The longest: a node slower than this is slow, whatever its history.
const MAX_DELAY: Duration = Duration::from_secs(1);
/// How many times the usual remote read time a read may take before it is hedged.
const USUAL_TIMES: u32 = 4;
/// How long a slot whose read was hedged is passed over (as long as a client leaves a peer
/// that missed a deadline alone).
pub(crate) const SLOW_FOR: Duration = Duration::from_secs(3);

/// What reads learn about remote slots: which are slow now, and how long a read usually takes.
#[derive(Debug, Default)]
pub(crate) struct Hedge {
    slow_until: Mutex<HashMap<usize, Instant>>,
    /// Moving average of the remote shard reads that came back in time, in microseconds
    /// (0: none yet).
    usual_us: AtomicU64,
}

impl Hedge {
    /// How long a remote read may take before other shards are read in its place.
    pub(crate) fn delay(&self) -> Duration {
        let usual = Duration::from_micros(self.usual_us.load(Ordering::Relaxed));
        (usual * USUAL_TIMES).clamp(MIN_DELAY, MAX_DELAY)
    }

    /// Whether reads pass over `slot` now.
    pub(crate) fn is_slow(&self, slot: usize) -> bool {
        let Ok(mut slow) = self.slow_until.lock() else {
            return false;
        };
        match slow.get(&slot) {
            Some(until) if *until > Instant::now() => true,
            Some(_) => {
                slow.remove(&slot);
                false
            }
            None => false,
        }
    }

    /// Passes over `slot` for [`SLOW_FOR`]; whether it was not passed over already.
    fn mark_slow(&self, slot: usize) -> bool {
        let Ok(mut slow) = self.slow_until.lock() else {
            return false;
        };
        let now = Instant::now();
        let fresh = slow.get(&slot).is_none_or(|u| *u <= now);
        slow.insert(slot, now + SLOW_FOR);
        fresh
    }

    /// Counts a remote read that came back in `took`.
    fn record(&self, took: Duration) {
        let took = took.as_micros().min(u64::MAX as u128) as u64;
        // An average over about the last eight reads; races lose a sample, nothing more.
        let old = self.usual_us.load(Ordering::Relaxed);
        let new = if old == 0 {
            took
        } else {
            old - old / 8 + took / 8
        };
        self.usual_us.store(new, Ordering::Relaxed);
    }
}

/// One shard read: payload bytes `[lo, hi)` of shard `index`, on slot `slot`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Job {
    pub index: usize,
    pub slot: usize,
    pub lo: usize,
    pub hi: usize,
}

/// What [`Gather::next`] brings.
pub(crate) enum Next {
    /// Shard `index` as read.
    Read(usize, ShardRead),
    /// The reads still out passed the hedge delay: they are no longer counted on (their
    /// slots are passed over for a while), though their answers are still taken.
    Hedged,
    /// Nothing is out.
    Done,
}

/// A remote read under way.
struct Out {
    slot: usize,
    started: Instant,
    /// Still counted on (not hedged yet).
    counted: bool,
}

/// Shard reads of one chunk under way, the remote ones on threads of their own.
pub(crate) struct Gather<'a> {
    store: &'a ChunkStore,
    chunk: [u8; 32],
    rec: &'a ChunkRecord,
    shard_len: usize,
    tx: Sender<(usize, ShardRead)>,
    rx: Receiver<(usize, ShardRead)>,
    out: HashMap<usize, Out>,
}

impl<'a> Gather<'a> {
    /// Reads of the shards of `chunk` (where `rec` says, each `shard_len` bytes long) to come.
    pub(crate) fn new(
        store: &'a ChunkStore,
        chunk: [u8; 32],
        rec: &'a ChunkRecord,
        shard_len: usize,
    ) -> Self {
        let (tx, rx) = channel();
        Gather {
            store,
            chunk,
            rec,
            shard_len,
            tx,
            rx,
            out: HashMap::new(),
        }
    }

    /// Remote reads out and still counted on.
    pub(crate) fn counted(&self) -> usize {
        self.out.values().filter(|o| o.counted).count()
    }

    /// Starts `jobs`: the remote ones on their own threads; the local ones are read now (at
    /// the same time when there are several) and returned.
    pub(crate) fn launch(&mut self, jobs: &[Job]) -> Vec<(usize, ShardRead)> {
        let mut local = Vec::new();
        for job in jobs {
            match self.store.disks.remote_disk(job.slot) {
                Some(disk) => self.spawn(disk, *job),
                None => local.push(*job),
            }
        }
        let (store, chunk, rec, len) = (self.store, &self.chunk, self.rec, self.shard_len);
        let read = |job: &Job| {
            let at = ShardAt {
                chunk,
                index: job.index,
                loc: rec.loc(job.index),
                len,
            };
            let r = store.disks.read_shard(job.slot, at, job.lo, job.hi);
            (job.index, r)
        };
        if local.len() <= 1 {
            return local.iter().map(read).collect();
        }
        std::thread::scope(|sc| {
            let handles: Vec<_> = local.iter().map(|j| sc.spawn(move || read(j))).collect();
            handles
                .into_iter()
                .zip(&local)
                .map(|(h, j)| h.join().unwrap_or((j.index, ShardRead::Missing)))
                .collect()
        })
    }

    fn spawn(&mut self, disk: RemoteDisk, job: Job) {
        let (chunk, loc, len, tx) = (
            self.chunk,
            self.rec.loc(job.index),
            self.shard_len,
            self.tx.clone(),
        );
        let read = move || {
            let at = ShardAt {
                chunk: &chunk,
                index: job.index,
                loc,
                len,
            };
            // The receiver is gone when the chunk was read without this shard.
            let _ = tx.send((job.index, disk.read(at, job.lo, job.hi)));
        };
        if std::thread::Builder::new()
            .name("shard-read".into())
            .spawn(read)
            .is_err()
        {
            // No thread to be had: the shard counts as missing.
            let _ = self.tx.send((job.index, ShardRead::Missing));
        }
        let out = Out {
            slot: job.slot,
            started: Instant::now(),
            counted: true,
        };
        self.out.insert(job.index, out);
    }

    /// Waits for the next answer of a remote read, up to the hedge delay of the reads still
    /// counted on (without limit when none is: their transport's deadline ends them).
    pub(crate) fn next(&mut self) -> Next {
        if self.out.is_empty() {
            return Next::Done;
        }
        let hedge = &self.store.hedge;
        let due = self
            .out
            .values()
            .filter(|o| o.counted)
            .map(|o| o.started + hedge.delay())
            .min();
        let got = match due {
            Some(due) => self
                .rx
                .recv_timeout(due.saturating_duration_since(Instant::now())),
            None => self.rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match got {
            Ok((index, read)) => {
                if let Some(o) = self.out.remove(&index) {
                    if o.counted && matches!(read, ShardRead::Ok(_)) {
                        hedge.record(o.started.elapsed());
                    }
                }
                Next::Read(index, read)
            }
            Err(RecvTimeoutError::Timeout) => {
                for o in self.out.values_mut().filter(|o| o.counted) {
                    o.counted = false;
                    if hedge.mark_slow(o.slot) {
                        tracing::warn!(
                            "a shard read from {} took over {:?}: reading other shards, and \
                             passing that disk over for {SLOW_FOR:?}",
                            self.store.disks.describe_slot(o.slot),
                            hedge.delay()
                        );
                    }
                }
                Next::Hedged
            }
            // Cannot happen (this gather holds a sender); counted as the reads lost.
            Err(RecvTimeoutError::Disconnected) => {
                self.out.clear();
                Next::Done
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_follows_the_usual_read_time_within_its_bounds() {
        let h = Hedge::default();
        assert_eq!(h.delay(), MIN_DELAY);
        for _ in 0..50 {
            h.record(Duration::from_millis(100));
        }
        let d = h.delay();
        assert!(
            d > Duration::from_millis(350) && d <= Duration::from_millis(400),
            "{d:?}"
        );
        for _ in 0..50 {
            h.record(Duration::from_secs(10));
        }
        assert_eq!(h.delay(), MAX_DELAY);
    }

    #[test]
    fn a_slot_marked_slow_is_passed_over_for_a_while_then_tried_again() {
        let h = Hedge::default();
        assert!(!h.is_slow(3));
        assert!(h.mark_slow(3));
        assert!(!h.mark_slow(3), "marked once, not twice");
        assert!(h.is_slow(3) && !h.is_slow(4));
        h.slow_until
            .lock()
            .unwrap()
            .insert(3, Instant::now() - Duration::from_millis(1));
        assert!(!h.is_slow(3));
    }
}
