//! Pipeline teardown off the probe path. `set_state(Null)` can block (rtspsrc waits for its
//! TEARDOWN answer, a wedged source may wait longer), so finished pipelines are handed to a small,
//! bounded pool of threads and the probe returns at once.

use gstreamer as gst;
use gstreamer::prelude::*;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// Workers kept when nothing is stuck.
const BASE_WORKERS: usize = 2;
/// Hard cap, so a camera that wedges every teardown cannot grow the thread count without end.
const MAX_WORKERS: usize = 8;
/// Queued teardowns per worker before the pool grows.
const BACKLOG_PER_WORKER: usize = 4;
/// A teardown slower than this counts as stuck and earns the pool one more worker.
const STUCK_AFTER: Duration = Duration::from_secs(5);

/// A pipeline to tear down and who waits for it.
struct Job {
    pipeline: gst::Pipeline,
    done: tokio::sync::oneshot::Sender<()>,
}

/// Resolves when the pipeline handed to [`Reaper::dispose`] is torn down. The monitor holds a
/// probe's pool slot until then (bounded), so pipelines waiting for teardown — which keep
/// receiving and decoding video — can never pile up beyond the pool size.
pub struct TeardownDone(tokio::sync::oneshot::Receiver<()>);

impl TeardownDone {
    /// Waits for the teardown, at most `limit`. False when it took longer (it goes on anyway).
    pub async fn wait(self, limit: Duration) -> bool {
        matches!(tokio::time::timeout(limit, self.0).await, Ok(Ok(())))
    }
}

struct Shared {
    queue: Mutex<mpsc::Receiver<Job>>,
    disposed: AtomicU64,
    workers: AtomicUsize,
    busy_since_ms: Mutex<Vec<Option<Instant>>>,
    torn_down: AtomicU64,
    slow_teardowns: AtomicU64,
}

/// Hands pipelines to teardown threads. Cheap to clone.
#[derive(Clone)]
pub struct Reaper {
    sender: mpsc::Sender<Job>,
    shared: Arc<Shared>,
}

impl Default for Reaper {
    fn default() -> Self {
        Self::new()
    }
}

impl Reaper {
    pub fn new() -> Reaper {
        let (sender, receiver) = mpsc::channel();
        let shared = Arc::new(Shared {
            queue: Mutex::new(receiver),
            workers: AtomicUsize::new(0),
            disposed: AtomicU64::new(0),
            busy_since_ms: Mutex::new(Vec::new()),
            torn_down: AtomicU64::new(0),
            slow_teardowns: AtomicU64::new(0),
        });
        let reaper = Reaper { sender, shared };
        for _ in 0..BASE_WORKERS {
            reaper.spawn_worker();
        }
        reaper
    }

    /// Queues a pipeline for `set_state(Null)` and drop. Never blocks.
    pub fn dispose(&self, pipeline: gst::Pipeline) -> TeardownDone {
        let (done, waiter) = tokio::sync::oneshot::channel();
        let queued = self.shared.disposed.fetch_add(1, Ordering::Relaxed) + 1;
        let backlog = queued.saturating_sub(self.torn_down()) as usize;
        let workers = self.shared.workers.load(Ordering::Relaxed).max(1);
        // One more worker when every worker is stuck, or when the queue outgrows them.
        if self.all_workers_stuck() || backlog > workers * BACKLOG_PER_WORKER {
            self.spawn_worker();
        }
        if let Err(mpsc::SendError(job)) = self.sender.send(Job { pipeline, done }) {
            // All workers gone (only at process exit): tear down here rather than leak.
            let _ = job.pipeline.set_state(gst::State::Null);
            self.shared.torn_down.fetch_add(1, Ordering::Relaxed);
            let _ = job.done.send(());
        }
        TeardownDone(waiter)
    }

    /// Pipelines handed over and not yet torn down.
    pub fn pending(&self) -> u64 {
        self.shared
            .disposed
            .load(Ordering::Relaxed)
            .saturating_sub(self.torn_down())
    }

    /// Pipelines fully torn down so far.
    pub fn torn_down(&self) -> u64 {
        self.shared.torn_down.load(Ordering::Relaxed)
    }

    /// Teardowns that took longer than the stuck threshold.
    pub fn slow_teardowns(&self) -> u64 {
        self.shared.slow_teardowns.load(Ordering::Relaxed)
    }

    /// Waits until every queued pipeline is torn down, or the timeout passes.
    pub fn drain(&self, timeout: Duration, queued_before: u64) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.torn_down() >= queued_before {
                return true;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    fn all_workers_stuck(&self) -> bool {
        let Ok(busy) = self.shared.busy_since_ms.lock() else {
            return false;
        };
        !busy.is_empty()
            && busy
                .iter()
                .all(|since| since.is_some_and(|t| t.elapsed() > STUCK_AFTER))
    }

    fn spawn_worker(&self) {
        let shared = Arc::clone(&self.shared);
        let slot = {
            let Ok(mut busy) = shared.busy_since_ms.lock() else {
                return;
            };
            if busy.len() >= MAX_WORKERS {
                return;
            }
            busy.push(None);
            busy.len() - 1
        };
        shared.workers.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("sp-teardown-{slot}"))
            .spawn(move || loop {
                let next = match shared.queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok(Job { pipeline, done }) = next else { return };
                let started = Instant::now();
                set_busy(&shared, slot, Some(started));
                let _ = pipeline.set_state(gst::State::Null);
                drop(pipeline);
                let _ = done.send(());
                set_busy(&shared, slot, None);
                if started.elapsed() > STUCK_AFTER {
                    shared.slow_teardowns.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(
                        ms = started.elapsed().as_millis() as u64,
                        "slow pipeline teardown"
                    );
                }
                shared.torn_down.fetch_add(1, Ordering::Relaxed);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a teardown thread: {e}");
        }
    }
}

fn set_busy(shared: &Shared, slot: usize, value: Option<Instant>) {
    if let Ok(mut busy) = shared.busy_since_ms.lock() {
        if let Some(entry) = busy.get_mut(slot) {
            *entry = value;
        }
    }
}
