//! The background jobs of an open data dir: garbage collection, repair of the chunks that
//! degraded reads queued, the scheduled scrub and lifecycle passes, rate-limited so requests
//! are not starved.
//!
//! Whichever process has the data dir open runs them (s3d, mountd, or both side by side):
//! - GC runs in every process that asks for it; its own cross-process lock keeps collections
//!   apart (see `lock.rs`).
//! - Repair, scrub and lifecycle run in one process at a time: the one holding `data_dir/jobs.lock`
//!   (an exclusive `flock`, released when that process exits). The others look again at every
//!   tick, so when it exits another takes over. A host that runs only mountd heals too.

use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::maintenance::{AutoGc, HealMode, HealOptions};
use crate::object::Engine;

/// When and how fast the jobs run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Time between garbage collections (zero: none).
    pub gc_every: Duration,
    /// Time between looks at the repair queue (and at whether a scrub is due).
    pub repair_every: Duration,
    /// Time between full scrubs (zero: never).
    pub scrub_every: Duration,
    /// Scrub read rate limit, bytes per second (repairs may read four times as fast).
    pub scrub_rate: u64,
    /// Time between lifecycle passes (zero: none).
    pub lifecycle_every: Duration,
    /// Lifecycle actions per second at most.
    pub lifecycle_rate: u64,
}

impl Default for Schedule {
    /// GC every 30 s, the repair queue every 30 s, a scrub weekly at 20 MB/s, lifecycle hourly
    /// at up to 500 actions a second.
    fn default() -> Schedule {
        Schedule {
            gc_every: Duration::from_secs(30),
            repair_every: Duration::from_secs(30),
            scrub_every: Duration::from_secs(168 * 3600),
            scrub_rate: 20_000_000,
            lifecycle_every: Duration::from_secs(3600),
            lifecycle_rate: 500,
        }
    }
}

/// Running background jobs; they stop when this is dropped (or with [`Background::stop`]).
pub struct Background {
    stop: Arc<AtomicBool>,
    holds_lock: Arc<AtomicBool>,
    task: Option<tokio::task::JoinHandle<()>>,
    _gc: Option<AutoGc>,
}

impl Background {
    /// Whether repair and scrub run here (this process holds the jobs lock) rather than in
    /// another process that has the data dir open.
    pub fn runs_jobs(&self) -> bool {
        self.holds_lock.load(Ordering::Relaxed)
    }

    /// Asks the jobs to stop at their next check (a repair or scrub pass in progress stops
    /// early, a scrub resumes where it was next time) and waits until they have.
    pub async fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = &self.task {
            t.abort();
        }
    }
}

impl Engine {
    /// Starts the background jobs on `schedule` (needs a tokio runtime).
    pub fn spawn_background(&self, schedule: Schedule) -> Background {
        let gc = (!schedule.gc_every.is_zero()).then(|| self.spawn_auto_gc(schedule.gc_every));
        let stop = Arc::new(AtomicBool::new(false));
        let holds_lock = Arc::new(AtomicBool::new(false));
        let task = tokio::spawn(repair_and_scrub(
            self.clone(),
            schedule,
            stop.clone(),
            holds_lock.clone(),
        ));
        Background {
            stop,
            holds_lock,
            task: Some(task),
            _gc: gc,
        }
    }
}

fn jobs_lock_file(engine: &Engine) -> PathBuf {
    engine.data_dir().join("jobs.lock")
}

fn last_scrub_file(engine: &Engine) -> PathBuf {
    engine.data_dir().join("last-scrub")
}

fn last_scrub(engine: &Engine) -> Option<SystemTime> {
    let s = std::fs::read_to_string(last_scrub_file(engine)).ok()?;
    let secs: u64 = s.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The jobs lock, when this process can have it now.
fn try_jobs_lock(engine: &Engine) -> Option<File> {
    let f = crate::private::open_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(jobs_lock_file(engine))
        .ok()?;
    f.try_lock().ok()?;
    Some(f)
}

async fn repair_and_scrub(
    engine: Engine,
    sched: Schedule,
    stop: Arc<AtomicBool>,
    holds_lock: Arc<AtomicBool>,
) {
    let mut tick = tokio::time::interval(sched.repair_every.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut lock: Option<File> = None;
    let mut told_waiting = false;
    let mut last_lifecycle: Option<tokio::time::Instant> = None;
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if lock.is_none() {
            lock = try_jobs_lock(&engine);
            match (&lock, told_waiting) {
                (Some(_), _) => tracing::info!("background repair and scrub run in this process"),
                (None, false) => {
                    told_waiting = true;
                    tracing::info!(
                        "background repair and scrub run in another process that has this data dir open"
                    );
                }
                (None, true) => {}
            }
            if lock.is_none() {
                continue;
            }
            holds_lock.store(true, Ordering::Relaxed);
        }
        repair_queued(&engine, &sched, &stop).await;
        scrub_if_due(&engine, &sched, &stop).await;
        let due = !sched.lifecycle_every.is_zero()
            && last_lifecycle.is_none_or(|t| t.elapsed() >= sched.lifecycle_every);
        if due {
            last_lifecycle = Some(tokio::time::Instant::now());
            lifecycle_pass(&engine, &sched, &stop).await;
        }
    }
}

async fn lifecycle_pass(engine: &Engine, sched: &Schedule, stop: &Arc<AtomicBool>) {
    let run = crate::lifecycle::LifecycleRun {
        rate: Some(sched.lifecycle_rate),
        cancel: Some(stop.clone()),
        ..Default::default()
    };
    match engine.run_lifecycle(run).await {
        Ok(r) if r.actions.is_empty() && r.skipped == 0 => {}
        Ok(r) => {
            use crate::lifecycle::ActionKind as K;
            tracing::info!(
                buckets = r.buckets,
                keys = r.keys,
                expired = r.count(K::ExpireCurrent),
                noncurrent_deleted = r.count(K::DeleteNoncurrent),
                markers_removed = r.count(K::RemoveMarker),
                uploads_aborted = r.count(K::AbortUpload),
                skipped = r.skipped,
                complete = r.complete,
                "lifecycle pass"
            );
        }
        Err(e) => tracing::warn!("lifecycle pass failed: {e}"),
    }
}

async fn repair_queued(engine: &Engine, sched: &Schedule, stop: &Arc<AtomicBool>) {
    if engine.repair_queue_len().unwrap_or(0) == 0 {
        return;
    }
    let r = engine
        .heal(
            HealOptions {
                mode: HealMode::Heal,
                rate_limit: Some(sched.scrub_rate.saturating_mul(4)),
                cancel: Some(stop.clone()),
                resume: false,
            },
            Box::new(|_| {}),
        )
        .await;
    match r {
        Ok(r) => tracing::info!(
            repaired = r.shards_repaired,
            unrecoverable = r.unrecoverable.len(),
            "background repair pass"
        ),
        Err(e) => tracing::warn!("background repair failed: {e}"),
    }
}

async fn scrub_if_due(engine: &Engine, sched: &Schedule, stop: &Arc<AtomicBool>) {
    let due = !sched.scrub_every.is_zero()
        && last_scrub(engine)
            .and_then(|t| t.elapsed().ok())
            .is_none_or(|age| age >= sched.scrub_every);
    if !due {
        return;
    }
    tracing::info!("scheduled scrub starting");
    let r = engine
        .heal(
            HealOptions {
                mode: HealMode::Scrub,
                rate_limit: Some(sched.scrub_rate),
                cancel: Some(stop.clone()),
                resume: true,
            },
            Box::new(|_| {}),
        )
        .await;
    match r {
        Ok(r) if r.complete => {
            let now = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let written = crate::fsutil::write_atomic(
                &last_scrub_file(engine),
                now.to_string().as_bytes(),
                false,
            );
            if let Err(e) = written {
                tracing::warn!("cannot record the scrub's time: {e}");
            }
            tracing::info!(
                chunks = r.chunks_checked,
                corrupt = r.shards_corrupt,
                missing = r.shards_missing,
                repaired = r.shards_repaired,
                "scheduled scrub done"
            );
        }
        Ok(_) => tracing::info!("scheduled scrub interrupted; it resumes next time"),
        Err(e) => tracing::warn!("scheduled scrub failed: {e}"),
    }
}
