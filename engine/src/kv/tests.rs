//! The conformance suite of the metadata seam: what every store under [`Read`] and [`Write`]
//! must do. Run against LMDB here; a distributed store's implementation runs the same
//! functions.

use std::ops::Bound;

use super::lmdb::{LmdbRead, LmdbWrite, Tables};
use super::*;

/// A store under test: runs a write transaction to its commit, opens read transactions.
trait Harness {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()>;
    fn read(&self) -> Box<dyn Read + '_>;
}

struct LmdbHarness {
    env: heed::Env<heed::WithoutTls>,
    tables: Tables,
    _dir: tempfile::TempDir,
}

fn lmdb() -> LmdbHarness {
    let dir = tempfile::tempdir().unwrap();
    // SAFETY: the directory is new and opened once.
    let env = unsafe {
        heed::EnvOpenOptions::new()
            .read_txn_without_tls()
            .max_dbs(16)
            .map_size(64 << 20)
            .open(dir.path())
            .unwrap()
    };
    let tables = Tables::create(&env).unwrap();
    LmdbHarness {
        env,
        tables,
        _dir: dir,
    }
}

impl Harness for LmdbHarness {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
        let mut txn = self.env.write_txn()?;
        f(&mut LmdbWrite::new(&mut txn, self.tables))?;
        txn.commit()?;
        Ok(())
    }

    fn read(&self) -> Box<dyn Read + '_> {
        Box::new(LmdbRead::begin(&self.env, self.tables).unwrap())
    }
}

fn keys(s: Scan<'_>) -> Vec<Vec<u8>> {
    s.map(|r| r.unwrap().0.into_owned()).collect()
}

fn puts_gets_deletes_and_sees_its_own_writes(h: &dyn Harness) {
    h.write(&mut |w| {
        w.put(Table::Objects, b"a", b"1")?;
        assert_eq!(w.get(Table::Objects, b"a")?.as_deref(), Some(&b"1"[..]));
        assert!(w.get(Table::Chunks, b"a")?.is_none(), "tables are apart");
        w.put(Table::Objects, b"a", b"2")?;
        w.put(Table::Objects, b"b", b"")?;
        assert!(w.delete(Table::Objects, b"b")?);
        assert!(!w.delete(Table::Objects, b"b")?);
        Ok(())
    })
    .unwrap();
    let r = h.read();
    assert_eq!(
        r.get(Table::Objects, b"a").unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert!(!r.contains(Table::Objects, b"b").unwrap());
    assert_eq!(r.count(Table::Objects).unwrap(), 1);
}

fn a_snapshot_does_not_see_later_commits_and_a_failed_write_leaves_nothing(h: &dyn Harness) {
    h.write(&mut |w| w.put(Table::Buckets, b"x", b"old"))
        .unwrap();
    let before = h.read();
    h.write(&mut |w| w.put(Table::Buckets, b"x", b"new"))
        .unwrap();
    assert_eq!(
        before.get(Table::Buckets, b"x").unwrap().as_deref(),
        Some(&b"old"[..])
    );
    assert_eq!(
        h.read().get(Table::Buckets, b"x").unwrap().as_deref(),
        Some(&b"new"[..])
    );
    let failed = h.write(&mut |w| {
        w.put(Table::Buckets, b"y", b"1")?;
        Err(crate::error::Error::Interrupted)
    });
    assert!(failed.is_err());
    assert!(!h.read().contains(Table::Buckets, b"y").unwrap());
}

fn ranges_and_prefixes_are_ordered_bytewise(h: &dyn Harness) {
    let all: [&[u8]; 7] = [b"a", b"a\x00", b"ab", b"a\xff", b"a\xff\xff", b"b", b"\xff"];
    h.write(&mut |w| {
        for k in all.iter().rev() {
            w.put(Table::Parts, k, k)?;
        }
        Ok(())
    })
    .unwrap();
    let r = h.read();
    let v = |ks: &[&[u8]]| ks.iter().map(|k| k.to_vec()).collect::<Vec<_>>();
    assert_eq!(keys(r.all(Table::Parts).unwrap()), v(&all));
    assert_eq!(
        keys(
            r.range(Table::Parts, Bound::Excluded(b"a"), Bound::Excluded(b"b"))
                .unwrap()
        ),
        v(&all[1..5])
    );
    assert_eq!(
        keys(
            r.range(Table::Parts, Bound::Included(b"ab"), Bound::Included(b"b"))
                .unwrap()
        ),
        v(&all[2..6])
    );
    assert_eq!(keys(r.prefix(Table::Parts, b"a").unwrap()), v(&all[0..5]));
    assert_eq!(
        keys(r.prefix(Table::Parts, b"a\xff").unwrap()),
        v(&all[3..5])
    );
    assert_eq!(keys(r.prefix(Table::Parts, b"\xff").unwrap()), v(&all[6..]));
    assert_eq!(keys(r.prefix(Table::Parts, b"").unwrap()), v(&all));
    assert!(keys(r.prefix(Table::Parts, b"c").unwrap()).is_empty());
    let (k, val) = r.all(Table::Parts).unwrap().nth(2).unwrap().unwrap();
    assert_eq!((k.as_ref(), val.as_ref()), (&b"ab"[..], &b"ab"[..]));
}

#[test]
fn lmdb_conforms() {
    puts_gets_deletes_and_sees_its_own_writes(&lmdb());
    a_snapshot_does_not_see_later_commits_and_a_failed_write_leaves_nothing(&lmdb());
    ranges_and_prefixes_are_ordered_bytewise(&lmdb());
}

#[test]
fn prefix_ends() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_end(b"\xff\xff"), None);
    assert_eq!(prefix_end(b""), None);
}
