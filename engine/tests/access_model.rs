//! Access decisions against a small reference model: random bucket policies (written out as
//! JSON and parsed), owners and key grants, and random requests. The model states S3's rules
//! directly — an explicit deny wins; administrators, the owner, a policy allow or a grant
//! allow; nothing else does — and the engine must agree on every case.

use engine::access::policy::{Facts, Policy};
use engine::access::{decide, Action, Ask, BucketRules, Decision, Grant, KeyRecord};
use engine::Principal;
use proptest::prelude::*;

const BUCKET: &str = "cams";
const ACTIONS: [Action; 6] = [
    Action::GetObject,
    Action::PutObject,
    Action::DeleteObject,
    Action::ListBucket,
    Action::GetBucketPolicy,
    Action::PutBucketTagging,
];
const OBJECT_KEYS: [&str; 3] = ["a/1", "a/2", "b/1"];
const PREFIXES: [&str; 3] = ["", "a/", "b/"];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Who {
    Anyone,
    Alice,
    Bob,
    Admins,
}

#[derive(Debug, Clone, Copy)]
enum ActionSet {
    All,
    GetStar,
    StarObject,
    One(usize),
}

#[derive(Debug, Clone, Copy)]
enum ResourceSet {
    Bucket,
    AllObjects,
    UnderA,
    OneObject,
}

#[derive(Debug, Clone)]
struct Stmt {
    deny: bool,
    who: Vec<Who>,
    actions: ActionSet,
    not_action: bool,
    resource: ResourceSet,
    ip_cond: bool,
    tls_cond: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    Admin,
    Alice,
    Bob,
    Anonymous,
}

fn stmt() -> impl Strategy<Value = Stmt> {
    (
        any::<bool>(),
        prop::collection::vec(
            prop_oneof![
                Just(Who::Anyone),
                Just(Who::Alice),
                Just(Who::Bob),
                Just(Who::Admins)
            ],
            1..3,
        ),
        prop_oneof![
            Just(ActionSet::All),
            Just(ActionSet::GetStar),
            Just(ActionSet::StarObject),
            (0..ACTIONS.len()).prop_map(ActionSet::One)
        ],
        any::<bool>(),
        prop_oneof![
            Just(ResourceSet::Bucket),
            Just(ResourceSet::AllObjects),
            Just(ResourceSet::UnderA),
            Just(ResourceSet::OneObject)
        ],
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(deny, who, actions, not_action, resource, ip_cond, tls_cond)| Stmt {
                deny,
                who,
                actions,
                not_action,
                resource,
                ip_cond,
                tls_cond,
            },
        )
}

fn json(stmts: &[Stmt]) -> String {
    let list: Vec<serde_json::Value> = stmts
        .iter()
        .map(|s| {
            let who: Vec<&str> = s
                .who
                .iter()
                .map(|w| match w {
                    Who::Anyone => "*",
                    Who::Alice => "arn:aws:iam::000000000000:user/alice",
                    Who::Bob => "PKB",
                    Who::Admins => "arn:aws:iam::000000000000:root",
                })
                .collect();
            let action = match s.actions {
                ActionSet::All => "s3:*".to_string(),
                ActionSet::GetStar => "s3:Get*".to_string(),
                ActionSet::StarObject => "s3:*Object".to_string(),
                ActionSet::One(i) => format!("s3:{}", ACTIONS[i].name()),
            };
            let resource = match s.resource {
                ResourceSet::Bucket => "arn:aws:s3:::cams",
                ResourceSet::AllObjects => "arn:aws:s3:::cams/*",
                ResourceSet::UnderA => "arn:aws:s3:::cams/a/*",
                ResourceSet::OneObject => "arn:aws:s3:::cams/b/1",
            };
            let mut m = serde_json::json!({
                "Effect": if s.deny { "Deny" } else { "Allow" },
                "Principal": {"AWS": who},
                "Resource": resource,
            });
            m[if s.not_action { "NotAction" } else { "Action" }] = action.into();
            let mut cond = serde_json::Map::new();
            if s.ip_cond {
                cond.insert(
                    "IpAddress".into(),
                    serde_json::json!({"aws:SourceIp": "10.0.0.0/8"}),
                );
            }
            if s.tls_cond {
                cond.insert(
                    "Bool".into(),
                    serde_json::json!({"aws:SecureTransport": "true"}),
                );
            }
            if !cond.is_empty() {
                m["Condition"] = cond.into();
            }
            m
        })
        .collect();
    serde_json::json!({"Version": "2012-10-17", "Statement": list}).to_string()
}

/// The model's reading of one statement.
fn matches(
    s: &Stmt,
    caller: Caller,
    action: Action,
    key: Option<&str>,
    ip10: bool,
    tls: bool,
) -> bool {
    let who = s.who.iter().any(|w| {
        matches!(
            (w, caller),
            (Who::Anyone, _)
                | (Who::Alice, Caller::Alice)
                | (Who::Bob, Caller::Bob)
                | (Who::Admins, Caller::Admin)
        )
    });
    let name = action.name();
    let in_set = match s.actions {
        ActionSet::All => true,
        ActionSet::GetStar => name.starts_with("Get"),
        ActionSet::StarObject => name.ends_with("Object"),
        ActionSet::One(i) => ACTIONS[i] == action,
    };
    let resource = match (s.resource, key) {
        (ResourceSet::Bucket, None) => true,
        (ResourceSet::AllObjects, Some(_)) => true,
        (ResourceSet::UnderA, Some(k)) => k.starts_with("a/"),
        (ResourceSet::OneObject, Some(k)) => k == "b/1",
        _ => false,
    };
    who && (in_set != s.not_action) && resource && (!s.ip_cond || ip10) && (!s.tls_cond || tls)
}

/// The model's grants: read = GetObject + ListBucket, write = PutObject + DeleteObject, owner =
/// everything; a prefix limits objects and listings, and never covers configuration.
fn granted(g: &Grant, action: Action, key: Option<&str>, prefix: Option<&str>) -> bool {
    let kind = match action {
        Action::GetObject | Action::ListBucket => g.read || g.owner,
        Action::PutObject | Action::DeleteObject => g.write || g.owner,
        _ => g.owner && g.prefix.is_empty(),
    };
    let scope = match (key, prefix) {
        (Some(k), _) => k.starts_with(&g.prefix),
        (None, Some(p)) => p.starts_with(&g.prefix),
        (None, None) => g.prefix.is_empty(),
    };
    kind && scope
}

#[allow(clippy::too_many_arguments)]
fn model(
    stmts: &[Stmt],
    owner_alice: bool,
    alice_grant: &Option<Grant>,
    caller: Caller,
    action: Action,
    key: Option<&str>,
    prefix: Option<&str>,
    ip10: bool,
    tls: bool,
) -> bool {
    let any = |deny: bool| {
        stmts
            .iter()
            .any(|s| s.deny == deny && matches(s, caller, action, key, ip10, tls))
    };
    if any(true) && !(caller == Caller::Admin && action == Action::GetBucketPolicy) {
        return false;
    }
    match caller {
        Caller::Admin => true,
        Caller::Alice => {
            owner_alice
                || any(false)
                || alice_grant
                    .as_ref()
                    .is_some_and(|g| granted(g, action, key, prefix))
        }
        Caller::Bob | Caller::Anonymous => any(false),
    }
}

fn grant() -> impl Strategy<Value = Option<Grant>> {
    prop::option::of(
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            0..PREFIXES.len(),
        )
            .prop_map(|(read, write, owner, p)| Grant {
                bucket: BUCKET.into(),
                prefix: PREFIXES[p].into(),
                read,
                write,
                owner,
            }),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn engine_agrees_with_the_model(
        stmts in prop::collection::vec(stmt(), 0..5),
        owner_alice in any::<bool>(),
        alice_grant in grant(),
        caller in prop_oneof![Just(Caller::Admin), Just(Caller::Alice), Just(Caller::Bob), Just(Caller::Anonymous)],
        action_i in 0..ACTIONS.len(),
        key_i in 0..OBJECT_KEYS.len(),
        prefix_i in 0..PREFIXES.len(),
        ip10 in any::<bool>(),
        tls in any::<bool>(),
    ) {
        let policy = if stmts.is_empty() {
            None
        } else {
            Some(Policy::parse(&json(&stmts), BUCKET).expect("the generated policy parses"))
        };
        let action = ACTIONS[action_i];
        let on_object = action.on_object();
        let key = on_object.then_some(OBJECT_KEYS[key_i]);
        let prefix = (action == Action::ListBucket).then_some(PREFIXES[prefix_i]);
        let alice = KeyRecord {
            name: "alice".into(),
            grants: alice_grant.clone().into_iter().collect(),
            ..Default::default()
        };
        let bob = KeyRecord { name: "bob".into(), ..Default::default() };
        let (principal, record) = match caller {
            Caller::Admin => (Principal::Admin, None),
            Caller::Alice => (Principal::Key("PKA".into()), Some(&alice)),
            Caller::Bob => (Principal::Key("PKB".into()), Some(&bob)),
            Caller::Anonymous => (Principal::Anonymous, None),
        };
        let facts = Facts {
            secure_transport: tls,
            source_ip: Some(if ip10 { "10.9.8.7" } else { "192.168.1.2" }.parse().unwrap()),
            prefix,
            ..Default::default()
        };
        let rules = BucketRules {
            name: BUCKET,
            owner: owner_alice.then_some("PKA"),
            policy: policy.as_ref(),
            acl: None,
            object_acl: None,
            pab: Default::default(),
            acls_enabled: true,
        };
        let got = decide(&principal, record, rules, Ask { action, key, prefix }, &facts) == Decision::Allow;
        let want = model(&stmts, owner_alice, &alice_grant, caller, action, key, prefix, ip10, tls);
        prop_assert_eq!(got, want, "policy {}", json(&stmts));
    }
}
