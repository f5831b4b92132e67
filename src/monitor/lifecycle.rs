//! The monitor's life in named steps, which [`super::Monitor::run`] calls in order: start-up
//! (store writer, clock, probe pool, fleet), a config reload (NTP restart, pool resize, fleet
//! update), pruning old heartbeats, and shutdown with the summary line `make bench` reads.

use super::watchdog::{WatchSettings, Watchdog};
use super::{apply_config, MonitorError, MonitorOptions, MonitorStats, Shared, StreamTask, TEARDOWN_HOLD};
use crate::alert::{mqtt::MqttPublisher, outbox::Delivery, AlertPlan};
use crate::clock::{self, Clock};
use crate::config::{Config, ConfigError};
use crate::probe::Reaper;
use crate::store::{self, WriterOptions};
use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How long start-up waits for the first NTP answer before probing on the system clock.
const FIRST_NTP_WAIT: Duration = Duration::from_secs(2);
/// How often old raw heartbeats are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// The first pruning, this long after start-up.
const FIRST_PRUNE_DELAY: Duration = Duration::from_secs(60);
/// At shutdown, probes in flight get their deadline, their teardown hold and this much more.
const SHUTDOWN_MARGIN: Duration = Duration::from_secs(2);

/// A started monitor: the running config, the fleet of stream tasks and what they share.
pub(super) struct Running {
    config: Config,
    shared: Arc<Shared>,
    fleet: HashMap<String, StreamTask>,
    /// Permits the probe pool was last sized to.
    pool_size: usize,
    ntp: NtpSync,
    writer_thread: std::thread::JoinHandle<()>,
    next_prune: Instant,
    /// Sends the notification outbox (never on the probe path).
    delivery: Delivery,
    /// Tells systemd the monitor is alive while it is, and calls `self_check_url`.
    watchdog: Watchdog,
    /// Publishes over MQTT when `mqtt.enabled` (never on the probe path either).
    mqtt: Option<MqttPublisher>,
    db_path: std::path::PathBuf,
}

impl Running {
    /// Start-up: the store's writer thread, the clock (waiting briefly for a first NTP answer),
    /// the probe pool and one task per enabled stream.
    pub(super) async fn start(
        config: Config,
        options: &MonitorOptions,
        stats: &Arc<MonitorStats>,
    ) -> Result<Running, MonitorError> {
        let db_path = options.db_path.clone().unwrap_or_else(|| config.database.clone());
        // A v1 database at the path is moved aside and imported before the writer opens it.
        let upgrade = {
            let (config, db_path) = (config.clone(), db_path.clone());
            tokio::task::spawn_blocking(move || {
                crate::upgrade::upgrade_in_place(&config, &db_path, clock::system_now_ms())
            })
        };
        upgrade.await.map_err(|_| store::StoreError::WriterStopped)??;
        let (writer, writer_thread) = store::spawn_writer(
            &db_path,
            WriterOptions {
                disk_full_buffer: config.disk_full_buffer,
                ..WriterOptions::default()
            },
        )?;
        // Before the first heartbeat, so every one is judged for the confirmed state.
        writer.set_alert_plan(AlertPlan::from_config(&config))?;
        let delivery = Delivery::start(db_path.clone(), &config.alerts);
        let mqtt = MqttPublisher::reconcile(None, db_path.clone(), &config).await;
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
        let ntp = NtpSync::start(&clock, &config);
        let shared = Arc::new(Shared {
            clock,
            reaper: Reaper::new(),
            probe_slots: Arc::new(Semaphore::new(config.max_concurrent_probes)),
            check_slots: Arc::new(Semaphore::new(super::picture_check_slots(
                config.max_concurrent_probes,
            ))),
            writer,
            stats: Arc::clone(stats),
            panic_injection: options.panic_injection.clone(),
            pictures: std::sync::Mutex::new(super::pictures::PictureSettings {
                config: config.pictures.clone(),
                dir: crate::pictures::PictureDir::beside(&db_path),
            }),
            camera_clocks: super::camera_clock::ClockRecorder::new(db_path.clone()),
        });
        let mut fleet = HashMap::new();
        apply_config(&config, &shared, &mut fleet).await?;
        let watchdog = Watchdog::start(
            WatchSettings::from_config(&config),
            Arc::clone(stats),
            shared.writer.clone(),
        );
        Ok(Running {
            watchdog,
            pool_size: config.max_concurrent_probes,
            config,
            shared,
            fleet,
            ntp,
            writer_thread,
            next_prune: Instant::now() + FIRST_PRUNE_DELAY,
            delivery,
            mqtt,
            db_path,
        })
    }

    /// A changed config file: a valid one replaces the running config (NTP restarted when its
    /// settings changed, the pool resized, the fleet updated); an invalid one is refused and
    /// logged, and the running config kept.
    pub(super) async fn reload(
        &mut self,
        loaded: Result<Config, ConfigError>,
        options: &MonitorOptions,
    ) -> Result<(), MonitorError> {
        let stats = &self.shared.stats;
        let new_config = match loaded {
            Ok(config) => config,
            Err(error) => {
                stats.rejected_reloads.fetch_add(1, Ordering::Relaxed);
                tracing::error!("config change refused, still running the previous one: {error}");
                return Ok(());
            }
        };
        if new_config.ntp_server != self.config.ntp_server
            || new_config.ntp_interval != self.config.ntp_interval
        {
            self.ntp.restart(&self.shared.clock, &new_config);
        }
        resize_pool(
            &self.shared.probe_slots,
            &mut self.pool_size,
            new_config.max_concurrent_probes,
        );
        if new_config.database != self.config.database && options.db_path.is_none() {
            tracing::warn!("the database path changed in the config; it takes effect at the next restart");
        }
        self.shared
            .writer
            .set_alert_plan(AlertPlan::from_config(&new_config))?;
        self.delivery.update(&new_config.alerts);
        self.mqtt = MqttPublisher::reconcile(self.mqtt.take(), self.db_path.clone(), &new_config).await;
        apply_config(&new_config, &self.shared, &mut self.fleet).await?;
        self.watchdog.update(WatchSettings::from_config(&new_config));
        self.config = new_config;
        stats.reloads.fetch_add(1, Ordering::Relaxed);
        tracing::info!("config reloaded: {} stream(s) monitored", self.fleet.len());
        Ok(())
    }

    /// Deletes heartbeats older than the retention, when a pruning is due (off the async workers).
    pub(super) fn prune_when_due(&mut self) {
        if Instant::now() < self.next_prune {
            return;
        }
        self.next_prune = Instant::now() + PRUNE_INTERVAL;
        let Some(retention) = self.config.retention else {
            return;
        };
        let cutoff = self.shared.clock.now_ms() - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        let writer = self.shared.writer.clone();
        tokio::task::spawn_blocking(move || match writer.prune(cutoff) {
            Ok(0) => {}
            Ok(rows) => tracing::info!("pruned {rows} heartbeat(s) older than the retention"),
            Err(e) => tracing::warn!("pruning old heartbeats failed: {e}"),
        });
    }

    /// Stops every stream task, lets probes in flight finish (bounded by the longest probe
    /// deadline), and has the writer write every queued heartbeat.
    pub(super) async fn shutdown(self) {
        tracing::info!("stopping: letting probes in flight finish");
        self.watchdog.stop();
        self.ntp.stop();
        self.delivery.stop().await;
        if let Some(mqtt) = self.mqtt {
            mqtt.stop().await;
        }
        let longest_probe = self
            .fleet
            .values()
            .map(|t| t.config.probe_timeout)
            .max()
            .unwrap_or_default();
        let handles: Vec<JoinHandle<()>> = self
            .fleet
            .into_values()
            .map(|task| {
                let _ = task.stop.send(true);
                task.handle
            })
            .collect();
        let all_done = futures::future::join_all(handles);
        if tokio::time::timeout(longest_probe + TEARDOWN_HOLD + SHUTDOWN_MARGIN, all_done)
            .await
            .is_err()
        {
            tracing::warn!("some probes did not finish in time; their heartbeats are lost");
        }
        let writer = self.shared.writer.clone();
        let writer_thread = self.writer_thread;
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
    }
}

/// One summary line for `make bench` (benches/fleet.rs), which reads it from the log.
pub(super) fn log_summary(stats: &MonitorStats) {
    let mut lags = stats.take_lags_ms();
    lags.sort_unstable();
    let mut holds = stats.take_slot_holds_ms();
    holds.sort_unstable();
    tracing::info!(
        probes = stats.probes.load(Ordering::Relaxed),
        probes_up = stats.probes_up.load(Ordering::Relaxed),
        picture_checks = stats.picture_checks.load(Ordering::Relaxed),
        lag_p50_ms = per_mille(&lags, 500),
        lag_p99_ms = per_mille(&lags, 990),
        lag_max_ms = lags.last().copied().unwrap_or(0),
        slot_hold_p50_ms = per_mille(&holds, 500),
        slot_hold_p99_ms = per_mille(&holds, 990),
        "probe summary"
    );
}

/// The sample at `per_mille` of sorted `samples`; 0 when there are none.
fn per_mille(samples: &[u32], per_mille: usize) -> u32 {
    let index = (samples.len() * per_mille / 1000).min(samples.len().saturating_sub(1));
    samples.get(index).copied().unwrap_or(0)
}

/// The NTP loop keeping the clock's offset fresh.
struct NtpSync {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl NtpSync {
    fn start(clock: &Arc<Clock>, config: &Config) -> NtpSync {
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(clock::run_sync_loop(
            Arc::clone(clock),
            config.ntp_server.clone(),
            config.ntp_interval,
            stop_rx,
        ));
        NtpSync { stop, task }
    }

    /// A new server or interval: the old loop is told to stop (it ends at its next check) and a
    /// new one starts.
    fn restart(&mut self, clock: &Arc<Clock>, config: &Config) {
        let _ = self.stop.send(true);
        *self = NtpSync::start(clock, config);
    }

    fn stop(self) {
        let _ = self.stop.send(true);
        self.task.abort();
    }
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
