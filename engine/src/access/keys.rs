//! Keys kept in the metadata store (`keys` table): each with its secret, a name, an optional
//! expiry, a disabled flag, whether it may create buckets, and its grants on buckets or
//! prefixes of them. The keys of the configuration are not here: they are administrators.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::kv::{Read, Table, Write};
use crate::meta::now_ns;
use crate::object::Engine;

/// Alphabet of generated access key ids (as AWS's: upper case and digits).
const ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Alphabet of generated secrets.
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Longest key name.
const MAX_NAME: usize = 64;

/// What a key may do on a bucket, or on the keys under a prefix of it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The bucket.
    pub bucket: String,
    /// Object keys the grant covers start with this (empty: the whole bucket).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Read objects, list them.
    #[serde(default)]
    pub read: bool,
    /// Write and delete objects.
    #[serde(default)]
    pub write: bool,
    /// Everything, the bucket's configuration included (as its owner).
    #[serde(default)]
    pub owner: bool,
}

impl Grant {
    /// Whether it grants nothing.
    pub fn is_empty(&self) -> bool {
        !(self.read || self.write || self.owner)
    }

    /// `bucket` or `bucket/prefix`.
    pub fn scope(&self) -> String {
        if self.prefix.is_empty() {
            self.bucket.clone()
        } else {
            format!("{}/{}", self.bucket, self.prefix)
        }
    }
}

/// A key of the store.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The secret (kept in the metadata store, whose files only the store's user may read).
    pub secret: String,
    /// A name for people (and for policies: `arn:aws:iam::…:user/NAME`).
    pub name: String,
    /// When it was made, ns since the epoch.
    pub created_ns: i64,
    /// After this time (ns since the epoch) it is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_ns: Option<i64>,
    /// Refused while set.
    #[serde(default)]
    pub disabled: bool,
    /// May create buckets (which it then owns).
    #[serde(default)]
    pub create_buckets: bool,
    /// Its grants, ordered by bucket and prefix.
    #[serde(default)]
    pub grants: Vec<Grant>,
}

impl KeyRecord {
    /// Whether the key is usable at `now_ns` (neither disabled nor expired).
    pub fn usable(&self, now_ns: i64) -> bool {
        !self.disabled && self.expires_ns.is_none_or(|t| now_ns < t)
    }
}

/// A key with its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyInfo {
    /// The access key id.
    pub id: String,
    /// Its record.
    pub record: KeyRecord,
}

/// A change of a key's grants or settings.
#[derive(Debug, Clone)]
pub enum KeyChange {
    /// Adds these permissions on `bucket` (and `prefix`) to what the key has there.
    Allow(Grant),
    /// Takes these permissions away (all three flags unset: every one).
    Deny(Grant),
    /// Whether it may create buckets.
    CreateBuckets(bool),
    /// Disables or enables it.
    Disabled(bool),
    /// Sets or clears its expiry.
    Expires(Option<i64>),
}

/// What [`Engine::create_key`] is asked for.
#[derive(Debug, Clone, Default)]
pub struct NewKey {
    /// Its name (empty: the access key id).
    pub name: String,
    /// Its expiry.
    pub expires_ns: Option<i64>,
    /// Whether it may create buckets.
    pub create_buckets: bool,
}

/// The key `id`'s record, if there is one.
pub(crate) fn key_record(txn: &dyn Read, id: &str) -> Result<Option<KeyRecord>> {
    match txn.get(Table::Keys, id.as_bytes())? {
        Some(v) => Ok(Some(rmp_serde::from_slice(&v)?)),
        None => Ok(None),
    }
}

pub(crate) fn all_keys(txn: &dyn Read) -> Result<Vec<KeyInfo>> {
    let mut out = Vec::new();
    for r in txn.all(Table::Keys)? {
        let (k, v) = r?;
        out.push(KeyInfo {
            id: String::from_utf8_lossy(&k).into_owned(),
            record: rmp_serde::from_slice(&v)?,
        });
    }
    Ok(out)
}

/// The key whose id or name is `which`.
fn find(txn: &dyn Read, which: &str) -> Result<KeyInfo> {
    if let Some(record) = key_record(txn, which)? {
        return Ok(KeyInfo {
            id: which.to_string(),
            record,
        });
    }
    all_keys(txn)?
        .into_iter()
        .find(|k| k.record.name == which)
        .ok_or_else(|| Error::NoSuchAccessKey(which.to_string()))
}

fn put_key(txn: &mut dyn Write, id: &str, rec: &KeyRecord) -> Result<()> {
    txn.put(Table::Keys, id.as_bytes(), &rmp_serde::to_vec_named(rec)?)
}

fn random_string(alphabet: &[u8], len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKeyName(name.to_string()))
    }
}

/// Applies `change` to `rec`.
fn apply(rec: &mut KeyRecord, change: KeyChange) {
    match change {
        KeyChange::Allow(g) => {
            match rec
                .grants
                .iter_mut()
                .find(|x| x.bucket == g.bucket && x.prefix == g.prefix)
            {
                Some(x) => {
                    x.read |= g.read;
                    x.write |= g.write;
                    x.owner |= g.owner;
                }
                None => rec.grants.push(g),
            }
            rec.grants
                .sort_by(|a, b| (&a.bucket, &a.prefix).cmp(&(&b.bucket, &b.prefix)));
        }
        KeyChange::Deny(g) => {
            let all = g.is_empty();
            for x in rec
                .grants
                .iter_mut()
                .filter(|x| x.bucket == g.bucket && x.prefix == g.prefix)
            {
                x.read &= !(all || g.read);
                x.write &= !(all || g.write);
                x.owner &= !(all || g.owner);
            }
            rec.grants.retain(|x| !x.is_empty());
        }
        KeyChange::CreateBuckets(b) => rec.create_buckets = b,
        KeyChange::Disabled(b) => rec.disabled = b,
        KeyChange::Expires(t) => rec.expires_ns = t,
    }
}

impl Engine {
    /// Makes a key with a new random id and secret; returns it (the only time its secret is
    /// shown by the engine's callers).
    pub async fn create_key(&self, new: NewKey) -> Result<KeyInfo> {
        let id = format!("PK{}", random_string(ID_ALPHABET, 18));
        let name = if new.name.is_empty() {
            id.clone()
        } else {
            new.name
        };
        validate_name(&name)?;
        let record = KeyRecord {
            secret: random_string(SECRET_ALPHABET, 40),
            name,
            created_ns: now_ns(),
            expires_ns: new.expires_ns,
            disabled: false,
            create_buckets: new.create_buckets,
            grants: Vec::new(),
        };
        let info = KeyInfo { id, record };
        let out = info.clone();
        self.commit(move |txn| {
            if all_keys(txn)?
                .iter()
                .any(|k| k.record.name == info.record.name)
            {
                return Err(Error::KeyNameTaken(info.record.name.clone()));
            }
            if txn.contains(Table::Keys, info.id.as_bytes())? {
                return Err(Error::KeyNameTaken(info.id.clone()));
            }
            put_key(txn, &info.id, &info.record)
        })
        .await?;
        Ok(out)
    }

    /// Every key, by id.
    pub fn list_keys(&self) -> Result<Vec<KeyInfo>> {
        all_keys(&self.read()?)
    }

    /// The key whose id or name is `which` (`NoSuchAccessKey` otherwise).
    pub fn key_info(&self, which: &str) -> Result<KeyInfo> {
        find(&self.read()?, which)
    }

    /// The key with access key id `id`, if any (for checking signatures).
    pub fn key_by_id(&self, id: &str) -> Result<Option<KeyRecord>> {
        // Asked by every signed request: a settings read (see `Engine::read_settings`).
        key_record(&self.read_settings()?, id)
    }

    /// Deletes the key whose id or name is `which`. Buckets it owns keep it as their owner
    /// (so nobody else gains them); an administrator still manages them.
    pub async fn delete_key(&self, which: &str) -> Result<KeyInfo> {
        let which = which.to_string();
        self.commit(move |txn| {
            let k = find(txn, &which)?;
            txn.delete(Table::Keys, k.id.as_bytes())?;
            Ok(k)
        })
        .await
    }

    /// Changes the key whose id or name is `which`; returns it as changed. A grant names a
    /// bucket that must exist.
    pub async fn change_key(&self, which: &str, change: KeyChange) -> Result<KeyInfo> {
        let which = which.to_string();
        self.commit(move |txn| {
            let mut k = find(txn, &which)?;
            if let KeyChange::Allow(g) = &change {
                crate::meta::require_bucket(txn, &g.bucket)?;
                if !g.prefix.is_empty() {
                    crate::names::validate_key(&g.prefix)?;
                }
            }
            apply(&mut k.record, change.clone());
            put_key(txn, &k.id, &k.record)?;
            Ok(k)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(bucket: &str, prefix: &str, r: bool, w: bool, o: bool) -> Grant {
        Grant {
            bucket: bucket.into(),
            prefix: prefix.into(),
            read: r,
            write: w,
            owner: o,
        }
    }

    #[test]
    fn allow_merges_and_deny_removes() {
        let mut k = KeyRecord::default();
        apply(&mut k, KeyChange::Allow(grant("b", "", true, false, false)));
        apply(&mut k, KeyChange::Allow(grant("b", "", false, true, false)));
        apply(
            &mut k,
            KeyChange::Allow(grant("a", "p/", true, false, false)),
        );
        assert_eq!(
            k.grants,
            vec![
                grant("a", "p/", true, false, false),
                grant("b", "", true, true, false)
            ]
        );
        apply(&mut k, KeyChange::Deny(grant("b", "", true, false, false)));
        assert_eq!(k.grants[1], grant("b", "", false, true, false));
        apply(
            &mut k,
            KeyChange::Deny(grant("a", "p/", false, false, false)),
        );
        assert_eq!(k.grants, vec![grant("b", "", false, true, false)]);
    }

    #[test]
    fn usable_until_expiry_unless_disabled() {
        let mut k = KeyRecord {
            expires_ns: Some(100),
            ..Default::default()
        };
        assert!(k.usable(99));
        assert!(!k.usable(100));
        k.expires_ns = None;
        assert!(k.usable(i64::MAX));
        k.disabled = true;
        assert!(!k.usable(0));
    }

    #[test]
    fn names_are_checked() {
        assert!(validate_name("camera-7@site.b").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("a b").is_err());
        assert!(validate_name(&"x".repeat(65)).is_err());
    }
}
