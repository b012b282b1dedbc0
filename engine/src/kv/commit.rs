//! Group commit of the LMDB store: one thread owns LMDB's write transaction; concurrent writers' changes are applied
//! in a batch and made durable by one commit (one round of fsyncs).
//!
//! Each job runs in a nested transaction, so a job that fails (a precondition, say) leaves no
//! trace while the others in its batch commit. Jobs see the store only through the metadata
//! seam ([`crate::kv::Write`]), and are `FnMut`: a store with optimistic transactions (etcd)
//! runs a job again when a concurrent change touched what it read, so a job has no effect
//! outside its transaction (it computes its result from what it reads and what it captured,
//! which it clones rather than moves out).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use heed::{Env, RwTxn, WithoutTls};
use tokio::sync::oneshot;

use super::lmdb::{LmdbWrite, Tables};
use super::writeback::Writeback;
use super::Write;
use crate::error::{Error, Result};

/// Largest number of jobs in one commit.
const MAX_BATCH: usize = 512;

trait Job: Send {
    fn apply(&mut self, env: &Env<WithoutTls>, txn: &mut RwTxn, tables: Tables);
    fn finish(self: Box<Self>, commit: Result<(), String>);
}

struct TypedJob<R, F> {
    f: Option<F>,
    result: Option<Result<R>>,
    reply: Option<oneshot::Sender<Result<R>>>,
}

impl<R, F> Job for TypedJob<R, F>
where
    R: Send,
    F: FnMut(&mut dyn Write) -> Result<R> + Send,
{
    fn apply(&mut self, env: &Env<WithoutTls>, txn: &mut RwTxn, tables: Tables) {
        let Some(mut f) = self.f.take() else { return };
        let res = match env.nested_write_txn(txn) {
            Ok(mut nested) => match f(&mut LmdbWrite::new(&mut nested, tables)) {
                Ok(v) => nested.commit().map(|_| v).map_err(Error::from),
                Err(e) => Err(e),
            },
            Err(e) => Err(e.into()),
        };
        self.result = Some(res);
    }

    fn finish(mut self: Box<Self>, commit: Result<(), String>) {
        let out = match (self.result.take(), commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(_)), Err(msg)) | (None, Err(msg)) => Err(Error::Io(std::io::Error::other(
                format!("metadata commit failed: {msg}"),
            ))),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (None, Ok(())) => Err(Error::ShuttingDown),
        };
        if let Some(r) = self.reply.take() {
            let _ = r.send(out);
        }
    }
}

/// The committer thread and the channel to it; in write-back mode, the write-back queue that
/// takes the jobs instead; on etcd, the store whose blocking threads run each job as an
/// optimistic transaction.
pub struct Committer {
    tx: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
    wb: Option<Arc<Writeback>>,
    #[cfg(feature = "etcd")]
    etcd: Option<Arc<super::etcd::EtcdStore>>,
}

impl Committer {
    /// Starts the thread.
    pub(crate) fn start(
        env: Env<WithoutTls>,
        tables: Tables,
        wb: Option<Arc<Writeback>>,
    ) -> Committer {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let handle = std::thread::Builder::new()
            .name("predastore-commit".into())
            .spawn(move || run(env, tables, rx))
            .ok();
        Committer {
            tx: Mutex::new(Some(tx)),
            handle: Mutex::new(handle),
            wb,
            #[cfg(feature = "etcd")]
            etcd: None,
        }
    }

    /// The committer of a store on etcd: each job is one optimistic transaction, run (and run
    /// again while concurrent changes conflict with it) on a blocking thread of the store's
    /// runtime; jobs of different callers go to etcd side by side.
    #[cfg(feature = "etcd")]
    pub(crate) fn on_etcd(store: Arc<super::etcd::EtcdStore>) -> Committer {
        Committer {
            tx: Mutex::new(None),
            handle: Mutex::new(None),
            wb: None,
            etcd: Some(store),
        }
    }

    /// The write-back queue, in write-back mode.
    pub(crate) fn writeback(&self) -> Option<&Arc<Writeback>> {
        self.wb.as_ref()
    }

    fn submit<R, F>(&self, f: F) -> Result<oneshot::Receiver<Result<R>>>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
        #[cfg(feature = "etcd")]
        if let Some(store) = &self.etcd {
            let s = store.clone();
            let mut f = f;
            store.spawn_blocking(move || {
                let _ = reply.send(s.write(&mut f));
            })?;
            return Ok(rx);
        }
        let job = Box::new(TypedJob {
            f: Some(f),
            result: None,
            reply: Some(reply),
        });
        let guard = self.tx.lock().map_err(|_| Error::ShuttingDown)?;
        guard
            .as_ref()
            .ok_or(Error::ShuttingDown)?
            .send(job)
            .map_err(|_| Error::ShuttingDown)?;
        Ok(rx)
    }

    /// Applies `f` in the next batch and waits until it is durable (in write-back mode: applies
    /// it now, visible to this process, durable with the next flush).
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        if let Some(wb) = &self.wb {
            return wb.defer(f, true);
        }
        self.submit(f)?.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Like [`Committer::run`], from a blocking thread.
    pub fn run_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        if let Some(wb) = &self.wb {
            return wb.defer(f, true);
        }
        self.submit(f)?
            .blocking_recv()
            .map_err(|_| Error::ShuttingDown)?
    }

    /// Like [`Committer::run_blocking`], but durable when it returns in every mode: in
    /// write-back mode the queue is committed first, then `f` on its own (GC and repair, whose
    /// next steps rely on the commit).
    pub fn run_durable_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnMut(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        if let Some(wb) = &self.wb {
            wb.settle();
        }
        self.submit(f)?
            .blocking_recv()
            .map_err(|_| Error::ShuttingDown)?
    }

    /// Queues `f` without waiting for it.
    pub fn spawn<F>(&self, f: F)
    where
        F: FnMut(&mut dyn Write) -> Result<()> + Send + 'static,
    {
        if let Some(wb) = &self.wb {
            if let Err(e) = wb.defer(f, false) {
                tracing::warn!("metadata change not made: {e}");
            }
            return;
        }
        let _ = self.submit(f);
    }

    /// In write-back mode, waits until the changes queued so far are committed (a failure is
    /// left for the next [`Committer::flush_blocking`] to report); nothing otherwise. GC calls
    /// it before it takes its lock: a queued change holds the GC lock until its commit.
    pub fn settle(&self) {
        if let Some(wb) = &self.wb {
            wb.settle();
        }
    }

    /// Waits until every change made so far is durable (at once outside write-back mode);
    /// an error if a write-back commit failed, or dropped a change, since the last flush.
    pub fn flush_blocking(&self) -> Result<()> {
        match &self.wb {
            Some(wb) => wb.flush(),
            None => Ok(()),
        }
    }

    /// Stops the thread after the jobs already queued (and commits the write-back queue).
    pub fn shutdown(&self) {
        if let Some(wb) = &self.wb {
            wb.shutdown();
        }
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        if let Ok(mut h) = self.handle.lock() {
            if let Some(h) = h.take() {
                let _ = h.join();
            }
        }
    }
}

fn run(env: Env<WithoutTls>, tables: Tables, rx: mpsc::Receiver<Box<dyn Job>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(j) => batch.push(j),
                Err(_) => break,
            }
        }
        let outcome = match env.write_txn() {
            Ok(mut txn) => {
                for j in batch.iter_mut() {
                    j.apply(&env, &mut txn, tables);
                }
                txn.commit().map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = &outcome {
            tracing::error!("metadata commit failed: {e}");
        }
        for j in batch {
            j.finish(outcome.clone());
        }
    }
}
