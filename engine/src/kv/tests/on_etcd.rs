//! The conformance suite run against a real etcd server started by each test (Debian's
//! `etcd-server`), and what an optimistic store must add: writers that collide are run again.

use super::*;

#[path = "../../../../tests/support/etcd.rs"]
mod etcd_server;

use etcd_server::Etcd;

fn connect(e: &Etcd, prefix: &[u8]) -> Result<crate::kv::etcd::EtcdStore> {
    crate::kv::etcd::EtcdStore::connect(std::slice::from_ref(&e.endpoint), prefix)
}

struct EtcdHarness {
    store: crate::kv::etcd::EtcdStore,
    _etcd: Etcd,
}

fn etcd_store() -> EtcdHarness {
    // etcd's own limits: the store must work within them.
    let e = Etcd::start(&[]);
    EtcdHarness {
        store: connect(&e, b"/predastore/test/").unwrap(),
        _etcd: e,
    }
}

impl Harness for EtcdHarness {
    fn write(&self, f: &mut dyn FnMut(&mut dyn Write) -> Result<()>) -> Result<()> {
        self.store.write(|w| f(w))
    }

    fn read(&self) -> Box<dyn Read + '_> {
        Box::new(self.store.read().unwrap())
    }
}

#[test]
fn etcd_conforms() {
    puts_gets_deletes_and_sees_its_own_writes(&etcd_store());
    a_snapshot_does_not_see_later_commits_and_a_failed_write_leaves_nothing(&etcd_store());
    let h = etcd_store();
    ranges_and_prefixes_are_ordered_bytewise(&h);
    // A store under another prefix of the same etcd sees none of it.
    let other = connect(&h._etcd, b"/predastore/other/").unwrap();
    assert_eq!(other.read().unwrap().count(Table::Objects).unwrap(), 0);
}

#[test]
fn etcd_writers_that_collide_are_run_again_and_lose_nothing() {
    let h = etcd_store();
    let b = connect(&h._etcd, b"/predastore/test/").unwrap();
    let bump = |s: &crate::kv::etcd::EtcdStore| {
        for _ in 0..40 {
            s.write(|w| {
                let n = match w.get(Table::State, b"n")? {
                    Some(v) => u64::from_le_bytes(v.as_ref().try_into().unwrap()),
                    None => 0,
                };
                w.put(Table::State, b"n", &(n + 1).to_le_bytes())
            })
            .unwrap();
        }
    };
    std::thread::scope(|sc| {
        sc.spawn(|| bump(&h.store));
        sc.spawn(|| bump(&b));
    });
    let r = h.store.read().unwrap();
    let v = r.get(Table::State, b"n").unwrap();
    assert_eq!(v.as_deref(), Some(&80u64.to_le_bytes()[..]));
}

#[test]
fn etcd_write_runs_again_when_a_range_it_scanned_changed() {
    let h = etcd_store();
    let other = connect(&h._etcd, b"/predastore/test/").unwrap();
    h.store
        .write(|w| w.put(Table::Objects, b"p/a", b"1"))
        .unwrap();
    // A key added to the range, then a key removed from it, by another writer between the
    // scan and the commit: each time the transaction runs again and sees the change.
    for (change, want) in [(&b"p/b"[..], &b"2"[..]), (&b"p/a"[..], &b"1"[..])] {
        let mut runs = 0;
        h.store
            .write(|w| {
                runs += 1;
                let seen = w.prefix(Table::Objects, b"p/")?.count();
                if runs == 1 {
                    other.write(|o| {
                        if change == b"p/b" {
                            o.put(Table::Objects, change, b"x")
                        } else {
                            o.delete(Table::Objects, change).map(|_| ())
                        }
                    })?;
                }
                w.put(Table::Objects, b"n", seen.to_string().as_bytes())
            })
            .unwrap();
        assert_eq!(runs, 2);
        let r = h.store.read().unwrap();
        assert_eq!(r.get(Table::Objects, b"n").unwrap().as_deref(), Some(want));
    }
}

#[test]
fn etcd_a_write_may_scan_more_keys_than_a_transaction_may_compare() {
    let h = etcd_store();
    for batch in 0..6 {
        h.store
            .write(|w| {
                for i in 0..100 {
                    let k = format!("c{:04}", batch * 100 + i);
                    w.put(Table::Chunks, k.as_bytes(), b"x")?;
                }
                Ok(())
            })
            .unwrap();
    }
    // 600 keys scanned, one written: the commit compares per table, not per key, so it stays
    // within etcd's 128 compares and operations a transaction.
    h.store
        .write(|w| {
            let n = w.all(Table::Chunks)?.count();
            w.put(Table::State, b"chunks", n.to_string().as_bytes())
        })
        .unwrap();
    let r = h.store.read().unwrap();
    assert_eq!(
        r.get(Table::State, b"chunks").unwrap().as_deref(),
        Some(&b"600"[..])
    );
}

#[test]
fn etcd_commits_of_concurrent_writers_go_together_and_lose_nothing() {
    use std::sync::atomic::Ordering;
    let h = etcd_store();
    // Four writers of keys of their own (their commits may go together) and four of one
    // counter (theirs may not: each reads what the others write).
    std::thread::scope(|sc| {
        for t in 0..8u32 {
            let s = &h.store;
            sc.spawn(move || {
                for i in 0..50u32 {
                    s.write(|w| {
                        if t % 2 == 0 {
                            let k = format!("own/{t}/{i:03}");
                            return w.put(Table::Objects, k.as_bytes(), b"x");
                        }
                        let n = match w.get(Table::State, b"n")? {
                            Some(v) => u64::from_le_bytes(v.as_ref().try_into().unwrap()),
                            None => 0,
                        };
                        w.put(Table::State, b"n", &(n + 1).to_le_bytes())
                    })
                    .unwrap();
                }
            });
        }
    });
    let r = h.store.read().unwrap();
    let v = r.get(Table::State, b"n").unwrap();
    assert_eq!(
        v.as_deref(),
        Some(&200u64.to_le_bytes()[..]),
        "no lost update"
    );
    assert_eq!(r.prefix(Table::Objects, b"own/").unwrap().count(), 200);
    let st = h.store.commit_stats();
    let (txns, commits) = (
        st.txns.load(Ordering::Relaxed),
        st.commits.load(Ordering::Relaxed),
    );
    eprintln!(
        "{commits} commits in {txns} merged transactions, {} then alone",
        st.alone.load(Ordering::Relaxed)
    );
    // Every write ran at least once (a counter's conflicts run it again).
    assert!(commits >= 400, "{commits}");
    assert!(
        txns < commits,
        "no commits went together: {txns} of {commits}"
    );
}

/// Polls `f` until it holds (a watch brings changes within milliseconds; 10 s is generous).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !f() {
        assert!(std::time::Instant::now() < until, "never: {what}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn etcd_settings_come_from_memory_and_follow_every_stores_changes() {
    let h = etcd_store();
    let other = connect(&h._etcd, b"/predastore/test/").unwrap();
    let get = |s: &crate::kv::etcd::EtcdStore| {
        let r = s.read_settings().unwrap();
        r.get(Table::Buckets, b"b").unwrap().map(|v| v.into_owned())
    };
    h.store
        .write(|w| w.put(Table::Buckets, b"b", b"v1"))
        .unwrap();
    // Once a store's watch runs, its first read fills the cache and the next come from it.
    for s in [&h.store, &other] {
        eventually("a settings read from memory", || {
            get(s);
            s.settings_hits() > 0
        });
        assert_eq!(get(s).as_deref(), Some(&b"v1"[..]));
    }
    // A change through one store: that store reads it at once, the other once its watch
    // brings it.
    h.store
        .write(|w| w.put(Table::Buckets, b"b", b"v2"))
        .unwrap();
    assert_eq!(get(&h.store).as_deref(), Some(&b"v2"[..]), "own change");
    eventually("the other store sees the change", || {
        get(&other).as_deref() == Some(&b"v2"[..])
    });
    other
        .write(|w| w.delete(Table::Buckets, b"b").map(|_| ()))
        .unwrap();
    assert_eq!(get(&other), None, "own delete");
    eventually("the first store sees the delete", || {
        get(&h.store).is_none()
    });
    // Reads that are not for settings, and other tables, still ask etcd.
    let hits = h.store.settings_hits();
    h.store
        .write(|w| w.put(Table::Objects, b"o", b"x"))
        .unwrap();
    let r = h.store.read_settings().unwrap();
    assert!(r.get(Table::Objects, b"o").unwrap().is_some());
    assert!(h
        .store
        .read()
        .unwrap()
        .get(Table::Buckets, b"b")
        .unwrap()
        .is_none());
    assert_eq!(h.store.settings_hits(), hits);
}

#[test]
fn etcd_a_merged_commit_etcd_refuses_as_too_large_commits_each_alone() {
    use std::sync::atomic::Ordering;
    // An etcd that takes at most 8 operations a transaction: merged commits of more than four
    // two-key writers are refused; each writer's commit alone fits.
    let e = Etcd::start(&["--max-txn-ops=8"]);
    let store = connect(&e, b"/predastore/small/").unwrap();
    std::thread::scope(|sc| {
        for t in 0..8u32 {
            let s = &store;
            sc.spawn(move || {
                for i in 0..40u32 {
                    s.write(|w| {
                        w.put(Table::Objects, format!("{t}/{i}/a").as_bytes(), b"x")?;
                        w.put(Table::Objects, format!("{t}/{i}/b").as_bytes(), b"x")
                    })
                    .unwrap();
                }
            });
        }
    });
    assert_eq!(store.read().unwrap().count(Table::Objects).unwrap(), 640);
    let alone = store.commit_stats().alone.load(Ordering::Relaxed);
    assert!(alone > 0, "no merged commit was refused and sent alone");
}

#[test]
fn etcd_manifests_read_once_come_from_memory_but_not_in_write_transactions() {
    let h = etcd_store();
    let other = connect(&h._etcd, b"/predastore/test/").unwrap();
    h.store
        .write(|w| w.put(Table::Manifests, b"d1", b"chunks of d1"))
        .unwrap();
    let read = |s: &crate::kv::etcd::EtcdStore| {
        let r = s.read().unwrap();
        r.get(Table::Manifests, b"d1")
            .unwrap()
            .map(|v| v.into_owned())
    };
    assert_eq!(read(&other).as_deref(), Some(&b"chunks of d1"[..]));
    assert_eq!(other.manifest_hits(), 0);
    assert_eq!(read(&other).as_deref(), Some(&b"chunks of d1"[..]));
    assert_eq!(other.manifest_hits(), 1, "the second read from memory");
    // Released elsewhere: a write transaction of this store reads etcd, not its copy.
    h.store
        .write(|w| w.delete(Table::Manifests, b"d1").map(|_| ()))
        .unwrap();
    let mut seen = None;
    other
        .write(|w| {
            seen = Some(w.get(Table::Manifests, b"d1")?.is_some());
            Ok(())
        })
        .unwrap();
    assert_eq!(
        seen,
        Some(false),
        "a write transaction saw a released manifest"
    );
}

#[test]
fn etcd_a_write_that_took_a_stale_setting_from_memory_runs_again_from_etcd() {
    let h = etcd_store();
    let other = connect(&h._etcd, b"/predastore/test/").unwrap();
    other.write(|w| w.put(Table::Buckets, b"b", b"v1")).unwrap();
    // The first read once the watch runs fills the memory; the record's revision then.
    eventually("a settings read from memory", || {
        let _ = h.store.read_settings().unwrap().get(Table::Buckets, b"b");
        h.store.settings_hits() > 0
    });
    other.write(|w| w.put(Table::Buckets, b"b", b"v2")).unwrap();
    // This node's memory made stale by hand (as if the watch had not brought v2 yet).
    h.store.remember_setting(Table::Buckets, b"b", b"v1", 1);
    let mut runs = Vec::new();
    h.store
        .write(|w| {
            let b = w.get(Table::Buckets, b"b")?.map(|v| v.into_owned());
            runs.push(b.clone());
            w.put(Table::State, b"copied", &b.unwrap_or_default())
        })
        .unwrap();
    // The commit compared the record on the revision remembered, failed, and the second run
    // read etcd.
    assert_eq!(runs, [Some(b"v1".to_vec()), Some(b"v2".to_vec())]);
    let r = h.store.read().unwrap();
    assert_eq!(
        r.get(Table::State, b"copied").unwrap().as_deref(),
        Some(&b"v2"[..])
    );
}
