//! The cross-process locks: the GC lock, and each engine instance's owner lock.
//!
//! Every write that stores chunk shards holds a shared lock on `data_dir/gc.lock` from before it
//! checks whether a chunk exists until its metadata commit; GC takes the exclusive lock while it
//! removes chunks. So GC never deletes a chunk a concurrent writer (in any process) is about to
//! reference, and any shard file not in the metadata while GC holds the lock is an orphan.
//!
//! Writers that overlap without pause (a busy server, a mount writing while S3 clients put)
//! would never leave a moment with no shared holder, and GC would never run: deleted data would
//! fill the disks. So writers pass a turnstile, `data_dir/gc.turnstile`, on their way in (a
//! shared lock taken and dropped around taking the shared GC lock), and a GC that has been
//! kept out for long closes it ([`GcLock::exclusive_draining`]): writers already in finish,
//! new ones wait at the turnstile for at most one batch of GC, or for the bounded time GC
//! waits for the writers in flight before it gives up and opens the turnstile again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Opens lock guards on one lock file.
#[derive(Debug, Clone)]
pub(crate) struct GcLock {
    path: PathBuf,
    turnstile: PathBuf,
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub(crate) struct GcGuard {
    _file: File,
    /// A GC that closed the turnstile holds it until it is done.
    _turnstile: Option<File>,
}

impl GcLock {
    pub(crate) fn new(data_dir: &Path) -> GcLock {
        GcLock {
            path: data_dir.join("gc.lock"),
            turnstile: data_dir.join("gc.turnstile"),
        }
    }

    fn open(path: &Path) -> Result<File> {
        Ok(crate::private::open_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?)
    }

    /// Blocks until a shared (writer) lock is held, passing the turnstile on the way.
    pub(crate) fn shared_blocking(&self) -> Result<GcGuard> {
        let t = Self::open(&self.turnstile)?;
        t.lock_shared()?;
        let f = Self::open(&self.path)?;
        f.lock_shared()?;
        drop(t);
        Ok(GcGuard {
            _file: f,
            _turnstile: None,
        })
    }

    /// Takes a shared lock without blocking the async runtime.
    pub(crate) async fn shared(&self) -> Result<GcGuard> {
        let t = Self::open(&self.turnstile)?;
        if t.try_lock_shared().is_ok() {
            let f = Self::open(&self.path)?;
            if f.try_lock_shared().is_ok() {
                return Ok(GcGuard {
                    _file: f,
                    _turnstile: None,
                });
            }
        }
        drop(t);
        let me = self.clone();
        tokio::task::spawn_blocking(move || me.shared_blocking()).await?
    }

    /// Closes the turnstile to new writers and waits up to `wait` for the writers in flight to
    /// finish; the exclusive lock (holding the turnstile closed until dropped), or `None` if
    /// they did not finish in time (the turnstile is open again).
    pub(crate) fn exclusive_draining(&self, wait: Duration) -> Result<Option<GcGuard>> {
        let t = Self::open(&self.turnstile)?;
        // Writers hold the turnstile only while they take the GC lock: a brief wait, unless a
        // GC in another process holds it closed.
        let started = Instant::now();
        loop {
            match t.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
        let f = Self::open(&self.path)?;
        loop {
            match f.try_lock() {
                Ok(()) => {
                    return Ok(Some(GcGuard {
                        _file: f,
                        _turnstile: Some(t),
                    }))
                }
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < wait => {
                    std::thread::sleep(Duration::from_millis(2))
                }
                Err(std::fs::TryLockError::WouldBlock) => return Ok(None),
                Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
            }
        }
    }

    /// The exclusive (GC) lock if nobody holds the lock now (`None` while any writer does).
    pub(crate) fn try_exclusive(&self) -> Result<Option<GcGuard>> {
        let f = Self::open(&self.path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(GcGuard {
                _file: f,
                _turnstile: None,
            })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
        }
    }

    /// Blocks until the exclusive (GC) lock is held.
    pub(crate) fn exclusive_blocking(&self) -> Result<GcGuard> {
        let f = Self::open(&self.path)?;
        f.lock()?;
        Ok(GcGuard {
            _file: f,
            _turnstile: None,
        })
    }
}

/// Where engine instances keep their owner lock files.
const OWNERS_DIR: &str = "owners";

/// The lock file of one engine instance (`owners/<id>.lock`, held locked while it runs, made
/// with its first draft): a draft record names its owner, and a draft whose owner's file is
/// no longer locked belongs to a dead process.
#[derive(Debug)]
pub(crate) struct OwnerLock {
    pub(crate) id: String,
    path: PathBuf,
    _file: File,
}

impl Drop for OwnerLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

impl OwnerLock {
    /// Creates and locks a new owner file under `data_dir`.
    pub(crate) fn take(data_dir: &Path) -> Result<OwnerLock> {
        let dir = data_dir.join(OWNERS_DIR);
        crate::private::create_dir_all(&dir)?;
        let id = crate::meta::new_id();
        let path = Self::path_of(data_dir, &id);
        let file = crate::private::open_options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.try_lock()
            .map_err(|e| Error::Format(format!("cannot lock {}: {e}", path.display())))?;
        Ok(OwnerLock {
            id,
            path,
            _file: file,
        })
    }

    /// The lock file of owner `owner`.
    pub(crate) fn path_of(data_dir: &Path, owner: &str) -> PathBuf {
        data_dir.join(OWNERS_DIR).join(format!("{owner}.lock"))
    }

    /// Whether the engine instance `owner` still holds its lock file.
    pub(crate) fn is_alive(data_dir: &Path, owner: &str) -> bool {
        if owner.len() != 32 || !owner.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        match File::open(Self::path_of(data_dir, owner)) {
            Ok(f) => match f.try_lock() {
                Ok(()) => false,
                Err(std::fs::TryLockError::WouldBlock) => true,
                Err(std::fs::TryLockError::Error(_)) => true,
            },
            Err(_) => false,
        }
    }
}
