//! A full disk as the web shows it: the monitor's status file next to the database says the
//! disk is full, and `/healthz`, `/metrics` and every page say so; a report the monitor stopped
//! refreshing is not trusted; a missing or garbled file is "unknown", never an error page.

mod web_support;

use serde_json::Value;
use streampulse::store::{status_file_path, MonitorStatus, STATUS_FILE_BYTES};
use streampulse::web::store_health::FULL_REPORT_STALE_AFTER_MS;
use web_support::*;

fn json(response: &warp::http::Response<bytes::Bytes>) -> Value {
    serde_json::from_slice(response.body()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", body(response)))
}

/// Writes the status file as the monitor does: JSON padded with spaces to a fixed size.
fn write_status(fixture: &Fixture, status: &MonitorStatus) {
    let mut bytes = serde_json::to_vec(status).expect("json");
    bytes.resize(STATUS_FILE_BYTES - 1, b' ');
    bytes.push(b'\n');
    std::fs::write(status_file_path(&fixture.db_path), bytes).expect("write status file");
}

fn full_since(fixture: &Fixture, since_ms: i64) -> MonitorStatus {
    MonitorStatus {
        pid: 4242,
        updated_ms: fixture.now_ms() - 5 * SECOND,
        disk_full_since_ms: Some(since_ms),
        buffered: 1234,
        dropped_while_full: 56,
        dropped_total: 78,
        written_back_total: 0,
        last_error: Some("database error: database or disk is full".into()),
    }
}

#[tokio::test]
async fn a_full_disk_shows_on_healthz_metrics_and_every_page() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    // 2024-01-01 04:00:00 UTC is 09:30 in the configured Asia/Kolkata.
    let since_ms = 1_704_081_600_000;
    write_status(&fixture, &full_since(&fixture, since_ms));

    let health = fixture.get("/healthz", None).await;
    assert_eq!(health.status(), 200, "the web server itself is fine");
    let health = json(&health);
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["config_valid"], true);
    assert_eq!(health["store"]["disk_full"], true);
    assert_eq!(health["store"]["disk_full_since"], "2024-01-01T04:00:00Z");
    assert_eq!(health["store"]["disk_full_since_ms"], since_ms);
    assert_eq!(health["store"]["buffered_heartbeats"], 1234);
    assert_eq!(health["store"]["dropped_heartbeats"], 56);
    assert!(health["store"]["free_bytes"].is_u64(), "{health}");

    let token = fixture.token("prometheus");
    let metrics = body(&fixture.get_with_token("/metrics", &token).await);
    for line in [
        "# TYPE streampulse_store_disk_full gauge",
        "\nstreampulse_store_disk_full 1\n",
        "\nstreampulse_store_buffered_heartbeats 1234\n",
        "# TYPE streampulse_store_dropped_heartbeats_total counter",
        "\nstreampulse_store_dropped_heartbeats_total 78\n",
        "\nstreampulse_store_free_bytes ",
        // The rest of the metrics are still there.
        "streampulse_streams{state=\"disabled\"} 1",
    ] {
        assert!(metrics.contains(line), "missing {line:?} in\n{metrics}");
    }

    let banner = "Disk full since 2024-01-01 09:30:00 IST: 1234 heartbeats held in memory, 56 lost.";
    let dashboard = body(&fixture.get("/", Some(&session)).await);
    assert!(dashboard.contains("id=\"disk-full\""), "{dashboard}");
    assert!(dashboard.contains(banner), "{dashboard}");
    let stream_page = body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(stream_page.contains(banner), "every page shows it");
    let login_page = body(&fixture.get("/login", None).await);
    assert!(!login_page.contains("disk-full"), "not before login");

    // Space is back: the monitor rewrites the file.
    write_status(
        &fixture,
        &MonitorStatus {
            disk_full_since_ms: None,
            buffered: 0,
            dropped_while_full: 0,
            written_back_total: 1234,
            last_error: None,
            ..full_since(&fixture, since_ms)
        },
    );
    let health = json(&fixture.get("/healthz", None).await);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"]["disk_full"], false);
    assert_eq!(health["store"]["buffered_heartbeats"], Value::Null);
    let metrics = body(&fixture.get_with_token("/metrics", &token).await);
    assert!(metrics.contains("\nstreampulse_store_disk_full 0\n"), "{metrics}");
    assert!(
        metrics.contains("\nstreampulse_store_dropped_heartbeats_total 78\n"),
        "{metrics}"
    );
    let dashboard = body(&fixture.get("/", Some(&session)).await);
    assert!(!dashboard.contains("disk-full"), "{dashboard}");
}

#[tokio::test]
async fn a_full_report_the_monitor_stopped_refreshing_is_not_trusted() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    write_status(&fixture, &full_since(&fixture, fixture.now_ms() - 10 * MINUTE));
    fixture
        .state
        .clock()
        .set_offset(FULL_REPORT_STALE_AFTER_MS + 10 * SECOND);
    let health = json(&fixture.get("/healthz", None).await);
    assert_eq!(health["status"], "ok");
    assert_eq!(health["store"]["disk_full"], Value::Null, "unknown: {health}");
    let dashboard = body(&fixture.get("/", Some(&session)).await);
    assert!(dashboard.contains("may have stopped"), "{dashboard}");
}

#[tokio::test]
async fn a_missing_or_garbled_status_file_is_unknown_not_an_error() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let token = fixture.token("prometheus");
    for content in [
        None,
        Some(&b"{\"pid\": 12, \"updated_"[..]),
        Some(&b"\0\0\0\0"[..]),
    ] {
        let path = status_file_path(&fixture.db_path);
        match content {
            None => {
                let _ = std::fs::remove_file(&path);
            }
            Some(bytes) => std::fs::write(&path, bytes).expect("write"),
        }
        let health = fixture.get("/healthz", None).await;
        assert_eq!(health.status(), 200);
        let health = json(&health);
        assert_eq!(health["status"], "ok");
        assert_eq!(health["store"]["disk_full"], Value::Null);
        let metrics = fixture.get_with_token("/metrics", &token).await;
        assert_eq!(metrics.status(), 200);
        assert!(!body(&metrics).contains("streampulse_store_disk_full"));
        let dashboard = fixture.get("/", Some(&session)).await;
        assert_eq!(dashboard.status(), 200);
        assert!(!body(&dashboard).contains("disk-full"));
    }
}
