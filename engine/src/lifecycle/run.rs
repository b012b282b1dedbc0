//! One lifecycle pass: for every bucket with rules, find what they expire — current versions,
//! non-current versions, lone delete markers, stale multipart uploads — and apply it in
//! batches of commits, each action checked again inside its transaction (a version written
//! since the scan is never touched). Rate-limited, interruptible, resumable: the key reached
//! is kept in the `state` table and the next pass starts there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::rules::LifecycleConfig;
use crate::error::Result;
use crate::kv::{Read, Table, Write};
use crate::meta::{now_ns, object_key, ObjectMeta, UploadRecord};
use crate::object::version::{self, sort_id, versions_prefix, VersionSel};
use crate::object::Engine;

/// Keys looked at per read transaction (and actions per commit at most).
const BATCH: usize = 256;

/// How a pass runs.
#[derive(Debug, Clone, Default)]
pub struct LifecycleRun {
    /// Only find what would expire; change nothing.
    pub dry_run: bool,
    /// "Now" for the rules (ns since the epoch; `None`: the clock).
    pub now_ns: Option<i64>,
    /// At most this many actions per second (`None`: no limit).
    pub rate: Option<u64>,
    /// Stops the pass early when set (it resumes where it was next time).
    pub cancel: Option<Arc<AtomicBool>>,
}

/// What a lifecycle action does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionKind {
    /// A current version expired (`Expiration`): deleted, or a delete marker put on it.
    ExpireCurrent,
    /// A non-current version or delete marker deleted (`NoncurrentVersionExpiration`).
    DeleteNoncurrent,
    /// A delete marker with nothing under it removed (`ExpiredObjectDeleteMarker`).
    RemoveMarker,
    /// A multipart upload aborted (`AbortIncompleteMultipartUpload`).
    AbortUpload,
}

/// One action of a pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// What it does.
    pub kind: ActionKind,
    /// The bucket.
    pub bucket: String,
    /// The key.
    pub key: String,
    /// The version id (`null` for the null version), or the upload id.
    pub id: String,
    /// The rule that asked for it.
    pub rule: String,
    /// Sort id of the version it acts on (checked again at commit).
    sort: [u8; 16],
}

/// What a pass did (or, dry, would do).
#[derive(Debug, Clone, Default)]
pub struct LifecycleReport {
    /// Buckets with rules looked at.
    pub buckets: u64,
    /// Keys looked at.
    pub keys: u64,
    /// The actions, in order.
    pub actions: Vec<Action>,
    /// Actions skipped at commit because the object changed since the scan.
    pub skipped: u64,
    /// Whether the pass went through every bucket (not interrupted).
    pub complete: bool,
}

impl LifecycleReport {
    /// How many actions of one kind.
    pub fn count(&self, kind: ActionKind) -> usize {
        self.actions.iter().filter(|a| a.kind == kind).count()
    }
}

/// Running totals of what this engine instance's lifecycle passes did (not dry runs).
#[derive(Debug, Default)]
pub struct Counters {
    passes: AtomicU64,
    actions: [AtomicU64; 4],
    skipped: AtomicU64,
}

/// A snapshot of [`Counters`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LifecycleTotals {
    /// Passes completed or interrupted.
    pub passes: u64,
    /// Actions done, by kind.
    pub actions: Vec<(ActionKind, u64)>,
    /// Actions skipped because the object changed meanwhile.
    pub skipped: u64,
}

const KINDS: [ActionKind; 4] = [
    ActionKind::ExpireCurrent,
    ActionKind::DeleteNoncurrent,
    ActionKind::RemoveMarker,
    ActionKind::AbortUpload,
];

impl ActionKind {
    /// The action's name in logs and metrics.
    pub fn name(&self) -> &'static str {
        match self {
            ActionKind::ExpireCurrent => "expire",
            ActionKind::DeleteNoncurrent => "delete-noncurrent",
            ActionKind::RemoveMarker => "remove-delete-marker",
            ActionKind::AbortUpload => "abort-upload",
        }
    }
}

fn cursor_key(bucket: &str) -> Vec<u8> {
    format!("lifecycle/{bucket}").into_bytes()
}

impl Engine {
    /// What this instance's lifecycle passes have done since it was opened.
    pub fn lifecycle_totals(&self) -> LifecycleTotals {
        let c = &self.inner.lifecycle;
        LifecycleTotals {
            passes: c.passes.load(Ordering::Relaxed),
            actions: KINDS
                .iter()
                .zip(&c.actions)
                .map(|(k, n)| (k.clone(), n.load(Ordering::Relaxed)))
                .collect(),
            skipped: c.skipped.load(Ordering::Relaxed),
        }
    }

    /// A bucket's lifecycle configuration, or `None`.
    pub fn bucket_lifecycle(&self, bucket: &str) -> Result<Option<LifecycleConfig>> {
        let txn = self.read_settings()?;
        Ok(version::bucket_record(&txn, bucket)?.lifecycle)
    }

    /// Sets (`Some`, validated) or removes a bucket's lifecycle configuration.
    pub async fn set_bucket_lifecycle(
        &self,
        bucket: &str,
        config: Option<LifecycleConfig>,
    ) -> Result<()> {
        if let Some(c) = &config {
            c.validate()?;
        }
        let cursor = cursor_key(bucket);
        self.update_bucket(bucket, move |rec, txn| {
            rec.lifecycle = config.clone();
            txn.delete(Table::State, &cursor).map(|_| ())
        })
        .await
    }

    /// When the object version `m` (a current one) expires under its bucket's rules, and by
    /// which rule: the earliest of the rules that apply (`x-amz-expiration`).
    pub fn expiration_of(&self, bucket: &str, m: &ObjectMeta) -> Option<(i64, String)> {
        let config = self.bucket_lifecycle(bucket).ok()??;
        let day = self.lifecycle_day_ns();
        config
            .enabled()
            .filter(|r| !m.delete_marker && r.applies_to(&m.key, &m.attrs.tags, Some(m.size)))
            .filter_map(|r| Some((r.expires_at(m.last_modified_ns, day)?, r.id.clone())))
            .min()
    }

    fn lifecycle_day_ns(&self) -> i64 {
        self.inner.cfg.lifecycle_day.as_nanos().max(1) as i64
    }

    /// Runs one lifecycle pass over every bucket that has rules.
    pub async fn run_lifecycle(&self, run: LifecycleRun) -> Result<LifecycleReport> {
        let mut report = LifecycleReport {
            complete: true,
            ..Default::default()
        };
        let buckets: Vec<(String, LifecycleConfig)> = {
            let txn = self.read()?;
            let mut v = Vec::new();
            for r in txn.all(Table::Buckets)? {
                let (name, rec) = r?;
                let rec: crate::meta::BucketRecord = rmp_serde::from_slice(&rec)?;
                if let Some(c) = rec.lifecycle.filter(|c| c.enabled().next().is_some()) {
                    v.push((String::from_utf8_lossy(&name).into_owned(), c));
                }
            }
            v
        };
        for (bucket, config) in buckets {
            report.buckets += 1;
            if !self
                .lifecycle_bucket(&bucket, &config, &run, &mut report)
                .await?
            {
                report.complete = false;
                break;
            }
        }
        if !run.dry_run {
            self.inner.lifecycle.passes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(report)
    }

    /// One bucket's share of a pass; `false` when cancelled.
    async fn lifecycle_bucket(
        &self,
        bucket: &str,
        config: &LifecycleConfig,
        run: &LifecycleRun,
        report: &mut LifecycleReport,
    ) -> Result<bool> {
        let now = run.now_ns.unwrap_or_else(now_ns);
        let day = self.lifecycle_day_ns();
        let base = object_key(bucket, "");
        let mut after: Option<Vec<u8>> = match run.dry_run {
            true => None,
            false => self
                .read()?
                .get(Table::State, &cursor_key(bucket))?
                .map(|c| c.to_vec()),
        };
        loop {
            if run
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Ok(false);
            }
            let (actions, last) = {
                let txn = self.read()?;
                let from = match &after {
                    Some(a) => std::ops::Bound::Excluded(a.as_slice()),
                    None => std::ops::Bound::Included(base.as_slice()),
                };
                let mut actions = Vec::new();
                let mut last = None;
                let mut n = 0;
                for r in txn.range(Table::Objects, from, std::ops::Bound::Unbounded)? {
                    let (k, v) = r?;
                    if !k.starts_with(&base) || n == BATCH {
                        break;
                    }
                    n += 1;
                    let key = String::from_utf8_lossy(&k[base.len()..]).into_owned();
                    let latest = ObjectMeta::decode(&key, &v)?;
                    plan_key(&txn, bucket, &k, latest, config, now, day, &mut actions)?;
                    last = Some(k.to_vec());
                }
                report.keys += n as u64;
                (actions, last)
            };
            self.apply_lifecycle(actions, run, report).await?;
            match last {
                Some(l) => {
                    if !run.dry_run {
                        let (ck, lv) = (cursor_key(bucket), l.clone());
                        self.commit(move |txn| txn.put(Table::State, &ck, &lv))
                            .await?;
                    }
                    after = Some(l);
                }
                None => break,
            }
        }
        let uploads = plan_uploads(&self.read()?, bucket, config, now, day)?;
        self.apply_lifecycle(uploads, run, report).await?;
        if !run.dry_run {
            let ck = cursor_key(bucket);
            self.commit(move |txn| txn.delete(Table::State, &ck).map(|_| ()))
                .await?;
        }
        Ok(true)
    }

    /// Applies planned actions (or, dry, only records them), rate-limited.
    async fn apply_lifecycle(
        &self,
        actions: Vec<Action>,
        run: &LifecycleRun,
        report: &mut LifecycleReport,
    ) -> Result<()> {
        if actions.is_empty() {
            return Ok(());
        }
        if run.dry_run {
            report.actions.extend(actions);
            return Ok(());
        }
        for batch in actions.chunks(BATCH) {
            let batch = batch.to_vec();
            let n = batch.len();
            let done = self
                .commit(move |txn| {
                    let mut done = Vec::new();
                    for a in &batch {
                        if apply_one(txn, a)? {
                            done.push(a.clone());
                        }
                    }
                    Ok(done)
                })
                .await?;
            report.skipped += (n - done.len()) as u64;
            let c = &self.inner.lifecycle;
            c.skipped
                .fetch_add((n - done.len()) as u64, Ordering::Relaxed);
            for a in &done {
                if let Some(i) = KINDS.iter().position(|k| *k == a.kind) {
                    c.actions[i].fetch_add(1, Ordering::Relaxed);
                }
                tracing::info!(
                    bucket = a.bucket,
                    key = a.key,
                    id = a.id,
                    rule = a.rule,
                    action = ?a.kind,
                    "lifecycle"
                );
            }
            report.actions.extend(done);
            if let Some(rate) = run.rate.filter(|r| *r > 0) {
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
            }
        }
        Ok(())
    }
}

/// Plans the actions for one key: its current version, its non-current versions, a lone
/// delete marker.
#[allow(clippy::too_many_arguments)]
fn plan_key(
    txn: &dyn Read,
    bucket: &str,
    okey: &[u8],
    latest: ObjectMeta,
    config: &LifecycleConfig,
    now: i64,
    day: i64,
    out: &mut Vec<Action>,
) -> Result<()> {
    let key = latest.key.clone();
    let act = |kind, m: &ObjectMeta, rule: &str| Action {
        kind,
        bucket: bucket.to_string(),
        key: key.clone(),
        id: m.version_id().unwrap_or("null").to_string(),
        rule: rule.to_string(),
        sort: sort_id(m),
    };
    let size = |m: &ObjectMeta| (!m.delete_marker).then_some(m.size);
    if !latest.delete_marker {
        let expired = config.enabled().find(|r| {
            r.applies_to(&key, &latest.attrs.tags, Some(latest.size))
                && r.expires_at(latest.last_modified_ns, day)
                    .is_some_and(|at| at <= now)
        });
        if let Some(r) = expired {
            out.push(act(ActionKind::ExpireCurrent, &latest, &r.id));
        }
    }
    let wants_versions = config.enabled().any(|r| {
        r.noncurrent_days.is_some()
            || r.expired_object_delete_marker
            || (latest.delete_marker && r.expiration_days.is_some())
    });
    if !wants_versions {
        return Ok(());
    }
    // Non-current versions, newest first, each with the time it stopped being current (when
    // the version above it was made).
    let mut older = Vec::new();
    let mut above = latest.last_modified_ns;
    for r in txn.prefix(Table::Versions, &versions_prefix(okey))? {
        let (_, v) = r?;
        let m = ObjectMeta::decode(&key, &v)?;
        let since = above;
        above = m.last_modified_ns;
        older.push((m, since));
    }
    let mut removed = 0;
    for rule in config.enabled() {
        let Some(days) = rule.noncurrent_days else {
            continue;
        };
        let keep = rule.newer_noncurrent_versions.unwrap_or(0) as usize;
        let mut newer = 0usize;
        for (m, since) in &older {
            if !rule.applies_to(&key, &m.attrs.tags, size(m)) {
                continue;
            }
            newer += 1;
            let old_enough = now.saturating_sub(*since) >= (days as i64).saturating_mul(day);
            let id = m.version_id().unwrap_or("null");
            let planned = out.iter().any(|a| a.key == key && a.id == id);
            if newer > keep && old_enough && !planned {
                out.push(act(ActionKind::DeleteNoncurrent, m, &rule.id));
                removed += 1;
            }
        }
    }
    // A delete marker left alone (no version under it) goes under ExpiredObjectDeleteMarker,
    // or, as in S3, under an Expiration by days once it is that old.
    if latest.delete_marker && older.len() == removed {
        let age = now.saturating_sub(latest.last_modified_ns);
        let removes = |r: &&super::rules::Rule| {
            r.applies_to(&key, &latest.attrs.tags, None)
                && (r.expired_object_delete_marker
                    || r.expiration_days
                        .is_some_and(|d| age >= (d as i64).saturating_mul(day)))
        };
        if let Some(r) = config.enabled().find(removes) {
            out.push(act(ActionKind::RemoveMarker, &latest, &r.id));
        }
    }
    Ok(())
}

/// Plans the aborts of a bucket's stale multipart uploads.
fn plan_uploads(
    txn: &dyn Read,
    bucket: &str,
    config: &LifecycleConfig,
    now: i64,
    day: i64,
) -> Result<Vec<Action>> {
    let mut out = Vec::new();
    if !config
        .enabled()
        .any(|r| r.abort_incomplete_upload_days.is_some())
    {
        return Ok(out);
    }
    let base = object_key(bucket, "");
    for r in txn.prefix(Table::Uploads, &base)? {
        let (k, v) = r?;
        let rest = &k[base.len()..];
        let Some(split) = rest.iter().rposition(|b| *b == 0) else {
            continue;
        };
        let key = String::from_utf8_lossy(&rest[..split]).into_owned();
        let upload_id = String::from_utf8_lossy(&rest[split + 1..]).into_owned();
        let u: UploadRecord = rmp_serde::from_slice(&v)?;
        let rule = config.enabled().find(|r| {
            r.abort_incomplete_upload_days.is_some_and(|d| {
                now.saturating_sub(u.initiated_ns) >= (d as i64).saturating_mul(day)
            }) && key.starts_with(&r.prefix)
        });
        if let Some(r) = rule {
            out.push(Action {
                kind: ActionKind::AbortUpload,
                bucket: bucket.to_string(),
                key,
                id: upload_id,
                rule: r.id.clone(),
                sort: [0; 16],
            });
        }
    }
    Ok(out)
}

/// Applies one action if what it acts on is still as planned; whether it did.
fn apply_one(txn: &mut dyn Write, a: &Action) -> Result<bool> {
    let okey = object_key(&a.bucket, &a.key);
    if a.kind == ActionKind::AbortUpload {
        let ukey = crate::meta::upload_key(&a.bucket, &a.key, &a.id);
        if txn.get(Table::Uploads, &ukey)?.is_none() {
            return Ok(false);
        }
        crate::object::multipart::drop_upload(txn, &ukey, &a.id)?;
        return Ok(true);
    }
    let Ok(sel) = VersionSel::parse(&a.id) else {
        return Ok(false);
    };
    let found = match version::locate(txn, &a.bucket, &a.key, &okey, &sel) {
        Ok(f) => f,
        Err(_) => return Ok(false),
    };
    let (place, m) = found;
    if sort_id(&m) != a.sort {
        return Ok(false);
    }
    let is_latest = matches!(place, version::Place::Latest);
    match a.kind {
        ActionKind::ExpireCurrent => {
            if !is_latest || m.delete_marker {
                return Ok(false);
            }
            let state = version::bucket_record(txn, &a.bucket)?.versioning;
            let out = version::delete_latest(txn, state, &okey)?;
            version::emit_delete(txn, &a.bucket, &okey, &out, true)?;
        }
        ActionKind::DeleteNoncurrent => {
            if is_latest || m.lock_reason(now_ns(), false).is_some() {
                return Ok(false);
            }
            let out = version::delete_version(txn, &okey, &sel, false)?;
            version::emit_delete(txn, &a.bucket, &okey, &out, true)?;
        }
        ActionKind::RemoveMarker => {
            let alone = txn
                .prefix(Table::Versions, &versions_prefix(&okey))?
                .next()
                .is_none();
            if !is_latest || !m.delete_marker || !alone {
                return Ok(false);
            }
            let out = version::delete_version(txn, &okey, &sel, false)?;
            version::emit_delete(txn, &a.bucket, &okey, &out, true)?;
        }
        ActionKind::AbortUpload => {}
    }
    Ok(true)
}
