//! Supervision of stream tasks: a stream must never go silent because its task died. A task that
//! panics (or ends while it should still run) is reported — a redacted log line, a `down`
//! heartbeat with reason `internal`, a counter — and started again after a backoff.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{stream_loop, write_heartbeat, Shared};
use crate::config::StreamConfig;
use crate::heartbeat::{ProbeOutcome, Reason};
use crate::panics::describe_payload;
use crate::pipeline::TemplateLibrary;

/// The first restart waits this long; each further one in a row doubles it.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// A task that ran this long before dying starts the backoff afresh.
const HEALTHY_RUN: Duration = Duration::from_secs(300);

/// Test-only fault: the stream named `stream` panics at the start of its next `count` probes,
/// with a message that quotes its URL (credentials included), as a careless `unwrap` would.
#[derive(Debug, Clone)]
pub struct PanicInjection {
    stream: String,
    remaining: Arc<AtomicU32>,
}

impl PanicInjection {
    pub fn new(stream: &str, count: u32) -> PanicInjection {
        PanicInjection {
            stream: stream.to_string(),
            remaining: Arc::new(AtomicU32::new(count)),
        }
    }

    /// Panics that are still to come.
    pub fn remaining(&self) -> u32 {
        self.remaining.load(Ordering::Relaxed)
    }

    pub(super) fn maybe_panic(&self, stream: &StreamConfig) {
        if stream.name != self.stream {
            return;
        }
        let take = self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
        if take.is_ok() {
            let url = stream.url.as_ref().map_or("", |url| url.expose());
            panic!("injected test panic while probing {url}");
        }
    }
}

/// Runs a stream's task until `stop`, restarting it whenever it dies.
pub(super) async fn supervise_stream(
    shared: Arc<Shared>,
    stream: Arc<StreamConfig>,
    stream_id: i64,
    library: Arc<TemplateLibrary>,
    stop: watch::Receiver<bool>,
) {
    // Never longer than one heartbeat: a task that keeps dying still shows as a `down` heartbeat
    // on every interval, with its reason, instead of going stale.
    let longest_backoff = stream.heartbeat.max(FIRST_BACKOFF);
    let mut backoff = FIRST_BACKOFF.min(longest_backoff);
    loop {
        let started = Instant::now();
        let task = tokio::spawn(stream_loop(
            Arc::clone(&shared),
            Arc::clone(&stream),
            stream_id,
            Arc::clone(&library),
            stop.clone(),
        ));
        let what = match task.await {
            Ok(()) if *stop.borrow() => return,
            Ok(()) => "ended unexpectedly".to_string(),
            Err(error) if error.is_panic() => {
                format!("panicked: {}", describe_payload(error.into_panic().as_ref()))
            }
            // Cancelled: only the runtime shutting down does that.
            Err(_) => return,
        };
        if started.elapsed() >= HEALTHY_RUN {
            backoff = FIRST_BACKOFF.min(longest_backoff);
        }
        shared.stats.task_restarts.fetch_add(1, Ordering::Relaxed);
        let message = format!(
            "the monitor's task for this stream {what}; restarted in {:.0} s",
            backoff.as_secs_f64().ceil()
        );
        tracing::error!("stream {}: {message}", stream.name);
        let outcome = ProbeOutcome::down(Reason::Internal, message);
        write_heartbeat(&shared, &stream.name, stream_id, shared.clock.now_ms(), outcome);

        let mut stop_wait = stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = stop_wait.wait_for(|stopped| *stopped) => return,
        }
        backoff = (backoff * 2).min(longest_backoff);
    }
}
