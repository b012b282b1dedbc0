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
            .max_dbs(24)
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
    // A snapshot is fixed by its first read at the latest (a store may take it then, as the
    // etcd store does, to save a round trip): what commits after is not seen by its reads.
    let before = h.read();
    assert_eq!(
        before.get(Table::Buckets, b"x").unwrap().as_deref(),
        Some(&b"old"[..])
    );
    h.write(&mut |w| w.put(Table::Buckets, b"x", b"new"))
        .unwrap();
    assert_eq!(
        before.get(Table::Buckets, b"x").unwrap().as_deref(),
        Some(&b"old"[..])
    );
    let seen: Vec<Vec<u8>> = before
        .all(Table::Buckets)
        .unwrap()
        .map(|r| r.unwrap().1.into_owned())
        .collect();
    assert_eq!(seen, [b"old".to_vec()]);
    assert_eq!(before.count(Table::Buckets).unwrap(), 1);
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

/// The write-back store: jobs applied to the overlay; with `flush`, committed after each.
struct WritebackHarness {
    store: Store,
    flush: bool,
    _dir: tempfile::TempDir,
}

/// A synced store in write-back mode with a window of `window`.
fn writeback_store(dir: &std::path::Path, window: std::time::Duration) -> Store {
    Store::open(dir, 64 << 20, true, Some(window)).unwrap()
}

fn writeback(flush: bool) -> WritebackHarness {
    let dir = tempfile::tempdir().unwrap();
    // Longer than any test: only flushes commit.
    let store = writeback_store(dir.path(), std::time::Duration::from_secs(3600));
    WritebackHarness {
        store,
        flush,
        _dir: dir,
    }
}

impl WritebackHarness {
    fn wb(&self) -> &std::sync::Arc<super::writeback::Writeback> {
        self.store.committer().writeback().unwrap()
    }
}

impl Harness for WritebackHarness {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
        self.wb().defer(|w| f(w), false)?;
        if self.flush {
            self.wb().flush()?;
        }
        Ok(())
    }

    fn read(&self) -> Box<dyn Read + '_> {
        Box::new(self.store.read().unwrap())
    }
}

#[test]
fn writeback_conforms_before_and_after_its_commits() {
    for flush in [false, true] {
        puts_gets_deletes_and_sees_its_own_writes(&writeback(flush));
        a_snapshot_does_not_see_later_commits_and_a_failed_write_leaves_nothing(&writeback(flush));
        ranges_and_prefixes_are_ordered_bytewise(&writeback(flush));
    }
}

fn committed(h: &WritebackHarness, k: &[u8]) -> Option<Vec<u8>> {
    h.store
        .committed()
        .unwrap()
        .get(Table::Objects, k)
        .unwrap()
        .map(|v| v.into_owned())
}

#[test]
fn writeback_is_seen_here_at_once_and_elsewhere_after_the_flush() {
    let h = writeback(false);
    h.write(&mut |w| w.put(Table::Objects, b"k", b"v1"))
        .unwrap();
    let r = h.read();
    assert_eq!(
        r.get(Table::Objects, b"k").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    assert_eq!(committed(&h, b"k"), None, "not committed before the window");
    h.write(&mut |w| w.delete(Table::Objects, b"k").map(|_| ()))
        .unwrap();
    assert_eq!(h.read().get(Table::Objects, b"k").unwrap(), None);
    // The snapshot taken before the delete keeps what it saw.
    assert_eq!(
        r.get(Table::Objects, b"k").unwrap().as_deref(),
        Some(&b"v1"[..])
    );
    drop(r);
    h.write(&mut |w| w.put(Table::Objects, b"k", b"v2"))
        .unwrap();
    h.wb().flush().unwrap();
    assert_eq!(committed(&h, b"k"), Some(b"v2".to_vec()));
    assert_eq!(h.read().count(Table::Objects).unwrap(), 1);
}

#[test]
fn writeback_drops_a_change_whose_reads_another_writer_changed_and_those_built_on_it() {
    let h = writeback(false);
    h.store
        .write_directly(|w| w.put(Table::Objects, b"count", b"1"))
        .unwrap();
    // A read-modify-write here…
    h.write(&mut |w| {
        let n = w.get(Table::Objects, b"count")?.map(|v| v.into_owned());
        assert_eq!(n.as_deref(), Some(&b"1"[..]));
        w.put(Table::Objects, b"count", b"2")
    })
    .unwrap();
    // …and one built on it…
    h.write(&mut |w| {
        let n = w.get(Table::Objects, b"count")?.map(|v| v.into_owned());
        assert_eq!(n.as_deref(), Some(&b"2"[..]));
        w.put(Table::Objects, b"derived", b"from 2")
    })
    .unwrap();
    // …an independent one…
    h.write(&mut |w| w.put(Table::Objects, b"other", b"x"))
        .unwrap();
    // …while another process changes what the first one read.
    h.store
        .write_directly(|w| w.put(Table::Objects, b"count", b"5"))
        .unwrap();
    let e = h.wb().flush().unwrap_err();
    assert!(e.to_string().contains("dropped"), "{e}");
    assert_eq!(committed(&h, b"count"), Some(b"5".to_vec()));
    assert_eq!(committed(&h, b"derived"), None);
    assert_eq!(committed(&h, b"other"), Some(b"x".to_vec()));
    assert_eq!(h.wb().conflicts(), 2);
    // The overlay is gone: this process sees what is committed.
    assert_eq!(
        h.read().get(Table::Objects, b"count").unwrap().as_deref(),
        Some(&b"5"[..])
    );
    // Reported once.
    h.wb().flush().unwrap();
}

#[test]
fn writeback_drops_a_change_whose_scan_another_writer_changed() {
    for (what, other) in [
        ("a key added inside the scan", &b"p/b"[..]),
        ("a key added past the end it reached", &b"p/z"[..]),
    ] {
        let h = writeback(false);
        h.store
            .write_directly(|w| w.put(Table::Objects, b"p/a", b"1"))
            .unwrap();
        h.write(&mut |w| {
            let n = w.prefix(Table::Objects, b"p/")?.count();
            w.put(Table::Objects, b"n", n.to_string().as_bytes())
        })
        .unwrap();
        h.store
            .write_directly(|w| w.put(Table::Objects, other, b"2"))
            .unwrap();
        assert!(h.wb().flush().is_err(), "{what}");
        assert_eq!(committed(&h, b"n"), None, "{what}");
    }
    // A change outside the scanned range is no conflict.
    let h = writeback(false);
    h.write(&mut |w| {
        let first = w.prefix(Table::Objects, b"p/")?.next().is_some();
        w.put(Table::Objects, b"n", if first { b"1" } else { b"0" })
    })
    .unwrap();
    h.store
        .write_directly(|w| w.put(Table::Objects, b"q", b"2"))
        .unwrap();
    h.wb().flush().unwrap();
    assert_eq!(committed(&h, b"n"), Some(b"0".to_vec()));
}

#[test]
fn writeback_commits_on_its_own_within_the_window_and_at_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let store = writeback_store(dir.path(), std::time::Duration::from_millis(20));
    let wb = store.committer().writeback().unwrap().clone();
    wb.defer(|w| w.put(Table::Objects, b"a", b"1"), false)
        .unwrap();
    let t = std::time::Instant::now();
    while store
        .committed()
        .unwrap()
        .get(Table::Objects, b"a")
        .unwrap()
        .is_none()
    {
        assert!(
            t.elapsed() < std::time::Duration::from_secs(10),
            "never committed"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    wb.defer(|w| w.put(Table::Objects, b"b", b"2"), false)
        .unwrap();
    store.committer().shutdown();
    assert!(store
        .committed()
        .unwrap()
        .get(Table::Objects, b"b")
        .unwrap()
        .is_some());
}

#[test]
fn prefix_ends() {
    assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
    assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
    assert_eq!(prefix_end(b"\xff\xff"), None);
    assert_eq!(prefix_end(b""), None);
}

#[cfg(feature = "etcd")]
mod on_etcd;
