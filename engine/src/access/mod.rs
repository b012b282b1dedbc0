//! Access control, decided here for every door (S3, the mount): who is asking
//! ([`Principal`]), what for ([`AccessRequest`]), and [`Engine::authorize`], which reads the
//! records involved (the key, the bucket's owner and policy, the object's tags when the policy
//! needs them) and applies [`decide`]'s order. Nothing here knows HTTP or FUSE.
//!
//! - [`action`]: the actions, with S3's IAM names, and what a grant covers.
//! - [`keys`]: the keys of the store, their secrets and grants.
//! - [`policy`]: bucket policies, parsed and evaluated.
//! - [`decide`]: the decision itself.
//! - [`cors`]: a bucket's CORS rules and which one answers a browser.
//! - [`acl`]: ACLs, PublicAccessBlock and OwnershipControls (their operations: `settings.rs`).

pub mod acl;
pub mod action;
pub mod cors;
pub mod decide;
pub mod keys;
pub mod policy;
mod settings;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

pub use crate::meta::access::PolicyId;

pub use action::{Action, Class};
pub use decide::{decide, Ask, BucketRules, Decision, Refusal};
pub use keys::{Grant, KeyChange, KeyInfo, KeyRecord, NewKey};
pub use policy::{Facts, Policy, PolicyError};

use crate::error::{Error, Result};
use crate::kv::{Read, Table};
use crate::meta::{now_ns, BucketRecord};
use crate::object::Engine;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A key of the configuration: may do everything a bucket policy does not deny.
    Admin,
    /// A key of the store, by its access key id.
    Key(String),
    /// A request nobody signed.
    Anonymous,
}

impl Principal {
    /// The owner recorded for a bucket this principal creates (`None`: the administrators).
    pub fn owner_id(&self) -> Option<&str> {
        match self {
            Principal::Key(id) => Some(id),
            _ => None,
        }
    }
}

/// Where a request comes from.
#[derive(Debug, Clone, Copy, Default)]
pub struct Origin {
    /// Over TLS (or from this machine's mount).
    pub secure_transport: bool,
    /// The client's address (none for the mount).
    pub source_ip: Option<IpAddr>,
}

/// What a request asks for.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// The action.
    pub action: Action,
    /// The bucket (empty for ListAllMyBuckets).
    pub bucket: &'a str,
    /// The object key, for actions on objects.
    pub key: Option<&'a str>,
    /// The version acted on (for the tags `s3:ExistingObjectTag` reads).
    pub version_id: Option<&'a str>,
    /// A listing's prefix (`Some("")` when it names none), delimiter and max-keys.
    pub listing: Option<Listing<'a>>,
    /// The request's headers, for conditions on them (none for the mount).
    pub headers: Option<&'a dyn policy::RequestHeaders>,
}

/// A listing's parameters, as conditions see them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Listing<'a> {
    /// `prefix` ("" when absent).
    pub prefix: &'a str,
    /// `delimiter`.
    pub delimiter: Option<&'a str>,
    /// `max-keys`.
    pub max_keys: Option<&'a str>,
}

impl<'a> AccessRequest<'a> {
    /// `action` on `bucket` (and `key`).
    pub fn new(action: Action, bucket: &'a str, key: Option<&'a str>) -> Self {
        AccessRequest {
            action,
            bucket,
            key,
            version_id: None,
            listing: None,
            headers: None,
        }
    }
}

/// Parsed policies by bucket, so a request does not parse its bucket's policy again.
#[derive(Debug, Default)]
pub(crate) struct PolicyCache(Mutex<HashMap<String, (PolicyId, Arc<Policy>)>>);

impl PolicyCache {
    fn get(&self, txn: &dyn Read, bucket: &str, id: PolicyId) -> Result<Arc<Policy>> {
        if let Ok(map) = self.0.lock() {
            if let Some((cached, p)) = map.get(bucket) {
                if *cached == id {
                    return Ok(p.clone());
                }
            }
        }
        let text = policy_text(txn, bucket)?;
        let p = Arc::new(
            Policy::parse(&text, bucket)
                .map_err(|e| Error::Decode(format!("policy of bucket {bucket}: {e}")))?,
        );
        if let Ok(mut map) = self.0.lock() {
            map.insert(bucket.to_string(), (id, p.clone()));
        }
        Ok(p)
    }
}

/// A bucket's policy document (`NoSuchBucketPolicy` when it has none).
fn policy_text(txn: &dyn Read, bucket: &str) -> Result<String> {
    let v = txn
        .get(Table::Policies, bucket.as_bytes())?
        .ok_or_else(|| Error::NoSuchBucketPolicy(bucket.to_string()))?;
    String::from_utf8(v.into_owned()).map_err(|e| Error::Decode(e.to_string()))
}

/// The key record of a usable key, or `AccessDenied`.
fn usable_key(txn: &dyn Read, id: &str, now: i64) -> Result<KeyRecord> {
    match keys::key_record(txn, id)? {
        Some(k) if k.usable(now) => Ok(k),
        _ => Err(Error::AccessDenied(format!(
            "the key {id} is unknown, disabled or expired"
        ))),
    }
}

impl Engine {
    /// The access layer's parsed policies, kept with this engine.
    fn policy_cache(&self) -> Result<&PolicyCache> {
        self.inner
            .above
            .get_or_init(|| Arc::new(PolicyCache::default()))
            .downcast_ref::<PolicyCache>()
            .ok_or_else(|| Error::Decode("the engine's access state is of another type".into()))
    }

    /// Whether `who` may make `req` from `origin`: `Ok(())`, or `AccessDenied` with the
    /// reason (`NoSuchBucket` when the bucket does not exist).
    pub fn authorize(&self, who: &Principal, origin: Origin, req: AccessRequest<'_>) -> Result<()> {
        let txn = self.read_settings()?;
        let now = now_ns();
        let key = match who {
            Principal::Key(id) => Some(usable_key(&txn, id, now)?),
            _ => None,
        };
        if req.action.class() == Class::Service {
            let ok = match (req.action, who) {
                (_, Principal::Anonymous) => false,
                (Action::ListAllMyBuckets, _) | (_, Principal::Admin) => true,
                (_, Principal::Key(_)) => key.as_ref().is_some_and(|k| k.create_buckets),
            };
            return if ok { Ok(()) } else { Err(denied(who, req)) };
        }
        let rec = crate::object::version::bucket_record(&txn, req.bucket)?;
        let policy = match rec.policy {
            Some(id) => Some(self.policy_cache()?.get(&txn, req.bucket, id)?),
            None => None,
        };
        let tags = match (&policy, req.key) {
            (Some(p), Some(k)) if p.reads_object_tags() => {
                crate::object::version::tags_of(&txn, req.bucket, k, req.version_id)?
            }
            _ => None,
        };
        let facts = Facts {
            secure_transport: origin.secure_transport,
            source_ip: origin.source_ip,
            now_ns: now,
            username: key.as_ref().map(|k| k.name.as_str()),
            prefix: req.listing.map(|l| l.prefix),
            delimiter: req.listing.and_then(|l| l.delimiter),
            max_keys: req.listing.and_then(|l| l.max_keys),
            object_tags: tags.as_ref(),
            headers: req.headers,
        };
        let object_acl = match req.key {
            Some(k) if rec.object_acls && req.action.on_object() => {
                crate::object::version::acl_of(&txn, req.bucket, k, req.version_id)?
            }
            _ => None,
        };
        let rules = BucketRules {
            name: req.bucket,
            owner: rec.owner.as_deref(),
            policy: policy.as_deref(),
            acl: rec.acl.as_ref(),
            object_acl: object_acl.as_ref(),
            pab: rec.public_access_block.unwrap_or_default(),
            acls_enabled: !settings::acls_disabled(&rec),
        };
        let ask = Ask {
            action: req.action,
            key: req.key,
            prefix: req.listing.map(|l| l.prefix),
        };
        if decide(who, key.as_ref(), rules, ask, &facts) == Decision::Allow {
            return Ok(());
        }
        // As S3: a refused read of an object that does not exist is a 404 for a caller who may
        // list that name anyway (it learns nothing it could not learn by listing).
        if let (Action::GetObject | Action::GetObjectVersion, Some(k)) = (req.action, req.key) {
            let list = Ask {
                action: Action::ListBucket,
                key: None,
                prefix: Some(k),
            };
            let facts = Facts {
                prefix: Some(k),
                ..facts
            };
            if decide(who, key.as_ref(), rules, list, &facts) == Decision::Allow
                && crate::object::version::tags_of(&txn, req.bucket, k, req.version_id)?.is_none()
            {
                return Err(Error::NoSuchKey {
                    bucket: req.bucket.to_string(),
                    key: k.to_string(),
                });
            }
        }
        Err(denied(who, req))
    }

    /// The buckets `who` may see in ListBuckets: all for an administrator; for a key, those
    /// it owns or has a grant on.
    pub fn list_buckets_for(&self, who: &Principal) -> Result<Vec<crate::BucketInfo>> {
        let all = self.list_buckets()?;
        let id = match who {
            Principal::Admin => return Ok(all),
            Principal::Anonymous => return Ok(Vec::new()),
            Principal::Key(id) => id,
        };
        let txn = self.read()?;
        let k = usable_key(&txn, id, now_ns())?;
        Ok(all
            .into_iter()
            .filter(|b| {
                b.owner.as_deref() == Some(id.as_str())
                    || k.grants.iter().any(|g| g.bucket == b.name)
            })
            .collect())
    }

    /// Sets a bucket's policy after checking it (`MalformedPolicy` with the reason), the
    /// keys it names included.
    pub async fn set_bucket_policy(&self, bucket: &str, text: &str) -> Result<()> {
        let parsed = Policy::parse(text, bucket).map_err(|e| Error::MalformedPolicy(e.0))?;
        let public = parsed.is_public();
        let named: Vec<policy::Who> = parsed.named_keys().cloned().collect();
        let id = PolicyId(rand::random());
        let (text, name) = (text.to_string(), bucket.to_string());
        self.update_bucket(bucket, move |rec: &mut BucketRecord, txn| {
            if public && rec.public_access_block.is_some_and(|p| p.block_public_policy) {
                return Err(Error::AccessDenied(
                    "public policies are blocked by the bucket's PublicAccessBlock (BlockPublicPolicy)"
                        .into(),
                ));
            }
            if !named.is_empty() {
                let keys: Vec<KeyInfo> = keys::all_keys(txn)?;
                for w in &named {
                    let known = keys.iter().any(|k| match w {
                        policy::Who::KeyId(id) => &k.id == id,
                        policy::Who::KeyName(n) => &k.record.name == n || &k.id == n,
                        _ => true,
                    });
                    if !known {
                        return Err(Error::MalformedPolicy(format!(
                            "Invalid principal in policy: no key {}",
                            match w {
                                policy::Who::KeyId(s) | policy::Who::KeyName(s) => s.as_str(),
                                _ => "",
                            }
                        )));
                    }
                }
            }
            txn.put(Table::Policies, name.as_bytes(), text.as_bytes())?;
            rec.policy = Some(id);
            Ok(())
        })
        .await
    }

    /// A bucket's policy as it was given (`NoSuchBucketPolicy` when it has none).
    pub fn bucket_policy(&self, bucket: &str) -> Result<String> {
        let txn = self.read()?;
        crate::meta::require_bucket(&txn, bucket)?;
        policy_text(&txn, bucket)
    }

    /// Whether a bucket's policy makes it public (`NoSuchBucketPolicy` when it has none).
    pub fn bucket_policy_is_public(&self, bucket: &str) -> Result<bool> {
        let txn = self.read()?;
        let rec = crate::object::version::bucket_record(&txn, bucket)?;
        let id = rec
            .policy
            .ok_or_else(|| Error::NoSuchBucketPolicy(bucket.to_string()))?;
        Ok(self.policy_cache()?.get(&txn, bucket, id)?.is_public())
    }

    /// Removes a bucket's policy (nothing to remove is not an error).
    pub async fn delete_bucket_policy(&self, bucket: &str) -> Result<()> {
        let name = bucket.to_string();
        self.update_bucket(bucket, move |rec, txn| {
            txn.delete(Table::Policies, name.as_bytes())?;
            rec.policy = None;
            Ok(())
        })
        .await
    }
}

/// The refusal of `req` by `who`, saying what was refused.
fn denied(who: &Principal, req: AccessRequest<'_>) -> Error {
    let resource = match req.key {
        Some(k) if req.action.on_object() => format!("{}/{k}", req.bucket),
        _ if req.bucket.is_empty() => "*".to_string(),
        _ => req.bucket.to_string(),
    };
    let who = match who {
        Principal::Admin => "an administrator".to_string(),
        Principal::Key(id) => format!("key {id}"),
        Principal::Anonymous => "an anonymous request".to_string(),
    };
    Error::AccessDenied(format!(
        "{who} may not s3:{} on {resource}",
        req.action.name()
    ))
}
