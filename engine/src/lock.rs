//! The cross-process GC lock.
//!
//! Every write that stores chunk shards holds a shared lock on `data_dir/gc.lock` from before it
//! checks whether a chunk exists until its metadata commit; GC takes the exclusive lock while it
//! removes chunks. So GC never deletes a chunk a concurrent writer (in any process) is about to
//! reference, and any shard file not in the metadata while GC holds the lock is an orphan.

use std::fs::File;
use std::path::{Path, PathBuf};

use crate::error::Result;

/// Opens lock guards on one lock file.
#[derive(Debug, Clone)]
pub(crate) struct GcLock {
    path: PathBuf,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct GcGuard {
    _file: File,
}

impl GcLock {
    pub(crate) fn new(data_dir: &Path) -> GcLock {
        GcLock {
            path: data_dir.join("gc.lock"),
        }
    }

    fn open(&self) -> Result<File> {
        Ok(crate::private::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&self.path)?)
    }

    /// Blocks until a shared (writer) lock is held.
    pub(crate) fn shared_blocking(&self) -> Result<GcGuard> {
        let f = self.open()?;
        f.lock_shared()?;
        Ok(GcGuard { _file: f })
    }

    /// Takes a shared lock without blocking the async runtime.
    pub(crate) async fn shared(&self) -> Result<GcGuard> {
        let f = self.open()?;
        match f.try_lock_shared() {
            Ok(()) => Ok(GcGuard { _file: f }),
            Err(_) => {
                let me = self.clone();
                tokio::task::spawn_blocking(move || me.shared_blocking()).await?
            }
        }
    }

    /// The exclusive (GC) lock if nobody holds the lock now (`None` while any writer does).
    pub(crate) fn try_exclusive(&self) -> Result<Option<GcGuard>> {
        let f = self.open()?;
        match f.try_lock() {
            Ok(()) => Ok(Some(GcGuard { _file: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Blocks until the exclusive (GC) lock is held.
    pub(crate) fn exclusive_blocking(&self) -> Result<GcGuard> {
        let f = self.open()?;
        f.lock()?;
        Ok(GcGuard { _file: f })
    }
}
