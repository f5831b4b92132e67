//! `GET /metrics` in the Prometheus text exposition format (version 0.0.4): per configured stream
//! whether it is up, its last latency, last success and probe counts by outcome; and a few
//! process figures of the web server itself.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::SystemTime;

use crate::fleet::{State, StreamSummary};

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Escapes a label value: backslash, double quote and newline.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The exposition text. `probe_counts` is the store's `(stream_id, outcome, count)`.
pub fn render(streams: &[StreamSummary], probe_counts: &[(i64, String, u64)], started: SystemTime) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "streampulse_stream_up",
        "gauge",
        "1 when the latest probe delivered video and the monitor is current, else 0.",
    );
    for stream in streams {
        let up = matches!(stream.state, State::Up | State::Degraded);
        let _ = writeln!(
            out,
            "streampulse_stream_up{{stream=\"{}\"}} {}",
            label(&stream.name),
            u8::from(up)
        );
    }
    header(
        &mut out,
        "streampulse_stream_stale",
        "gauge",
        "1 when the monitor has not written a heartbeat for this stream for three intervals.",
    );
    for stream in streams {
        let stale = stream.state == State::Stale;
        let _ = writeln!(
            out,
            "streampulse_stream_stale{{stream=\"{}\"}} {}",
            label(&stream.name),
            u8::from(stale)
        );
    }
    header(
        &mut out,
        "streampulse_stream_quiet",
        "gauge",
        "1 while the stream is muted or inside a maintenance window: no notifications are sent for it.",
    );
    for stream in streams {
        let quiet = stream.mute.is_some() || stream.in_maintenance;
        let _ = writeln!(
            out,
            "streampulse_stream_quiet{{stream=\"{}\"}} {}",
            label(&stream.name),
            u8::from(quiet)
        );
    }
    header(
        &mut out,
        "streampulse_stream_latency_seconds",
        "gauge",
        "Time to the first decoded frame in the latest probe that delivered video.",
    );
    for stream in streams {
        let latency = stream.status.as_ref().and_then(|s| s.last_latency_ms);
        if let Some(ms) = latency {
            let _ = writeln!(
                out,
                "streampulse_stream_latency_seconds{{stream=\"{}\"}} {}",
                label(&stream.name),
                ms as f64 / 1000.0
            );
        }
    }
    header(
        &mut out,
        "streampulse_camera_clock_offset_seconds",
        "gauge",
        "The camera's clock minus StreamPulse's NTP-corrected time at the last reading (onvif: streams).",
    );
    for stream in streams {
        if let Some(ms) = stream.camera_clock.as_ref().and_then(|c| c.offset_ms) {
            let _ = writeln!(
                out,
                "streampulse_camera_clock_offset_seconds{{stream=\"{}\"}} {}",
                label(&stream.name),
                ms as f64 / 1000.0
            );
        }
    }
    header(
        &mut out,
        "streampulse_stream_last_success_timestamp_seconds",
        "gauge",
        "Unix time of the latest probe that delivered video.",
    );
    for stream in streams {
        if let Some(ms) = stream.status.as_ref().and_then(|s| s.last_up_ms) {
            let _ = writeln!(
                out,
                "streampulse_stream_last_success_timestamp_seconds{{stream=\"{}\"}} {}",
                label(&stream.name),
                ms as f64 / 1000.0
            );
        }
    }
    header(
        &mut out,
        "streampulse_stream_last_probe_timestamp_seconds",
        "gauge",
        "Unix time of the latest probe, whatever its outcome.",
    );
    for stream in streams {
        if let Some(ms) = stream.status.as_ref().and_then(|s| s.last_ts_ms) {
            let _ = writeln!(
                out,
                "streampulse_stream_last_probe_timestamp_seconds{{stream=\"{}\"}} {}",
                label(&stream.name),
                ms as f64 / 1000.0
            );
        }
    }
    header(
        &mut out,
        "streampulse_probes_total",
        "counter",
        "Probes by outcome: up, degraded, or the reason the stream was down.",
    );
    let names: HashMap<i64, &str> = streams
        .iter()
        .filter_map(|s| Some((s.stream_id()?, s.name.as_str())))
        .collect();
    for (stream_id, outcome, count) in probe_counts {
        if let Some(name) = names.get(stream_id) {
            let _ = writeln!(
                out,
                "streampulse_probes_total{{stream=\"{}\",outcome=\"{}\"}} {count}",
                label(name),
                label(outcome)
            );
        }
    }
    header(
        &mut out,
        "streampulse_streams",
        "gauge",
        "Configured streams by current state.",
    );
    for state in State::ALL {
        let count = streams.iter().filter(|s| s.state == state).count();
        let _ = writeln!(out, "streampulse_streams{{state=\"{}\"}} {count}", state.as_str());
    }
    process_figures(&mut out, started);
    out
}

/// Adds `site="<site>"` to every sample of an exposition text (comments untouched), so one
/// Prometheus can scrape many boxes and tell them apart even without relabelling. A sample that
/// already carries a `site` label keeps its own.
pub fn with_site_label(text: &str, site: &str) -> String {
    let site_label = format!("site=\"{}\"", label(site));
    let mut out = String::with_capacity(text.len() + text.lines().count() * (site_label.len() + 3));
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            out.push_str(line);
        } else {
            match line.find(['{', ' ']) {
                Some(at) if line[at..].starts_with("{}") => {
                    let _ = write!(out, "{}{{{site_label}}}{}", &line[..at], &line[at + 2..]);
                }
                Some(at) if line[at..].starts_with('{') => {
                    if line[at..].starts_with("{site=") || line[at..].contains(",site=\"") {
                        out.push_str(line);
                    } else {
                        let _ = write!(out, "{}{{{site_label},{}", &line[..at], &line[at + 1..]);
                    }
                }
                Some(at) => {
                    let _ = write!(out, "{}{{{site_label}}}{}", &line[..at], &line[at..]);
                }
                None => out.push_str(line),
            }
        }
        out.push('\n');
    }
    out
}

/// Notifications in the outbox by status: `failed` ones gave up after `alerts.retry_attempts`,
/// `pending` ones wait for their receiver (a growing number means one is down).
pub fn render_alerts(counts: &[(String, u64)]) -> String {
    let mut out = String::new();
    header(
        &mut out,
        "streampulse_notifications",
        "gauge",
        "Notifications in the outbox by status (pending, delivered, failed).",
    );
    for status in ["pending", "delivered", "failed"] {
        let count = counts
            .iter()
            .find(|(name, _)| name == status)
            .map_or(0, |(_, count)| *count);
        let _ = writeln!(out, "streampulse_notifications{{status=\"{status}\"}} {count}");
    }
    out
}

/// The standard `process_*` figures, read from `/proc/self` (Linux only; absent elsewhere).
fn process_figures(out: &mut String, started: SystemTime) {
    if let Ok(since_epoch) = started.duration_since(SystemTime::UNIX_EPOCH) {
        header(
            out,
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        );
        let _ = writeln!(out, "process_start_time_seconds {}", since_epoch.as_secs());
    }
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let field = |name: &str| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|value| value.parse::<u64>().ok())
        };
        if let Some(kib) = field("VmRSS:") {
            header(
                out,
                "process_resident_memory_bytes",
                "gauge",
                "Resident memory size in bytes.",
            );
            let _ = writeln!(out, "process_resident_memory_bytes {}", kib * 1024);
        }
        if let Some(threads) = field("Threads:") {
            header(
                out,
                "process_threads",
                "gauge",
                "Number of OS threads in the process.",
            );
            let _ = writeln!(out, "process_threads {threads}");
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
        let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            // USER_HZ is 100 on every Linux configuration in use.
            header(
                out,
                "process_cpu_seconds_total",
                "counter",
                "Total user and system CPU time spent in seconds.",
            );
            let _ = writeln!(
                out,
                "process_cpu_seconds_total {}",
                (user + system) as f64 / 100.0
            );
        }
    }
    if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
        header(
            out,
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
        );
        let _ = writeln!(out, "process_open_fds {}", fds.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn the_site_label_goes_on_every_sample_and_nowhere_else() {
        let text = "# HELP a_total A.\n# TYPE a_total counter\na_total 3\nb{stream=\"Gate\"} 1\nc{} 2\n\
                    d{site=\"own\"} 4\n";
        assert_eq!(
            with_site_label(text, "lab \"2\""),
            "# HELP a_total A.\n# TYPE a_total counter\na_total{site=\"lab \\\"2\\\"\"} 3\n\
             b{site=\"lab \\\"2\\\"\",stream=\"Gate\"} 1\nc{site=\"lab \\\"2\\\"\"} 2\nd{site=\"own\"} 4\n"
        );
    }

    proptest::proptest! {
        /// Whatever the site and stream names, every sample line gets exactly one site label and
        /// keeps its name, other labels and value.
        #[test]
        fn site_labels_never_break_a_sample(site in "\\PC{0,20}", stream in "\\PC{0,20}", value in 0u32..1000) {
            let text = format!("# TYPE x gauge\nx{{stream=\"{}\"}} {value}\ny {value}\n", label(&stream));
            let labelled = with_site_label(&text, &site);
            let lines: Vec<&str> = labelled.lines().collect();
            let expected_x = format!("x{{site=\"{}\",stream=\"{}\"}} {value}", label(&site), label(&stream));
            let expected_y = format!("y{{site=\"{}\"}} {value}", label(&site));
            proptest::prop_assert_eq!(lines, vec!["# TYPE x gauge", expected_x.as_str(), expected_y.as_str()]);
        }
    }

    #[test]
    fn renders_process_figures_and_state_counts() {
        let text = render(&[], &[], SystemTime::now());
        assert!(text.contains("# TYPE streampulse_stream_up gauge"));
        assert!(text.contains("streampulse_streams{state=\"down\"} 0"));
        assert!(text.contains("process_resident_memory_bytes "));
    }
}
