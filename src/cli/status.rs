//! `streampulse status`: one line per configured stream from the database, times in the
//! configured zone. It reads the [`fleet`] view, so it gives the same state and uptime figures
//! as the dashboard and the API.

use crate::clock::format_local;
use crate::config;
use crate::fleet::{self, State, StreamSummary};
use crate::heartbeat::Explanation;
use crate::store::Store;
use anyhow::Context;
use std::path::PathBuf;

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
    /// `up`, `degraded`, `down`, `stale` (the monitor stopped writing), `unknown` (not probed
    /// yet) or `disabled`.
    pub state: State,
    /// When the current state began, in the configured timezone.
    pub since: Option<String>,
    pub since_ms: Option<i64>,
    pub last_heartbeat_ms: Option<i64>,
    pub latency_ms: Option<u64>,
    pub reason: Option<String>,
    pub message: Option<String>,
    /// Share of heartbeats that delivered video (up or degraded) over the last 24 h (0..1).
    pub uptime_24h: Option<f64>,
    /// Share of heartbeats that were plainly up over the last 24 h (0..1).
    pub healthy_24h: Option<f64>,
    /// Deprecated alias of `uptime_24h` (same value), kept for one release.
    pub reachable_24h: Option<f64>,
    /// A change seen but not confirmed yet, such as `failing 1/2`.
    pub confirming: Option<String>,
    /// Share of all heartbeats over the last 24 h that were muted or in maintenance (left out
    /// of the two above).
    pub quiet_24h: Option<f64>,
}

pub fn run(args: StatusArgs) -> anyhow::Result<i32> {
    let config = config::load(&args.config)?;
    let db = args.db.clone().unwrap_or_else(|| config.database.clone());
    let store = Store::open_read_only(&db).with_context(|| format!("cannot open {}", db.display()))?;
    // Millisecond precision: whole seconds would leave out heartbeats of the current second.
    let now_ms = crate::clock::system_now_ms();
    let rows: Vec<StatusRow> = fleet::load(&config, &store, now_ms, false)?
        .iter()
        .map(|summary| row(summary, config.timezone))
        .collect();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(&rows);
    }
    Ok(0)
}

fn row(summary: &StreamSummary, tz: &time_tz::Tz) -> StatusRow {
    let status = summary.status.as_ref();
    let since_ms = status.and_then(|s| s.since_ms);
    let reason = status.and_then(|s| s.reason);
    StatusRow {
        name: summary.name.clone(),
        state: summary.state,
        since: since_ms.map(|ms| format_local(ms, tz)),
        since_ms,
        last_heartbeat_ms: status.and_then(|s| s.last_ts_ms),
        latency_ms: status.and_then(|s| s.last_latency_ms),
        reason: reason.map(|r| r.code().to_string()),
        message: reason.map(|r| Explanation::new(Some(r), &summary.message).to_string()),
        uptime_24h: summary.last_24h.uptime,
        healthy_24h: summary.last_24h.healthy,
        reachable_24h: summary.last_24h.uptime,
        confirming: summary.confirming.map(|confirming| confirming.label()),
        quiet_24h: summary.last_24h.quiet,
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
        let mut line = format!("{:<name_width$}  {:<8}", row.name, row.state.as_str());
        if let Some(confirming) = &row.confirming {
            line.push_str(&format!("  ({confirming})"));
        }
        if let Some(since) = &row.since {
            line.push_str(&format!("  since {since}"));
        }
        if let Some(ms) = row.latency_ms {
            line.push_str(&format!("  {ms} ms"));
        }
        if let Some(ratio) = row.uptime_24h {
            line.push_str(&format!("  24h {:.1}%", ratio * 100.0));
            // Degraded time delivers video but not a healthy picture: show it apart.
            if let Some(healthy) = row.healthy_24h.filter(|h| (h - ratio).abs() > f64::EPSILON) {
                line.push_str(&format!(" ({:.1}% healthy)", healthy * 100.0));
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
