//! `streampulse status`: one line per stream from the database, times in the configured zone.

use crate::clock::format_local;
use crate::config::{self, Config};
use crate::store::{Store, StreamStatus, Uptime};
use anyhow::Context;
use std::path::PathBuf;

const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Configuration file (for the stream list and the timezone)
    #[arg(long, short, default_value = "config.yaml", env = "STREAMPULSE_CONFIG")]
    pub config: PathBuf,
    /// SQLite database (default: the config's `database`)
    #[arg(long, env = "STREAMPULSE_DB")]
    pub db: Option<PathBuf>,
    /// Print a JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

/// One stream's row, as printed.
#[derive(Debug, serde::Serialize)]
pub struct StatusRow {
    pub name: String,
    /// `up`, `down`, `degraded`, or `unknown` before the first probe.
    pub state: String,
    /// When the current state began, in the configured timezone.
    pub since: Option<String>,
    pub since_ms: Option<i64>,
    pub last_heartbeat_ms: Option<i64>,
    pub latency_ms: Option<u64>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Share of heartbeats that were up (healthy) over the last 24 h (0..1).
    pub uptime_24h: Option<f64>,
    /// Share that delivered video at all (up or degraded) over the last 24 h (0..1).
    pub reachable_24h: Option<f64>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<i32> {
    let config = config::load(&args.config)?;
    let db = args.db.clone().unwrap_or_else(|| config.database.clone());
    let store = Store::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    // Millisecond precision: whole seconds would leave out heartbeats of the current second.
    let now_ms = crate::clock::system_now_ms();
    let rows = rows(&config, &store, now_ms)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(0)
}

pub fn rows(config: &Config, store: &Store, now_ms: i64) -> anyhow::Result<Vec<StatusRow>> {
    let statuses = store.statuses()?;
    // Heartbeats carry the monitor's NTP-corrected time, which may run ahead of this machine's
    // clock: end the window at the newest heartbeat if that is later, so it still counts.
    let newest_ms = statuses
        .iter()
        .filter_map(|s| s.last_ts_ms)
        .max()
        .unwrap_or(now_ms);
    let window_end_ms = now_ms.max(newest_ms);
    let uptimes = store.uptime_all(window_end_ms - DAY_MS, window_end_ms + 1)?;
    let rows = config
        .streams
        .iter()
        .map(|stream| {
            let status = statuses.iter().find(|s| s.name == stream.name);
            row(
                config,
                &stream.name,
                status,
                status.and_then(|s| uptimes.get(&s.stream_id)),
            )
        })
        .collect();
    Ok(rows)
}

fn row(config: &Config, name: &str, status: Option<&StreamStatus>, uptime: Option<&Uptime>) -> StatusRow {
    let health = status.and_then(|s| s.health);
    let down_reason = status.and_then(|s| s.reason);
    StatusRow {
        name: name.to_string(),
        state: health.map_or("unknown", |h| h.as_str()).to_string(),
        since: status
            .and_then(|s| s.since_ms)
            .map(|ms| format_local(ms, config.timezone)),
        since_ms: status.and_then(|s| s.since_ms),
        last_heartbeat_ms: status.and_then(|s| s.last_ts_ms),
        latency_ms: status.and_then(|s| s.last_latency_ms),
        reason: down_reason.map(|r| r.code().to_string()),
        message: down_reason.map(|r| match status.map(|s| s.message.as_str()) {
            Some(m) if !m.is_empty() => format!("{}: {m}", r.describe()),
            _ => r.describe().to_string(),
        }),
        uptime_24h: uptime.and_then(Uptime::healthy_ratio),
        reachable_24h: uptime.and_then(Uptime::reachable_ratio),
    }
}

fn print_table(rows: &[StatusRow]) {
    let name_width = rows
        .iter()
        .map(|r| r.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    for row in rows {
        let mut line = format!("{:<name_width$}  {:<8}", row.name, row.state);
        if let Some(since) = &row.since {
            line.push_str(&format!("  since {since}"));
        }
        if let Some(ms) = row.latency_ms {
            line.push_str(&format!("  {ms} ms"));
        }
        if let Some(ratio) = row.uptime_24h {
            line.push_str(&format!("  24h {:.1}%", ratio * 100.0));
            // Degraded time delivers video but not a healthy picture: show it apart.
            if let Some(reachable) = row.reachable_24h.filter(|r| (r - ratio).abs() > f64::EPSILON) {
                line.push_str(&format!(" ({:.1}% with video)", reachable * 100.0));
            }
        }
        if let Some(message) = &row.message {
            line.push_str(&format!("  — {message}"));
        }
        println!("{line}");
    }
    if rows.is_empty() {
        println!("no streams configured");
    }
}
