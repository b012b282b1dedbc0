//! Bucket policies: the parser on arbitrary text (a refusal always carries a reason), and
//! every policy it accepts evaluated against requests drawn from the same input — by
//! `decide` too, with grants and an owner — without panics, with the same answer twice, and
//! with an explicit deny never turned into an allow.
#![no_main]

use engine::access::policy::{glob, Caller, Facts, Policy, Verdict};
use engine::access::{decide, Action, Ask, BucketRules, Decision, Grant, KeyRecord};
use engine::Principal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (head, rest) = data.split_at(4);
    // Wildcard matching stays linear on anything.
    let cut = rest.len() / 2;
    let _ = glob(&rest[..cut], &rest[cut..], head[0] & 1 == 1);
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let policy = match Policy::parse(text, "cams") {
        Ok(p) => p,
        Err(e) => {
            assert!(!e.0.is_empty(), "a refusal without a reason");
            return;
        }
    };
    let _ = policy.is_public();
    let action = Action::ALL[head[1] as usize % Action::ALL.len()];
    let key = String::from_utf8_lossy(&rest[..cut.min(64)]).into_owned();
    let resource = if action.on_object() {
        format!("cams/{key}")
    } else {
        "cams".to_string()
    };
    let tags = [("k".to_string(), key.clone())].into_iter().collect();
    let facts = Facts {
        secure_transport: head[2] & 1 == 1,
        source_ip: Some(std::net::IpAddr::from([10, head[2], head[3], 1])),
        now_ns: i64::from(head[3]) * 1_000_000_000_000_000,
        username: Some("dev7"),
        prefix: Some(&key),
        delimiter: Some("/"),
        max_keys: Some("1000"),
        object_tags: (head[2] & 2 == 2).then_some(&tags),
        headers: None,
    };
    let caller = match head[0] % 4 {
        0 => Caller::Admin,
        1 => Caller::Anonymous,
        2 => Caller::Key { id: "PKDEV7", name: "dev7" },
        _ => Caller::Key { id: "PKOTHER", name: "other" },
    };
    let v = policy.evaluate(caller, action, &resource, &facts);
    assert_eq!(v, policy.evaluate(caller, action, &resource, &facts));
    let record = KeyRecord {
        name: "dev7".into(),
        grants: vec![Grant {
            bucket: "cams".into(),
            prefix: String::new(),
            read: true,
            write: true,
            owner: head[3] & 1 == 1,
        }],
        ..Default::default()
    };
    let principal = Principal::Key("PKDEV7".into());
    let ask = Ask {
        action,
        key: action.on_object().then_some(key.as_str()),
        prefix: Some(&key),
    };
    let rules = BucketRules {
        name: "cams",
        owner: (head[3] & 2 == 2).then_some("PKDEV7"),
        policy: Some(&policy),
        acl: None,
        object_acl: None,
        pab: Default::default(),
        acls_enabled: true,
    };
    let d = decide(&principal, Some(&record), rules, ask, &facts);
    let denied = policy.evaluate(
        Caller::Key { id: "PKDEV7", name: "dev7" },
        action,
        &resource,
        &facts,
    ) == Verdict::Deny;
    if denied {
        assert_ne!(d, Decision::Allow, "an explicit deny was allowed");
    }
});
