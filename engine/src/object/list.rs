//! Listing a bucket's latest versions: one ordered scan with prefix, delimiter roll-up and
//! pagination; delete markers are left out.

use crate::error::{Error, Result};
use crate::kv::{prefix_end, Read, Table};
use crate::meta::{object_key, ObjectMeta};

use super::Engine;

/// A listing request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Only keys starting with this.
    pub prefix: String,
    /// Roll keys up to the first occurrence of this after the prefix.
    pub delimiter: Option<String>,
    /// Only keys (and prefixes) after this one.
    pub start_after: Option<String>,
    /// At most this many keys plus common prefixes.
    pub max_keys: usize,
}

/// One page of a listing.
#[derive(Debug, Clone, Default)]
pub struct ListPage {
    /// Objects, in key order.
    pub objects: Vec<ObjectMeta>,
    /// Common prefixes, in order.
    pub common_prefixes: Vec<String>,
    /// Whether more entries follow.
    pub is_truncated: bool,
    /// The last key or prefix returned: pass it as `start_after` to continue.
    pub next_marker: Option<String>,
}

impl Engine {
    /// Lists a bucket's objects in byte order of their keys (an LMDB range scan).
    pub fn list_objects(&self, bucket: &str, q: &ListQuery) -> Result<ListPage> {
        let txn = self.read()?;
        // Delete markers (skipped here) exist only where versioning was ever on.
        let markers = super::version::bucket_record(&txn, bucket)?
            .versioning
            .is_some();
        let base = object_key(bucket, "");
        let mut page = ListPage::default();
        if q.max_keys == 0 {
            return Ok(page);
        }
        let delim = q.delimiter.as_deref().filter(|d| !d.is_empty());
        let mut seek = object_key(bucket, &q.prefix);
        let mut skip_equal: Option<Vec<u8>> = None;
        if let Some(sa) = &q.start_after {
            let sk = object_key(bucket, sa);
            if sk >= seek {
                // A marker that is a common prefix of this listing (the prefix, then a first
                // delimiter that ends it) skips the whole group. Any other marker, such as a
                // `dir/` object equal to the prefix itself, is a key to list after.
                let is_group = |d: &str| {
                    sa.strip_prefix(q.prefix.as_str())
                        .and_then(|rest| rest.find(d).map(|p| p + d.len() == rest.len()))
                        .unwrap_or(false)
                };
                match delim {
                    Some(d) if is_group(d) => match prefix_end(&sk) {
                        Some(s) => seek = s,
                        None => return Ok(page),
                    },
                    _ => {
                        seek = sk.clone();
                        skip_equal = Some(sk);
                    }
                }
            }
        }
        let mut count = 0usize;
        'outer: loop {
            let range = (
                std::ops::Bound::Included(seek.as_slice()),
                std::ops::Bound::Unbounded,
            );
            let iter = txn.range(Table::Objects, range.0, range.1)?;
            for r in iter {
                let (k, v) = r?;
                if !k.starts_with(&base) {
                    break 'outer;
                }
                if skip_equal.as_deref() == Some(&k) {
                    continue;
                }
                let key_bytes = &k[base.len()..];
                let key = std::str::from_utf8(key_bytes)
                    .map_err(|_| Error::Decode("key is not UTF-8".into()))?;
                if !key.starts_with(&q.prefix) {
                    break 'outer;
                }
                let decoded = match markers {
                    true => match ObjectMeta::decode(key, &v)? {
                        m if m.delete_marker => continue,
                        m => Some(m),
                    },
                    false => None,
                };
                if count == q.max_keys {
                    page.is_truncated = true;
                    break 'outer;
                }
                if let Some(d) = delim {
                    if let Some(pos) = key[q.prefix.len()..].find(d) {
                        let cp = &key[..q.prefix.len() + pos + d.len()];
                        page.common_prefixes.push(cp.to_string());
                        page.next_marker = Some(cp.to_string());
                        count += 1;
                        match prefix_end(&object_key(bucket, cp)) {
                            Some(s) => {
                                seek = s;
                                skip_equal = None;
                                continue 'outer;
                            }
                            None => break 'outer,
                        }
                    }
                }
                page.objects.push(match decoded {
                    Some(m) => m,
                    None => ObjectMeta::decode(key, &v)?,
                });
                page.next_marker = Some(key.to_string());
                count += 1;
            }
            break;
        }
        if !page.is_truncated {
            page.next_marker = None;
        }
        Ok(page)
    }

    /// How many distinct `prefix X /` groups (subdirectories, to a filesystem) there are
    /// among the keys under `prefix`: one seek per group, keys alone (no records decoded).
    pub fn count_subprefixes(&self, bucket: &str, prefix: &str) -> Result<u64> {
        let txn = self.read()?;
        let base = object_key(bucket, prefix);
        let mut seek = base.clone();
        let mut n = 0u64;
        'outer: loop {
            let range = (
                std::ops::Bound::Included(seek.as_slice()),
                std::ops::Bound::Unbounded,
            );
            for r in txn.range(Table::Objects, range.0, range.1)? {
                let (k, _) = r?;
                if !k.starts_with(&base) {
                    break 'outer;
                }
                if let Some(pos) = k[base.len()..].iter().position(|b| *b == b'/') {
                    n += 1;
                    match prefix_end(&k[..base.len() + pos + 1]) {
                        Some(s) => {
                            seek = s;
                            continue 'outer;
                        }
                        None => break 'outer,
                    }
                }
            }
            break;
        }
        Ok(n)
    }
}
