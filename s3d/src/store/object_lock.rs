//! Object lock over S3: Put/GetObjectLockConfiguration, Put/GetObjectRetention,
//! Put/GetObjectLegalHold, the per-write headers, and the lock headers of GET and HEAD. The
//! engine ([`engine::LockConfig`]) enforces it.

use engine::{DefaultRetention as EngineDefault, LockMode, LockRequest, Retention};
use s3s::{S3Error, S3ErrorCode};

use super::*;

fn mode_from(m: &str) -> S3Result<LockMode> {
    match m {
        ObjectLockRetentionMode::GOVERNANCE => Ok(LockMode::Governance),
        ObjectLockRetentionMode::COMPLIANCE => Ok(LockMode::Compliance),
        other => Err(s3_error!(
            MalformedXML,
            "The retention mode must be GOVERNANCE or COMPLIANCE, not {other:?}"
        )),
    }
}

fn mode_name(m: LockMode) -> &'static str {
    match m {
        LockMode::Governance => ObjectLockRetentionMode::GOVERNANCE,
        LockMode::Compliance => ObjectLockRetentionMode::COMPLIANCE,
    }
}

fn ns_of(t: &Timestamp) -> i64 {
    ts_secs(t).saturating_mul(1_000_000_000)
}

fn hold_from(h: &str) -> S3Result<bool> {
    match h {
        ObjectLockLegalHoldStatus::ON => Ok(true),
        ObjectLockLegalHoldStatus::OFF => Ok(false),
        other => Err(s3_error!(
            MalformedXML,
            "The legal hold status must be ON or OFF, not {other:?}"
        )),
    }
}

/// The lock a write asks for with its `x-amz-object-lock-*` headers (mode and date come
/// together; the date is in the future).
pub(super) fn lock_request(
    mode: Option<&ObjectLockMode>,
    until: Option<&Timestamp>,
    hold: Option<&ObjectLockLegalHoldStatus>,
) -> S3Result<Option<LockRequest>> {
    let retention = match (mode, until) {
        (None, None) => None,
        (Some(m), Some(t)) => {
            let until_ns = ns_of(t);
            if until_ns <= engine::meta::now_ns() {
                return Err(s3_error!(
                    InvalidArgument,
                    "The retain until date must be in the future"
                ));
            }
            Some(Retention {
                mode: mode_from(m.as_str())?,
                until_ns,
            })
        }
        _ => {
            return Err(s3_error!(
            InvalidArgument,
            "x-amz-object-lock-mode and x-amz-object-lock-retain-until-date must both be supplied"
        ))
        }
    };
    let legal_hold = hold.map(|h| hold_from(h.as_str())).transpose()?;
    Ok(
        (retention.is_some() || legal_hold.is_some()).then_some(LockRequest {
            retention,
            legal_hold: legal_hold.unwrap_or(false),
        }),
    )
}

/// The lock of a version as GET and HEAD show it: mode, retain-until date, legal hold.
pub(super) fn lock_headers(
    m: &ObjectMeta,
) -> (
    Option<ObjectLockMode>,
    Option<Timestamp>,
    Option<ObjectLockLegalHoldStatus>,
) {
    (
        m.retention
            .map(|r| ObjectLockMode::from_static(mode_name(r.mode))),
        m.retention.map(|r| ts(r.until_ns)),
        m.legal_hold
            .then(|| ObjectLockLegalHoldStatus::from_static(ObjectLockLegalHoldStatus::ON)),
    )
}

pub(super) async fn put_object_lock_configuration(
    s: &Store,
    i: PutObjectLockConfigurationInput,
) -> S3Result<PutObjectLockConfigurationOutput> {
    let c = i.object_lock_configuration.unwrap_or_default();
    if c.object_lock_enabled.as_ref().map(|e| e.as_str()) != Some(ObjectLockEnabled::ENABLED) {
        return Err(s3_error!(MalformedXML, "ObjectLockEnabled must be Enabled"));
    }
    let default = match c.rule.and_then(|r| r.default_retention) {
        None => None,
        Some(d) => {
            let mode = mode_from(d.mode.as_ref().map(|m| m.as_str()).unwrap_or(""))?;
            let days = match (d.days, d.years) {
                (Some(n), None) => n as i64,
                (None, Some(y)) => (y as i64).saturating_mul(365),
                _ => {
                    return Err(s3_error!(
                        MalformedXML,
                        "A default retention takes Days or Years, one of them"
                    ))
                }
            };
            // Negative or too large: the engine's error for a period of no days.
            let days =
                u32::try_from(days).map_err(|_| s3_err(engine::Error::InvalidRetentionPeriod))?;
            Some(EngineDefault { mode, days })
        }
    };
    s.engine
        .set_object_lock(&i.bucket, default)
        .await
        .map_err(s3_err)?;
    Ok(PutObjectLockConfigurationOutput::default())
}

pub(super) async fn get_object_lock_configuration(
    s: &Store,
    i: GetObjectLockConfigurationInput,
) -> S3Result<GetObjectLockConfigurationOutput> {
    let Some(c) = s.engine.object_lock(&i.bucket).map_err(s3_err)? else {
        return Err(S3Error::with_message(
            S3ErrorCode::ObjectLockConfigurationNotFoundError,
            format!(
                "Object Lock configuration does not exist for the bucket {}",
                i.bucket
            ),
        ));
    };
    let rule = c.default_retention.map(|d| ObjectLockRule {
        default_retention: Some(DefaultRetention {
            days: Some(d.days as i32),
            mode: Some(ObjectLockRetentionMode::from_static(mode_name(d.mode))),
            years: None,
        }),
    });
    Ok(GetObjectLockConfigurationOutput {
        object_lock_configuration: Some(ObjectLockConfiguration {
            object_lock_enabled: Some(ObjectLockEnabled::from_static(ObjectLockEnabled::ENABLED)),
            rule,
        }),
    })
}

pub(super) async fn put_object_retention(
    s: &Store,
    i: PutObjectRetentionInput,
) -> S3Result<PutObjectRetentionOutput> {
    let sel = version_sel(&i.version_id)?;
    let retention = match i.retention {
        None => None,
        Some(r) => match (r.mode, r.retain_until_date) {
            (None, None) => None,
            (Some(m), Some(t)) => Some(Retention {
                mode: mode_from(m.as_str())?,
                until_ns: ns_of(&t),
            }),
            _ => {
                return Err(s3_error!(
                    MalformedXML,
                    "A retention needs both Mode and RetainUntilDate"
                ))
            }
        },
    };
    let bypass = i.bypass_governance_retention.unwrap_or(false);
    s.engine
        .set_retention(&i.bucket, &i.key, sel, retention, bypass)
        .await
        .map_err(s3_err)?;
    Ok(PutObjectRetentionOutput::default())
}

pub(super) async fn get_object_retention(
    s: &Store,
    i: GetObjectRetentionInput,
) -> S3Result<GetObjectRetentionOutput> {
    let m = locked_version(s, &i.bucket, &i.key, &i.version_id)?;
    let Some(r) = m.retention else {
        let mut e = S3Error::with_message(
            S3ErrorCode::Custom("NoSuchObjectLockConfiguration".into()),
            "The specified object does not have a ObjectLock configuration",
        );
        e.set_status_code(http::StatusCode::NOT_FOUND);
        return Err(e);
    };
    Ok(GetObjectRetentionOutput {
        retention: Some(ObjectLockRetention {
            mode: Some(ObjectLockRetentionMode::from_static(mode_name(r.mode))),
            retain_until_date: Some(ts(r.until_ns)),
        }),
    })
}

pub(super) async fn put_object_legal_hold(
    s: &Store,
    i: PutObjectLegalHoldInput,
) -> S3Result<PutObjectLegalHoldOutput> {
    let sel = version_sel(&i.version_id)?;
    let status = i
        .legal_hold
        .and_then(|h| h.status)
        .ok_or_else(|| s3_error!(MalformedXML, "LegalHold needs a Status"))?;
    let on = hold_from(status.as_str())?;
    s.engine
        .set_legal_hold(&i.bucket, &i.key, sel, on)
        .await
        .map_err(s3_err)?;
    Ok(PutObjectLegalHoldOutput::default())
}

pub(super) async fn get_object_legal_hold(
    s: &Store,
    i: GetObjectLegalHoldInput,
) -> S3Result<GetObjectLegalHoldOutput> {
    let m = locked_version(s, &i.bucket, &i.key, &i.version_id)?;
    let status = if m.legal_hold {
        ObjectLockLegalHoldStatus::ON
    } else {
        ObjectLockLegalHoldStatus::OFF
    };
    Ok(GetObjectLegalHoldOutput {
        legal_hold: Some(ObjectLockLegalHold {
            status: Some(ObjectLockLegalHoldStatus::from_static(status)),
        }),
    })
}

/// The version a GetObjectRetention or GetObjectLegalHold names, in a bucket with object lock
/// (`InvalidRequest` otherwise).
fn locked_version(
    s: &Store,
    bucket: &str,
    key: &str,
    version_id: &Option<String>,
) -> S3Result<ObjectMeta> {
    let sel = version_sel(version_id)?;
    if s.engine.object_lock(bucket).map_err(s3_err)?.is_none() {
        return Err(s3_err(engine::Error::LockNotEnabled));
    }
    s.engine
        .head_object_version(bucket, key, &sel)
        .map_err(s3_err)
}
