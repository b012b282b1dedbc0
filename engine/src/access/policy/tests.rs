use super::*;

const B: &str = "cams";

fn parse(s: &str) -> Result<Policy, PolicyError> {
    Policy::parse(s, B)
}

fn reason(s: &str) -> String {
    parse(s).expect_err(s).0
}

fn key<'a>() -> Caller<'a> {
    Caller::Key {
        id: "PKDEV7",
        name: "dev7",
    }
}

#[test]
fn globs() {
    assert!(glob(b"*", b"", false));
    assert!(glob(b"a*c", b"abbbc", false));
    assert!(glob(b"a?c", b"abc", false));
    assert!(!glob(b"a?c", b"ac", false));
    assert!(glob(b"cams/device-7/*", b"cams/device-7/x/y.jpg", false));
    assert!(!glob(b"cams/device-7/*", b"cams/device-8/x", false));
    assert!(glob(b"Get*", b"getobject", true));
    assert!(!glob(b"Get*", b"getobject", false));
    assert!(glob(b"*a*a*a*a*b", b"aaaaaaaaaaaaaaaaaaaaaaaaaab", false));
    assert!(!glob(b"*a*a*a*a*b", &[b'a'; 5000], false));
}

#[test]
fn malformed_policies_say_why() {
    assert!(reason("{").contains("invalid Json"));
    assert!(reason("[]").contains("not an object"));
    assert!(reason(r#"{"Version":"2012-10-17"}"#).contains("Statement"));
    assert!(reason(
        r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#
    )
    .contains("Resource"));
    assert!(reason(r#"{"Statement":[{"Effect":"Permit","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*"}]}"#)
        .contains("effect"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:Fly","Resource":"arn:aws:s3:::cams/*"}]}"#)
        .contains("invalid action"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::other/*"}]}"#)
        .contains("invalid resource"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"StringEquals":{"aws:SourceArn":"x"}}}]}"#)
        .contains("not supported"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}}]}"#)
        .contains("CIDR"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"Bool":{"aws:SourceIp":"true"}}}]}"#)
        .contains("does not apply"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"x"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*"}]}"#)
        .contains("principal"));
    assert!(reason(r#"{"Statement":[{"Effect":"Allow","NotPrincipal":"*","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*"}]}"#)
        .contains("NotPrincipal"));
    assert!(reason(&format!(
        r#"{{"Id":"{}","Statement":[]}}"#,
        "x".repeat(MAX_POLICY_BYTES)
    ))
    .contains("at most"));
}

#[test]
fn public_read_allows_anyone_to_read_objects_only() {
    let p = parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":["s3:GetObject"],"Resource":["arn:aws:s3:::cams/*"]}]}"#,
    )
    .unwrap();
    let f = Facts::default();
    assert_eq!(
        p.evaluate(Caller::Anonymous, Action::GetObject, "cams/a.jpg", &f),
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate(Caller::Anonymous, Action::PutObject, "cams/a.jpg", &f),
        Verdict::Silent
    );
    assert_eq!(
        p.evaluate(Caller::Anonymous, Action::ListBucket, "cams", &f),
        Verdict::Silent
    );
    assert!(p.is_public());
}

#[test]
fn principals_by_id_name_and_root() {
    let p = parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/dev7","PKOTHER","arn:aws:iam::123456789012:root"]},"Action":"s3:*","Resource":"arn:aws:s3:::cams/*"}]}"#,
    )
    .unwrap();
    let f = Facts::default();
    let put = |c| p.evaluate(c, Action::PutObject, "cams/x", &f);
    assert_eq!(put(key()), Verdict::Allow);
    assert_eq!(
        put(Caller::Key {
            id: "PKOTHER",
            name: "n"
        }),
        Verdict::Allow
    );
    assert_eq!(put(Caller::Admin), Verdict::Allow);
    assert_eq!(
        put(Caller::Key {
            id: "PKX",
            name: "x"
        }),
        Verdict::Silent
    );
    assert_eq!(put(Caller::Anonymous), Verdict::Silent);
    assert!(!p.is_public());
}

#[test]
fn deny_wins_and_not_action_inverts() {
    let p = parse(
        r#"{"Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":["arn:aws:s3:::cams","arn:aws:s3:::cams/*"]},
            {"Effect":"Deny","Principal":"*","NotAction":["s3:GetObject","s3:ListBucket"],"Resource":"arn:aws:s3:::cams/*"}
        ]}"#,
    )
    .unwrap();
    let f = Facts::default();
    assert_eq!(
        p.evaluate(key(), Action::GetObject, "cams/a", &f),
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate(key(), Action::DeleteObject, "cams/a", &f),
        Verdict::Deny
    );
    // The deny is on objects only: bucket actions stay allowed.
    assert_eq!(
        p.evaluate(key(), Action::PutBucketTagging, "cams", &f),
        Verdict::Allow
    );
}

#[test]
fn conditions() {
    let p = parse(
        r#"{"Statement":[
            {"Effect":"Deny","Principal":"*","Action":"s3:*","Resource":"arn:aws:s3:::cams/*","Condition":{"Bool":{"aws:SecureTransport":"false"}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"IpAddress":{"aws:SourceIp":["10.1.0.0/16","::1/128"]},"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::cams","Condition":{"StringLike":{"s3:prefix":["","public/*"]}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"StringEquals":{"s3:ExistingObjectTag/Class":"public"}}}
        ]}"#,
    )
    .unwrap();
    assert!(p.reads_object_tags());
    let mut f = Facts {
        secure_transport: true,
        source_ip: Some("10.1.2.3".parse().unwrap()),
        now_ns: 1_800_000_000 * 1_000_000_000,
        ..Default::default()
    };
    let get = |f: &Facts| p.evaluate(Caller::Anonymous, Action::GetObject, "cams/a", f);
    assert_eq!(get(&f), Verdict::Allow);
    f.source_ip = Some("::ffff:10.1.9.9".parse().unwrap());
    assert_eq!(
        get(&f),
        Verdict::Allow,
        "IPv4-mapped addresses match v4 ranges"
    );
    f.source_ip = Some("10.2.0.1".parse().unwrap());
    assert_eq!(get(&f), Verdict::Silent);
    f.source_ip = None;
    assert_eq!(
        get(&f),
        Verdict::Silent,
        "no address: IpAddress does not hold"
    );
    f.source_ip = Some("::1".parse().unwrap());
    f.now_ns = 1_900_000_000 * 1_000_000_000;
    assert_eq!(get(&f), Verdict::Silent, "after the date");
    let tags: BTreeMap<String, String> = [("Class".to_string(), "public".to_string())].into();
    f.object_tags = Some(&tags);
    assert_eq!(get(&f), Verdict::Allow, "by the object's tag");
    f.secure_transport = false;
    assert_eq!(get(&f), Verdict::Deny, "plain HTTP is denied");
    f.secure_transport = true;
    let list = |f: &Facts| p.evaluate(Caller::Anonymous, Action::ListBucket, "cams", f);
    f.prefix = Some("");
    assert_eq!(list(&f), Verdict::Allow);
    f.prefix = Some("public/2026/");
    assert_eq!(list(&f), Verdict::Allow);
    f.prefix = Some("private/");
    assert_eq!(list(&f), Verdict::Silent);
}

#[test]
fn negated_and_if_exists_and_null_on_absent_keys() {
    let p = parse(
        r#"{"Statement":[
            {"Effect":"Deny","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"StringNotEquals":{"s3:ExistingObjectTag/Class":"public"}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::cams/*","Condition":{"IpAddressIfExists":{"aws:SourceIp":"10.0.0.0/8"}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:DeleteObject","Resource":"arn:aws:s3:::cams/*","Condition":{"Null":{"aws:SourceIp":"true"}}}
        ]}"#,
    )
    .unwrap();
    let f = Facts::default();
    // No tags (absent key): a negated operator holds, so the deny applies.
    assert_eq!(
        p.evaluate(key(), Action::GetObject, "cams/a", &f),
        Verdict::Deny
    );
    assert_eq!(
        p.evaluate(key(), Action::PutObject, "cams/a", &f),
        Verdict::Allow
    );
    assert_eq!(
        p.evaluate(key(), Action::DeleteObject, "cams/a", &f),
        Verdict::Allow
    );
    let g = Facts {
        source_ip: Some("192.168.1.1".parse().unwrap()),
        ..Default::default()
    };
    assert_eq!(
        p.evaluate(key(), Action::PutObject, "cams/a", &g),
        Verdict::Silent
    );
    assert_eq!(
        p.evaluate(key(), Action::DeleteObject, "cams/a", &g),
        Verdict::Silent
    );
}

#[derive(Debug)]
struct H(Vec<(&'static str, &'static str)>);

impl RequestHeaders for H {
    fn header(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
    }
}

#[test]
fn conditions_on_request_headers_and_request_tags() {
    let p = parse(
        r#"{"Statement":[
            {"Effect":"Allow","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::cams/*","Condition":{"StringEquals":{"s3:x-amz-acl":"bucket-owner-full-control","s3:RequestObjectTag/security":"public"}}},
            {"Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::cams/*","Condition":{"StringLike":{"aws:Referer":"https://site.example/*"}}},
            {"Effect":"Deny","Principal":"*","Action":"s3:PutObject","Resource":"arn:aws:s3:::cams/*","Condition":{"StringNotLike":{"s3:x-amz-copy-source":"cams/*"},"Null":{"s3:x-amz-copy-source":"false"}}}
        ]}"#,
    )
    .unwrap();
    let eval = |a, h: H| {
        let f = Facts {
            headers: Some(&h),
            ..Default::default()
        };
        p.evaluate(key(), a, "cams/x", &f)
    };
    let put = |h| eval(Action::PutObject, H(h));
    assert_eq!(
        put(vec![
            ("x-amz-acl", "bucket-owner-full-control"),
            ("x-amz-tagging", "a=1&security=public")
        ]),
        Verdict::Allow
    );
    assert_eq!(
        put(vec![
            ("x-amz-acl", "bucket-owner-full-control"),
            ("x-amz-tagging", "security=secret")
        ]),
        Verdict::Silent
    );
    assert_eq!(
        put(vec![
            ("x-amz-acl", "private"),
            ("x-amz-tagging", "security=public")
        ]),
        Verdict::Silent
    );
    assert_eq!(
        put(vec![("x-amz-copy-source", "other/obj")]),
        Verdict::Deny,
        "a copy from another bucket is denied"
    );
    assert_eq!(
        eval(
            Action::GetObject,
            H(vec![("referer", "https://site.example/page")])
        ),
        Verdict::Allow
    );
    assert_eq!(eval(Action::GetObject, H(vec![])), Verdict::Silent);
    assert_eq!(
        tagging_value("a=1&b%20c=x%2By&d", "b c").as_deref(),
        Some("x+y")
    );
    assert_eq!(tagging_value("d", "d").as_deref(), Some(""));
}
