//! The monitor process: keeps one task per enabled stream on its own cadence, runs probes under a
//! bounded pool, writes each outcome as a heartbeat, logs state changes, and reloads the config
//! file when it changes (refusing an invalid one and keeping the old). [`lifecycle`] holds the
//! steps of [`Monitor::run`]: start-up, reload, pruning, shutdown.

mod camera_clock;
mod learned;
mod lifecycle;
mod pictures;
mod schedule;
mod supervise;
pub mod watchdog;

pub use schedule::{phase_for, Cadence};
pub use supervise::PanicInjection;

use crate::clock::Clock;
use crate::config::{self, Config, ConfigError, StreamConfig};
use crate::heartbeat::{Health, Heartbeat, ProbeOutcome, Reason};
use crate::pipeline::TemplateLibrary;
use crate::probe::picture::PictureMemory;
use crate::probe::{probe_with_picture, ProbeRequest, Reaper};
use crate::store::{StoreError, StreamIdentity, WriterHandle};
use lifecycle::Running;
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
/// A probe keeps its pool slot at most this long waiting for its pipeline's teardown.
const TEARDOWN_HOLD: Duration = Duration::from_millis(250);
/// Schedule-lag samples kept for statistics (a ring; old ones are overwritten).
const LAG_SAMPLES_KEPT: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("database: {0}")]
    Store(#[from] StoreError),
    #[error("upgrading the StreamPulse v1 database failed (the v1 file is unchanged; run `streampulse import-v1` on it to finish): {0}")]
    UpgradeV1(#[from] crate::store::import_v1::ImportV1Error),
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
    /// Probes that waited for a clean picture (picture checks).
    pub picture_checks: AtomicU64,
    lags: Samples,
    slot_holds: Samples,
}

/// A ring of millisecond samples.
#[derive(Debug, Default)]
struct Samples {
    ms: Mutex<Vec<u32>>,
    next: AtomicU64,
}

impl Samples {
    fn record(&self, duration: Duration) {
        let ms = u32::try_from(duration.as_millis()).unwrap_or(u32::MAX);
        if let Ok(mut samples) = self.ms.lock() {
            if samples.len() < LAG_SAMPLES_KEPT {
                samples.push(ms);
            } else {
                let slot = (self.next.fetch_add(1, Ordering::Relaxed) as usize) % LAG_SAMPLES_KEPT;
                samples[slot] = ms;
            }
        }
    }

    fn take(&self) -> Vec<u32> {
        self.ms
            .lock()
            .map(|mut samples| std::mem::take(&mut *samples))
            .unwrap_or_default()
    }
}

impl MonitorStats {
    fn record_lag(&self, lag: Duration) {
        self.lags.record(lag);
    }

    /// Takes the schedule-lag samples (ms between a slot and its probe's start) seen so far.
    pub fn take_lags_ms(&self) -> Vec<u32> {
        self.lags.take()
    }

    /// Takes the slot-hold samples (ms from taking a pool slot, i.e. the camera's connection,
    /// to giving it back after teardown) seen so far.
    pub fn take_slot_holds_ms(&self) -> Vec<u32> {
        self.slot_holds.take()
    }
}

/// What every stream task shares.
struct Shared {
    clock: Arc<Clock>,
    reaper: Reaper,
    probe_slots: Arc<Semaphore>,
    /// Picture checks in flight, at most a quarter of the pool (fixed at start): a check holds
    /// its slot up to a keyframe interval, and after a start every stream's check is due at once.
    check_slots: Arc<Semaphore>,
    writer: WriterHandle,
    stats: Arc<MonitorStats>,
    panic_injection: Option<PanicInjection>,
    /// `pictures:` and the folder beside the database; replaced on reload.
    pictures: Mutex<pictures::PictureSettings>,
    /// Where `onvif:` streams' camera clock readings go.
    camera_clocks: camera_clock::ClockRecorder,
}

struct StreamTask {
    /// Shared with the stream's supervisor and task: one copy, not one per future.
    config: Arc<StreamConfig>,
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
    /// heartbeats and returns. Meanwhile it polls the config file and prunes old heartbeats.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), MonitorError> {
        let (mut watcher, config) = config::Watcher::load(&self.options.config_path)?;
        let mut running = Running::start(config, &self.options, &self.stats).await?;
        loop {
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() { break; }
                }
                _ = tokio::time::sleep(self.options.config_poll_interval) => {
                    if let Some(loaded) = watcher.changed() {
                        running.reload(loaded, &self.options).await?;
                    }
                    running.prune_when_due();
                }
            }
        }
        running.shutdown().await;
        lifecycle::log_summary(&self.stats);
        Ok(())
    }
}

/// Picture checks allowed at once for a pool of `pool` probes: a quarter, at least one.
fn picture_check_slots(pool: usize) -> usize {
    (pool / 4).max(1)
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
    prune_pictures(config, shared, &ids).await;

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
            .is_some_and(|(c, id)| *c == *task.config && *id == task.stream_id);
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
        let stream = Arc::new(stream);
        let handle = tokio::spawn(supervise::supervise_stream(
            Arc::clone(shared),
            Arc::clone(&stream),
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

/// Takes the new `pictures:` settings and deletes the kept pictures of streams no longer in the
/// config (their ids are never reused by another camera, but the files would pile up).
async fn prune_pictures(config: &Config, shared: &Shared, ids: &[i64]) {
    let dir = match shared.pictures.lock() {
        Ok(mut settings) => {
            settings.config = config.pictures.clone();
            settings.dir.clone()
        }
        Err(_) => return,
    };
    let keep: std::collections::HashSet<i64> = ids.iter().copied().collect();
    if let Ok(removed @ 1..) = tokio::task::spawn_blocking(move || dir.prune(&keep)).await {
        tracing::info!("removed {removed} picture file(s) of streams no longer configured");
    }
}

/// One stream's life: wait for its slot, take a pool permit, probe, write, repeat. Runs under
/// [`supervise::supervise_stream`], which reports and restarts it if it panics.
async fn stream_loop(
    shared: Arc<Shared>,
    stream: Arc<StreamConfig>,
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
                let outcome = ProbeOutcome::down(Reason::Pipeline, message.clone());
                write_heartbeat(&shared, &stream.name, stream_id, shared.clock.now_ms(), outcome);
                cadence.advance(Instant::now());
            }
        }
    };
    // What earlier runs learned about the camera (template, transport), kept in the store.
    let mut saved_facts = Box::pin(learned::restore(
        &shared,
        stream_id,
        &request.memory,
        stream.detect_template,
    ))
    .await;
    if stream.tls == crate::config::CameraTls::AcceptAny {
        tracing::warn!(
            "stream {}: TLS certificate verification is off (tls: {{verify: false}})",
            stream.name
        );
    }
    let mut cadence = Cadence::new(&stream.name, stream.heartbeat, Instant::now());
    let mut last: Option<Health> = None;
    // Picture checks and sticky verdicts live as long as the task (see `probe::picture`).
    let mut pictures = PictureMemory::default();
    // The last pictures this task wrote (see `pictures`).
    let mut kept = pictures::StreamPictures::default();
    // `onvif:`: the camera's clock, read beside some probes (see `onvif::skew`).
    let mut camera_clock = (stream.onvif.clone())
        .map(|check| crate::onvif::skew::ClockWatch::new(check, stream.heartbeat, stream.probe_timeout));
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
        let slot_taken = Instant::now();
        shared.stats.record_lag(slot_taken.saturating_duration_since(due));
        if let Some(injection) = &shared.panic_injection {
            injection.maybe_panic(&stream);
        }
        let ts_ms = shared.clock.now_ms();
        // A due check without a free check slot waits for a later probe; this one is ordinary.
        let check_permit = pictures
            .check_due(stream.quality.picture_check, std::time::Instant::now())
            .then(|| Arc::clone(&shared.check_slots).try_acquire_owned().ok())
            .flatten();
        request.picture_check = check_permit.is_some();
        request.previous_picture = pictures.previous();
        if request.picture_check {
            shared.stats.picture_checks.fetch_add(1, Ordering::Relaxed);
        }
        // Once started, a probe runs to its end even if a stop arrives: its heartbeat is written.
        let clock_read = async {
            match camera_clock.as_mut() {
                Some(watch) => watch.read_if_due(&stream.name, || shared.clock.now_ms()).await,
                None => None,
            }
        };
        // Boxed, like the other large awaits below: an async fn's state is as large as its
        // largest await, and a task that holds a probe's state in place carries it through every
        // idle heartbeat too (about 7 KB a stream). Boxed, it exists only while the probe runs.
        let ((mut outcome, judged, teardown), clock_result) =
            Box::pin(async { tokio::join!(probe_with_picture(&request, &shared.reaper), clock_read) }).await;
        // With pictures off, the frame goes at once and its summary is not copied.
        let keeping = shared
            .pictures
            .lock()
            .is_ok_and(|settings| settings.config.enabled);
        let judged = judged
            .filter(|_| keeping)
            .and_then(|sample| Some((sample, outcome.picture.clone()?)));
        let own_reason = outcome.reason;
        pictures.absorb(&mut outcome, ts_ms, std::time::Instant::now());
        let reported = judged.as_ref().map(|_| pictures::Reported {
            health: outcome.health,
            reason: outcome.reason,
            message: outcome.message.clone(),
            own_reason,
        });
        if let Some(watch) = &camera_clock {
            watch.apply(&mut outcome);
        }
        shared.stats.probes.fetch_add(1, Ordering::Relaxed);
        if outcome.is_up() {
            shared.stats.probes_up.fetch_add(1, Ordering::Relaxed);
        }
        log_transition(&stream.name, last, &outcome);
        last = Some(outcome.health);
        write_heartbeat(&shared, &stream.name, stream_id, ts_ms, outcome);
        learned::save_if_changed(&shared, stream_id, &request.memory, &mut saved_facts, ts_ms);
        // The pool slot covers the pipeline's whole life, teardown included, so pipelines still
        // streaming while they wait for teardown never outnumber the pool. A wedged teardown
        // gives the slot back after TEARDOWN_HOLD and finishes on its own.
        if let Some(teardown) = teardown {
            teardown.wait(TEARDOWN_HOLD).await;
        }
        drop((permit, check_permit));
        shared.stats.slot_holds.record(slot_taken.elapsed());
        // After the heartbeat and outside the pool: a picture never delays either.
        if let (Some(judged), Some(reported)) = (judged, reported) {
            Box::pin(pictures::keep(
                &shared,
                stream_id,
                &mut kept,
                judged,
                reported,
                ts_ms,
                &stream.quality,
            ))
            .await;
        }
        if let Some(result) = clock_result {
            Box::pin(shared.camera_clocks.record(&stream.name, stream_id, result)).await;
        }
        if *stop.borrow() {
            return;
        }
        cadence.advance(Instant::now());
    }
}

/// Queues one heartbeat for the writer.
fn write_heartbeat(shared: &Shared, name: &str, stream_id: i64, ts_ms: i64, outcome: ProbeOutcome) {
    let heartbeat = Heartbeat::new(stream_id, ts_ms, shared.clock.is_synced(), outcome);
    if let Err(e) = shared.writer.send(heartbeat) {
        tracing::error!("stream {name}: heartbeat not written: {e}");
    }
}

/// One line per state change, not one per failed probe.
fn log_transition(name: &str, previous: Option<Health>, outcome: &ProbeOutcome) {
    if previous == Some(outcome.health) {
        return;
    }
    match (previous, outcome.health) {
        (None, Health::Up) => tracing::info!("{name}: up ({outcome})"),
        (None, health) => tracing::warn!("{name}: {health} ({outcome})"),
        (Some(before), Health::Up) => tracing::info!("{name}: {before} → up ({outcome})"),
        (Some(before), health) => tracing::warn!("{name}: {before} → {health} ({outcome})"),
    }
}
