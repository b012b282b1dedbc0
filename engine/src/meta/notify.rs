//! The records of event notifications: a bucket's rules (which events, which keys, which NATS
//! subject), S3's event names, and a record waiting in the outbox. How changes write them and
//! how they are read back: [`crate::events`].

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventName {
    /// A put (S3 PUT or POST, a file closed on the mount).
    Put,
    /// A copy (S3 CopyObject, the new name of a rename on the mount).
    Copy,
    /// A multipart upload completed.
    CompleteMultipartUpload,
    /// An object or version removed.
    Delete,
    /// A delete marker put on an object.
    DeleteMarkerCreated,
    /// A lifecycle rule removed an object or version.
    LifecycleDelete,
    /// A lifecycle rule put a delete marker.
    LifecycleDeleteMarkerCreated,
}

impl EventName {
    /// S3's name (`s3:ObjectCreated:Put`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            EventName::Put => "s3:ObjectCreated:Put",
            EventName::Copy => "s3:ObjectCreated:Copy",
            EventName::CompleteMultipartUpload => "s3:ObjectCreated:CompleteMultipartUpload",
            EventName::Delete => "s3:ObjectRemoved:Delete",
            EventName::DeleteMarkerCreated => "s3:ObjectRemoved:DeleteMarkerCreated",
            EventName::LifecycleDelete => "s3:LifecycleExpiration:Delete",
            EventName::LifecycleDeleteMarkerCreated => "s3:LifecycleExpiration:DeleteMarkerCreated",
        }
    }

    /// Every event, for validation.
    pub const ALL: [EventName; 7] = [
        EventName::Put,
        EventName::Copy,
        EventName::CompleteMultipartUpload,
        EventName::Delete,
        EventName::DeleteMarkerCreated,
        EventName::LifecycleDelete,
        EventName::LifecycleDeleteMarkerCreated,
    ];
}

/// Whether the pattern `p` (`s3:ObjectCreated:Put`, `s3:ObjectCreated:*`, …) is one S3 knows
/// and this store sends.
fn known_pattern(p: &str) -> bool {
    EventName::ALL.iter().any(|e| matches(p, *e))
}

fn matches(pattern: &str, e: EventName) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => prefix.ends_with(':') && e.as_str().starts_with(prefix),
        None => pattern == e.as_str(),
    }
}

/// One rule of a bucket's notification configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationRule {
    /// The rule's id (S3's `Id`; made up when not given).
    pub id: String,
    /// Event patterns (`s3:ObjectCreated:*`, `s3:ObjectRemoved:Delete`, …).
    pub events: Vec<String>,
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// Only keys ending with this.
    #[serde(default)]
    pub suffix: String,
    /// The NATS subject the records go to.
    pub subject: String,
}

impl NotificationRule {
    /// Whether the rule sends event `e` on `key`.
    pub fn wants(&self, e: EventName, key: &str) -> bool {
        key.starts_with(&self.prefix)
            && key.ends_with(&self.suffix)
            && self.events.iter().any(|p| matches(p, e))
    }
}

/// A bucket's notification configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotificationConfig {
    /// The rules.
    pub rules: Vec<NotificationRule>,
}

/// Whether `s` is a NATS subject a record may be published to (tokens, no wildcards).
pub fn valid_subject(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 255
        && s.split('.').all(|t| {
            !t.is_empty()
                && t.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        })
}

impl NotificationConfig {
    /// Checks the rules as S3 does: known events, a valid target, unique ids, and no two rules
    /// that could send the same event for the same key to the same subject twice.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| Err(Error::InvalidNotification(why));
        if self.rules.len() > 100 {
            return bad("at most 100 notification rules per bucket".into());
        }
        let mut ids = std::collections::HashSet::new();
        for r in &self.rules {
            if !ids.insert(r.id.as_str()) {
                return bad(format!("two rules have the id {:?}", r.id));
            }
            if r.events.is_empty() {
                return bad(format!("rule {:?} names no event", r.id));
            }
            if let Some(e) = r.events.iter().find(|e| !known_pattern(e)) {
                return bad(format!("the event {e:?} is not supported"));
            }
            if !valid_subject(&r.subject) {
                return bad(format!(
                    "rule {:?}: {:?} is not a NATS subject to publish to",
                    r.id, r.subject
                ));
            }
        }
        Ok(())
    }
}

/// A record waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    /// What happened.
    pub name: EventName,
    /// When, ns since the epoch.
    pub time_ns: i64,
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// Size (0 for removals).
    pub size: u64,
    /// ETag (empty for removals).
    pub etag: String,
    /// Version id, when there is one.
    pub version_id: Option<String>,
    /// The rule that matched.
    pub rule_id: String,
    /// Where it goes.
    pub subject: String,
    /// Orders the events of one key (hex, increasing).
    pub sequencer: String,
}
