//! Event notifications: a bucket's rules (which events, which keys, which NATS subject), and
//! the outbox. A change that a rule matches leaves a record in the `events` table **in the
//! transaction of the change**, whichever door made it (S3, the mount, a lifecycle pass); a
//! publisher (s3d's, when NATS is configured) sends the records and removes them once the
//! server has them. So an acknowledged change is never without its event, a crash before the
//! publish only delays it (at least once), and no write ever waits for a subscriber.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::error::Result;
use crate::kv::{Read, Table, Write};
pub use crate::meta::notify::{
    valid_subject, EventName, EventRecord, NotificationConfig, NotificationRule,
};
use crate::meta::{now_ns, BucketRecord, ObjectMeta};

/// Most records the outbox keeps: beyond it (a publisher away for very long) new events are
/// dropped with a warning rather than filling the metadata store.
pub const OUTBOX_LIMIT: u64 = 1_000_000;

/// Counts the records this process writes.
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Records `name` on `key` for every rule of `rec` that wants it, in `txn`. `meta`: the
/// version created (size, ETag, version id), or for a removal the version id it concerned.
pub(crate) fn emit(
    txn: &mut dyn Write,
    rec: &BucketRecord,
    bucket: &str,
    key: &str,
    name: EventName,
    meta: Option<&ObjectMeta>,
    version_id: Option<&str>,
) -> Result<()> {
    let Some(cfg) = &rec.notifications else {
        return Ok(());
    };
    let wanted: Vec<&NotificationRule> = cfg.rules.iter().filter(|r| r.wants(name, key)).collect();
    if wanted.is_empty() {
        return Ok(());
    }
    if txn.count(Table::Events)? >= OUTBOX_LIMIT {
        tracing::warn!(
            bucket, key, event = name.as_str(),
            "event outbox full ({OUTBOX_LIMIT} records): is the publisher (s3d with nats:) running? event dropped"
        );
        return Ok(());
    }
    let now = now_ns();
    for r in wanted {
        let event = EventRecord {
            name,
            time_ns: now,
            bucket: bucket.to_string(),
            key: key.to_string(),
            size: meta.map(|m| m.size).unwrap_or(0),
            etag: meta.map(|m| m.etag.clone()).unwrap_or_default(),
            version_id: meta
                .and_then(|m| m.version_id().map(str::to_string))
                .or_else(|| version_id.map(str::to_string)),
            rule_id: r.id.clone(),
            subject: r.subject.clone(),
            sequencer: format!("{now:016X}"),
        };
        // Time, then this process's count (the records of one change keep their order), then
        // random bytes (two processes writing at the same nanosecond).
        let mut k = (now as u64).to_be_bytes().to_vec();
        k.extend_from_slice(&SEQUENCE.fetch_add(1, Ordering::Relaxed).to_be_bytes());
        k.extend_from_slice(&rand::random::<[u8; 4]>());
        txn.put(Table::Events, &k, &rmp_serde::to_vec_named(&event)?)?;
    }
    Ok(())
}

/// Up to `limit` records of the outbox, oldest first, with their keys (for [`remove`]).
pub(crate) fn pending(txn: &dyn Read, limit: usize) -> Result<Vec<(Vec<u8>, EventRecord)>> {
    let mut out = Vec::new();
    for r in txn.all(Table::Events)?.take(limit) {
        let (k, v) = r?;
        match rmp_serde::from_slice::<EventRecord>(&v) {
            Ok(e) => out.push((k.to_vec(), e)),
            // A record this build cannot read is reported with an empty subject: the
            // publisher drops it (and says so) instead of stopping on it for ever.
            Err(e) => {
                tracing::warn!("unreadable event record dropped: {e}");
                out.push((
                    k.to_vec(),
                    EventRecord {
                        name: EventName::Put,
                        time_ns: 0,
                        bucket: String::new(),
                        key: String::new(),
                        size: 0,
                        etag: String::new(),
                        version_id: None,
                        rule_id: String::new(),
                        subject: String::new(),
                        sequencer: String::new(),
                    },
                ))
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(events: &[&str], prefix: &str, suffix: &str) -> NotificationRule {
        NotificationRule {
            id: "r".into(),
            events: events.iter().map(|s| s.to_string()).collect(),
            prefix: prefix.into(),
            suffix: suffix.into(),
            subject: "s3.events.b".into(),
        }
    }

    #[test]
    fn patterns_prefixes_and_suffixes() {
        let r = rule(&["s3:ObjectCreated:*"], "cam7/", ".jpg");
        assert!(r.wants(EventName::Put, "cam7/1.jpg"));
        assert!(r.wants(EventName::CompleteMultipartUpload, "cam7/1.jpg"));
        assert!(!r.wants(EventName::Delete, "cam7/1.jpg"));
        assert!(!r.wants(EventName::Put, "cam8/1.jpg"));
        assert!(!r.wants(EventName::Put, "cam7/1.png"));
        let r = rule(&["s3:ObjectRemoved:DeleteMarkerCreated"], "", "");
        assert!(r.wants(EventName::DeleteMarkerCreated, "x"));
        assert!(!r.wants(EventName::Delete, "x"));
        assert!(rule(&["s3:LifecycleExpiration:*"], "", "").wants(EventName::LifecycleDelete, "k"));
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let ok = NotificationConfig {
            rules: vec![rule(
                &["s3:ObjectCreated:*", "s3:ObjectRemoved:Delete"],
                "",
                "",
            )],
        };
        ok.validate().unwrap();
        for (events, subject, why) in [
            (
                vec!["s3:ObjectCreated:Teleport"],
                "s3.events.b",
                "not supported",
            ),
            (vec!["s3:Object*"], "s3.events.b", "not supported"),
            (vec![], "s3.events.b", "no event"),
            (vec!["s3:ObjectCreated:*"], "s3.events.>", "NATS subject"),
            (vec!["s3:ObjectCreated:*"], "a..b", "NATS subject"),
        ] {
            let mut r = rule(&events, "", "");
            r.subject = subject.into();
            let e = NotificationConfig { rules: vec![r] }
                .validate()
                .unwrap_err()
                .to_string();
            assert!(e.contains(why), "{e}");
        }
        let twice = NotificationConfig {
            rules: vec![
                rule(&["s3:ObjectCreated:*"], "", ""),
                rule(&["s3:ObjectRemoved:*"], "", ""),
            ],
        };
        assert!(twice.validate().unwrap_err().to_string().contains("id"));
    }
}
