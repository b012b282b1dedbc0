//! Put/Get/DeleteBucketLifecycleConfiguration: S3's rule shapes to and from the engine's
//! ([`engine::lifecycle`]), which validates them; transitions are refused (one storage
//! class). And the `x-amz-expiration` header of objects a rule will expire.

use engine::lifecycle::{LifecycleConfig, Rule};
use s3s::{S3Error, S3ErrorCode};

use super::*;

pub(super) async fn put_bucket_lifecycle_configuration(
    s: &Store,
    i: PutBucketLifecycleConfigurationInput,
) -> S3Result<PutBucketLifecycleConfigurationOutput> {
    let Some(c) = i.lifecycle_configuration else {
        return Err(s3_error!(
            MalformedXML,
            "The XML you provided was not well-formed: no LifecycleConfiguration"
        ));
    };
    let rules = c
        .rules
        .into_iter()
        .enumerate()
        .map(|(n, r)| rule_from(n, r))
        .collect::<S3Result<Vec<_>>>()?;
    s.engine
        .set_bucket_lifecycle(&i.bucket, Some(LifecycleConfig { rules }))
        .await
        .map_err(s3_err)?;
    Ok(PutBucketLifecycleConfigurationOutput::default())
}

pub(super) async fn get_bucket_lifecycle_configuration(
    s: &Store,
    i: GetBucketLifecycleConfigurationInput,
) -> S3Result<GetBucketLifecycleConfigurationOutput> {
    let Some(c) = s.engine.bucket_lifecycle(&i.bucket).map_err(s3_err)? else {
        return Err(S3Error::with_message(
            S3ErrorCode::NoSuchLifecycleConfiguration,
            format!("The bucket {} has no lifecycle configuration", i.bucket),
        ));
    };
    Ok(GetBucketLifecycleConfigurationOutput {
        rules: Some(c.rules.iter().map(rule_to).collect()),
        ..Default::default()
    })
}

pub(super) async fn delete_bucket_lifecycle(
    s: &Store,
    i: DeleteBucketLifecycleInput,
) -> S3Result<DeleteBucketLifecycleOutput> {
    s.engine
        .set_bucket_lifecycle(&i.bucket, None)
        .await
        .map_err(s3_err)?;
    Ok(DeleteBucketLifecycleOutput::default())
}

fn bad(why: impl std::fmt::Display) -> S3Error {
    s3_error!(InvalidArgument, "{why}")
}

/// A non-negative count from the XML (`what` names it in the error).
fn count<T: TryFrom<i64>>(v: Option<i64>, what: &str) -> S3Result<Option<T>> {
    v.map(|n| T::try_from(n).map_err(|_| bad(format!("'{what}' must be a positive integer"))))
        .transpose()
}

/// One rule as S3 sends it → the engine's (rule `n`, 0-based, for a made-up id).
fn rule_from(n: usize, r: LifecycleRule) -> S3Result<Rule> {
    if r.transitions.as_ref().is_some_and(|t| !t.is_empty())
        || r.noncurrent_version_transitions
            .as_ref()
            .is_some_and(|t| !t.is_empty())
    {
        return Err(bad(
            "Transitions are not supported: this server has one storage class",
        ));
    }
    let enabled = match r.status.as_str() {
        ExpirationStatus::ENABLED => true,
        ExpirationStatus::DISABLED => false,
        other => {
            return Err(s3_error!(
                MalformedXML,
                "Status must be Enabled or Disabled, not {other:?}"
            ))
        }
    };
    let mut rule = Rule {
        id: r
            .id
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| format!("rule-{}", n + 1)),
        enabled,
        ..Default::default()
    };
    match (r.filter, r.prefix) {
        (Some(_), Some(_)) => {
            return Err(s3_error!(
                MalformedXML,
                "A rule takes a Filter or the older Prefix, not both"
            ))
        }
        (None, Some(p)) => {
            rule.prefix = p;
            rule.prefix_outside_filter = true;
        }
        (None, None) => {}
        (Some(f), None) => {
            let parts = [
                f.and.is_some(),
                f.prefix.is_some(),
                f.tag.is_some(),
                f.object_size_greater_than.is_some(),
                f.object_size_less_than.is_some(),
            ];
            if parts.iter().filter(|p| **p).count() > 1 {
                return Err(s3_error!(
                    MalformedXML,
                    "A Filter holds one condition; combine several with And"
                ));
            }
            rule.prefix = f.prefix.unwrap_or_default();
            if let Some(t) = f.tag {
                rule.tags
                    .insert(t.key.unwrap_or_default(), t.value.unwrap_or_default());
            }
            rule.size_greater_than = count(f.object_size_greater_than, "ObjectSizeGreaterThan")?;
            rule.size_less_than = count(f.object_size_less_than, "ObjectSizeLessThan")?;
            if let Some(a) = f.and {
                rule.prefix = a.prefix.unwrap_or_default();
                for t in a.tags.unwrap_or_default() {
                    let k = t.key.unwrap_or_default();
                    if rule
                        .tags
                        .insert(k.clone(), t.value.unwrap_or_default())
                        .is_some()
                    {
                        return Err(bad(format!("Duplicate tag key {k:?} in the filter")));
                    }
                }
                rule.size_greater_than =
                    count(a.object_size_greater_than, "ObjectSizeGreaterThan")?;
                rule.size_less_than = count(a.object_size_less_than, "ObjectSizeLessThan")?;
            }
        }
    }
    if let Some(e) = r.expiration {
        rule.expiration_days = count(e.days.map(i64::from), "Days")?;
        rule.expiration_date_ns = e
            .date
            .as_ref()
            .map(|d| ts_secs(d).saturating_mul(1_000_000_000));
        rule.expired_object_delete_marker = e.expired_object_delete_marker.unwrap_or(false);
        if e.days.is_none() && e.date.is_none() && e.expired_object_delete_marker.is_none() {
            return Err(s3_error!(MalformedXML, "Expiration is empty"));
        }
    }
    if let Some(nv) = r.noncurrent_version_expiration {
        rule.noncurrent_days = count(nv.noncurrent_days.map(i64::from), "NoncurrentDays")?;
        rule.newer_noncurrent_versions = count(
            nv.newer_noncurrent_versions.map(i64::from),
            "NewerNoncurrentVersions",
        )?;
        if rule.noncurrent_days.is_none() {
            return Err(s3_error!(
                MalformedXML,
                "NoncurrentVersionExpiration needs NoncurrentDays"
            ));
        }
    }
    if let Some(a) = r.abort_incomplete_multipart_upload {
        rule.abort_incomplete_upload_days = count(
            a.days_after_initiation.map(i64::from),
            "DaysAfterInitiation",
        )?;
        if rule.abort_incomplete_upload_days.is_none() {
            return Err(s3_error!(
                MalformedXML,
                "AbortIncompleteMultipartUpload needs DaysAfterInitiation"
            ));
        }
    }
    Ok(rule)
}

/// The engine's rule → S3's shape (with a Filter, as S3 answers today).
fn rule_to(r: &Rule) -> LifecycleRule {
    let tags: Vec<Tag> = r
        .tags
        .iter()
        .map(|(k, v)| Tag {
            key: Some(k.clone()),
            value: Some(v.clone()),
        })
        .collect();
    let sizes = r.size_greater_than.is_some() as usize + r.size_less_than.is_some() as usize;
    let conditions = (!r.prefix.is_empty()) as usize + tags.len() + sizes;
    let filter = if conditions > 1 {
        LifecycleRuleFilter {
            and: Some(LifecycleRuleAndOperator {
                prefix: (!r.prefix.is_empty()).then(|| r.prefix.clone()),
                tags: (!tags.is_empty()).then_some(tags),
                object_size_greater_than: r.size_greater_than.map(|n| n as i64),
                object_size_less_than: r.size_less_than.map(|n| n as i64),
            }),
            ..Default::default()
        }
    } else {
        LifecycleRuleFilter {
            prefix: Some(r.prefix.clone()),
            tag: tags.into_iter().next(),
            object_size_greater_than: r.size_greater_than.map(|n| n as i64),
            object_size_less_than: r.size_less_than.map(|n| n as i64),
            ..Default::default()
        }
    };
    let has_expiration = r.expiration_days.is_some()
        || r.expiration_date_ns.is_some()
        || r.expired_object_delete_marker;
    let (filter, prefix) = match r.prefix_outside_filter {
        true => (None, Some(r.prefix.clone())),
        false => (Some(filter), None),
    };
    LifecycleRule {
        id: Some(r.id.clone()),
        status: ExpirationStatus::from_static(if r.enabled {
            ExpirationStatus::ENABLED
        } else {
            ExpirationStatus::DISABLED
        }),
        filter,
        expiration: has_expiration.then(|| LifecycleExpiration {
            days: r.expiration_days.map(|d| d as i32),
            date: r.expiration_date_ns.map(ts),
            expired_object_delete_marker: r.expired_object_delete_marker.then_some(true),
        }),
        noncurrent_version_expiration: r.noncurrent_days.map(|d| NoncurrentVersionExpiration {
            noncurrent_days: Some(d as i32),
            newer_noncurrent_versions: r.newer_noncurrent_versions.map(|n| n as i32),
        }),
        abort_incomplete_multipart_upload: r.abort_incomplete_upload_days.map(|d| {
            AbortIncompleteMultipartUpload {
                days_after_initiation: Some(d as i32),
            }
        }),
        noncurrent_version_transitions: None,
        prefix,
        transitions: None,
    }
}

/// `x-amz-expiration` for a current version a rule will expire:
/// `expiry-date="<HTTP date>", rule-id="<id>"`.
pub(super) fn expiration_header(s: &Store, bucket: &str, m: &ObjectMeta) -> Option<String> {
    let (at, rule) = s.engine.expiration_of(bucket, m)?;
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(at.max(0) as u64);
    Some(format!(
        "expiry-date=\"{}\", rule-id=\"{}\"",
        httpdate::fmt_http_date(t),
        rule.replace('"', "")
    ))
}
