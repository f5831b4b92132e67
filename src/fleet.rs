//! The one view of the fleet: each configured stream, matched by name to its status in the
//! store, with its [`State`], since when, uptime figures and a latency sparkline. `status`, the
//! pages, the API and `/metrics` all read it, so they give the same answer.
//!
//! Two uptime figures, defined once in [`UptimeFigures`]: `uptime` is the share of heartbeats
//! that delivered video (up or degraded), `healthy` the share that were plainly up.
//!
//! Everything here comes from the small tables (`stream_status`, hourly rollups, the latest few
//! heartbeats per stream through the primary key), never from a scan of raw heartbeats, so the
//! dashboard costs the same with a week or a year of history.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::alert::quiet::Mute;
use crate::clock::{DAY_MS, HOUR_MS};
use crate::config::{Config, StreamConfig};
use crate::heartbeat::Health;
use crate::store::{floor_hour, LatencySeries, Store, StoreError, StreamStatus, Uptime};
use crate::url::redact_text;

/// A stream whose latest heartbeat is older than this many heartbeat intervals is "stale": the
/// monitor stopped or lags, so its last status cannot be trusted.
pub const STALE_AFTER_HEARTBEATS: u32 = 3;
/// Heartbeats per sparkline.
pub const SPARKLINE_POINTS: usize = 40;

/// What a person should believe about a stream right now: its `state` everywhere (`status`,
/// pages, API, metrics). Unlike a probe's [`Health`], it knows about the monitor going quiet,
/// streams never probed and disabled ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Up,
    Degraded,
    Down,
    /// The monitor has not written for a while.
    Stale,
    /// Configured but never probed.
    Unknown,
    /// `enabled: false` in the config.
    Disabled,
}

impl State {
    pub const ALL: [State; 6] = [
        State::Up,
        State::Degraded,
        State::Down,
        State::Stale,
        State::Unknown,
        State::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Stale => "stale",
            State::Unknown => "unknown",
            State::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<State> {
        State::ALL.into_iter().find(|state| state.as_str() == text)
    }

    /// How it reads on a page.
    pub fn label(self) -> &'static str {
        match self {
            State::Up => "Up",
            State::Degraded => "Degraded",
            State::Down => "Down",
            State::Stale => "Stale",
            State::Unknown => "Not probed yet",
            State::Disabled => "Disabled",
        }
    }
}

/// One configured stream with what the store knows about it.
#[derive(Debug, Clone)]
pub struct StreamSummary {
    pub name: String,
    /// The camera URL with its password masked.
    pub url: Option<String>,
    pub enabled: bool,
    pub pipeline: String,
    pub heartbeat_ms: i64,
    pub state: State,
    /// The store's row, when the stream has one.
    pub status: Option<StreamStatus>,
    /// The latest message, credentials masked.
    pub message: String,
    /// Over the last 24 hours and 7 days ([`uptime_window`]); empty without a store row.
    pub last_24h: UptimeFigures,
    pub last_7d: UptimeFigures,
    pub sparkline: LatencySeries,
    /// A change the latest probes show but that is not confirmed yet ("failing 1/2").
    pub confirming: Option<Confirming>,
    /// The mute in force now, if any.
    pub mute: Option<Mute>,
    /// Inside one of its `maintenance:` windows now.
    pub in_maintenance: bool,
    /// What the monitor's probes learned about the camera (`stream_learned`), if anything.
    pub learned: Option<crate::store::learned::LearnedRow>,
    /// The camera's clock as last read (`onvif:` streams only).
    pub camera_clock: Option<crate::store::CameraClock>,
}

/// A change seen in `probes` probes in a row, confirmed at `needed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Confirming {
    pub state: Health,
    pub probes: u32,
    pub needed: u32,
}

impl Confirming {
    /// How a person reads it: `failing 1/2`, `recovering 1/3`, `degrading 1/2`.
    pub fn label(&self) -> String {
        let verb = match self.state {
            Health::Down => "failing",
            Health::Degraded => "degrading",
            Health::Up => "recovering",
        };
        format!("{verb} {}/{}", self.probes, self.needed)
    }
}

/// The uptime figures of one window, each a share (0..1) of the window's heartbeats, `None`
/// without heartbeats. Shown as `uptime_24h`/`healthy_24h` (and `_7d`) by `status --json` and
/// the API. Heartbeats while muted or in maintenance ("quiet") are left out of `uptime` and
/// `healthy` and reported as `quiet`, their share of all the window's heartbeats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct UptimeFigures {
    /// Share of heartbeats that delivered video: up or degraded.
    pub uptime: Option<f64>,
    /// Share of heartbeats that were plainly up.
    pub healthy: Option<f64>,
    /// Share of all heartbeats, quiet ones included, that were muted or in maintenance.
    pub quiet: Option<f64>,
}

impl UptimeFigures {
    pub fn of(counts: Uptime) -> UptimeFigures {
        UptimeFigures {
            uptime: counts.reachable_ratio(),
            healthy: counts.healthy_ratio(),
            quiet: counts.quiet_ratio(),
        }
    }
}

impl StreamSummary {
    pub fn stream_id(&self) -> Option<i64> {
        self.status.as_ref().map(|status| status.stream_id)
    }
}

/// Counts by state, for the summary line of the dashboard and the API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Counts {
    /// Configured streams, whatever their state.
    pub total: usize,
    pub up: usize,
    pub degraded: usize,
    pub down: usize,
    pub stale: usize,
    pub unknown: usize,
    pub disabled: usize,
}

impl Counts {
    pub fn of(streams: &[StreamSummary]) -> Counts {
        let mut counts = Counts {
            total: streams.len(),
            ..Counts::default()
        };
        for stream in streams {
            match stream.state {
                State::Up => counts.up += 1,
                State::Degraded => counts.degraded += 1,
                State::Down => counts.down += 1,
                State::Stale => counts.stale += 1,
                State::Unknown => counts.unknown += 1,
                State::Disabled => counts.disabled += 1,
            }
        }
        counts
    }
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The state of a stream from its config and stored status. A stream the monitor owes
/// heartbeats to (since it took the stream on, or, with no row at all, since the config file
/// last changed: `config_changed_ms`) and has not written one for [`STALE_AFTER_HEARTBEATS`]
/// intervals is stale, never-probed or not: a stream must not sit at "unknown" while nothing
/// probes it.
pub fn state_of(
    stream: &StreamConfig,
    status: Option<&StreamStatus>,
    now_ms: i64,
    config_changed_ms: Option<i64>,
) -> State {
    if !stream.enabled {
        return State::Disabled;
    }
    let stale_after = duration_ms(stream.heartbeat).saturating_mul(i64::from(STALE_AFTER_HEARTBEATS));
    let overdue = |since_ms: i64| now_ms.saturating_sub(since_ms) > stale_after;
    // The confirmed state when the monitor keeps one (`alerts.down_after` ...), else the latest probe's.
    let last = status.and_then(|status| Some((status.confirmed.or(status.health)?, status.last_ts_ms?)));
    let Some((health, last_ts_ms)) = last else {
        let owed_since = status
            .and_then(|status| status.monitored_since_ms)
            .or(config_changed_ms);
        return match owed_since {
            Some(since_ms) if overdue(since_ms) => State::Stale,
            _ => State::Unknown,
        };
    };
    if overdue(last_ts_ms) {
        return State::Stale;
    }
    match health {
        Health::Up => State::Up,
        Health::Degraded => State::Degraded,
        Health::Down => State::Down,
    }
}

/// Whether `stream` is inside one of its (or the top-level) `maintenance:` windows at `ts_ms`.
pub fn in_maintenance(config: &Config, stream: &StreamConfig, ts_ms: i64) -> bool {
    config
        .maintenance
        .iter()
        .chain(&stream.maintenance)
        .any(|window| window.covers(ts_ms, config.timezone))
}

/// When the config file last changed (Unix ms), for [`state_of`].
fn config_changed_ms(config: &Config) -> Option<i64> {
    let modified = std::fs::metadata(&config.path).ok()?.modified().ok()?;
    let since_epoch = modified.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(since_epoch.as_millis()).ok()
}

fn summarize(
    stream: &StreamConfig,
    status: Option<StreamStatus>,
    now_ms: i64,
    config_changed_ms: Option<i64>,
) -> StreamSummary {
    let state = state_of(stream, status.as_ref(), now_ms, config_changed_ms);
    let confirming = status
        .as_ref()
        .and_then(|status| status.pending)
        .filter(|_| matches!(state, State::Up | State::Degraded | State::Down))
        .map(|(health, probes)| Confirming {
            state: health,
            probes,
            needed: stream.alerts.needed(health),
        });
    StreamSummary {
        name: stream.name.clone(),
        url: stream.url.as_ref().map(|url| url.redacted()),
        enabled: stream.enabled,
        pipeline: stream.pipeline.clone(),
        heartbeat_ms: duration_ms(stream.heartbeat),
        state,
        message: status
            .as_ref()
            .map(|s| redact_text(&s.message))
            .unwrap_or_default(),
        status,
        last_24h: UptimeFigures::default(),
        last_7d: UptimeFigures::default(),
        sparkline: Vec::new(),
        confirming,
        mute: None,
        in_maintenance: false,
        learned: None,
        camera_clock: None,
    }
}

/// Every configured stream, in config order, with status, uptimes and (when asked) sparklines.
/// Streams the store knows but the config no longer names are left out.
pub fn load(
    config: &Config,
    store: &Store,
    now_ms: i64,
    sparklines: bool,
) -> Result<Vec<StreamSummary>, StoreError> {
    let uptimes = Uptimes::query(store, now_ms)?;
    load_with(config, store, now_ms, sparklines, &uptimes)
}

/// Uptime of every stream over the 24 h and 7 d windows (see [`uptime_window`]): the costliest
/// part of the dashboard (an aggregate over a week of hourly rollups), and the one that changes
/// slowest, so the web server caches it for a few seconds.
#[derive(Debug, Clone, Default)]
pub struct Uptimes {
    pub day: HashMap<i64, Uptime>,
    pub week: HashMap<i64, Uptime>,
}

impl Uptimes {
    pub fn query(store: &Store, now_ms: i64) -> Result<Uptimes, StoreError> {
        let end_ms = window_end_ms(store, now_ms)?;
        let (from_24h, to) = uptime_window(end_ms, DAY_MS);
        let (from_7d, _) = uptime_window(end_ms, 7 * DAY_MS);
        Ok(Uptimes {
            day: store.uptime_all(from_24h, to)?,
            week: store.uptime_all(from_7d, to)?,
        })
    }
}

/// [`load`] with uptimes computed earlier.
pub fn load_with(
    config: &Config,
    store: &Store,
    now_ms: i64,
    sparklines: bool,
    uptimes: &Uptimes,
) -> Result<Vec<StreamSummary>, StoreError> {
    let mut statuses: HashMap<String, StreamStatus> = store
        .statuses()?
        .into_iter()
        .map(|status| (status.name.clone(), status))
        .collect();
    let (uptime_24h, uptime_7d) = (&uptimes.day, &uptimes.week);
    let mut latencies = if sparklines {
        // An hour back is plenty for 40 points at any sensible heartbeat, and bounds the work
        // for streams whose monitor stopped.
        store.recent_latencies_all(now_ms - HOUR_MS, SPARKLINE_POINTS)?
    } else {
        HashMap::new()
    };
    let changed_ms = config_changed_ms(config);
    let mut mutes = store.active_mutes(now_ms)?;
    let mut learned = store.learned()?;
    let mut clocks = store.camera_clocks()?;
    Ok(config
        .streams
        .iter()
        .map(|stream| {
            let mut summary = summarize(stream, statuses.remove(&stream.name), now_ms, changed_ms);
            summary.in_maintenance = in_maintenance(config, stream, now_ms);
            if let Some(id) = summary.stream_id() {
                summary.mute = mutes.remove(&id);
                summary.learned = learned.remove(&id).and_then(|row| {
                    row.applying(
                        stream.detect_template,
                        stream.transport == crate::config::StreamTransport::Auto,
                    )
                });
                summary.camera_clock = clocks.remove(&id).filter(|_| stream.onvif.is_some());
                summary.last_24h = UptimeFigures::of(uptime_24h.get(&id).copied().unwrap_or_default());
                summary.last_7d = UptimeFigures::of(uptime_7d.get(&id).copied().unwrap_or_default());
                summary.sparkline = latencies.remove(&id).unwrap_or_default();
            }
            summary
        })
        .collect())
}

/// Where the uptime windows end: now, or the newest heartbeat when that is later. Heartbeats carry
/// the monitor's NTP-corrected time, which may run ahead of this machine's clock; they still count.
fn window_end_ms(store: &Store, now_ms: i64) -> Result<i64, StoreError> {
    Ok(store
        .newest_heartbeat_ms()?
        .map_or(now_ms, |newest_ms| newest_ms.max(now_ms)))
}

/// The range "uptime over the last `span_ms`" is counted over: whole hours only, the current
/// (partial) hour included. Whole hours are answered from the hourly rollups alone, never from
/// raw heartbeats, which keeps the dashboard's cost independent of how many heartbeats are stored;
/// the price is a window up to one hour longer than its name.
pub fn uptime_window(now_ms: i64, span_ms: i64) -> (i64, i64) {
    let current_hour = floor_hour(now_ms);
    (current_hour - span_ms, current_hour + HOUR_MS)
}

/// One configured stream by name, or `None` when the config has no such stream.
pub fn load_one(
    config: &Config,
    store: &Store,
    name: &str,
    now_ms: i64,
) -> Result<Option<StreamSummary>, StoreError> {
    let Some(stream) = config.streams.iter().find(|stream| stream.name == name) else {
        return Ok(None);
    };
    let mut summary = summarize(
        stream,
        store.status_by_name(name)?,
        now_ms,
        config_changed_ms(config),
    );
    summary.in_maintenance = in_maintenance(config, stream, now_ms);
    if let Some(id) = summary.stream_id() {
        summary.mute = store.active_mutes(now_ms)?.remove(&id);
        summary.learned = store.learned_for(id)?.and_then(|row| {
            row.applying(
                stream.detect_template,
                stream.transport == crate::config::StreamTransport::Auto,
            )
        });
        summary.camera_clock = store.camera_clock(id)?.filter(|_| stream.onvif.is_some());
        let end_ms = window_end_ms(store, now_ms)?;
        let (from_24h, to) = uptime_window(end_ms, DAY_MS);
        let (from_7d, _) = uptime_window(end_ms, 7 * DAY_MS);
        summary.last_24h = UptimeFigures::of(store.uptime(id, from_24h, to)?);
        summary.last_7d = UptimeFigures::of(store.uptime(id, from_7d, to)?);
    }
    Ok(Some(summary))
}

/// One stream of v1's status answer (`GET /api/status`, and v2.2's MQTT status topic): `ts` in
/// the configured timezone with its offset, `status` `ok` (video: up or degraded) or `fail`,
/// empty strings before the first heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct V1StreamStatus {
    pub ts: String,
    pub status: String,
    pub latency: Option<u64>,
    pub message: String,
}

/// v1's status answer: stream name → its latest heartbeat.
pub type V1Status = std::collections::BTreeMap<String, V1StreamStatus>;

/// v1's status answer for `streams` (the web's `/api/status` and the monitor's MQTT status topic).
pub fn v1_status(config: &Config, streams: &[StreamSummary]) -> V1Status {
    streams
        .iter()
        .map(|summary| {
            let status = summary.status.as_ref();
            let entry = match status.and_then(|s| s.last_ts_ms.zip(s.health)) {
                Some((ts_ms, health)) => V1StreamStatus {
                    ts: crate::clock::iso_local(ts_ms, config.timezone),
                    status: if health == Health::Down { "fail" } else { "ok" }.to_string(),
                    latency: status.and_then(|s| s.last_latency_ms),
                    message: redact_text(&summary.message),
                },
                None => V1StreamStatus {
                    ts: String::new(),
                    status: String::new(),
                    latency: None,
                    message: if summary.state == State::Disabled {
                        "disabled"
                    } else {
                        "no data yet"
                    }
                    .to_string(),
                },
            };
            (summary.name.clone(), entry)
        })
        .collect()
}

/// A share as a percentage with one decimal (`"99.7 %"`), or an em dash without heartbeats.
pub fn percent(ratio: Option<f64>) -> String {
    match ratio {
        Some(ratio) => format!("{:.1} %", ratio * 100.0),
        None => "—".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(enabled: bool) -> StreamConfig {
        let text = format!(
            "streams:\n  - name: Gate\n    url: rtsp://u:p@h/\n    heartbeat_seconds: 15\n    enabled: {enabled}\n"
        );
        match crate::config::parse(&text, std::path::Path::new("/tmp/c.yaml")) {
            Ok(config) => config.streams[0].clone(),
            Err(e) => panic!("{e}"),
        }
    }

    fn status(health: Health, last_ts_ms: i64) -> StreamStatus {
        StreamStatus {
            stream_id: 1,
            name: "Gate".into(),
            url_redacted: None,
            health: Some(health),
            since_ms: Some(0),
            last_ts_ms: Some(last_ts_ms),
            last_latency_ms: None,
            reason: None,
            message: String::new(),
            codec: None,
            width: None,
            height: None,
            last_up_ms: None,
            monitored_since_ms: Some(0),
            confirmed: None,
            pending: None,
        }
    }

    #[test]
    fn stale_after_three_missed_heartbeats() {
        let config = stream(true);
        let up = status(Health::Up, 0);
        assert_eq!(state_of(&config, Some(&up), 45_000, None), State::Up);
        assert_eq!(state_of(&config, Some(&up), 45_001, None), State::Stale);
        assert_eq!(state_of(&config, None, 0, None), State::Unknown);
        assert_eq!(state_of(&stream(false), Some(&up), 0, None), State::Disabled);
        let down = status(Health::Down, 0);
        assert_eq!(state_of(&config, Some(&down), 1, None), State::Down);
    }

    #[test]
    fn a_stream_never_probed_goes_stale_once_the_monitor_owes_it_three_heartbeats() {
        let config = stream(true);
        let never_probed = StreamStatus {
            health: None,
            since_ms: None,
            last_ts_ms: None,
            monitored_since_ms: Some(100_000),
            ..status(Health::Up, 0)
        };
        assert_eq!(
            state_of(&config, Some(&never_probed), 145_000, None),
            State::Unknown
        );
        assert_eq!(
            state_of(&config, Some(&never_probed), 145_001, None),
            State::Stale
        );
        // No row at all: the monitor never took the stream on since the config changed.
        assert_eq!(state_of(&config, None, 145_000, Some(100_000)), State::Unknown);
        assert_eq!(state_of(&config, None, 145_001, Some(100_000)), State::Stale);
    }

    #[test]
    fn quiet_heartbeats_are_left_out_of_uptime_and_reported_apart() {
        let figures = UptimeFigures::of(Uptime {
            up: 3,
            degraded: 0,
            down: 1,
            quiet: 4,
        });
        assert_eq!(
            figures,
            UptimeFigures {
                uptime: Some(0.75),
                healthy: Some(0.75),
                quiet: Some(0.5)
            }
        );
    }

    #[test]
    fn percentages_read_naturally() {
        let uptime = Uptime {
            up: 997,
            degraded: 0,
            down: 3,
            quiet: 0,
        };
        assert_eq!(percent(UptimeFigures::of(uptime).uptime), "99.7 %");
        assert_eq!(percent(UptimeFigures::of(Uptime::default()).uptime), "—");
        let degraded = Uptime {
            up: 1,
            degraded: 1,
            down: 2,
            quiet: 0,
        };
        assert_eq!(
            UptimeFigures::of(degraded),
            UptimeFigures {
                uptime: Some(0.5),
                healthy: Some(0.25),
                quiet: Some(0.0)
            }
        );
    }
}
