//! Group commit of the LMDB store: one thread owns LMDB's write transaction; concurrent writers' changes are applied
//! in a batch and made durable by one commit (one round of fsyncs).
//!
//! Each job runs in a nested transaction, so a job that fails (a precondition, say) leaves no
//! trace while the others in its batch commit. Jobs see the store only through the metadata
//! seam ([`crate::kv::Write`]).

use std::sync::mpsc;
use std::sync::Mutex;
use std::thread::JoinHandle;

use heed::{Env, RwTxn, WithoutTls};
use tokio::sync::oneshot;

use super::lmdb::{LmdbWrite, Tables};
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
    F: FnOnce(&mut dyn Write) -> Result<R> + Send,
{
    fn apply(&mut self, env: &Env<WithoutTls>, txn: &mut RwTxn, tables: Tables) {
        let Some(f) = self.f.take() else { return };
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

/// The committer thread and the channel to it.
pub struct Committer {
    tx: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    handle: Mutex<Option<JoinHandle<()>>>,
}

impl Committer {
    /// Starts the thread.
    pub(crate) fn start(env: Env<WithoutTls>, tables: Tables) -> Committer {
        let (tx, rx) = mpsc::channel::<Box<dyn Job>>();
        let handle = std::thread::Builder::new()
            .name("predastore-commit".into())
            .spawn(move || run(env, tables, rx))
            .ok();
        Committer {
            tx: Mutex::new(Some(tx)),
            handle: Mutex::new(handle),
        }
    }

    fn submit<R, F>(&self, f: F) -> Result<oneshot::Receiver<Result<R>>>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        let (reply, rx) = oneshot::channel();
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

    /// Applies `f` in the next batch and waits until it is durable.
    pub async fn run<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        self.submit(f)?.await.map_err(|_| Error::ShuttingDown)?
    }

    /// Like [`Committer::run`], from a blocking thread.
    pub fn run_blocking<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut dyn Write) -> Result<R> + Send + 'static,
    {
        self.submit(f)?
            .blocking_recv()
            .map_err(|_| Error::ShuttingDown)?
    }

    /// Queues `f` without waiting for it.
    pub fn spawn<F>(&self, f: F)
    where
        F: FnOnce(&mut dyn Write) -> Result<()> + Send + 'static,
    {
        let _ = self.submit(f);
    }

    /// Stops the thread after the jobs already queued.
    pub fn shutdown(&self) {
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
