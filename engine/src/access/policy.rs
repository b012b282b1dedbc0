//! Bucket policies: the IAM JSON language, in the subset bucket policies use. [`Policy::parse`]
//! checks a document against one bucket and says what is wrong with it; [`Policy::evaluate`]
//! tells whether it explicitly allows or denies a request.
//!
//! Supported: `Version`, `Id`, `Statement` (one or a list) with `Sid`, `Effect`,
//! `Principal` (`*`, `{"AWS": …}` naming key ids, `arn:aws:iam::ACCOUNT:user/NAME` for the
//! key named NAME, or `…:root` for the administrators), `Action` / `NotAction` and
//! `Resource` / `NotResource` with `*` and `?` wildcards, and `Condition` with the string,
//! boolean, IP address, date and `Null` operators (`…IfExists` too) on `aws:SecureTransport`,
//! `aws:SourceIp`, `aws:CurrentTime`, `aws:username`, `s3:prefix`, `s3:delimiter`,
//! `s3:max-keys` and `s3:ExistingObjectTag/<tag>`. Anything else is refused with the reason:
//! a condition that could never be evaluated would silently grant or deny nothing.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::action::{strip_service, Action};

/// Largest policy document (as S3: 20 KiB).
pub const MAX_POLICY_BYTES: usize = 20 * 1024;

/// A parsed policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// Its statements.
    pub statements: Vec<Statement>,
}

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Grants what the statement matches.
    Allow,
    /// Refuses it, whatever else allows it.
    Deny,
}

/// Who a statement is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Anyone, anonymous requests included.
    Anyone,
    /// The administrators (the configured keys): `arn:aws:iam::ACCOUNT:root` or an account id.
    Admins,
    /// A key by its access key id.
    KeyId(String),
    /// A key by its name or id (`arn:aws:iam::ACCOUNT:user/NAME`).
    KeyName(String),
}

/// Patterns, or everything but them (`NotAction`, `NotResource`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patterns {
    /// The patterns (`*` any run of characters, `?` one).
    pub patterns: Vec<String>,
    /// Whether the statement is about what they do *not* match.
    pub negated: bool,
}

impl Patterns {
    fn matches(&self, s: &str, case_insensitive: bool) -> bool {
        let hit = self
            .patterns
            .iter()
            .any(|p| glob(p.as_bytes(), s.as_bytes(), case_insensitive));
        hit != self.negated
    }
}

/// One statement.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    /// `Sid`.
    pub sid: Option<String>,
    /// `Effect`.
    pub effect: Effect,
    /// `Principal`.
    pub principals: Vec<Who>,
    /// `Action` (patterns over `GetObject`, …, without the `s3:` prefix) or `NotAction`.
    pub actions: Patterns,
    /// The actions the statement is about, worked out from `actions` once (bit
    /// [`Action::index`]).
    pub action_mask: u128,
    /// `Resource` (patterns over `bucket` and `bucket/key`, after `arn:aws:s3:::`) or
    /// `NotResource`.
    pub resources: Patterns,
    /// `Condition`: every one must hold.
    pub conditions: Vec<Condition>,
}

/// A condition key's value type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyType {
    String,
    Bool,
    Ip,
    Date,
}

/// A condition key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CondKey {
    /// `aws:SecureTransport`.
    SecureTransport,
    /// `aws:SourceIp`.
    SourceIp,
    /// `aws:CurrentTime`.
    CurrentTime,
    /// `aws:username`: the key's name.
    Username,
    /// `s3:prefix` of a listing.
    Prefix,
    /// `s3:delimiter` of a listing.
    Delimiter,
    /// `s3:max-keys` of a listing.
    MaxKeys,
    /// `s3:ExistingObjectTag/<tag>`: the tag's value on the object the request acts on.
    ExistingObjectTag(String),
    /// `s3:RequestObjectTag/<tag>`: the tag's value in the request's `x-amz-tagging`.
    RequestObjectTag(String),
    /// A request header (lowercase name): `aws:Referer`, `aws:UserAgent`, and the
    /// `s3:x-amz-…` keys named after their headers (`s3:x-amz-acl`, `s3:x-amz-copy-source`,
    /// `s3:x-amz-metadata-directive`, …).
    Header(String),
}

/// The `s3:x-amz-…` condition keys that are the request's header of the same name.
const HEADER_KEYS: &[&str] = &[
    "x-amz-acl",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
    "x-amz-content-sha256",
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
    "x-amz-object-lock-mode",
    "x-amz-object-lock-retain-until-date",
    "x-amz-object-lock-legal-hold",
];

/// Reads a request's headers for conditions (names lowercase).
pub trait RequestHeaders: std::fmt::Debug + Sync {
    /// The value of header `name`, if the request has it (and it is text).
    fn header(&self, name: &str) -> Option<&str>;
}

/// The value of tag `tag` in an `x-amz-tagging` header (`k=v&k2=v2`, URL-encoded).
fn tagging_value(header: &str, tag: &str) -> Option<String> {
    fn decode(s: &str) -> Option<String> {
        let b = s.as_bytes();
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (b[i], hex) {
                (b'%', Some(v)) => {
                    out.push(v);
                    i += 3;
                }
                (b'+', _) => {
                    out.push(b' ');
                    i += 1;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8(out).ok()
    }
    header.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (decode(k)? == tag).then(|| decode(v)).flatten()
    })
}

impl CondKey {
    fn parse(name: &str) -> Option<CondKey> {
        let lower = name.to_ascii_lowercase();
        Some(match lower.as_str() {
            "aws:securetransport" => CondKey::SecureTransport,
            "aws:sourceip" => CondKey::SourceIp,
            "aws:currenttime" => CondKey::CurrentTime,
            "aws:username" => CondKey::Username,
            "s3:prefix" => CondKey::Prefix,
            "s3:delimiter" => CondKey::Delimiter,
            "s3:max-keys" => CondKey::MaxKeys,
            "aws:referer" => CondKey::Header("referer".into()),
            "aws:useragent" => CondKey::Header("user-agent".into()),
            other
                if other
                    .strip_prefix("s3:")
                    .is_some_and(|h| HEADER_KEYS.contains(&h)) =>
            {
                CondKey::Header(other[3..].to_string())
            }
            _ => {
                const REQ_TAG: &str = "s3:RequestObjectTag/";
                if let Some(tag) = name
                    .get(..REQ_TAG.len())
                    .filter(|p| p.eq_ignore_ascii_case(REQ_TAG))
                    .map(|_| &name[REQ_TAG.len()..])
                    .filter(|t| !t.is_empty())
                {
                    return Some(CondKey::RequestObjectTag(tag.to_string()));
                }
                // The tag's name keeps its case (tags are case-sensitive).
                const TAG: &str = "s3:ExistingObjectTag/";
                let tag = name
                    .get(..TAG.len())
                    .filter(|p| p.eq_ignore_ascii_case(TAG))
                    .map(|_| &name[TAG.len()..])?;
                if tag.is_empty() {
                    return None;
                }
                CondKey::ExistingObjectTag(tag.to_string())
            }
        })
    }

    fn value_type(&self) -> KeyType {
        match self {
            CondKey::SecureTransport => KeyType::Bool,
            CondKey::SourceIp => KeyType::Ip,
            CondKey::CurrentTime => KeyType::Date,
            _ => KeyType::String,
        }
    }
}

/// A condition operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operator {
    /// `StringEquals`.
    StringEquals,
    /// `StringNotEquals`.
    StringNotEquals,
    /// `StringEqualsIgnoreCase`.
    StringEqualsIgnoreCase,
    /// `StringNotEqualsIgnoreCase`.
    StringNotEqualsIgnoreCase,
    /// `StringLike`.
    StringLike,
    /// `StringNotLike`.
    StringNotLike,
    /// `Bool`.
    Bool,
    /// `IpAddress`.
    IpAddress,
    /// `NotIpAddress`.
    NotIpAddress,
    /// `DateEquals`.
    DateEquals,
    /// `DateNotEquals`.
    DateNotEquals,
    /// `DateLessThan`.
    DateLessThan,
    /// `DateLessThanEquals`.
    DateLessThanEquals,
    /// `DateGreaterThan`.
    DateGreaterThan,
    /// `DateGreaterThanEquals`.
    DateGreaterThanEquals,
    /// `Null`: whether the key is absent.
    Null,
}

const OPERATORS: &[(&str, Operator)] = &[
    ("StringEquals", Operator::StringEquals),
    ("StringNotEquals", Operator::StringNotEquals),
    ("StringEqualsIgnoreCase", Operator::StringEqualsIgnoreCase),
    (
        "StringNotEqualsIgnoreCase",
        Operator::StringNotEqualsIgnoreCase,
    ),
    ("StringLike", Operator::StringLike),
    ("StringNotLike", Operator::StringNotLike),
    ("Bool", Operator::Bool),
    ("IpAddress", Operator::IpAddress),
    ("NotIpAddress", Operator::NotIpAddress),
    ("DateEquals", Operator::DateEquals),
    ("DateNotEquals", Operator::DateNotEquals),
    ("DateLessThan", Operator::DateLessThan),
    ("DateLessThanEquals", Operator::DateLessThanEquals),
    ("DateGreaterThan", Operator::DateGreaterThan),
    ("DateGreaterThanEquals", Operator::DateGreaterThanEquals),
    ("Null", Operator::Null),
];

impl Operator {
    /// Whether it matches when the value matches none of the condition's values (and when
    /// the key is absent).
    fn negated(self) -> bool {
        matches!(
            self,
            Operator::StringNotEquals
                | Operator::StringNotEqualsIgnoreCase
                | Operator::StringNotLike
                | Operator::NotIpAddress
                | Operator::DateNotEquals
        )
    }

    /// The key types it applies to.
    fn applies_to(self, t: KeyType) -> bool {
        use Operator::*;
        match self {
            StringEquals
            | StringNotEquals
            | StringEqualsIgnoreCase
            | StringNotEqualsIgnoreCase
            | StringLike
            | StringNotLike => t == KeyType::String || t == KeyType::Bool,
            Bool => t == KeyType::Bool,
            IpAddress | NotIpAddress => t == KeyType::Ip,
            DateEquals
            | DateNotEquals
            | DateLessThan
            | DateLessThanEquals
            | DateGreaterThan
            | DateGreaterThanEquals => t == KeyType::Date,
            Null => true,
        }
    }
}

/// A value a condition compares with, parsed for its operator.
#[derive(Debug, Clone, PartialEq)]
pub enum CondValue {
    /// A string (or a `StringLike` pattern).
    Text(String),
    /// A boolean (`Bool`, `Null`).
    Flag(bool),
    /// An address range (`IpAddress`).
    Net(IpAddr, u8),
    /// A time, ns since the epoch (`Date…`).
    Time(i64),
}

/// One operator on one key with its values (any of which may match).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    /// The operator.
    pub op: Operator,
    /// `…IfExists`: holds when the key is absent.
    pub if_exists: bool,
    /// The key.
    pub key: CondKey,
    /// The values.
    pub values: Vec<CondValue>,
}

/// What a request brings to conditions.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    /// Over TLS.
    pub secure_transport: bool,
    /// The client's address (absent for the mount).
    pub source_ip: Option<IpAddr>,
    /// Now, ns since the epoch.
    pub now_ns: i64,
    /// The key's name (absent for administrators and anonymous requests).
    pub username: Option<&'a str>,
    /// A listing's prefix (empty when it names none); absent for other requests.
    pub prefix: Option<&'a str>,
    /// A listing's delimiter.
    pub delimiter: Option<&'a str>,
    /// A listing's max-keys.
    pub max_keys: Option<&'a str>,
    /// The tags of the object acted on, when it exists and the policy asks for them.
    pub object_tags: Option<&'a BTreeMap<String, String>>,
    /// The request's headers (none for the mount).
    pub headers: Option<&'a dyn RequestHeaders>,
}

/// Who made a request, as a policy sees it.
#[derive(Debug, Clone, Copy)]
pub enum Caller<'a> {
    /// An administrator.
    Admin,
    /// A key (its id and name).
    Key {
        /// Access key id.
        id: &'a str,
        /// Name.
        name: &'a str,
    },
    /// Nobody signed.
    Anonymous,
}

/// What a policy says about a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// A statement denies it.
    Deny,
    /// A statement allows it and none denies it.
    Allow,
    /// No statement is about it.
    Silent,
}

/// A policy's refusal, with S3's reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

fn bad<T>(msg: impl Into<String>) -> Result<T, PolicyError> {
    Err(PolicyError(msg.into()))
}

/// A string or a list of strings.
fn strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => bad(format!("{what} must hold strings")),
            })
            .collect(),
        Value::Array(_) => bad(format!("{what} must not be empty")),
        _ => bad(format!("{what} must be a string or a list of strings")),
    }
}

/// A condition value as a string (policies write numbers and booleans bare too).
fn condition_strings(v: &Value, what: &str) -> Result<Vec<String>, PolicyError> {
    let one = |i: &Value| match i {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        _ => bad(format!("{what}: values must be strings")),
    };
    match v {
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        Value::Array(_) => bad(format!("{what}: no values")),
        other => Ok(vec![one(other)?]),
    }
}

fn parse_principal(v: &Value) -> Result<Vec<Who>, PolicyError> {
    let aws = match v {
        Value::String(s) if s == "*" => return Ok(vec![Who::Anyone]),
        Value::Object(m) => {
            if let Some(k) = m.keys().find(|k| k.as_str() != "AWS") {
                return bad(format!(
                    "Invalid principal in policy: only \"AWS\" principals are supported, not {k:?}"
                ));
            }
            m.get("AWS")
                .ok_or_else(|| PolicyError("Invalid principal in policy: no \"AWS\"".into()))?
        }
        _ => return bad("Invalid principal in policy: use \"*\" or {\"AWS\": [...]}"),
    };
    strings(aws, "Principal")?
        .into_iter()
        .map(|p| principal_id(&p))
        .collect()
}

fn principal_id(p: &str) -> Result<Who, PolicyError> {
    if p == "*" {
        return Ok(Who::Anyone);
    }
    if let Some(rest) = p.strip_prefix("arn:aws:iam::") {
        let (_account, resource) = rest
            .split_once(':')
            .ok_or_else(|| PolicyError(format!("Invalid principal in policy: {p:?}")))?;
        if resource == "root" {
            return Ok(Who::Admins);
        }
        if let Some(name) = resource.strip_prefix("user/") {
            let name = name.rsplit('/').next().unwrap_or(name);
            if !name.is_empty() {
                return Ok(Who::KeyName(name.to_string()));
            }
        }
        return bad(format!(
            "Invalid principal in policy: {p:?} (name a user: arn:aws:iam::ACCOUNT:user/NAME)"
        ));
    }
    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Who::Admins);
    }
    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(Who::KeyId(p.to_string()));
    }
    bad(format!("Invalid principal in policy: {p:?}"))
}

fn parse_actions(list: Vec<String>) -> Result<Vec<String>, PolicyError> {
    list.into_iter()
        .map(|a| {
            if a == "*" {
                return Ok("*".to_string());
            }
            let bare = strip_service(&a)
                .ok_or_else(|| PolicyError(format!("Policy has invalid action: {a:?}")))?;
            let known = Action::ALL
                .iter()
                .any(|x| glob(bare.as_bytes(), x.name().as_bytes(), true));
            if !known {
                return bad(format!("Policy has invalid action: {a:?}"));
            }
            Ok(bare.to_string())
        })
        .collect()
}

fn parse_resources(list: Vec<String>, bucket: &str) -> Result<Vec<String>, PolicyError> {
    list.into_iter()
        .map(|r| {
            if r == "*" {
                return Ok("*".to_string());
            }
            let rest = r
                .strip_prefix("arn:aws:s3:::")
                .ok_or_else(|| PolicyError(format!("Policy has invalid resource: {r:?}")))?;
            let bucket_part = rest.split('/').next().unwrap_or_default();
            // A pattern whose bucket part is a wildcard stands for this bucket (and no other);
            // one that names another bucket is refused, as S3 does.
            let covers = glob(bucket_part.as_bytes(), bucket.as_bytes(), false)
                || (bucket_part.contains('*') && !rest.contains('/'));
            if !covers {
                return bad(format!(
                    "Policy has invalid resource: {r:?} is not in bucket {bucket:?}"
                ));
            }
            Ok(rest.to_string())
        })
        .collect()
}

fn parse_conditions(v: &Value) -> Result<Vec<Condition>, PolicyError> {
    let Value::Object(ops) = v else {
        return bad("Condition must be an object of operators");
    };
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        if op_name.contains(':') {
            return bad(format!(
                "Condition operator {op_name:?}: ForAnyValue/ForAllValues are not supported"
            ));
        }
        let (base, if_exists) = match op_name.strip_suffix("IfExists") {
            Some(b) => (b, true),
            None => (op_name.as_str(), false),
        };
        let op = OPERATORS
            .iter()
            .find(|(n, _)| *n == base)
            .map(|(_, o)| *o)
            .ok_or_else(|| PolicyError(format!("Invalid Condition operator: {op_name:?}")))?;
        if if_exists && op == Operator::Null {
            return bad("Invalid Condition operator: NullIfExists");
        }
        let Value::Object(keys) = keys else {
            return bad(format!("Condition {op_name:?} must be an object of keys"));
        };
        if keys.is_empty() {
            return bad(format!("Condition {op_name:?} has no keys"));
        }
        for (key_name, values) in keys {
            let key = CondKey::parse(key_name).ok_or_else(|| {
                PolicyError(format!("Condition key {key_name:?} is not supported"))
            })?;
            if !op.applies_to(key.value_type()) {
                return bad(format!(
                    "Condition operator {op_name:?} does not apply to {key_name:?}"
                ));
            }
            let what = format!("{op_name}/{key_name}");
            let values = condition_strings(values, &what)?
                .into_iter()
                .map(|s| condition_value(op, &s, &what))
                .collect::<Result<_, _>>()?;
            out.push(Condition {
                op,
                if_exists,
                key,
                values,
            });
        }
    }
    Ok(out)
}

fn condition_value(op: Operator, s: &str, what: &str) -> Result<CondValue, PolicyError> {
    use Operator::*;
    Ok(match op {
        Bool | Null => match s.to_ascii_lowercase().as_str() {
            "true" => CondValue::Flag(true),
            "false" => CondValue::Flag(false),
            _ => return bad(format!("{what}: {s:?} is not true or false")),
        },
        IpAddress | NotIpAddress => {
            let (ip, bits) = parse_cidr(s)
                .ok_or_else(|| PolicyError(format!("{what}: {s:?} is not an IP address or CIDR")))?;
            CondValue::Net(ip, bits)
        }
        DateEquals | DateNotEquals | DateLessThan | DateLessThanEquals | DateGreaterThan
        | DateGreaterThanEquals => CondValue::Time(parse_time(s).ok_or_else(|| {
            PolicyError(format!(
                "{what}: {s:?} is not a date (ISO 8601, e.g. 2026-01-01T00:00:00Z, or epoch seconds)"
            ))
        })?),
        _ => CondValue::Text(s.to_string()),
    })
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max)?,
        None => max,
    };
    Some((ip, bits))
}

fn parse_time(s: &str) -> Option<i64> {
    use time::format_description::well_known::Rfc3339;
    if let Ok(t) = time::OffsetDateTime::parse(s, &Rfc3339) {
        return i64::try_from(t.unix_timestamp_nanos()).ok();
    }
    if s.len() == 10 {
        if let Ok(t) = time::OffsetDateTime::parse(&format!("{s}T00:00:00Z"), &Rfc3339) {
            return i64::try_from(t.unix_timestamp_nanos()).ok();
        }
    }
    s.parse::<i64>().ok()?.checked_mul(1_000_000_000)
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let ip = match (ip, net) {
        (IpAddr::V6(v6), IpAddr::V4(_)) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        _ => ip,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// IAM's wildcard match: `*` any run of characters (`/` included), `?` exactly one.
pub fn glob(pattern: &[u8], s: &[u8], case_insensitive: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if case_insensitive {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // Iterative matching with one backtrack point: linear in practice, never exponential.
    let (mut p, mut i) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while i < s.len() {
        if p < pattern.len() && (pattern[p] == b'?' || (pattern[p] != b'*' && eq(pattern[p], s[i])))
        {
            p += 1;
            i += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, i));
            p += 1;
        } else if let Some((sp, si)) = star {
            p = sp + 1;
            i = si + 1;
            star = Some((sp, si + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

impl Policy {
    /// Parses `text` as a policy of `bucket`: `Err` with S3's reason when it is malformed.
    pub fn parse(text: &str, bucket: &str) -> Result<Policy, PolicyError> {
        if text.len() > MAX_POLICY_BYTES {
            return bad(format!(
                "Policies must be at most {MAX_POLICY_BYTES} bytes; this one is {}",
                text.len()
            ));
        }
        let doc: Value = serde_json::from_str(text)
            .map_err(|e| PolicyError(format!("This policy contains invalid Json: {e}")))?;
        let Value::Object(top) = doc else {
            return bad("This policy contains invalid Json: not an object");
        };
        for k in top.keys() {
            if !matches!(k.as_str(), "Version" | "Id" | "Statement") {
                return bad(format!("Unknown field {k}"));
            }
        }
        match top.get("Version") {
            None => {}
            Some(Value::String(v)) if v == "2012-10-17" || v == "2008-10-17" => {}
            Some(v) => return bad(format!("Invalid policy version {v}: use 2012-10-17")),
        }
        let statements = match top.get("Statement") {
            Some(Value::Array(list)) if !list.is_empty() => list.iter().collect::<Vec<_>>(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(_) => return bad("Statement must be an object or a non-empty list"),
            None => return bad("Missing required field Statement"),
        };
        let statements = statements
            .into_iter()
            .map(|s| Self::statement(s, bucket))
            .collect::<Result<_, _>>()?;
        Ok(Policy { statements })
    }

    fn statement(v: &Value, bucket: &str) -> Result<Statement, PolicyError> {
        let Value::Object(m) = v else {
            return bad("Each statement must be an object");
        };
        for k in m.keys() {
            if !matches!(
                k.as_str(),
                "Sid"
                    | "Effect"
                    | "Principal"
                    | "Action"
                    | "NotAction"
                    | "Resource"
                    | "NotResource"
                    | "Condition"
            ) {
                let why = if k == "NotPrincipal" {
                    "NotPrincipal is not supported".to_string()
                } else {
                    format!("Unknown field {k}")
                };
                return Err(PolicyError(why));
            }
        }
        let sid = match m.get("Sid") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return bad("Sid must be a string"),
        };
        let effect = match m.get("Effect").and_then(|e| e.as_str()) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            Some(e) => return bad(format!("Invalid effect: {e}")),
            None => return bad("Missing required field Effect"),
        };
        let principals = parse_principal(
            m.get("Principal")
                .ok_or_else(|| PolicyError("Missing required field Principal".into()))?,
        )?;
        let actions = match (m.get("Action"), m.get("NotAction")) {
            (Some(a), None) => Patterns {
                patterns: parse_actions(strings(a, "Action")?)?,
                negated: false,
            },
            (None, Some(a)) => Patterns {
                patterns: parse_actions(strings(a, "NotAction")?)?,
                negated: true,
            },
            (Some(_), Some(_)) => return bad("A statement has Action or NotAction, not both"),
            (None, None) => return bad("Missing required field Action"),
        };
        let resources = match (m.get("Resource"), m.get("NotResource")) {
            (Some(r), None) => Patterns {
                patterns: parse_resources(strings(r, "Resource")?, bucket)?,
                negated: false,
            },
            (None, Some(r)) => Patterns {
                patterns: parse_resources(strings(r, "NotResource")?, bucket)?,
                negated: true,
            },
            (Some(_), Some(_)) => return bad("A statement has Resource or NotResource, not both"),
            (None, None) => return bad("Missing required field Resource"),
        };
        let conditions = match m.get("Condition") {
            Some(c) => parse_conditions(c)?,
            None => Vec::new(),
        };
        let action_mask = Action::ALL
            .iter()
            .filter(|a| actions.matches(a.name(), true))
            .fold(0u128, |m, a| m | 1 << a.index());
        Ok(Statement {
            sid,
            effect,
            principals,
            actions,
            action_mask,
            resources,
            conditions,
        })
    }

    /// Whether any statement's conditions read the object's tags (so a caller fetches them).
    pub fn reads_object_tags(&self) -> bool {
        self.statements.iter().any(|s| {
            s.conditions
                .iter()
                .any(|c| matches!(c.key, CondKey::ExistingObjectTag(_)))
        })
    }

    /// The key ids and names the policy's statements name (checked against the store when
    /// the policy is set).
    pub fn named_keys(&self) -> impl Iterator<Item = &Who> {
        self.statements
            .iter()
            .flat_map(|s| s.principals.iter())
            .filter(|w| matches!(w, Who::KeyId(_) | Who::KeyName(_)))
    }

    /// Whether the policy grants anything to everyone (S3's "public"): an Allow for `*`
    /// whose conditions do not pin the caller to fixed addresses or names.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(|s| {
            s.effect == Effect::Allow
                && s.principals.contains(&Who::Anyone)
                && !s.conditions.iter().any(|c| {
                    matches!(c.key, CondKey::SourceIp | CondKey::Username) && !c.op.negated()
                })
        })
    }

    /// What the policy says about `caller` doing `action` on `resource` (`bucket` or
    /// `bucket/key`).
    pub fn evaluate(
        &self,
        caller: Caller<'_>,
        action: Action,
        resource: &str,
        f: &Facts,
    ) -> Verdict {
        let mut verdict = Verdict::Silent;
        for s in &self.statements {
            if !s.principals.iter().any(|w| who_matches(w, caller))
                || s.action_mask & (1 << action.index()) == 0
                || !s.resources.matches(resource, false)
                || !s.conditions.iter().all(|c| c.holds(f))
            {
                continue;
            }
            match s.effect {
                Effect::Deny => return Verdict::Deny,
                Effect::Allow => verdict = Verdict::Allow,
            }
        }
        verdict
    }
}

fn who_matches(w: &Who, caller: Caller<'_>) -> bool {
    match (w, caller) {
        (Who::Anyone, _) => true,
        (Who::Admins, Caller::Admin) => true,
        (Who::KeyId(k), Caller::Key { id, .. }) => k == id,
        // `user/NAME` names a key by its name, or by its id (S3's canonical user id here).
        (Who::KeyName(n), Caller::Key { id, name }) => n == name || n == id,
        _ => false,
    }
}

impl Condition {
    /// Whether the condition holds for a request with `f`.
    pub fn holds(&self, f: &Facts) -> bool {
        let present = self.key_value(f);
        if self.op == Operator::Null {
            let absent = present.is_none();
            return self
                .values
                .iter()
                .any(|v| matches!(v, CondValue::Flag(b) if *b == absent));
        }
        let Some(value) = present else {
            return self.if_exists || self.op.negated();
        };
        let any = self.values.iter().any(|v| self.compare(&value, v));
        any != self.op.negated()
    }

    fn key_value(&self, f: &Facts) -> Option<Fact> {
        Some(match &self.key {
            CondKey::SecureTransport => Fact::Flag(f.secure_transport),
            CondKey::SourceIp => Fact::Ip(f.source_ip?),
            CondKey::CurrentTime => Fact::Time(f.now_ns),
            CondKey::Username => Fact::Text(f.username?.to_string()),
            CondKey::Prefix => Fact::Text(f.prefix?.to_string()),
            CondKey::Delimiter => Fact::Text(f.delimiter?.to_string()),
            CondKey::MaxKeys => Fact::Text(f.max_keys?.to_string()),
            CondKey::ExistingObjectTag(t) => Fact::Text(f.object_tags?.get(t)?.clone()),
            CondKey::RequestObjectTag(t) => {
                Fact::Text(tagging_value(f.headers?.header("x-amz-tagging")?, t)?)
            }
            CondKey::Header(h) => Fact::Text(f.headers?.header(h)?.to_string()),
        })
    }

    fn compare(&self, fact: &Fact, v: &CondValue) -> bool {
        use Operator::*;
        match (self.op, fact, v) {
            (StringEquals | StringNotEquals, f, CondValue::Text(t)) => f.text() == *t,
            (StringEqualsIgnoreCase | StringNotEqualsIgnoreCase, f, CondValue::Text(t)) => {
                f.text().eq_ignore_ascii_case(t)
            }
            (StringLike | StringNotLike, f, CondValue::Text(t)) => {
                glob(t.as_bytes(), f.text().as_bytes(), false)
            }
            (Bool, Fact::Flag(a), CondValue::Flag(b)) => a == b,
            (IpAddress | NotIpAddress, Fact::Ip(ip), CondValue::Net(n, bits)) => {
                in_net(*ip, *n, *bits)
            }
            (DateEquals | DateNotEquals, Fact::Time(a), CondValue::Time(b)) => a == b,
            (DateLessThan, Fact::Time(a), CondValue::Time(b)) => a < b,
            (DateLessThanEquals, Fact::Time(a), CondValue::Time(b)) => a <= b,
            (DateGreaterThan, Fact::Time(a), CondValue::Time(b)) => a > b,
            (DateGreaterThanEquals, Fact::Time(a), CondValue::Time(b)) => a >= b,
            _ => false,
        }
    }
}

/// A request's value of a condition key.
enum Fact {
    Text(String),
    Flag(bool),
    Ip(IpAddr),
    Time(i64),
}

impl Fact {
    fn text(&self) -> String {
        match self {
            Fact::Text(s) => s.clone(),
            Fact::Flag(b) => b.to_string(),
            Fact::Ip(ip) => ip.to_string(),
            Fact::Time(t) => t.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
