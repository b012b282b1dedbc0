//! The metadata store: the LMDB environment, its tables, the group committer and, for the
//! mount, the write-back queue; reads are snapshots ([`Snapshot`]).

use std::path::Path;

use heed::{Env, EnvFlags, EnvOpenOptions, WithoutTls};

#[cfg(test)]
use super::lmdb::LmdbWrite;
use super::lmdb::{LmdbRead, Tables};
use super::writeback::{Snapshot, Writeback};
use super::Committer;
#[cfg(test)]
use super::Write;
use crate::error::Result;

/// The metadata store on LMDB: the environment, its tables and the group committer.
pub struct Store {
    env: Env<WithoutTls>,
    tables: Tables,
    committer: Committer,
}

impl Store {
    /// Opens (creating when missing) the store in `dir` with a map of `map_size` bytes. Without
    /// `fsync`, commits are not flushed (tests, benchmarks).
    /// With `writeback`, commits are visible to this process at once and durable within that
    /// window ([`super::writeback`]).
    pub fn open(
        dir: &Path,
        map_size: usize,
        fsync: bool,
        writeback: Option<std::time::Duration>,
    ) -> Result<Store> {
        let mut opts = EnvOpenOptions::new().read_txn_without_tls();
        opts.map_size(map_size).max_dbs(24).max_readers(512);
        if !fsync {
            // SAFETY: NO_SYNC only weakens durability, which the caller asked for.
            unsafe {
                opts.flags(EnvFlags::NO_SYNC | EnvFlags::NO_META_SYNC);
            }
        }
        // SAFETY: the environment is opened once per process (heed refuses a second open of the
        // same path) and the files are only modified through LMDB.
        let env = unsafe { opts.open(dir)? };
        let tables = Tables::create(&env)?;
        let wb = writeback.map(|w| Writeback::start(env.clone(), tables, w));
        let committer = Committer::start(env.clone(), tables, wb);
        Ok(Store {
            env,
            tables,
            committer,
        })
    }

    /// A read transaction: a consistent snapshot (with this process's pending write-back
    /// changes on top).
    pub fn read(&self) -> Result<Snapshot<'_>> {
        match self.committer.writeback() {
            Some(wb) => wb.snapshot(),
            None => Ok(Snapshot::plain(LmdbRead::begin(&self.env, self.tables)?)),
        }
    }

    /// What is committed in LMDB now, as another process sees it (tests).
    #[cfg(test)]
    pub(crate) fn committed(&self) -> Result<LmdbRead<'_>> {
        LmdbRead::begin(&self.env, self.tables)
    }

    /// A write straight to LMDB, as another process makes one (tests).
    #[cfg(test)]
    pub(crate) fn write_directly(
        &self,
        f: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        f(&mut LmdbWrite::new(&mut txn, self.tables))?;
        txn.commit()?;
        Ok(())
    }

    /// The group committer: write jobs, each applied in a nested transaction and made durable
    /// with its batch.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }
}
