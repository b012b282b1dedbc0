//! Background maintenance while the server runs: repairs chunks queued by degraded reads, and
//! scrubs everything on a schedule, rate-limited so requests are not starved.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// When and how fast to work.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// How often the repair queue is looked at.
    pub repair_every: Duration,
    /// Time between full scrubs (0: never).
    pub scrub_every: Duration,
    /// Scrub read rate limit, bytes per second.
    pub scrub_rate: u64,
}

fn last_scrub_file(engine: &engine::Engine) -> PathBuf {
    engine.data_dir().join("last-scrub")
}

fn last_scrub(engine: &engine::Engine) -> Option<SystemTime> {
    let s = std::fs::read_to_string(last_scrub_file(engine)).ok()?;
    let secs: u64 = s.trim().parse().ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

/// Runs until `stop` is set.
pub async fn run(engine: engine::Engine, sched: Schedule, stop: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(sched.repair_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if stop.load(Ordering::Relaxed) {
            return;
        }
        if engine.repair_queue_len().unwrap_or(0) > 0 {
            let r = engine
                .heal(
                    engine::HealOptions {
                        mode: engine::HealMode::Heal,
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
        let due = !sched.scrub_every.is_zero()
            && last_scrub(&engine)
                .and_then(|t| t.elapsed().ok())
                .map(|age| age >= sched.scrub_every)
                .unwrap_or(true);
        if due {
            tracing::info!("scheduled scrub starting");
            let r = engine
                .heal(
                    engine::HealOptions {
                        mode: engine::HealMode::Scrub,
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
                    let _ = engine::private::open_options()
                        .write(true)
                        .create(true)
                        .truncate(true)
                        .open(last_scrub_file(&engine))
                        .and_then(|mut f| {
                            std::io::Write::write_all(&mut f, now.to_string().as_bytes())
                        });
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
    }
}
