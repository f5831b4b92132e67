//! `metrics.v1_names: true` serves StreamPulse v1's metric names beside the native ones, with
//! v1's labels and edge values, so dashboards built on v1 keep working (issue 15, section 1).

mod web_support;

use std::collections::HashMap;
use streampulse::heartbeat::Health;
use web_support::*;

/// Every sample line of the exposition text: `name{labels}` → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn config(v1_names: bool) -> String {
    format!(
        "{}web:\n  metrics_public: true\nmetrics:\n  v1_names: {v1_names}\n",
        standard_config()
    )
}

#[tokio::test]
async fn v1_names_report_each_stream_and_the_system_like_v1() {
    let fixture = Fixture::new(&config(true));
    let now = fixture.now_ms();
    fixture.seed(&["Gate", "Yard", "Dock"], |ids| {
        let mut beats = vec![heartbeat(ids[0], now - 20 * MINUTE, Health::Down)];
        // Gate: up every minute since about 19 minutes ago, the last 10 s ago (fresh at a 15 s
        // heartbeat); Yard: down; Dock: degraded.
        for minutes_ago in 1..20 {
            let ts = now - minutes_ago * MINUTE + 50 * SECOND;
            beats.push(heartbeat(ids[0], ts, Health::Up));
            beats.push(heartbeat(ids[1], ts, Health::Down));
            beats.push(heartbeat(ids[2], ts, Health::Degraded));
        }
        beats
    });
    fixture.set_now(now);
    let response = fixture.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    let text = body(&response);
    for name in [
        "stream_up",
        "stream_latency_ms",
        "system_up",
        "system_sla_ratio_30d",
    ] {
        assert!(
            text.contains(&format!("# TYPE {name} gauge\n")),
            "{name} declared"
        );
    }
    assert!(text.contains("streampulse_stream_up{"), "the native names stay");
    let values = samples(&text);
    let value = |series: &str| {
        *values
            .get(series)
            .unwrap_or_else(|| panic!("{series} in:\n{text}"))
    };

    assert_eq!(value("stream_up{stream=\"Gate\"}"), 1.0);
    assert_eq!(value("stream_latency_ms{stream=\"Gate\"}"), 420.0);
    let age = value("stream_last_seen_age_seconds{stream=\"Gate\"}");
    assert!((10.0..40.0).contains(&age), "{age}");
    // Up since the first good probe after the failure, 18 min 10 s ago.
    let streak = value("stream_uptime_streak_seconds{stream=\"Gate\"}");
    assert!((18.0 * 60.0..19.0 * 60.0).contains(&streak), "{streak}");

    assert_eq!(value("stream_up{stream=\"Yard\"}"), 0.0);
    assert_eq!(value("stream_latency_ms{stream=\"Yard\"}"), 0.0);
    assert_eq!(value("stream_uptime_streak_seconds{stream=\"Yard\"}"), 0.0);
    // v1 had no "degraded": a picture problem still delivered video, so it was "ok".
    assert_eq!(value("stream_up{stream=\"Dock\"}"), 1.0);
    // Never probed: v1's edge values.
    assert_eq!(value("stream_up{stream=\"Lobby\"}"), 0.0);
    assert_eq!(value("stream_last_seen_age_seconds{stream=\"Lobby\"}"), 999_999.0);
    // Disabled streams are not monitored, as v1 monitored only what it probed.
    assert!(!values.contains_key("stream_up{stream=\"Old\"}"), "{text}");

    assert_eq!(value("system_total_streams"), 4.0);
    assert_eq!(value("system_ok_streams"), 2.0);
    assert_eq!(value("system_fail_streams"), 2.0);
    assert_eq!(value("system_up"), 0.0);
    assert_eq!(value("system_total_samples_30d"), 58.0);
    assert_eq!(value("system_ok_samples_30d"), 38.0);
    let ratio = value("system_sla_ratio_30d");
    assert!((ratio - 38.0 / 58.0).abs() < 1e-6, "{ratio}");
    assert!(!text.contains(CAMERA_PASSWORD));
}

#[tokio::test]
async fn v1_names_are_off_unless_asked_for() {
    let fixture = Fixture::new(&config(false));
    let text = body(&fixture.get("/metrics", None).await);
    assert!(text.contains("streampulse_stream_up{"), "{text}");
    assert!(
        !text.contains("\nstream_up{") && !text.contains("system_up"),
        "{text}"
    );
}

#[test]
fn a_metrics_section_of_the_wrong_shape_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.yaml");
    let text = format!(
        "{}metrics:\n  v1_names: maybe\n  v2_names: true\n",
        standard_config()
    );
    std::fs::write(&path, &text).expect("write");
    let error = streampulse::config::load(&path).expect_err("refused").to_string();
    let line = text.lines().count() - 1;
    assert!(error.contains(&format!(":{line}: metrics.v1_names")), "{error}");
    assert!(error.contains("v2_names"), "{error}");
}
