//! In a cluster, a write must commit the shards it stored within the write limit
//! ([`engine::EngineConfig::write_limit`]), or other nodes' orphan sweeps may take them. A file
//! can stay open for writing far longer (a recording, a log); so a thread of the mount visits
//! the open files now and then and has each pin the chunks that have waited a quarter of the
//! limit ([`OpenFile::pin_waiting`]): recorded and held by the file's draft, its contents
//! unchanged until its own commit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::Registry;

/// The visiting thread; stops when dropped.
pub(super) struct Pinner {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// When chunks waiting for a commit are pinned, and how often the open files are visited,
/// for a write limit of `limit`.
pub(super) fn schedule(limit: Duration) -> (Duration, Duration) {
    let after = limit / 4;
    let every = (limit / 16).clamp(Duration::from_millis(100), Duration::from_secs(60));
    (after, every)
}

impl Pinner {
    /// Visits the files of `registry` every `every`, pinning chunks that have waited `after`.
    pub(super) fn start(
        registry: Weak<Mutex<Registry>>,
        after: Duration,
        every: Duration,
    ) -> Pinner {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("mountd-pinner".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    let until = Instant::now() + every;
                    while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                        std::thread::sleep(Duration::from_millis(50).min(every));
                    }
                    let Some(reg) = registry.upgrade() else { break };
                    // The registry first, then each file (the lock order), one at a time.
                    let files: Vec<_> = match reg.lock() {
                        Ok(r) => r.files.values().cloned().collect(),
                        Err(_) => break,
                    };
                    drop(reg);
                    for f in files {
                        if let Ok(mut g) = f.lock() {
                            g.pin_waiting(after);
                        }
                    }
                }
            })
            .ok();
        Pinner { stop, thread }
    }
}

impl Drop for Pinner {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
