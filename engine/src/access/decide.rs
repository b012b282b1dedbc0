//! The decision: who may do what, in S3's order. A pure function of the records involved, so
//! it is tested (and property-tested against a model) without a store or a server.
//!
//! 1. An explicit `Deny` in the bucket's policy refuses (administrators keep the policy
//!    operations, so a policy can never lock everyone out).
//! 2. Administrators (the configured keys) may do everything else.
//! 3. A key that owns the bucket may do everything on it.
//! 4. An `Allow` in the policy for the caller (or for `*`) allows.
//! 5. A key's grant (`s3d key allow`) that covers the action and the object key allows.
//! 6. Anything else is refused; an anonymous request only ever gets what a policy allows.

use super::acl::{Acl, PublicAccessBlock};
use super::action::{Action, Class};
use super::keys::{Grant, KeyRecord};
use super::policy::{Caller, Facts, Policy, Verdict};
use super::Principal;

/// The bucket's side of a decision.
#[derive(Debug, Clone, Copy)]
pub struct BucketRules<'a> {
    /// The bucket.
    pub name: &'a str,
    /// Its owner key (`None`: the administrators).
    pub owner: Option<&'a str>,
    /// Its policy.
    pub policy: Option<&'a Policy>,
    /// Its ACL.
    pub acl: Option<&'a Acl>,
    /// The ACL of the object version acted on (when the bucket's objects have ACLs).
    pub object_acl: Option<&'a Acl>,
    /// Its PublicAccessBlock (all off when it has none).
    pub pab: PublicAccessBlock,
    /// Whether its ACLs count (not under `BucketOwnerEnforced` ownership).
    pub acls_enabled: bool,
}

/// What is asked, on the bucket of [`BucketRules`].
#[derive(Debug, Clone, Copy)]
pub struct Ask<'a> {
    /// The action.
    pub action: Action,
    /// The object key, for an action on an object.
    pub key: Option<&'a str>,
    /// A listing's prefix (empty when none), for a listing.
    pub prefix: Option<&'a str>,
}

/// The outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// Refused, and why.
    Deny(Refusal),
}

/// Why a request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The bucket's policy denies it explicitly.
    PolicyDeny,
    /// Nothing allows it.
    NoGrant,
    /// The key is unknown, disabled or expired.
    KeyUnusable,
}

/// Decides `ask` by `principal` (with its key's record, for a key) on `bucket`.
pub fn decide(
    principal: &Principal,
    key: Option<&KeyRecord>,
    bucket: BucketRules<'_>,
    ask: Ask<'_>,
    facts: &Facts<'_>,
) -> Decision {
    let caller = match (principal, key) {
        (Principal::Admin, _) => Caller::Admin,
        (Principal::Key(id), Some(k)) => Caller::Key { id, name: &k.name },
        (Principal::Key(_), None) => return Decision::Deny(Refusal::KeyUnusable),
        (Principal::Anonymous, _) => Caller::Anonymous,
    };
    let mut verdict = match bucket.policy {
        Some(p) => p.evaluate(caller, ask.action, &resource(bucket.name, ask), facts),
        None => Verdict::Silent,
    };
    // RestrictPublicBuckets: a public policy grants nothing to anonymous requests.
    if verdict == Verdict::Allow
        && matches!(principal, Principal::Anonymous)
        && bucket.pab.restrict_public_buckets
        && bucket.policy.is_some_and(|p| p.is_public())
    {
        verdict = Verdict::Silent;
    }
    let policy_op = matches!(
        ask.action,
        Action::GetBucketPolicy | Action::PutBucketPolicy | Action::DeleteBucketPolicy
    );
    if verdict == Verdict::Deny && !(matches!(principal, Principal::Admin) && policy_op) {
        return Decision::Deny(Refusal::PolicyDeny);
    }
    let allowed = match (principal, key) {
        (Principal::Admin, _) => true,
        (Principal::Key(id), Some(k)) => {
            bucket.owner == Some(id.as_str())
                || verdict == Verdict::Allow
                || k.grants
                    .iter()
                    .any(|g| g.bucket == bucket.name && grant_covers(g, ask))
                || acl_allows(bucket, Some(id), ask)
        }
        _ => verdict == Verdict::Allow || acl_allows(bucket, None, ask),
    };
    if allowed {
        Decision::Allow
    } else {
        Decision::Deny(Refusal::NoGrant)
    }
}

/// Whether the bucket's ACL or the object's lets `caller` (a key's id; `None`: anonymous) do
/// `ask` (IgnorePublicAcls: grants to groups count for nothing).
fn acl_allows(bucket: BucketRules<'_>, caller: Option<&str>, ask: Ask<'_>) -> bool {
    if !bucket.acls_enabled {
        return false;
    }
    let ignore = bucket.pab.ignore_public_acls;
    let by_bucket = bucket
        .acl
        .is_some_and(|a| a.allows(caller, ask.action, false, ignore));
    let by_object = ask.action.on_object()
        && bucket
            .object_acl
            .is_some_and(|a| a.allows(caller, ask.action, true, ignore));
    by_bucket || by_object
}

/// The resource a policy matches `ask` against: `bucket/key` for an object, else `bucket`.
pub fn resource(bucket: &str, ask: Ask<'_>) -> String {
    match (ask.action.on_object(), ask.key) {
        (true, Some(k)) => format!("{bucket}/{k}"),
        _ => bucket.to_string(),
    }
}

/// Whether grant `g` (on the right bucket) covers `ask`.
pub fn grant_covers(g: &Grant, ask: Ask<'_>) -> bool {
    let class_ok = match ask.action.class() {
        Class::Read => g.read || g.owner,
        Class::Write => g.write || g.owner,
        Class::Config => g.owner && g.prefix.is_empty(),
        Class::Any => !g.is_empty(),
        Class::Service => false,
    };
    if !class_ok {
        return false;
    }
    if g.prefix.is_empty() || ask.action.class() == Class::Any {
        return true;
    }
    // A grant on a prefix covers the objects under it, and listings that stay under it.
    match (ask.action.on_object(), ask.key, ask.prefix) {
        (true, Some(k), _) => k.starts_with(&g.prefix),
        (false, _, Some(p)) => p.starts_with(&g.prefix),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(grants: Vec<Grant>) -> KeyRecord {
        KeyRecord {
            name: "dev7".into(),
            grants,
            ..Default::default()
        }
    }

    fn bucket(owner: Option<&'static str>) -> BucketRules<'static> {
        BucketRules {
            name: "cams",
            owner,
            policy: None,
            acl: None,
            object_acl: None,
            pab: Default::default(),
            acls_enabled: true,
        }
    }

    fn ask(
        action: Action,
        key: Option<&'static str>,
        prefix: Option<&'static str>,
    ) -> Ask<'static> {
        Ask {
            action,
            key,
            prefix,
        }
    }

    #[test]
    fn grants_by_class_and_prefix() {
        let k = key(vec![Grant {
            bucket: "cams".into(),
            prefix: "device-7/".into(),
            write: true,
            ..Default::default()
        }]);
        let p = Principal::Key("PK7".into());
        let f = Facts::default();
        let d = |a| decide(&p, Some(&k), bucket(None), a, &f);
        assert_eq!(
            d(ask(Action::PutObject, Some("device-7/a.jpg"), None)),
            Decision::Allow
        );
        assert_eq!(
            d(ask(Action::PutObject, Some("device-8/a.jpg"), None)),
            Decision::Deny(Refusal::NoGrant)
        );
        assert_eq!(
            d(ask(Action::GetObject, Some("device-7/a.jpg"), None)),
            Decision::Deny(Refusal::NoGrant)
        );
        assert_eq!(
            d(ask(Action::ListBucket, None, Some("device-7/"))),
            Decision::Deny(Refusal::NoGrant)
        );
        assert_eq!(
            d(ask(Action::GetBucketLocation, None, None)),
            Decision::Allow
        );
        assert_eq!(
            d(ask(Action::PutBucketPolicy, None, None)),
            Decision::Deny(Refusal::NoGrant)
        );
    }

    #[test]
    fn owner_and_admin_and_anonymous() {
        let k = key(vec![]);
        let f = Facts::default();
        let a = ask(Action::PutBucketPolicy, None, None);
        let owner = Principal::Key("PK7".into());
        assert_eq!(
            decide(&owner, Some(&k), bucket(Some("PK7")), a, &f),
            Decision::Allow
        );
        assert_eq!(
            decide(&owner, Some(&k), bucket(Some("PK8")), a, &f),
            Decision::Deny(Refusal::NoGrant)
        );
        assert_eq!(
            decide(&owner, None, bucket(Some("PK7")), a, &f),
            Decision::Deny(Refusal::KeyUnusable)
        );
        assert_eq!(
            decide(&Principal::Admin, None, bucket(Some("PK7")), a, &f),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &Principal::Anonymous,
                None,
                bucket(None),
                ask(Action::GetObject, Some("x"), None),
                &f
            ),
            Decision::Deny(Refusal::NoGrant)
        );
    }

    #[test]
    fn acls_count_unless_disabled_or_ignored() {
        let public = Acl::canned("public-read").unwrap();
        let f = Facts::default();
        let get = ask(Action::GetObject, Some("a"), None);
        let mut b = BucketRules {
            object_acl: Some(&public),
            ..bucket(None)
        };
        let anon = |b| decide(&Principal::Anonymous, None, b, get, &f);
        assert_eq!(anon(b), Decision::Allow);
        b.acls_enabled = false;
        assert_eq!(
            anon(b),
            Decision::Deny(Refusal::NoGrant),
            "BucketOwnerEnforced"
        );
        b.acls_enabled = true;
        b.pab.ignore_public_acls = true;
        assert_eq!(
            anon(b),
            Decision::Deny(Refusal::NoGrant),
            "IgnorePublicAcls"
        );
        b.pab.ignore_public_acls = false;
        let list = ask(Action::ListBucket, None, Some(""));
        assert_eq!(
            decide(&Principal::Anonymous, None, b, list, &f),
            Decision::Deny(Refusal::NoGrant),
            "an object's ACL says nothing about its bucket"
        );
    }

    #[test]
    fn policy_deny_wins_but_admins_keep_the_policy() {
        let policy = Policy::parse(
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::cams","arn:aws:s3:::cams/*"]}]}"#,
            "cams",
        )
        .unwrap();
        let b = BucketRules {
            policy: Some(&policy),
            ..bucket(Some("PK7"))
        };
        let f = Facts::default();
        let k = key(vec![]);
        let owner = Principal::Key("PK7".into());
        assert_eq!(
            decide(
                &owner,
                Some(&k),
                b,
                ask(Action::GetObject, Some("a"), None),
                &f
            ),
            Decision::Deny(Refusal::PolicyDeny)
        );
        assert_eq!(
            decide(
                &Principal::Admin,
                None,
                b,
                ask(Action::GetObject, Some("a"), None),
                &f
            ),
            Decision::Deny(Refusal::PolicyDeny)
        );
        assert_eq!(
            decide(
                &Principal::Admin,
                None,
                b,
                ask(Action::DeleteBucketPolicy, None, None),
                &f
            ),
            Decision::Allow
        );
    }
}
