//! The metadata seam on etcd, for cluster mode (step 3 of `docs/cluster-plan.md`): an engine
//! opens it when its configuration says so ([`crate::Metadata::Etcd`]).
//!
//! A table is the key prefix `<prefix><table name>/`. A read transaction is a revision, that
//! of its first read (which costs no round trip of its own): every later read of it asks etcd
//! for the keys as they were then. A write transaction is optimistic: its
//! reads are taken at the revision of its first (no round trip of its own) and remembered, its
//! writes buffered (its own reads see them), and its commit is one etcd `Txn` that applies the
//! writes only if nothing it read has changed since — every key read still has the revision it had (a key read as absent is still absent),
//! no key in a range it scanned is newer, and nothing was deleted from a table it scanned (a
//! per-table deletion mark that every deleting transaction moves on). When something has,
//! [`EtcdStore::write`] runs the transaction again from a new revision.
//!
//! The seam is synchronous and etcd's client is not: calls go to a runtime the store owns and
//! the caller waits for the answer, so a caller on any thread (also one of another runtime's)
//! works — blocking that thread for the round trip; a worker of a multi-threaded tokio runtime
//! first hands its other tasks to the rest of the runtime ([`crate::blocking`]).

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use etcd_client::{
    Client, ConnectOptions, GetOptions, GetResponse, KvClient, SortOrder, SortTarget,
};

use super::{prefix_end, Pair, Read, Scan, Table, Write};
use crate::error::{Error, Result, StoreError};

mod batch;
mod manifests;
mod settings;
pub use batch::CommitStats;

/// The tables whose records reads for settings take from memory ([`settings`]).
const SETTINGS: [Table; 2] = [Table::Buckets, Table::Keys];

/// How long a call is tried again while no member answers it ([`EtcdStore::call`]).
const RETRY_FOR: Duration = Duration::from_secs(6);

/// What a call to etcd is, for whether it may be made again after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// A read: making it again changes nothing.
    Read,
    /// A transaction: made again only if it never reached etcd.
    Txn,
}

impl Call {
    fn may_retry(self, e: &etcd_client::Error) -> bool {
        use tonic::Code;
        match (self, e) {
            (Call::Read, etcd_client::Error::GRpcStatus(s)) => matches!(
                s.code(),
                Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
            ),
            (Call::Read, etcd_client::Error::TransportError(_)) => true,
            (Call::Txn, etcd_client::Error::GRpcStatus(s)) => {
                s.code() == Code::Unavailable && never_connected(s)
            }
            (Call::Txn, etcd_client::Error::TransportError(t)) => never_connected(t),
            _ => false,
        }
    }
}

/// Whether the failure `e` (or one it was caused by) is a connection refused or never made:
/// the request was not sent.
fn never_connected(e: &(dyn std::error::Error + 'static)) -> bool {
    use std::io::ErrorKind;
    let mut cause = Some(e);
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            if matches!(
                io.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::AddrNotAvailable
            ) {
                return true;
            }
        }
        cause = c.source();
    }
    false
}

/// Keys a range read asks for at a time.
const PAGE: i64 = 512;

/// Times a write transaction is run while concurrent changes keep failing its commit.
const ATTEMPTS: usize = 64;

/// What can go wrong talking to etcd.
#[derive(Debug, thiserror::Error)]
enum EtcdFailure {
    #[error("etcd: {0}")]
    Client(#[from] etcd_client::Error),
    #[error("etcd: a write transaction met concurrent changes {0} times in a row")]
    Contention(usize),
    #[error("etcd: the store's client runtime has stopped")]
    Stopped,
}

fn failure(e: EtcdFailure) -> Error {
    // etcd answers a write over its space quota (its NOSPACE alarm) with RESOURCE_EXHAUSTED.
    let no_space = matches!(
        &e,
        EtcdFailure::Client(etcd_client::Error::GRpcStatus(s))
            if s.code() == tonic::Code::ResourceExhausted
    );
    Error::Meta(StoreError::new(e, no_space))
}

/// A key, its value, and the revision that last modified it.
type Entry = (Vec<u8>, Vec<u8>, i64);

fn entry(kv: etcd_client::KeyValue) -> Entry {
    let m = kv.mod_revision();
    let (k, v) = kv.into_key_value();
    (k, v, m)
}

/// `<prefix><table>/`: where a table's keys start.
fn table_prefix(prefix: &[u8], table: Table) -> Vec<u8> {
    let mut p = prefix.to_vec();
    p.extend_from_slice(table.name().as_bytes());
    p.push(b'/');
    p
}

/// The revision a response was read at: the one asked for, else the store's then.
fn read_at(r: &GetResponse, asked: i64) -> i64 {
    match asked {
        0 => r.header().map(|h| h.revision()).unwrap_or(0),
        rev => rev,
    }
}

/// The metadata store on an etcd cluster, under one key prefix.
pub struct EtcdStore {
    rt: Option<tokio::runtime::Runtime>,
    conn: Conn,
    prefix: Vec<u8>,
    /// Merges the commits of concurrent write transactions ([`batch`]).
    batcher: batch::Batcher,
    /// Manifests read lately ([`manifests`]).
    manifests: manifests::Manifests,
}

/// The client and the runtime its calls run on; the settings cached (which this node's
/// commits update).
#[derive(Clone)]
struct Conn {
    rt: tokio::runtime::Handle,
    kv: KvClient,
    settings: std::sync::Arc<[(Vec<u8>, std::sync::Arc<settings::Settings>)]>,
}

impl EtcdStore {
    /// Connects to `endpoints` (`http://host:port`); every key goes under `prefix`.
    pub fn connect(endpoints: &[String], prefix: &[u8]) -> Result<EtcdStore> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("etcd-client")
            .enable_all()
            .build()?;
        let eps = endpoints.to_vec();
        let (tx, rx) = mpsc::sync_channel(1);
        // A member that is gone or cut off fails a request in seconds, not never: the caller
        // tries again, and the client turns to the other members.
        let opts = ConnectOptions::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_timeout(Duration::from_secs(5))
            .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2));
        rt.spawn(async move {
            let _ = tx.send(Client::connect(eps, Some(opts)).await);
        });
        let client = rx
            .recv()
            .map_err(|_| failure(EtcdFailure::Stopped))?
            .map_err(|e| failure(e.into()))?;
        let settings: Vec<(Vec<u8>, std::sync::Arc<settings::Settings>)> = SETTINGS
            .iter()
            .map(|t| (table_prefix(prefix, *t), Default::default()))
            .collect();
        for (p, cache) in &settings {
            rt.spawn(settings::watch(
                endpoints.to_vec(),
                p.clone(),
                cache.clone(),
            ));
        }
        let conn = Conn {
            rt: rt.handle().clone(),
            kv: client.kv_client(),
            settings: settings.into(),
        };
        Ok(EtcdStore {
            batcher: batch::Batcher::start(conn.clone())?,
            manifests: Default::default(),
            conn,
            rt: Some(rt),
            prefix: prefix.to_vec(),
        })
    }

    /// Reads of manifests by read transactions answered from memory so far.
    pub fn manifest_hits(&self) -> u64 {
        self.manifests.hits.load(Ordering::Relaxed)
    }

    /// Reads of settings answered from memory so far.
    pub fn settings_hits(&self) -> u64 {
        self.conn
            .settings
            .iter()
            .map(|(_, s)| s.hits.load(Ordering::Relaxed))
            .sum()
    }

    /// How many write transactions' commits went to etcd in how many `Txn`s.
    pub fn commit_stats(&self) -> &CommitStats {
        &self.batcher.stats
    }

    /// Runs `f` on a blocking thread of the store's runtime.
    pub(crate) fn spawn_blocking(&self, f: impl FnOnce() + Send + 'static) -> Result<()> {
        let rt = self
            .rt
            .as_ref()
            .ok_or_else(|| failure(EtcdFailure::Stopped))?;
        rt.spawn_blocking(f);
        Ok(())
    }

    /// Runs a call of the client on the store's runtime and waits for its answer. A call that
    /// failed for want of a member to answer it is made again for up to [`RETRY_FOR`] (the
    /// client then turns to another member): a read whatever the failure, a transaction only
    /// when it provably never reached etcd (its connection was refused or never made), since
    /// one that did may have been applied.
    fn call<T, F>(&self, kind: Call, f: impl Fn(KvClient) -> F) -> Result<T>
    where
        T: Send + 'static,
        F: Future<Output = std::result::Result<T, etcd_client::Error>> + Send + 'static,
    {
        self.conn.call(kind, f).map_err(failure)
    }

    /// A range request for `key` with `options` at revision `rev` (0: the latest, read
    /// linearizably). A past revision is the same on every member that has applied it, so it
    /// is read from the member asked as it stands (no round of etcd's read index); a member
    /// that has not applied it yet says so (as it says of a compacted one), and the read is
    /// made again linearizably.
    fn range_at(
        &self,
        rev: i64,
        key: Vec<u8>,
        options: impl Fn() -> GetOptions + Clone + Send + 'static,
    ) -> Result<GetResponse> {
        let get = |serializable: bool| {
            let (key, options) = (key.clone(), options.clone());
            move |mut kv: KvClient| {
                let (key, mut o) = (key.clone(), options().with_revision(rev));
                if serializable {
                    o = o.with_serializable();
                }
                async move { kv.get(key, Some(o)).await }
            }
        };
        if rev != 0 {
            match self.conn.call(Call::Read, get(true)) {
                Err(EtcdFailure::Client(etcd_client::Error::GRpcStatus(s)))
                    if s.code() == tonic::Code::OutOfRange => {}
                r => return r.map_err(failure),
            }
        }
        self.call(Call::Read, get(false))
    }

    /// `<prefix><table>/`: where a table's keys start.
    fn table_prefix(&self, table: Table) -> Vec<u8> {
        table_prefix(&self.prefix, table)
    }

    /// Makes this node's memory hold `value` for `key` of `table`, last changed at `mod_rev`,
    /// whatever etcd holds (tests of what a stale setting does).
    #[cfg(test)]
    pub(crate) fn remember_setting(&self, table: Table, key: &[u8], value: &[u8], mod_rev: i64) {
        if let Some(c) = self.settings_of(table) {
            c.fill(&self.full_key(table, key), value, mod_rev, i64::MAX);
        }
    }

    /// The cached records of `table`, when it is one of the [`SETTINGS`].
    fn settings_of(&self, table: Table) -> Option<&settings::Settings> {
        let i = SETTINGS.iter().position(|t| *t == table)?;
        self.conn.settings.get(i).map(|(_, s)| s.as_ref())
    }

    /// `<prefix><table>~`, outside the table's keys (`~` sorts after `/` and after the end of
    /// its range): moved on by every write transaction that deletes from the table, so that a
    /// transaction that scanned the table learns of a deletion from one compare.
    fn deletion_mark(&self, table: Table) -> Vec<u8> {
        let mut p = self.prefix.clone();
        p.extend_from_slice(table.name().as_bytes());
        p.push(b'~');
        p
    }

    fn full_key(&self, table: Table, key: &[u8]) -> Vec<u8> {
        let mut k = self.table_prefix(table);
        k.extend_from_slice(key);
        k
    }

    /// The etcd key range `[start, end)` of keys of `table` between `from` and `to`.
    fn key_range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> (Vec<u8>, Vec<u8>) {
        let tp = self.table_prefix(table);
        let at = |k: &[u8], past: bool| {
            let mut v = tp.clone();
            v.extend_from_slice(k);
            if past {
                v.push(0); // the smallest key after `k`
            }
            v
        };
        let start = match from {
            Bound::Included(k) => at(k, false),
            Bound::Excluded(k) => at(k, true),
            Bound::Unbounded => tp.clone(),
        };
        let end = match to {
            Bound::Included(k) => at(k, true),
            Bound::Excluded(k) => at(k, false),
            // The prefix ends in '/', so it has an end.
            Bound::Unbounded => prefix_end(&tp).unwrap_or_default(),
        };
        (start, end)
    }

    /// The value and modification revision of `key` at revision `rev` (0: the latest), and the
    /// revision read at.
    fn get_at(&self, rev: i64, key: Vec<u8>) -> Result<(Option<Entry>, i64)> {
        tracing::trace!(key = %String::from_utf8_lossy(&key), rev, "etcd get");
        let mut r = self.range_at(rev, key, GetOptions::new)?;
        let at = read_at(&r, rev);
        let got = r.take_kvs().into_iter().next().map(entry);
        Ok((got, at))
    }

    /// Up to [`PAGE`] keys of `[start, end)` at revision `rev` (0: the latest), ascending, with
    /// their modification revisions; whether there are more; the revision read at.
    fn page(&self, rev: i64, start: Vec<u8>, end: Vec<u8>) -> Result<(Vec<Entry>, bool, i64)> {
        tracing::trace!(start = %String::from_utf8_lossy(&start), rev, "etcd range");
        let mut r = self.range_at(rev, start, move || {
            GetOptions::new()
                .with_range(end.clone())
                .with_limit(PAGE)
                .with_sort(SortTarget::Key, SortOrder::Ascend)
        })?;
        let more = r.more();
        let at = read_at(&r, rev);
        let kvs = r.take_kvs().into_iter().map(entry).collect();
        Ok((kvs, more, at))
    }

    /// Every key of `[start, end)` at revision `rev` (0: the latest), and the revision read at.
    fn all_at(&self, mut rev: i64, start: Vec<u8>, end: Vec<u8>) -> Result<(Vec<Entry>, i64)> {
        let mut out = Vec::new();
        let mut from = start;
        loop {
            // Later pages at the revision of the first.
            let (kvs, more, at) = self.page(rev, from, end.clone())?;
            rev = at;
            let last = kvs.last().map(|(k, _, _)| k.clone());
            out.extend(kvs);
            match (more, last) {
                (true, Some(mut k)) => {
                    k.push(0);
                    from = k;
                }
                _ => return Ok((out, rev)),
            }
        }
    }

    /// A read transaction: the store as its first read finds it (every later read of it at
    /// that revision), which costs no round trip of its own.
    pub fn read(&self) -> Result<EtcdRead<'_>> {
        Ok(EtcdRead {
            store: self,
            rev: Cell::new(0),
            settings: false,
        })
    }

    /// A read transaction for settings: as [`EtcdStore::read`], but the records of buckets
    /// and access keys come from memory when they are there ([`settings`]), as current as
    /// the watch that keeps them (changes through this node at once).
    pub fn read_settings(&self) -> Result<EtcdRead<'_>> {
        Ok(EtcdRead {
            store: self,
            rev: Cell::new(0),
            settings: true,
        })
    }

    /// Runs `f` as a write transaction and commits it; runs it again from the current state
    /// when a concurrent change touched what it read (so `f` must have no effect outside the
    /// transaction). An error from `f` ends it with nothing written.
    pub fn write<R>(&self, mut f: impl FnMut(&mut dyn Write) -> Result<R>) -> Result<R> {
        for attempt in 0..ATTEMPTS {
            let mut w = EtcdWrite {
                store: self,
                // A run again after a conflict reads everything from etcd: the settings in
                // memory may be what was out of date.
                settings: attempt == 0,
                rev: Cell::new(0),
                writes: BTreeMap::new(),
                deletes_in: BTreeSet::new(),
                reads: RefCell::new(Reads::default()),
            };
            let r = f(&mut w)?;
            if w.commit()? {
                return Ok(r);
            }
        }
        Err(failure(EtcdFailure::Contention(ATTEMPTS)))
    }
}

impl Drop for EtcdStore {
    fn drop(&mut self) {
        self.batcher.stop();
        // Dropping a runtime waits for its threads, which a caller on another runtime may not.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl Conn {
    /// Puts what a commit applied at revision `rev` into the settings cached.
    fn committed(&self, writes: &BTreeMap<Vec<u8>, Option<Vec<u8>>>, rev: i64) {
        for (prefix, cache) in self.settings.iter() {
            let from = (Bound::Included(prefix.as_slice()), Bound::Unbounded);
            for (k, v) in writes.range::<[u8], _>(from) {
                if !k.starts_with(prefix) {
                    break;
                }
                cache.changed(k, v.as_deref(), rev);
            }
        }
    }

    /// Runs a call (see [`EtcdStore::call`]); its failure not yet turned into the engine's
    /// error.
    fn call<T, F>(
        &self,
        kind: Call,
        f: impl Fn(KvClient) -> F,
    ) -> std::result::Result<T, EtcdFailure>
    where
        T: Send + 'static,
        F: Future<Output = std::result::Result<T, etcd_client::Error>> + Send + 'static,
    {
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let fut = f(self.kv.clone());
            let (tx, rx) = mpsc::sync_channel(1);
            self.rt.spawn(async move {
                let _ = tx.send(fut.await);
            });
            let answer =
                crate::blocking::wait_off_worker(|| rx.recv()).map_err(|_| EtcdFailure::Stopped)?;
            match answer {
                Err(e) if kind.may_retry(&e) && started.elapsed() < RETRY_FOR => {
                    tracing::debug!("etcd call failed, trying again: {e}");
                    crate::blocking::wait_off_worker(|| std::thread::sleep(pause));
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                r => return r.map_err(EtcdFailure::from),
            }
        }
    }
}

/// A snapshot: the store at one revision, that of its first read (0 before it).
pub struct EtcdRead<'s> {
    store: &'s EtcdStore,
    rev: Cell<i64>,
    /// Records of the [`SETTINGS`] tables from memory when there.
    settings: bool,
}

/// The keys of a table at one revision (that of the first page when it is 0), page by page.
struct Pages<'s> {
    store: &'s EtcdStore,
    rev: &'s Cell<i64>,
    next: Option<Vec<u8>>,
    end: Vec<u8>,
    strip: usize,
    buf: VecDeque<(Vec<u8>, Vec<u8>)>,
}

impl<'s> Iterator for Pages<'s> {
    type Item = Result<Pair<'s>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            let from = self.next.take()?;
            match self.store.page(self.rev.get(), from, self.end.clone()) {
                Err(e) => return Some(Err(e)),
                Ok((kvs, more, at)) => {
                    self.rev.set(at);
                    if more {
                        self.next = kvs.last().map(|(k, _, _)| {
                            let mut n = k.clone();
                            n.push(0);
                            n
                        });
                    }
                    self.buf.extend(kvs.into_iter().map(|(k, v, _)| (k, v)));
                }
            }
        }
        let (k, v) = self.buf.pop_front()?;
        Some(Ok((Cow::Owned(k[self.strip..].to_vec()), Cow::Owned(v))))
    }
}

impl Read for EtcdRead<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        let k = self.store.full_key(table, key);
        let manifest = table == Table::Manifests;
        if manifest {
            if let Some(v) = self.store.manifests.get(&k) {
                return Ok(Some(Cow::Owned(v)));
            }
        }
        let cache = self
            .settings
            .then(|| self.store.settings_of(table))
            .flatten();
        if let Some(known) = cache.and_then(|c| c.get(&k)) {
            return Ok(known.map(Cow::Owned));
        }
        let (got, at) = self.store.get_at(self.rev.get(), k.clone())?;
        self.rev.set(at);
        if let Some((_, v, m)) = &got {
            if let Some(c) = cache {
                c.fill(&k, v, *m, at);
            }
            if manifest {
                self.store.manifests.keep(&k, v);
            }
        }
        Ok(got.map(|(_, v, _)| Cow::Owned(v)))
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        let (start, end) = self.store.key_range(table, from, to);
        if start >= end {
            return Ok(Box::new(std::iter::empty()));
        }
        Ok(Box::new(Pages {
            store: self.store,
            rev: &self.rev,
            next: Some(start),
            end,
            strip: self.store.table_prefix(table).len(),
            buf: VecDeque::new(),
        }))
    }

    fn count(&self, table: Table) -> Result<u64> {
        let (start, end) = self
            .store
            .key_range(table, Bound::Unbounded, Bound::Unbounded);
        let rev = self.rev.get();
        let r = self.store.range_at(rev, start, move || {
            GetOptions::new().with_range(end.clone()).with_count_only()
        })?;
        self.rev.set(read_at(&r, rev));
        Ok(r.count().max(0) as u64)
    }
}

/// What a write transaction read: each key it got with the revision it had (0: absent), the
/// ranges it scanned, and the tables those were in.
#[derive(Default)]
struct Reads {
    keys: BTreeMap<Vec<u8>, i64>,
    ranges: Vec<(Vec<u8>, Vec<u8>)>,
    scanned: BTreeSet<Table>,
}

/// An optimistic write transaction (see the module's documentation).
pub struct EtcdWrite<'s> {
    store: &'s EtcdStore,
    /// Records of the [`SETTINGS`] tables from memory when there, compared at the commit on
    /// the revision that last changed them like any record read.
    settings: bool,
    /// The revision it reads at: that of its first read (0 before it, so that the first read
    /// costs no extra round trip).
    rev: Cell<i64>,
    /// Full key → new value, or `None` for a delete.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Tables it deletes from (their deletion marks move on at its commit).
    deletes_in: BTreeSet<Table>,
    reads: RefCell<Reads>,
}

impl EtcdWrite<'_> {
    /// The keys of `[start, end)` as this transaction sees them (the store at its revision with
    /// its own writes on top), remembered for the commit's check.
    fn merged(
        &self,
        table: Table,
        start: Vec<u8>,
        end: Vec<u8>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let (stored, at) = self
            .store
            .all_at(self.rev.get(), start.clone(), end.clone())?;
        self.rev.set(at);
        let mut view: BTreeMap<Vec<u8>, Vec<u8>> =
            stored.into_iter().map(|(k, v, _)| (k, v)).collect();
        {
            let mut reads = self.reads.borrow_mut();
            reads.ranges.push((start.clone(), end.clone()));
            reads.scanned.insert(table);
        }
        for (k, v) in self.writes.range(start..end) {
            match v {
                Some(v) => view.insert(k.clone(), v.clone()),
                None => view.remove(k),
            };
        }
        Ok(view.into_iter().collect())
    }

    /// Applies the writes if nothing read has changed since; whether it did. The commit goes
    /// with other transactions' where they cannot interfere ([`batch`]).
    fn commit(self) -> Result<bool> {
        if self.writes.is_empty() {
            return Ok(true);
        }
        let reads = self.reads.into_inner();
        let store = self.store;
        let c = batch::Commit {
            rev: self.rev.get(),
            keys: reads.keys,
            ranges: reads.ranges,
            scanned: reads
                .scanned
                .iter()
                .map(|t| store.deletion_mark(*t))
                .collect(),
            writes: self.writes,
            marks: self
                .deletes_in
                .iter()
                .map(|t| store.deletion_mark(*t))
                .collect(),
        };
        let mut outcome = store.batcher.commit(c);
        if let batch::Outcome::Alone(c) = outcome {
            // Its merged `Txn` failed as a whole: this one goes by itself.
            store.batcher.stats.alone.fetch_add(1, Ordering::Relaxed);
            outcome = batch::commit_alone(&store.conn, c);
        }
        match outcome {
            batch::Outcome::Committed => Ok(true),
            batch::Outcome::Conflict | batch::Outcome::Alone(_) => Ok(false),
            batch::Outcome::Failed(e) => Err(e),
        }
    }
}

impl Read for EtcdWrite<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        let k = self.store.full_key(table, key);
        if let Some(w) = self.writes.get(&k) {
            return Ok(w.as_deref().map(Cow::Borrowed));
        }
        let cache = self
            .settings
            .then(|| self.store.settings_of(table))
            .flatten();
        if let Some((v, m)) = cache.and_then(|c| c.get_with_revision(&k)) {
            self.reads.borrow_mut().keys.entry(k).or_insert(m);
            return Ok(v.map(Cow::Owned));
        }
        let (got, at) = self.store.get_at(self.rev.get(), k.clone())?;
        self.rev.set(at);
        let m = got.as_ref().map(|(_, _, m)| *m).unwrap_or(0);
        self.reads.borrow_mut().keys.entry(k).or_insert(m);
        Ok(got.map(|(_, v, _)| Cow::Owned(v)))
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        let (start, end) = self.store.key_range(table, from, to);
        if start >= end {
            return Ok(Box::new(std::iter::empty()));
        }
        let strip = self.store.table_prefix(table).len();
        let view = self.merged(table, start, end)?;
        Ok(Box::new(view.into_iter().map(move |(k, v)| {
            Ok((Cow::Owned(k[strip..].to_vec()), Cow::Owned(v)))
        })))
    }

    fn count(&self, table: Table) -> Result<u64> {
        let (start, end) = self
            .store
            .key_range(table, Bound::Unbounded, Bound::Unbounded);
        Ok(self.merged(table, start, end)?.len() as u64)
    }
}

impl Write for EtcdWrite<'_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        let k = self.store.full_key(table, key);
        self.writes.insert(k, Some(value.to_vec()));
        Ok(())
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        let existed = self.get(table, key)?.is_some();
        let k = self.store.full_key(table, key);
        self.writes.insert(k, None);
        self.deletes_in.insert(table);
        Ok(existed)
    }
}
