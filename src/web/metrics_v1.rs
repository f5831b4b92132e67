//! StreamPulse v1's metric names, served after the native ones when `metrics.v1_names: true`, so
//! Grafana dashboards and alert rules written for v1 (2.1.1) keep working after an upgrade. Same
//! names, labels and edge values as v1; what each now means is in docs/upgrading-from-v1.md.

use std::fmt::Write;

use crate::fleet::{State, StreamSummary};
use crate::store::Uptime;

/// v1's `SLA_WINDOW_DAYS` default: the window of the `system_*_samples_30d` figures.
pub const SLA_WINDOW_DAYS: i64 = 30;
/// What v1 printed for the age of a stream it had never logged.
const NEVER_SEEN_AGE_SECONDS: i64 = 999_999;

/// Escapes a label value the way v1 did (backslash, double quote, newline).
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} gauge");
}

/// v1 knew two states: a stream whose latest check delivered video is "ok" (up or degraded
/// here); everything else, never checked and stale included, counted as failed.
fn is_ok(stream: &StreamSummary) -> bool {
    matches!(stream.state, State::Up | State::Degraded)
}

/// The v1-named series for the enabled streams. `samples` are the heartbeat counts of the last
/// [`SLA_WINDOW_DAYS`] days, one per stream with heartbeats in that window.
pub fn render<'a>(
    streams: &[StreamSummary],
    samples: impl IntoIterator<Item = &'a Uptime>,
    now_ms: i64,
) -> String {
    // v1 monitored every stream in its table; disabled streams here are not monitored.
    let monitored: Vec<&StreamSummary> = streams.iter().filter(|s| s.enabled).collect();
    let mut out = String::new();
    header(&mut out, "stream_up", "Stream availability (1=up, 0=down)");
    header(
        &mut out,
        "stream_latency_ms",
        "Last measured check latency in milliseconds",
    );
    header(
        &mut out,
        "stream_last_seen_age_seconds",
        "Seconds since last DB log entry for the stream",
    );
    header(
        &mut out,
        "stream_uptime_streak_seconds",
        "Current continuous uptime streak duration (seconds). 0 if currently down.",
    );
    let seconds_since = |ms: i64| ((now_ms - ms) / 1000).max(0);
    for stream in &monitored {
        let name = label(&stream.name);
        let ok = is_ok(stream);
        let status = stream.status.as_ref();
        let latency = status.and_then(|s| s.last_latency_ms).filter(|_| ok).unwrap_or(0);
        let age = status
            .and_then(|s| s.last_ts_ms)
            .map_or(NEVER_SEEN_AGE_SECONDS, seconds_since);
        let streak = status
            .and_then(|s| s.since_ms)
            .filter(|_| ok)
            .map_or(0, seconds_since);
        let _ = writeln!(out, "stream_up{{stream=\"{name}\"}} {}", u8::from(ok));
        let _ = writeln!(out, "stream_latency_ms{{stream=\"{name}\"}} {latency}");
        let _ = writeln!(out, "stream_last_seen_age_seconds{{stream=\"{name}\"}} {age}");
        let _ = writeln!(out, "stream_uptime_streak_seconds{{stream=\"{name}\"}} {streak}");
    }

    let total = monitored.len();
    let ok_count = monitored.iter().filter(|s| is_ok(s)).count();
    header(&mut out, "system_total_streams", "Total streams monitored");
    header(&mut out, "system_ok_streams", "Streams currently up");
    header(&mut out, "system_fail_streams", "Streams currently down");
    header(
        &mut out,
        "system_up",
        "Overall system status (1=all streams up else 0)",
    );
    let _ = writeln!(out, "system_total_streams {total}");
    let _ = writeln!(out, "system_ok_streams {ok_count}");
    let _ = writeln!(out, "system_fail_streams {}", total - ok_count);
    let _ = writeln!(out, "system_up {}", u8::from(total > 0 && ok_count == total));

    let (mut ok_samples, mut all_samples) = (0u64, 0u64);
    for counts in samples {
        ok_samples += counts.up + counts.degraded;
        all_samples += counts.total();
    }
    let days = SLA_WINDOW_DAYS;
    let ratio = if all_samples > 0 {
        ok_samples as f64 / all_samples as f64
    } else {
        0.0
    };
    header(
        &mut out,
        &format!("system_ok_samples_{days}d"),
        "Total OK samples across all streams in window",
    );
    header(
        &mut out,
        &format!("system_total_samples_{days}d"),
        "Total samples across all streams in window",
    );
    header(
        &mut out,
        &format!("system_sla_ratio_{days}d"),
        "Sample-based SLA ratio across all streams (0..1)",
    );
    let _ = writeln!(out, "system_ok_samples_{days}d {ok_samples}");
    let _ = writeln!(out, "system_total_samples_{days}d {all_samples}");
    let _ = writeln!(out, "system_sla_ratio_{days}d {ratio:.6}");
    out
}
