//! The metadata seam over LMDB (heed): one named database per [`Table`], values borrowed from
//! LMDB's mapped pages, write transactions nested per committer job.

use std::borrow::Cow;
use std::ops::Bound;

use heed::types::Bytes;
use heed::{Database, Env, RoTxn, RwTxn, WithoutTls};

use super::{Read, Scan, Table, Write};
use crate::error::Result;

/// The databases of every table.
#[derive(Clone, Copy)]
pub struct Tables {
    dbs: [Database<Bytes, Bytes>; Table::ALL.len()],
}

impl Tables {
    /// Opens (creating when missing) every table's database in `env`.
    pub fn create(env: &Env<WithoutTls>) -> Result<Tables> {
        let mut w = env.write_txn()?;
        let mut dbs = Vec::with_capacity(Table::ALL.len());
        for t in Table::ALL {
            dbs.push(env.create_database::<Bytes, Bytes>(&mut w, Some(t.name()))?);
        }
        w.commit()?;
        let dbs = dbs
            .try_into()
            .map_err(|_| crate::error::Error::Decode("table count".into()))?;
        Ok(Tables { dbs })
    }

    fn db(&self, t: Table) -> Database<Bytes, Bytes> {
        self.dbs[t as usize]
    }
}

/// A read transaction.
pub struct LmdbRead<'e> {
    txn: RoTxn<'e, WithoutTls>,
    tables: Tables,
}

impl<'e> LmdbRead<'e> {
    /// A snapshot of `env` now.
    pub fn begin(env: &'e Env<WithoutTls>, tables: Tables) -> Result<LmdbRead<'e>> {
        Ok(LmdbRead {
            txn: env.read_txn()?,
            tables,
        })
    }

    /// The LMDB transaction this snapshot is of.
    pub(crate) fn txn_id(&self) -> usize {
        self.txn.id()
    }
}

/// A write transaction (one committer job's nested transaction).
pub struct LmdbWrite<'a, 'e> {
    txn: &'a mut RwTxn<'e>,
    tables: Tables,
}

impl<'a, 'e> LmdbWrite<'a, 'e> {
    /// Writes through `txn`.
    pub fn new(txn: &'a mut RwTxn<'e>, tables: Tables) -> LmdbWrite<'a, 'e> {
        LmdbWrite { txn, tables }
    }
}

fn get<'t>(
    txn: &'t RoTxn<'_, WithoutTls>,
    tables: &Tables,
    t: Table,
    key: &[u8],
) -> Result<Option<Cow<'t, [u8]>>> {
    if key.is_empty() {
        // LMDB keeps no empty keys (and refuses one as a lookup).
        return Ok(None);
    }
    Ok(tables.db(t).get(txn, key)?.map(Cow::Borrowed))
}

fn range<'t>(
    txn: &'t RoTxn<'_, WithoutTls>,
    tables: &Tables,
    t: Table,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
) -> Result<Scan<'t>> {
    // LMDB keeps no empty keys and refuses one as a bound: a bound at the empty key is no
    // bound below, and nothing above.
    let from = match from {
        Bound::Included(k) | Bound::Excluded(k) if k.is_empty() => Bound::Unbounded,
        b => b,
    };
    if matches!(to, Bound::Included(k) | Bound::Excluded(k) if k.is_empty()) {
        return Ok(Box::new(std::iter::empty()));
    }
    let r = (from, to);
    let it = tables.db(t).range(txn, &r)?;
    Ok(Box::new(it.map(|e| {
        e.map(|(k, v)| (Cow::Borrowed(k), Cow::Borrowed(v)))
            .map_err(Into::into)
    })))
}

fn count(txn: &RoTxn<'_, WithoutTls>, tables: &Tables, t: Table) -> Result<u64> {
    Ok(tables.db(t).len(txn)?)
}

impl Read for LmdbRead<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        get(&self.txn, &self.tables, table, key)
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        range(&self.txn, &self.tables, table, from, to)
    }

    fn count(&self, table: Table) -> Result<u64> {
        count(&self.txn, &self.tables, table)
    }
}

impl Read for LmdbWrite<'_, '_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>> {
        get(self.txn, &self.tables, table, key)
    }

    fn range(&self, table: Table, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Scan<'_>> {
        range(self.txn, &self.tables, table, from, to)
    }

    fn count(&self, table: Table) -> Result<u64> {
        count(self.txn, &self.tables, table)
    }
}

impl Write for LmdbWrite<'_, '_> {
    fn put(&mut self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        Ok(self.tables.db(table).put(self.txn, key, value)?)
    }

    fn delete(&mut self, table: Table, key: &[u8]) -> Result<bool> {
        Ok(self.tables.db(table).delete(self.txn, key)?)
    }
}

impl From<heed::Error> for crate::error::Error {
    fn from(e: heed::Error) -> Self {
        let no_space = match &e {
            heed::Error::Io(io) => crate::error::io_is_no_space(io),
            heed::Error::Mdb(m) => matches!(
                m,
                heed::MdbError::MapFull | heed::MdbError::Other(libc::ENOSPC | libc::EDQUOT)
            ),
            _ => false,
        };
        crate::error::Error::Meta(crate::error::StoreError::new(e, no_space))
    }
}
