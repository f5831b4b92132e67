//! The monitor process: keeps one task per enabled stream on its own cadence, runs probes under a
//! bounded pool, writes each outcome as a heartbeat, logs state changes, and reloads the config
//! file when it changes (refusing an invalid one and keeping the old).

mod schedule;
mod supervise;

pub use schedule::{phase_for, Cadence};
pub use supervise::PanicInjection;

use crate::clock::{self, Clock};
use crate::config::{self, Config, ConfigError, StreamConfig};
use crate::pipeline::TemplateLibrary;
use crate::probe::{probe_with_teardown, Health, ProbeOutcome, ProbeRequest, Reaper};
use crate::store::{self, Heartbeat, StoreError, StreamIdentity, WriterHandle, WriterOptions};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often the config file is checked for changes.
pub const CONFIG_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long start-up waits for the first NTP answer before probing on the system clock.
const FIRST_NTP_WAIT: Duration = Duration::from_secs(2);
/// A probe keeps its pool slot at most this long waiting for its pipeline's teardown.
const TEARDOWN_HOLD: Duration = Duration::from_millis(250);
/// How often old raw heartbeats are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Schedule-lag samples kept for statistics (a ring; old ones are overwritten).
const LAG_SAMPLES_KEPT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct MonitorOptions {
    pub config_path: PathBuf,
    /// Overrides the config's `database`.
    pub db_path: Option<PathBuf>,
    pub config_poll_interval: Duration,
    /// Test-only: makes the named stream's task panic, to show that a dying task is reported and
    /// restarted. Never set by the binary.
    #[doc(hidden)]
    pub panic_injection: Option<PanicInjection>,
}

impl MonitorOptions {
    pub fn new(config_path: impl Into<PathBuf>) -> MonitorOptions {
        MonitorOptions {
            config_path: config_path.into(),
            db_path: None,
            config_poll_interval: CONFIG_POLL_INTERVAL,
            panic_injection: None,
        }
    }
}

/// Counters a benchmark or a test can read while the monitor runs.
#[derive(Debug, Default)]
pub struct MonitorStats {
    pub probes: AtomicU64,
    pub probes_up: AtomicU64,
    pub reloads: AtomicU64,
    pub rejected_reloads: AtomicU64,
    /// Stream tasks that panicked or ended on their own and were restarted.
    pub task_restarts: AtomicU64,
    lag_ms: Mutex<Vec<u32>>,
    lag_next: AtomicU64,
}

impl MonitorStats {
    fn record_lag(&self, lag: Duration) {
        let ms = u32::try_from(lag.as_millis()).unwrap_or(u32::MAX);
        if let Ok(mut lags) = self.lag_ms.lock() {
            if lags.len() < LAG_SAMPLES_KEPT {
                lags.push(ms);
            } else {
                let slot = (self.lag_next.fetch_add(1, Ordering::Relaxed) as usize) % LAG_SAMPLES_KEPT;
                lags[slot] = ms;
            }
        }
    }

    /// Takes the schedule-lag samples (ms between a slot and its probe's start) seen so far.
    pub fn take_lags_ms(&self) -> Vec<u32> {
        self.lag_ms
            .lock()
            .map(|mut lags| std::mem::take(&mut *lags))
            .unwrap_or_default()
    }
}

/// What every stream task shares.
struct Shared {
    clock: Arc<Clock>,
    reaper: Reaper,
    probe_slots: Arc<Semaphore>,
    writer: WriterHandle,
    stats: Arc<MonitorStats>,
    panic_injection: Option<PanicInjection>,
}

struct StreamTask {
    config: StreamConfig,
    stream_id: i64,
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

pub struct Monitor {
    options: MonitorOptions,
    stats: Arc<MonitorStats>,
}

impl Monitor {
    pub fn new(options: MonitorOptions) -> Monitor {
        Monitor {
            options,
            stats: Arc::new(MonitorStats::default()),
        }
    }

    pub fn stats(&self) -> Arc<MonitorStats> {
        Arc::clone(&self.stats)
    }

    /// Runs until `shutdown` turns true, then lets probes in flight finish, writes their
    /// heartbeats and returns.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), MonitorError> {
        let mut config = config::load(&self.options.config_path)?;
        let db_path = self
            .options
            .db_path
            .clone()
            .unwrap_or_else(|| config.database.clone());
        let (writer, writer_thread) = store::spawn_writer(
            &db_path,
            WriterOptions {
                disk_full_buffer: config.disk_full_buffer,
                ..WriterOptions::default()
            },
        )?;
        tracing::info!(
            "monitoring {} stream(s) from {}, heartbeats in {}",
            config.streams.iter().filter(|s| s.enabled).count(),
            config.path.display(),
            db_path.display()
        );

        let clock = Clock::new();
        if let Ok(offset_ms) = clock::query_offset_ms(&config.ntp_server, FIRST_NTP_WAIT).await {
            clock.set_offset(offset_ms);
        }
        let (mut ntp_stop, mut ntp_task) = start_ntp(&clock, &config);

        let shared = Arc::new(Shared {
            clock: Arc::clone(&clock),
            reaper: Reaper::new(),
            probe_slots: Arc::new(Semaphore::new(config.max_concurrent_probes)),
            writer: writer.clone(),
            stats: Arc::clone(&self.stats),
            panic_injection: self.options.panic_injection.clone(),
        });
        let mut pool_size = config.max_concurrent_probes;
        let mut fleet: HashMap<String, StreamTask> = HashMap::new();
        apply_config(&config, &shared, &mut fleet).await?;

        let mut watcher = ConfigWatcher::new(&self.options.config_path);
        let mut next_prune = Instant::now() + Duration::from_secs(60);
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() { break; }
                }
                _ = tokio::time::sleep(self.options.config_poll_interval) => {
                    if let Some(text) = watcher.changed_text() {
                        match config::parse(&text, &self.options.config_path) {
                            Ok(new_config) => {
                                if new_config.ntp_server != config.ntp_server
                                    || new_config.ntp_interval != config.ntp_interval
                                {
                                    let _ = ntp_stop.send(true);
                                    (ntp_stop, ntp_task) = start_ntp(&clock, &new_config);
                                }
                                resize_pool(&shared.probe_slots, &mut pool_size, new_config.max_concurrent_probes);
                                if new_config.database != config.database && self.options.db_path.is_none() {
                                    tracing::warn!("the database path changed in the config; it takes effect at the next restart");
                                }
                                apply_config(&new_config, &shared, &mut fleet).await?;
                                config = new_config;
                                self.stats.reloads.fetch_add(1, Ordering::Relaxed);
                                tracing::info!("config reloaded: {} stream(s) monitored", fleet.len());
                            }
                            Err(error) => {
                                self.stats.rejected_reloads.fetch_add(1, Ordering::Relaxed);
                                tracing::error!("config change refused, still running the previous one: {error}");
                            }
                        }
                    }
                    if Instant::now() >= next_prune {
                        next_prune = Instant::now() + PRUNE_INTERVAL;
                        prune_old(&shared, config.retention);
                    }
                }
            }
        }

        tracing::info!("stopping: letting probes in flight finish");
        let _ = ntp_stop.send(true);
        ntp_task.abort();
        let longest_probe = fleet
            .values()
            .map(|t| t.config.probe_timeout)
            .max()
            .unwrap_or_default();
        let handles: Vec<JoinHandle<()>> = fleet
            .into_values()
            .map(|task| {
                let _ = task.stop.send(true);
                task.handle
            })
            .collect();
        let all_done = futures::future::join_all(handles);
        if tokio::time::timeout(longest_probe + TEARDOWN_HOLD + Duration::from_secs(2), all_done)
            .await
            .is_err()
        {
            tracing::warn!("some probes did not finish in time; their heartbeats are lost");
        }
        let flushed = tokio::task::spawn_blocking(move || {
            let result = writer.shutdown();
            let _ = writer_thread.join();
            result
        })
        .await;
        match flushed {
            Ok(Ok(())) => tracing::info!("all heartbeats written; bye"),
            Ok(Err(e)) => tracing::error!("writing the last heartbeats failed: {e}"),
            Err(e) => tracing::error!("writer shutdown failed: {e}"),
        }
        // One summary line for `make bench` (benches/fleet.rs), which reads it from the log.
        let mut lags = self.stats.take_lags_ms();
        lags.sort_unstable();
        let lag_at = |per_mille: usize| {
            let index = (lags.len() * per_mille / 1000).min(lags.len().saturating_sub(1));
            lags.get(index).copied().unwrap_or(0)
        };
        tracing::info!(
            probes = self.stats.probes.load(Ordering::Relaxed),
            probes_up = self.stats.probes_up.load(Ordering::Relaxed),
            lag_p50_ms = lag_at(500),
            lag_p99_ms = lag_at(990),
            lag_max_ms = lags.last().copied().unwrap_or(0),
            "probe summary"
        );
        Ok(())
    }
}

fn start_ntp(clock: &Arc<Clock>, config: &Config) -> (watch::Sender<bool>, JoinHandle<()>) {
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(clock::run_sync_loop(
        Arc::clone(clock),
        config.ntp_server.clone(),
        config.ntp_interval,
        stop_rx,
    ));
    (stop, task)
}

/// Grows or shrinks the probe pool to `wanted` slots.
fn resize_pool(slots: &Semaphore, current: &mut usize, wanted: usize) {
    if wanted > *current {
        slots.add_permits(wanted - *current);
    } else if wanted < *current {
        // Only free permits can be forgotten; probes in flight keep theirs until they end.
        slots.forget_permits(*current - wanted);
    }
    *current = wanted;
}

fn prune_old(shared: &Arc<Shared>, retention: Option<Duration>) {
    let Some(retention) = retention else { return };
    let cutoff = shared.clock.now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
    let writer = shared.writer.clone();
    tokio::task::spawn_blocking(move || match writer.prune(cutoff) {
        Ok(0) => {}
        Ok(rows) => tracing::info!("pruned {rows} heartbeat(s) older than the retention"),
        Err(e) => tracing::warn!("pruning old heartbeats failed: {e}"),
    });
}

/// How the store recognises each configured stream (by `id:`, name or credential-free URL), in
/// config order: what [`crate::store::Store::resolve_streams`] takes.
pub fn stream_identities(config: &Config) -> Vec<StreamIdentity> {
    config
        .streams
        .iter()
        .map(|s| StreamIdentity {
            config_id: s.id.clone(),
            name: s.name.clone(),
            url_redacted: s.url.as_ref().map(|u| u.redacted()),
            url_fingerprint: s.url.as_ref().map(config::stream_identity_fingerprint),
        })
        .collect()
}

/// Makes the fleet match `config`: new or changed streams get a fresh task, removed or disabled
/// ones are stopped (their probe in flight still finishes and is written).
async fn apply_config(
    config: &Config,
    shared: &Arc<Shared>,
    fleet: &mut HashMap<String, StreamTask>,
) -> Result<(), MonitorError> {
    let identities = stream_identities(config);
    let writer = shared.writer.clone();
    let now_ms = shared.clock.now_ms();
    let ids = tokio::task::spawn_blocking(move || writer.resolve(&identities, now_ms))
        .await
        .map_err(|_| StoreError::WriterStopped)??;

    let library = Arc::new(TemplateLibrary::new(config.pipelines_dir.as_deref()));
    let mut wanted: HashMap<String, (StreamConfig, i64)> = HashMap::new();
    for (stream, id) in config.streams.iter().zip(ids) {
        if stream.enabled {
            wanted.insert(stream.name.clone(), (stream.clone(), id));
        }
    }
    fleet.retain(|name, task| {
        let keep = wanted
            .get(name)
            .is_some_and(|(c, id)| *c == task.config && *id == task.stream_id);
        if !keep {
            let _ = task.stop.send(true);
        }
        keep
    });
    for (name, (stream, stream_id)) in wanted {
        if fleet.contains_key(&name) {
            continue;
        }
        let (stop, stop_rx) = watch::channel(false);
        let handle = tokio::spawn(supervise::supervise_stream(
            Arc::clone(shared),
            stream.clone(),
            stream_id,
            Arc::clone(&library),
            stop_rx,
        ));
        fleet.insert(
            name,
            StreamTask {
                config: stream,
                stream_id,
                stop,
                handle,
            },
        );
    }
    Ok(())
}

/// One stream's life: wait for its slot, take a pool permit, probe, write, repeat. Runs under
/// [`supervise::supervise_stream`], which reports and restarts it if it panics.
async fn stream_loop(
    shared: Arc<Shared>,
    stream: StreamConfig,
    stream_id: i64,
    library: Arc<TemplateLibrary>,
    mut stop: watch::Receiver<bool>,
) {
    let mut request = match ProbeRequest::for_stream(&stream, &library) {
        Ok(request) => request,
        Err(e) => {
            // Validation checked the template; it can still vanish from disk afterwards. Say so
            // on every heartbeat rather than fall silent.
            tracing::error!("stream {}: cannot build its probe: {e}", stream.name);
            let message = crate::url::redact_text(&e.to_string());
            let mut cadence = Cadence::new(&stream.name, stream.heartbeat, Instant::now());
            loop {
                tokio::select! {
                    _ = tokio::time::sleep_until(cadence.next_due()) => {}
                    _ = stop.changed() => return,
                }
                let outcome = ProbeOutcome::down(crate::probe::Reason::Pipeline, message.clone());
                write_heartbeat(&shared, &stream.name, stream_id, shared.clock.now_ms(), outcome);
                cadence.advance(Instant::now());
            }
        }
    };
    let mut cadence = Cadence::new(&stream.name, stream.heartbeat, Instant::now());
    let mut last: Option<Health> = None;
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(cadence.next_due()) => {}
            _ = stop.changed() => return,
        }
        let due = cadence.next_due();
        let permit = tokio::select! {
            permit = Arc::clone(&shared.probe_slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = stop.changed() => return,
        };
        shared
            .stats
            .record_lag(Instant::now().saturating_duration_since(due));
        if let Some(injection) = &shared.panic_injection {
            injection.maybe_panic(&stream);
        }
        let ts_ms = shared.clock.now_ms();
        // Once started, a probe runs to its end even if a stop arrives: its heartbeat is written.
        let (outcome, teardown) = probe_with_teardown(&request, &shared.reaper).await;
        shared.stats.probes.fetch_add(1, Ordering::Relaxed);
        if outcome.is_up() {
            shared.stats.probes_up.fetch_add(1, Ordering::Relaxed);
        }
        log_transition(&stream.name, last, &outcome);
        last = Some(outcome.health);
        // Remembered for the next probe: a camera replaying one stale frame shows up as frozen.
        if let Some(picture) = outcome.picture.clone() {
            request.previous_picture = Some((picture, std::time::Instant::now()));
        }
        write_heartbeat(&shared, &stream.name, stream_id, ts_ms, outcome);
        // The pool slot covers the pipeline's whole life, teardown included, so pipelines still
        // streaming while they wait for teardown never outnumber the pool. A wedged teardown
        // gives the slot back after TEARDOWN_HOLD and finishes on its own.
        if let Some(teardown) = teardown {
            teardown.wait(TEARDOWN_HOLD).await;
        }
        drop(permit);
        if *stop.borrow() {
            return;
        }
        cadence.advance(Instant::now());
    }
}

/// Queues one heartbeat for the writer.
fn write_heartbeat(shared: &Shared, name: &str, stream_id: i64, ts_ms: i64, outcome: ProbeOutcome) {
    let heartbeat = Heartbeat {
        stream_id,
        ts_ms,
        health: outcome.health,
        latency_ms: outcome.latency_ms,
        reason: outcome.reason,
        message: outcome.message,
        codec: outcome.codec,
        width: outcome.width,
        height: outcome.height,
        ntp_synced: shared.clock.is_synced(),
        fps: outcome.fps,
        bitrate_kbps: outcome.bitrate_kbps,
    };
    if let Err(e) = shared.writer.send(heartbeat) {
        tracing::error!("stream {name}: heartbeat not written: {e}");
    }
}

/// One line per state change, not one per failed probe.
fn log_transition(name: &str, previous: Option<Health>, outcome: &ProbeOutcome) {
    if previous == Some(outcome.health) {
        return;
    }
    let detail = describe(outcome);
    match (previous, outcome.health) {
        (None, Health::Up) => tracing::info!("{name}: up ({detail})"),
        (None, health) => tracing::warn!("{name}: {health} ({detail})"),
        (Some(before), Health::Up) => tracing::info!("{name}: {before} → up ({detail})"),
        (Some(before), health) => tracing::warn!("{name}: {before} → {health} ({detail})"),
    }
}

fn describe(outcome: &ProbeOutcome) -> String {
    match outcome.reason {
        Some(reason) if outcome.message.is_empty() => reason.describe().to_string(),
        Some(reason) => format!("{}: {}", reason.describe(), outcome.message),
        None => {
            let mut parts = Vec::new();
            if let Some(codec) = &outcome.codec {
                parts.push(codec.clone());
            }
            if let (Some(w), Some(h)) = (outcome.width, outcome.height) {
                parts.push(format!("{w}x{h}"));
            }
            if let Some(ms) = outcome.latency_ms {
                parts.push(format!("{ms} ms"));
            }
            parts.join(", ")
        }
    }
}

/// Notices when the config file's content changes (polling: works on every filesystem and with
/// editors that replace the file by rename).
struct ConfigWatcher {
    path: PathBuf,
    last_stamp: Option<(std::time::SystemTime, u64)>,
    last_text: Option<String>,
}

impl ConfigWatcher {
    fn new(path: &std::path::Path) -> ConfigWatcher {
        let mut watcher = ConfigWatcher {
            path: path.to_path_buf(),
            last_stamp: None,
            last_text: None,
        };
        watcher.last_stamp = watcher.stamp();
        watcher.last_text = std::fs::read_to_string(path).ok();
        watcher
    }

    fn stamp(&self) -> Option<(std::time::SystemTime, u64)> {
        let meta = std::fs::metadata(&self.path).ok()?;
        Some((meta.modified().ok()?, meta.len()))
    }

    /// The new text when the file changed since the last call.
    fn changed_text(&mut self) -> Option<String> {
        let stamp = self.stamp();
        if stamp == self.last_stamp {
            return None;
        }
        self.last_stamp = stamp;
        let text = std::fs::read_to_string(&self.path).ok()?;
        if self.last_text.as_deref() == Some(text.as_str()) {
            return None;
        }
        self.last_text = Some(text.clone());
        Some(text)
    }
}
