//! The metadata store: LMDB in the data directory (with, for the mount, the write-back queue)
//! or, in cluster mode, etcd — one [`Store`] with the same reads ([`Snapshot`]) and the same
//! group committer either way.

use std::borrow::Cow;
use std::ops::Bound;
use std::path::Path;
#[cfg(feature = "etcd")]
use std::sync::Arc;

use heed::{Env, EnvFlags, EnvOpenOptions, WithoutTls};

#[cfg(feature = "etcd")]
use super::etcd::{EtcdRead, EtcdStore};
#[cfg(test)]
use super::lmdb::LmdbWrite;
use super::lmdb::{LmdbRead, Tables};
use super::writeback::{LocalSnapshot, Writeback};
#[cfg(test)]
use super::Write;
use super::{Committer, Read, Scan, Table};
use crate::error::Result;

/// Where the store's data is.
// One per store: the size of LMDB's table handles does not matter.
#[allow(clippy::large_enum_variant)]
enum Backend {
    /// The LMDB environment and its tables.
    Lmdb {
        env: Env<WithoutTls>,
        tables: Tables,
    },
    /// An etcd cluster.
    #[cfg(feature = "etcd")]
    Etcd(Arc<EtcdStore>),
}

/// The metadata store and its group committer.
pub struct Store {
    backend: Backend,
    committer: Committer,
}

/// A consistent view of the store (a read transaction).
// The local snapshot is the common one and lives on the stack: boxing it would cost every
// LMDB read an allocation.
#[allow(clippy::large_enum_variant)]
pub enum Snapshot<'s> {
    /// An LMDB snapshot, under this process's pending write-back changes.
    Local(LocalSnapshot<'s>),
    /// The etcd cluster at one revision.
    #[cfg(feature = "etcd")]
    Etcd(EtcdRead<'s>),
}

impl Read for Snapshot<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        match self {
            Snapshot::Local(s) => s.get(table, key),
            #[cfg(feature = "etcd")]
            Snapshot::Etcd(s) => s.get(table, key),
        }
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        match self {
            Snapshot::Local(s) => s.range(table, from, to),
            #[cfg(feature = "etcd")]
            Snapshot::Etcd(s) => s.range(table, from, to),
        }
    }

    fn count(&self, table: Table) -> Result<u64> {
        match self {
            Snapshot::Local(s) => s.count(table),
            #[cfg(feature = "etcd")]
            Snapshot::Etcd(s) => s.count(table),
        }
    }
}

impl Store {
    /// Opens (creating when missing) the LMDB store in `dir` with a map of `map_size` bytes.
    /// Without `fsync`, commits are not flushed (tests, benchmarks).
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
            backend: Backend::Lmdb { env, tables },
            committer,
        })
    }

    /// Connects to the etcd cluster at `endpoints`, the store's keys under `prefix`.
    #[cfg(feature = "etcd")]
    pub fn connect_etcd(endpoints: &[String], prefix: &[u8]) -> Result<Store> {
        let etcd = Arc::new(EtcdStore::connect(endpoints, prefix)?);
        Ok(Store {
            committer: Committer::on_etcd(etcd.clone()),
            backend: Backend::Etcd(etcd),
        })
    }

    /// Whether the store is LMDB on this machine (not a remote one, whose every read is a
    /// round trip).
    pub fn is_local(&self) -> bool {
        matches!(self.backend, Backend::Lmdb { .. })
    }

    /// A read transaction: a consistent snapshot (with this process's pending write-back
    /// changes on top).
    pub fn read(&self) -> Result<Snapshot<'_>> {
        match &self.backend {
            Backend::Lmdb { env, tables } => match self.committer.writeback() {
                Some(wb) => wb.snapshot().map(Snapshot::Local),
                None => Ok(Snapshot::Local(LocalSnapshot::plain(LmdbRead::begin(
                    env, *tables,
                )?))),
            },
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => etcd.read().map(Snapshot::Etcd),
        }
    }

    /// A read transaction for settings (buckets' and access keys' records): on etcd these may
    /// come from memory, kept current by a watch (see `kv/etcd/settings.rs`); on LMDB it is
    /// [`Store::read`].
    pub fn read_settings(&self) -> Result<Snapshot<'_>> {
        match &self.backend {
            #[cfg(feature = "etcd")]
            Backend::Etcd(etcd) => etcd.read_settings().map(Snapshot::Etcd),
            _ => self.read(),
        }
    }

    /// The LMDB environment (tests that act as another process).
    #[cfg(test)]
    fn lmdb(&self) -> (&Env<WithoutTls>, Tables) {
        match &self.backend {
            Backend::Lmdb { env, tables } => (env, *tables),
            #[cfg(feature = "etcd")]
            Backend::Etcd(_) => panic!("an LMDB test on the etcd store"),
        }
    }

    /// What is committed in LMDB now, as another process sees it (tests).
    #[cfg(test)]
    pub(crate) fn committed(&self) -> Result<LmdbRead<'_>> {
        let (env, tables) = self.lmdb();
        LmdbRead::begin(env, tables)
    }

    /// A write straight to LMDB, as another process makes one (tests).
    #[cfg(test)]
    pub(crate) fn write_directly(
        &self,
        f: impl FnOnce(&mut dyn Write) -> Result<()>,
    ) -> Result<()> {
        let (env, tables) = self.lmdb();
        let mut txn = env.write_txn()?;
        f(&mut LmdbWrite::new(&mut txn, tables))?;
        txn.commit()?;
        Ok(())
    }

    /// The group committer: write jobs, each applied in a transaction of its own and made
    /// durable with its batch.
    pub fn committer(&self) -> &Committer {
        &self.committer
    }
}
