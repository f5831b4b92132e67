//! The monitor watches itself: it tells systemd it is ready and, while its schedule is healthy,
//! pets the unit's watchdog (`WatchdogSec=` with `Type=notify`), so a wedged monitor is killed
//! and restarted instead of silently writing nothing. While healthy it also calls the optional
//! `self_check_url` (healthchecks.io, Uptime Kuma push, ...), so someone hears when the whole
//! box is dead: that service alarms when the calls stop.
//!
//! Healthy means both:
//! * probes complete: at least one probe ended within [`stall_limit`] (twice the slowest
//!   stream's heartbeat plus deadline, plus a margin); a fleet with no enabled stream has
//!   nothing to complete and is healthy;
//! * the store's writer answers: a flush is answered within [`WRITER_ANSWER`] (the writer is one
//!   thread; a wedged SQLite call or a dead thread never answers).
//!
//! Outside systemd (`NOTIFY_SOCKET` unset) the notifications are no-ops.

use super::MonitorStats;
use crate::alert::webhook::{self, Post};
use crate::config::Config;
use crate::store::WriterHandle;
use crate::url::CameraUrl;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often health is judged (and the watchdog petted, unless systemd asks for more often).
const CHECK_INTERVAL: Duration = Duration::from_secs(10);
/// How often `self_check_url` is called while healthy.
pub const SELF_CHECK_INTERVAL: Duration = Duration::from_secs(60);
/// One self-check call's deadline.
const SELF_CHECK_TIMEOUT: Duration = Duration::from_secs(10);
/// The writer must answer a flush within this (SQLite's busy timeout is 5 s).
pub const WRITER_ANSWER: Duration = Duration::from_secs(20);
/// Added to the stall limit: scheduling slack and the first probes after a start.
const STALL_MARGIN: Duration = Duration::from_secs(30);

/// What the watchdog needs of the running config.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct WatchSettings {
    /// No probe completing for this long means the schedule is stuck; `None`: nothing to probe.
    stall_limit: Option<Duration>,
    self_check_url: Option<CameraUrl>,
}

impl WatchSettings {
    pub(super) fn from_config(config: &Config) -> WatchSettings {
        WatchSettings {
            stall_limit: stall_limit(config),
            self_check_url: config.self_check_url.clone(),
        }
    }
}

/// Twice the slowest enabled stream's heartbeat plus deadline, plus [`STALL_MARGIN`].
pub fn stall_limit(config: &Config) -> Option<Duration> {
    config
        .streams
        .iter()
        .filter(|stream| stream.enabled)
        .map(|stream| stream.heartbeat + stream.probe_timeout)
        .max()
        .map(|slowest| slowest * 2 + STALL_MARGIN)
}

/// The running watchdog task.
pub(super) struct Watchdog {
    settings: watch::Sender<WatchSettings>,
    task: JoinHandle<()>,
}

impl Watchdog {
    /// Says READY to systemd and starts judging health.
    pub(super) fn start(settings: WatchSettings, stats: Arc<MonitorStats>, writer: WriterHandle) -> Watchdog {
        notify(&[sd_notify::NotifyState::Ready]);
        let (sender, receiver) = watch::channel(settings);
        let task = tokio::spawn(run(receiver, stats, writer));
        Watchdog {
            settings: sender,
            task,
        }
    }

    pub(super) fn update(&self, settings: WatchSettings) {
        self.settings.send_replace(settings);
    }

    /// Says STOPPING to systemd and ends the task (no pets during the shutdown's flush).
    pub(super) fn stop(self) {
        notify(&[sd_notify::NotifyState::Stopping]);
        self.task.abort();
    }
}

fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(error) = sd_notify::notify(false, states) {
        tracing::warn!("telling systemd failed: {error}");
    }
}

/// Why the monitor is not healthy.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Unhealthy {
    NoProbeCompleted(Duration),
    WriterSilent,
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::NoProbeCompleted(for_how_long) => {
                write!(f, "no probe completed for {} s", for_how_long.as_secs())
            }
            Unhealthy::WriterSilent => write!(
                f,
                "the store writer did not answer within {} s",
                WRITER_ANSWER.as_secs()
            ),
        }
    }
}

async fn run(settings: watch::Receiver<WatchSettings>, stats: Arc<MonitorStats>, writer: WriterHandle) {
    let mut watchdog_usec = 0;
    let pet_interval = if sd_notify::watchdog_enabled(false, &mut watchdog_usec) {
        // systemd's advice: pet at half the timeout.
        CHECK_INTERVAL.min(Duration::from_micros(watchdog_usec) / 2)
    } else {
        CHECK_INTERVAL
    };
    let mut probes_seen = stats.probes.load(Ordering::Relaxed);
    let mut last_completion = Instant::now();
    let mut pending_flush: Option<JoinHandle<bool>> = None;
    let mut last_self_check: Option<Instant> = None;
    let mut was: Result<(), Unhealthy> = Ok(());
    let mut ticker = tokio::time::interval(pet_interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let current = settings.borrow().clone();
        let probes = stats.probes.load(Ordering::Relaxed);
        if probes != probes_seen {
            probes_seen = probes;
            last_completion = Instant::now();
        }
        let writer_answered = writer_answers(&writer, &mut pending_flush).await;
        let health = judge(current.stall_limit, last_completion.elapsed(), writer_answered);
        match (&was, &health) {
            (Ok(()), Err(why)) => {
                tracing::error!("monitor unhealthy: {why}; the systemd watchdog is no longer petted");
                notify(&[sd_notify::NotifyState::Status(&format!("unhealthy: {why}"))]);
            }
            (Err(_), Ok(())) => {
                tracing::info!("monitor healthy again");
                notify(&[sd_notify::NotifyState::Status("healthy")]);
            }
            _ => {}
        }
        was = health.clone();
        if health.is_err() {
            continue;
        }
        notify(&[sd_notify::NotifyState::Watchdog]);
        if let Some(url) = &current.self_check_url {
            if last_self_check.is_none_or(|at| at.elapsed() >= SELF_CHECK_INTERVAL) {
                last_self_check = Some(Instant::now());
                tokio::spawn(self_check(url.clone()));
            }
        }
    }
}

/// Healthy, or why not: `since_completion` is the time since a probe last completed.
fn judge(
    stall_limit: Option<Duration>,
    since_completion: Duration,
    writer_answered: bool,
) -> Result<(), Unhealthy> {
    match stall_limit {
        Some(limit) if since_completion > limit => Err(Unhealthy::NoProbeCompleted(since_completion)),
        _ if !writer_answered => Err(Unhealthy::WriterSilent),
        _ => Ok(()),
    }
}

/// Whether the writer answers a flush in time. A flush still unanswered from an earlier check
/// is waited on again rather than joined by a second one, so a wedged writer costs one thread.
async fn writer_answers(writer: &WriterHandle, pending: &mut Option<JoinHandle<bool>>) -> bool {
    let mut flush = match pending.take() {
        Some(flush) => flush,
        None => {
            let writer = writer.clone();
            tokio::task::spawn_blocking(move || writer.flush().is_ok())
        }
    };
    match tokio::time::timeout(WRITER_ANSWER, &mut flush).await {
        Ok(answered) => answered.unwrap_or(false),
        Err(_) => {
            *pending = Some(flush);
            false
        }
    }
}

/// One GET of `self_check_url`. The URL's path often is the secret (a check's UUID, a push
/// token): only its scheme and host are ever logged.
async fn self_check(url: CameraUrl) {
    let post = Post {
        url: url.expose().to_string(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let shown = match (url.scheme(), url.host_port()) {
        (Some(scheme), Some((host, _))) => format!("{scheme}://{host}/…"),
        _ => "the self-check URL".to_string(),
    };
    match webhook::get(&post, SELF_CHECK_TIMEOUT).await {
        Ok(_) => tracing::debug!("self-check call to {shown} answered"),
        Err(error) => tracing::warn!("self-check call to {shown} failed: {error}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stuck_schedule_or_a_silent_writer_is_unhealthy_an_empty_fleet_is_not() {
        let limit = Some(Duration::from_secs(150));
        assert_eq!(judge(limit, Duration::from_secs(149), true), Ok(()));
        assert_eq!(
            judge(limit, Duration::from_secs(151), true),
            Err(Unhealthy::NoProbeCompleted(Duration::from_secs(151)))
        );
        assert_eq!(
            judge(limit, Duration::from_secs(1), false),
            Err(Unhealthy::WriterSilent)
        );
        // Nothing to probe: only the writer counts.
        assert_eq!(judge(None, Duration::from_secs(86_400), true), Ok(()));
        assert_eq!(
            judge(None, Duration::from_secs(86_400), false),
            Err(Unhealthy::WriterSilent)
        );
    }

    #[test]
    fn reasons_read_as_sentences() {
        assert_eq!(
            Unhealthy::NoProbeCompleted(Duration::from_secs(190)).to_string(),
            "no probe completed for 190 s"
        );
        assert_eq!(
            Unhealthy::WriterSilent.to_string(),
            "the store writer did not answer within 20 s"
        );
    }
}
