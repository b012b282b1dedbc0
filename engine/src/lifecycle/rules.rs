//! A bucket's lifecycle configuration: its rules, their validation (S3's errors for what S3
//! refuses), and which objects and versions a rule applies to.

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The most rules one configuration may hold (S3's limit).
pub const MAX_RULES: usize = 1000;

/// A bucket's lifecycle rules (PutBucketLifecycleConfiguration).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LifecycleConfig {
    /// The rules, in the order given.
    pub rules: Vec<Rule>,
}

/// One rule: which objects (prefix, tags, size) and what happens to them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// The rule's id (made up when the client gives none).
    pub id: String,
    /// `Status: Enabled`; a disabled rule is kept but does nothing.
    pub enabled: bool,
    /// Only keys starting with this.
    #[serde(default)]
    pub prefix: String,
    /// The prefix was given in S3's older form (`Rule/Prefix`, no `Filter`): answered in it.
    #[serde(default)]
    pub prefix_outside_filter: bool,
    /// Only objects carrying every one of these tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Only objects larger than this many bytes.
    #[serde(default)]
    pub size_greater_than: Option<u64>,
    /// Only objects smaller than this many bytes.
    #[serde(default)]
    pub size_less_than: Option<u64>,
    /// `Expiration/Days`: current versions this many days old expire.
    #[serde(default)]
    pub expiration_days: Option<u32>,
    /// `Expiration/Date`: current versions expire from this time on (ns, a UTC midnight).
    #[serde(default)]
    pub expiration_date_ns: Option<i64>,
    /// `Expiration/ExpiredObjectDeleteMarker`: a delete marker with no versions left under it
    /// is removed.
    #[serde(default)]
    pub expired_object_delete_marker: bool,
    /// `NoncurrentVersionExpiration/NoncurrentDays`: versions non-current for this many days
    /// are deleted…
    #[serde(default)]
    pub noncurrent_days: Option<u32>,
    /// …except the newest this many of them (`NewerNoncurrentVersions`).
    #[serde(default)]
    pub newer_noncurrent_versions: Option<u32>,
    /// `AbortIncompleteMultipartUpload/DaysAfterInitiation`.
    #[serde(default)]
    pub abort_incomplete_upload_days: Option<u32>,
}

fn invalid(reason: impl Into<String>) -> Error {
    Error::InvalidLifecycle {
        reason: reason.into(),
        malformed: false,
    }
}

fn malformed(reason: impl Into<String>) -> Error {
    Error::InvalidLifecycle {
        reason: reason.into(),
        malformed: true,
    }
}

impl LifecycleConfig {
    /// Checks the configuration as S3 does: `MalformedXML` for what the schema forbids,
    /// `InvalidArgument` for values out of range or rules that contradict each other.
    pub fn validate(&self) -> Result<()> {
        if self.rules.is_empty() {
            return Err(malformed(
                "a lifecycle configuration needs at least one rule",
            ));
        }
        if self.rules.len() > MAX_RULES {
            return Err(invalid(format!("at most {MAX_RULES} rules are allowed")));
        }
        let mut ids = HashSet::new();
        for r in &self.rules {
            r.validate()?;
            if !ids.insert(r.id.as_str()) {
                return Err(invalid(format!("rule ID {:?} is not unique", r.id)));
            }
        }
        Ok(())
    }

    /// The enabled rules.
    pub fn enabled(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.enabled)
    }
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

impl Rule {
    fn validate(&self) -> Result<()> {
        if self.id.len() > 255 {
            return Err(invalid("a rule ID is at most 255 characters"));
        }
        let has_expiration = self.expiration_days.is_some()
            || self.expiration_date_ns.is_some()
            || self.expired_object_delete_marker;
        if !has_expiration
            && self.noncurrent_days.is_none()
            && self.abort_incomplete_upload_days.is_none()
        {
            return Err(invalid(format!(
                "rule {:?} has no action: at least one action needs to be specified in a rule",
                self.id
            )));
        }
        let exclusive = [
            self.expiration_days.is_some(),
            self.expiration_date_ns.is_some(),
            self.expired_object_delete_marker,
        ];
        if exclusive.iter().filter(|x| **x).count() > 1 {
            return Err(malformed(
                "Expiration takes one of Days, Date and ExpiredObjectDeleteMarker",
            ));
        }
        if self.expiration_days == Some(0) {
            return Err(invalid(
                "'Days' for Expiration action must be a positive integer",
            ));
        }
        if let Some(d) = self.expiration_date_ns {
            if d.rem_euclid(DAY_NS) != 0 {
                return Err(invalid("'Date' must be at midnight GMT"));
            }
        }
        if self.noncurrent_days == Some(0) {
            return Err(invalid(
                "'NoncurrentDays' for NoncurrentVersionExpiration action must be a positive integer",
            ));
        }
        if self.newer_noncurrent_versions.is_some() && self.noncurrent_days.is_none() {
            return Err(malformed("NewerNoncurrentVersions needs NoncurrentDays"));
        }
        if let Some(n) = self.newer_noncurrent_versions {
            if !(1..=100).contains(&n) {
                return Err(invalid("NewerNoncurrentVersions must be 1 to 100"));
            }
        }
        if self.abort_incomplete_upload_days == Some(0) {
            return Err(invalid(
                "'DaysAfterInitiation' for AbortIncompleteMultipartUpload action must be a positive integer",
            ));
        }
        if self.abort_incomplete_upload_days.is_some() && !self.tags.is_empty() {
            return Err(invalid(
                "AbortIncompleteMultipartUpload cannot be specified with object tags in the filter",
            ));
        }
        if self.expired_object_delete_marker && !self.tags.is_empty() {
            return Err(invalid(
                "ExpiredObjectDeleteMarker cannot be specified with object tags in the filter",
            ));
        }
        if let (Some(gt), Some(lt)) = (self.size_greater_than, self.size_less_than) {
            if gt >= lt {
                return Err(invalid(
                    "ObjectSizeGreaterThan must be less than ObjectSizeLessThan",
                ));
            }
        }
        Ok(())
    }

    /// Whether the rule's filter takes in `key` with these tags and size (`None`: a delete
    /// marker, which only the prefix filters).
    pub fn applies_to(
        &self,
        key: &str,
        tags: &BTreeMap<String, String>,
        size: Option<u64>,
    ) -> bool {
        if !self.enabled || !key.starts_with(&self.prefix) {
            return false;
        }
        let Some(size) = size else {
            return self.tags.is_empty();
        };
        self.tags.iter().all(|(k, v)| tags.get(k) == Some(v))
            && self.size_greater_than.is_none_or(|gt| size > gt)
            && self.size_less_than.is_none_or(|lt| size < lt)
    }

    /// When a current version last modified at `modified_ns` expires under this rule (days
    /// of `day_ns` each; S3's rounding to the next UTC midnight when days are real days).
    pub fn expires_at(&self, modified_ns: i64, day_ns: i64) -> Option<i64> {
        if let Some(d) = self.expiration_date_ns {
            return Some(d);
        }
        let days = self.expiration_days? as i64;
        let at = modified_ns.saturating_add(days.saturating_mul(day_ns));
        Some(if day_ns == DAY_NS {
            at.saturating_add(DAY_NS - 1).div_euclid(DAY_NS) * DAY_NS
        } else {
            at
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule() -> Rule {
        Rule {
            id: "r".into(),
            enabled: true,
            expiration_days: Some(1),
            ..Default::default()
        }
    }

    #[test]
    fn refuses_what_s3_refuses() {
        let cases: Vec<(Rule, bool)> = vec![
            (
                Rule {
                    expiration_days: None,
                    ..rule()
                },
                false,
            ),
            (
                Rule {
                    expiration_days: Some(0),
                    ..rule()
                },
                false,
            ),
            (
                Rule {
                    expiration_date_ns: Some(DAY_NS),
                    ..rule()
                },
                true,
            ),
            (
                Rule {
                    expiration_days: None,
                    expiration_date_ns: Some(DAY_NS + 1),
                    ..rule()
                },
                false,
            ),
            (
                Rule {
                    expired_object_delete_marker: true,
                    ..rule()
                },
                true,
            ),
            (
                Rule {
                    newer_noncurrent_versions: Some(2),
                    ..rule()
                },
                true,
            ),
            (
                Rule {
                    noncurrent_days: Some(1),
                    newer_noncurrent_versions: Some(0),
                    ..rule()
                },
                false,
            ),
            (
                Rule {
                    abort_incomplete_upload_days: Some(1),
                    tags: [("a".into(), "b".into())].into(),
                    ..rule()
                },
                false,
            ),
            (
                Rule {
                    size_greater_than: Some(10),
                    size_less_than: Some(10),
                    ..rule()
                },
                false,
            ),
            (
                Rule {
                    id: "x".repeat(256),
                    ..rule()
                },
                false,
            ),
        ];
        for (r, want_malformed) in cases {
            let c = LifecycleConfig {
                rules: vec![r.clone()],
            };
            match c.validate() {
                Err(Error::InvalidLifecycle { malformed, .. }) => {
                    assert_eq!(malformed, want_malformed, "{r:?}")
                }
                other => panic!("{r:?}: {other:?}"),
            }
        }
        let twice = LifecycleConfig {
            rules: vec![rule(), rule()],
        };
        assert!(twice.validate().is_err());
        assert!(LifecycleConfig::default().validate().is_err());
        assert!(LifecycleConfig {
            rules: vec![rule()]
        }
        .validate()
        .is_ok());
    }

    #[test]
    fn filters_and_expiry_times() {
        let r = Rule {
            prefix: "logs/".into(),
            tags: [("keep".into(), "no".into())].into(),
            size_greater_than: Some(10),
            ..rule()
        };
        let tags: BTreeMap<String, String> = [("keep".into(), "no".into())].into();
        assert!(r.applies_to("logs/a", &tags, Some(11)));
        assert!(!r.applies_to("logs/a", &tags, Some(10)));
        assert!(!r.applies_to("logs/a", &BTreeMap::new(), Some(11)));
        assert!(!r.applies_to("data/a", &tags, Some(11)));
        assert!(
            !r.applies_to("logs/a", &tags, None),
            "tag filters leave markers out"
        );
        // Real days round up to the next midnight; short test days do not.
        assert_eq!(rule().expires_at(DAY_NS + 5, DAY_NS), Some(3 * DAY_NS));
        assert_eq!(rule().expires_at(7, 1000), Some(1007));
    }
}
