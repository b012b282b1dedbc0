//! Settings read without a round trip (cluster mode): the records that nearly every request
//! reads before it does anything — its bucket's (policy, versioning, lifecycle, CORS) and its
//! access key's — kept in memory and kept current by an etcd watch on their tables.
//!
//! Only reads that ask for settings ([`super::EtcdStore::read_settings`]: authorization, the
//! headers a response derives from its bucket) use them; every transaction that changes
//! something still reads and compares the records in etcd. A change made through this node is
//! seen by its next request at once (its commit updates the cache before it returns); one made
//! through another node as soon as the watch brings it — milliseconds, as S3 itself makes
//! bucket configuration and credentials eventually consistent. The watch requires etcd's
//! leader: a member cut off from it cancels the watch within a few seconds, and until a new
//! one runs every read goes to etcd.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, WatchOptions};

/// The cached records of one table.
#[derive(Default)]
pub(crate) struct Settings {
    state: Mutex<State>,
    /// Reads answered from memory.
    pub(crate) hits: AtomicU64,
}

#[derive(Default)]
struct State {
    /// While the watch runs: the revision it started after (a read at an older revision may
    /// not fill the cache). `None`: not watching, nothing is cached.
    live_after: Option<i64>,
    /// Full key → what is known of it.
    entries: HashMap<Vec<u8>, Known>,
}

/// A record as last known.
struct Known {
    /// Its value (`None`: deleted).
    value: Option<Vec<u8>>,
    /// The revision that last changed it (0 once deleted, as etcd compares an absent key).
    mod_rev: i64,
    /// The revision it is known at (newer knowledge wins).
    known_at: i64,
}

impl Settings {
    /// The record under `key` when it is known: `Some(None)` for one known deleted.
    pub(crate) fn get(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.get_with_revision(key).map(|(v, _)| v)
    }

    /// [`Settings::get`], with the revision that last changed the record (0: deleted) — what a
    /// write transaction that takes it from here compares at its commit.
    pub(crate) fn get_with_revision(&self, key: &[u8]) -> Option<(Option<Vec<u8>>, i64)> {
        let s = self.state.lock().ok()?;
        s.live_after?;
        let known = s.entries.get(key).map(|k| (k.value.clone(), k.mod_rev));
        if known.is_some() {
            self.hits.fetch_add(1, Ordering::Relaxed);
        }
        known
    }

    /// Keeps a record read from etcd at revision `at`, last changed at `mod_rev` (absent
    /// records are not kept: a name anyone may ask for would fill memory).
    pub(crate) fn fill(&self, key: &[u8], value: &[u8], mod_rev: i64, at: i64) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.live_after.is_some_and(|w| at >= w) {
            s.put(key, Some(value.to_vec()), mod_rev, at);
        }
    }

    /// Takes a change made at revision `rev` (`None`: a delete), from the watch or from a
    /// commit of this node.
    pub(crate) fn changed(&self, key: &[u8], value: Option<&[u8]>, rev: i64) {
        let Ok(mut s) = self.state.lock() else { return };
        if s.live_after.is_some() {
            let mod_rev = if value.is_some() { rev } else { 0 };
            s.put(key, value.map(<[u8]>::to_vec), mod_rev, rev);
        }
    }

    fn up(&self, after: i64) {
        if let Ok(mut s) = self.state.lock() {
            s.entries.clear();
            s.live_after = Some(after);
        }
    }

    fn down(&self) {
        if let Ok(mut s) = self.state.lock() {
            s.entries.clear();
            s.live_after = None;
        }
    }
}

impl State {
    /// The newer of what is known and `value`, known at `known_at`.
    fn put(&mut self, key: &[u8], value: Option<Vec<u8>>, mod_rev: i64, known_at: i64) {
        let k = Known {
            value,
            mod_rev,
            known_at,
        };
        match self.entries.get_mut(key) {
            Some(e) if e.known_at >= known_at => {}
            Some(e) => *e = k,
            None => {
                self.entries.insert(key.to_vec(), k);
            }
        }
    }
}

/// Watches the keys under `prefix` for `cache` while the runtime runs: each change goes into
/// the cache; when the watch ends (its member gone or cut off from the leader) the cache is
/// emptied and a new watch is made.
pub(super) async fn watch(
    endpoints: Vec<String>,
    prefix: Vec<u8>,
    cache: std::sync::Arc<Settings>,
) {
    let opts = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(2))
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_require_leader(true);
    loop {
        if let Err(e) = follow(&endpoints, &opts, &prefix, &cache).await {
            tracing::debug!("settings watch ended: {e}");
        }
        cache.down();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn follow(
    endpoints: &[String],
    opts: &ConnectOptions,
    prefix: &[u8],
    cache: &Settings,
) -> Result<(), etcd_client::Error> {
    let mut client = Client::connect(endpoints, Some(opts.clone())).await?;
    let mut stream = client
        .watch(prefix.to_vec(), Some(WatchOptions::new().with_prefix()))
        .await?;
    while let Some(r) = stream.message().await? {
        if r.canceled() {
            return Ok(());
        }
        if r.created() {
            match r.header() {
                Some(h) => cache.up(h.revision()),
                None => return Ok(()),
            }
            continue;
        }
        for e in r.events() {
            if let Some(kv) = e.kv() {
                // A deleted key comes with version 0 and the revision of its deletion.
                let value = (kv.version() != 0).then(|| kv.value());
                cache.changed(kv.key(), value, kv.mod_revision());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_known_value_wins_and_nothing_is_cached_while_not_watching() {
        let c = Settings::default();
        c.fill(b"k", b"v1", 3, 5);
        assert_eq!(c.get(b"k"), None, "not watching");
        c.up(10);
        c.fill(b"k", b"old", 3, 9);
        assert_eq!(c.get(b"k"), None, "read before the watch started");
        c.fill(b"k", b"v1", 11, 12);
        assert_eq!(c.get_with_revision(b"k"), Some((Some(b"v1".to_vec()), 11)));
        c.changed(b"k", Some(b"v2"), 15);
        c.fill(b"k", b"v1", 11, 14);
        assert_eq!(
            c.get_with_revision(b"k"),
            Some((Some(b"v2".to_vec()), 15)),
            "a late fill"
        );
        c.changed(b"k", None, 16);
        assert_eq!(
            c.get_with_revision(b"k"),
            Some((None, 0)),
            "deleted: compared as absent"
        );
        c.changed(b"k", Some(b"v2"), 15);
        assert_eq!(c.get(b"k"), Some(None), "a late event");
        c.down();
        assert_eq!(c.get(b"k"), None);
    }
}
