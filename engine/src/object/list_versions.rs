//! Listing every version of a bucket's objects (ListObjectVersions): keys in order from the
//! `objects` table, each followed by its non-current versions from `versions`, newest first;
//! delete markers included; prefix, delimiter roll-up, and paging by key and version id.

use std::ops::Bound;

use crate::error::{Error, Result};
use crate::kv::{prefix_end, Read, Table};
use crate::meta::{object_key, ObjectMeta};

use super::version::{find_noncurrent, versions_prefix, VersionSel};
use super::Engine;

/// A ListObjectVersions request.
#[derive(Debug, Clone, Default)]
pub struct VersionQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Start after this key (or, with `version_id_marker`, within it).
    pub key_marker: Option<String>,
    /// With `key_marker`: start after this version of that key.
    pub version_id_marker: Option<String>,
    /// At most this many versions plus common prefixes.
    pub max_keys: usize,
}

/// One version (or delete marker) in a listing.
#[derive(Debug, Clone)]
pub struct VersionEntry {
    /// Its record (`delete_marker` says which it is).
    pub meta: ObjectMeta,
    /// Whether it is its key's latest version.
    pub is_latest: bool,
}

/// One page of a version listing.
#[derive(Debug, Clone, Default)]
pub struct VersionPage {
    /// Versions and delete markers: keys in order, each key's newest first.
    pub versions: Vec<VersionEntry>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// Where the next page starts (when truncated): a key or a common prefix…
    pub next_key_marker: Option<String>,
    /// …and the version of that key (none after a common prefix).
    pub next_version_id_marker: Option<String>,
}

/// Where a listing starts.
enum Start {
    /// At `seek`, from the first version of each key.
    Keys,
    /// At `seek`, skipping the key there entirely (the key marker itself).
    AfterKey(Vec<u8>),
    /// Within the key at `seek`, after this version of it.
    AfterVersion(Vec<u8>, VersionSel),
}

impl VersionPage {
    /// Adds an entry unless the page is full (then marks it truncated and says so).
    fn push(&mut self, max: usize, meta: ObjectMeta, is_latest: bool) -> bool {
        if self.versions.len() + self.common_prefixes.len() == max {
            self.is_truncated = true;
            return false;
        }
        self.next_key_marker = Some(meta.key.clone());
        self.next_version_id_marker = Some(meta.version_id().unwrap_or("null").to_string());
        self.versions.push(VersionEntry { meta, is_latest });
        true
    }
}

impl Engine {
    /// Lists every version and delete marker of a bucket's objects, in key order and, within a
    /// key, newest first (S3's order); two seeks per key at most.
    pub fn list_object_versions(&self, bucket: &str, q: &VersionQuery) -> Result<VersionPage> {
        let txn = self.read()?;
        crate::meta::require_bucket(&txn, bucket)?;
        let mut page = VersionPage::default();
        if q.max_keys == 0 {
            return Ok(page);
        }
        let delim = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let base = object_key(bucket, "");
        let mut seek = object_key(bucket, &q.prefix);
        let mut start = Start::Keys;
        if let Some(km) = q.key_marker.as_deref().filter(|k| !k.is_empty()) {
            let mk = object_key(bucket, km);
            if mk >= seek {
                let is_group = |d: &str| {
                    km.strip_prefix(q.prefix.as_str())
                        .and_then(|rest| rest.find(d).map(|p| p + d.len() == rest.len()))
                        .unwrap_or(false)
                };
                let vm = q.version_id_marker.as_deref().filter(|v| !v.is_empty());
                match (delim, vm) {
                    (Some(d), _) if is_group(d) => match prefix_end(&mk) {
                        Some(s) => seek = s,
                        None => return Ok(page),
                    },
                    (_, Some(v)) => {
                        seek = mk.clone();
                        start = Start::AfterVersion(mk, VersionSel::parse(v)?);
                    }
                    (_, None) => {
                        seek = mk.clone();
                        start = Start::AfterKey(mk);
                    }
                }
            }
        }
        'outer: loop {
            for r in txn.range(Table::Objects, Bound::Included(&seek), Bound::Unbounded)? {
                let (k, v) = r?;
                if !k.starts_with(&base) {
                    break 'outer;
                }
                if matches!(&start, Start::AfterKey(s) if *s == *k) {
                    continue;
                }
                let key = std::str::from_utf8(&k[base.len()..])
                    .map_err(|_| Error::Decode("key is not UTF-8".into()))?;
                if !key.starts_with(&q.prefix) {
                    break 'outer;
                }
                if let Some(d) = delim {
                    if let Some(pos) = key[q.prefix.len()..].find(d) {
                        if page.versions.len() + page.common_prefixes.len() == q.max_keys {
                            page.is_truncated = true;
                            break 'outer;
                        }
                        let cp = &key[..q.prefix.len() + pos + d.len()];
                        page.common_prefixes.push(cp.to_string());
                        page.next_key_marker = Some(cp.to_string());
                        page.next_version_id_marker = None;
                        match prefix_end(&object_key(bucket, cp)) {
                            Some(s) => {
                                seek = s;
                                continue 'outer;
                            }
                            None => break 'outer,
                        }
                    }
                }
                let latest = ObjectMeta::decode(key, &v)?;
                let vprefix = versions_prefix(&k);
                let mut after: Option<Vec<u8>> = None;
                let mut with_latest = true;
                if let Start::AfterVersion(s, sel) = &start {
                    if *s == *k {
                        with_latest = false;
                        if !sel.names(&latest) {
                            match find_noncurrent(&txn, &k, sel)? {
                                Some((vk, _)) => after = Some(vk),
                                None => continue, // a version that is gone: the next key
                            }
                        }
                    }
                }
                if with_latest && !page.push(q.max_keys, latest, true) {
                    break 'outer;
                }
                let lower = match &after {
                    Some(vk) => Bound::Excluded(vk.as_slice()),
                    None => Bound::Included(vprefix.as_slice()),
                };
                for r in txn.range(Table::Versions, lower, Bound::Unbounded)? {
                    let (vk, vv) = r?;
                    if !vk.starts_with(&vprefix) {
                        break;
                    }
                    if !page.push(q.max_keys, ObjectMeta::decode(key, &vv)?, false) {
                        break 'outer;
                    }
                }
            }
            break;
        }
        if !page.is_truncated {
            page.next_key_marker = None;
            page.next_version_id_marker = None;
        }
        Ok(page)
    }
}
