//! The fleet as pages and the API show it: the configured streams, matched by name to their
//! status in the store, with freshness, uptime and a latency sparkline.
//!
//! Everything here comes from the small tables (`stream_status`, hourly rollups, the latest few
//! heartbeats per stream through the primary key), never from a scan of raw heartbeats, so the
//! dashboard costs the same with a week or a year of history.

use std::collections::HashMap;

use crate::config::{Config, StreamConfig};
use crate::probe::Health;
use crate::store::{floor_hour, LatencySeries, Store, StoreError, StreamStatus, Uptime, HOUR_MS};
use crate::url::redact_text;

/// A stream whose latest heartbeat is older than this many heartbeat intervals is "stale": the
/// monitor stopped or lags, so its last status cannot be trusted.
pub const STALE_AFTER_HEARTBEATS: u32 = 3;
/// Heartbeats per sparkline.
pub const SPARKLINE_POINTS: usize = 40;
const DAY_MS: i64 = 86_400_000;

/// What a person should believe about a stream right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisplayHealth {
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

impl DisplayHealth {
    pub const ALL: [DisplayHealth; 6] = [
        DisplayHealth::Up,
        DisplayHealth::Degraded,
        DisplayHealth::Down,
        DisplayHealth::Stale,
        DisplayHealth::Unknown,
        DisplayHealth::Disabled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DisplayHealth::Up => "up",
            DisplayHealth::Degraded => "degraded",
            DisplayHealth::Down => "down",
            DisplayHealth::Stale => "stale",
            DisplayHealth::Unknown => "unknown",
            DisplayHealth::Disabled => "disabled",
        }
    }

    pub fn parse(text: &str) -> Option<DisplayHealth> {
        DisplayHealth::ALL
            .into_iter()
            .find(|health| health.as_str() == text)
    }

    /// How it reads on a page.
    pub fn label(self) -> &'static str {
        match self {
            DisplayHealth::Up => "Up",
            DisplayHealth::Degraded => "Degraded",
            DisplayHealth::Down => "Down",
            DisplayHealth::Stale => "Stale",
            DisplayHealth::Unknown => "Not probed yet",
            DisplayHealth::Disabled => "Disabled",
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
    pub health: DisplayHealth,
    /// The store's row, when the stream has one.
    pub status: Option<StreamStatus>,
    /// The latest message, credentials masked.
    pub message: String,
    pub uptime_24h: Option<Uptime>,
    pub uptime_7d: Option<Uptime>,
    pub sparkline: LatencySeries,
}

impl StreamSummary {
    pub fn stream_id(&self) -> Option<i64> {
        self.status.as_ref().map(|status| status.stream_id)
    }
}

/// Counts by display health, for the summary line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub up: usize,
    pub degraded: usize,
    pub down: usize,
    pub stale: usize,
    pub unknown: usize,
    pub disabled: usize,
}

impl Counts {
    pub fn of(streams: &[StreamSummary]) -> Counts {
        let mut counts = Counts::default();
        for stream in streams {
            match stream.health {
                DisplayHealth::Up => counts.up += 1,
                DisplayHealth::Degraded => counts.degraded += 1,
                DisplayHealth::Down => counts.down += 1,
                DisplayHealth::Stale => counts.stale += 1,
                DisplayHealth::Unknown => counts.unknown += 1,
                DisplayHealth::Disabled => counts.disabled += 1,
            }
        }
        counts
    }
}

fn duration_ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The display health of a stream from its config and stored status. A stream the monitor owes
/// heartbeats to (since it took the stream on, or, with no row at all, since the config file
/// last changed: `config_changed_ms`) and has not written one for [`STALE_AFTER_HEARTBEATS`]
/// intervals is stale, never-probed or not: a stream must not sit at "unknown" while nothing
/// probes it.
pub fn display_health(
    stream: &StreamConfig,
    status: Option<&StreamStatus>,
    now_ms: i64,
    config_changed_ms: Option<i64>,
) -> DisplayHealth {
    if !stream.enabled {
        return DisplayHealth::Disabled;
    }
    let stale_after = duration_ms(stream.heartbeat).saturating_mul(i64::from(STALE_AFTER_HEARTBEATS));
    let overdue = |since_ms: i64| now_ms.saturating_sub(since_ms) > stale_after;
    let last = status.and_then(|status| Some((status.health?, status.last_ts_ms?)));
    let Some((health, last_ts_ms)) = last else {
        let owed_since = status
            .and_then(|status| status.monitored_since_ms)
            .or(config_changed_ms);
        return match owed_since {
            Some(since_ms) if overdue(since_ms) => DisplayHealth::Stale,
            _ => DisplayHealth::Unknown,
        };
    };
    if overdue(last_ts_ms) {
        return DisplayHealth::Stale;
    }
    match health {
        Health::Up => DisplayHealth::Up,
        Health::Degraded => DisplayHealth::Degraded,
        Health::Down => DisplayHealth::Down,
    }
}

/// When the config file last changed (Unix ms), for [`display_health`].
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
    let health = display_health(stream, status.as_ref(), now_ms, config_changed_ms);
    StreamSummary {
        name: stream.name.clone(),
        url: stream.url.as_ref().map(|url| url.redacted()),
        enabled: stream.enabled,
        pipeline: stream.pipeline.clone(),
        heartbeat_ms: duration_ms(stream.heartbeat),
        health,
        message: status
            .as_ref()
            .map(|s| redact_text(&s.message))
            .unwrap_or_default(),
        status,
        uptime_24h: None,
        uptime_7d: None,
        sparkline: Vec::new(),
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
        let (from_24h, to) = uptime_window(now_ms, DAY_MS);
        let (from_7d, _) = uptime_window(now_ms, 7 * DAY_MS);
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
        store.recent_latencies_all(now_ms - 3_600_000, SPARKLINE_POINTS)?
    } else {
        HashMap::new()
    };
    let changed_ms = config_changed_ms(config);
    Ok(config
        .streams
        .iter()
        .map(|stream| {
            let mut summary = summarize(stream, statuses.remove(&stream.name), now_ms, changed_ms);
            if let Some(id) = summary.stream_id() {
                summary.uptime_24h = Some(uptime_24h.get(&id).copied().unwrap_or_default());
                summary.uptime_7d = Some(uptime_7d.get(&id).copied().unwrap_or_default());
                summary.sparkline = latencies.remove(&id).unwrap_or_default();
            }
            summary
        })
        .collect())
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
    if let Some(id) = summary.stream_id() {
        let (from_24h, to) = uptime_window(now_ms, DAY_MS);
        let (from_7d, _) = uptime_window(now_ms, 7 * DAY_MS);
        summary.uptime_24h = Some(store.uptime(id, from_24h, to)?);
        summary.uptime_7d = Some(store.uptime(id, from_7d, to)?);
    }
    Ok(Some(summary))
}

/// Share of heartbeats that delivered video, as a percentage with one decimal (`"99.7 %"`), or
/// an em dash without heartbeats.
pub fn percent(uptime: Option<Uptime>) -> String {
    match uptime.and_then(|uptime| uptime.reachable_ratio()) {
        Some(ratio) => format!("{:.1} %", ratio * 100.0),
        None => "—".to_string(),
    }
}

/// `15 s`, `4 min`, `3 h 5 min`, `2 d 4 h`: how long something has lasted.
pub fn human_duration(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    match seconds {
        0..60 => format!("{seconds} s"),
        60..3600 => format!("{} min", seconds / 60),
        3600..86_400 => format!("{} h {} min", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{} d {} h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// RFC 3339 UTC text of a timestamp, for the API.
pub fn iso_utc(ts_ms: i64) -> String {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| ts_ms.to_string())
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
        }
    }

    #[test]
    fn stale_after_three_missed_heartbeats() {
        let config = stream(true);
        let up = status(Health::Up, 0);
        assert_eq!(
            display_health(&config, Some(&up), 45_000, None),
            DisplayHealth::Up
        );
        assert_eq!(
            display_health(&config, Some(&up), 45_001, None),
            DisplayHealth::Stale
        );
        assert_eq!(display_health(&config, None, 0, None), DisplayHealth::Unknown);
        assert_eq!(
            display_health(&stream(false), Some(&up), 0, None),
            DisplayHealth::Disabled
        );
        let down = status(Health::Down, 0);
        assert_eq!(display_health(&config, Some(&down), 1, None), DisplayHealth::Down);
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
            display_health(&config, Some(&never_probed), 145_000, None),
            DisplayHealth::Unknown
        );
        assert_eq!(
            display_health(&config, Some(&never_probed), 145_001, None),
            DisplayHealth::Stale
        );
        // No row at all: the monitor never took the stream on since the config changed.
        assert_eq!(
            display_health(&config, None, 145_000, Some(100_000)),
            DisplayHealth::Unknown
        );
        assert_eq!(
            display_health(&config, None, 145_001, Some(100_000)),
            DisplayHealth::Stale
        );
    }

    #[test]
    fn durations_and_percentages_read_naturally() {
        assert_eq!(human_duration(15_000), "15 s");
        assert_eq!(human_duration(240_000), "4 min");
        assert_eq!(human_duration(3 * 3_600_000 + 300_000), "3 h 5 min");
        assert_eq!(human_duration(2 * DAY_MS + 4 * 3_600_000), "2 d 4 h");
        let uptime = Uptime {
            up: 997,
            degraded: 0,
            down: 3,
        };
        assert_eq!(percent(Some(uptime)), "99.7 %");
        assert_eq!(percent(Some(Uptime::default())), "—");
        assert_eq!(iso_utc(0), "1970-01-01T00:00:00Z");
    }
}
