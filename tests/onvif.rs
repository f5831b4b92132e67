//! ONVIF against the loopback device simulator (`demo::OnvifSimulator`): `streampulse discover`
//! finds it with a WS-Discovery probe sent to its UDP port (`--probe-to`, never the multicast
//! group), prints its identity and stream URI as config, and says clearly when the password is
//! wrong; a monitor reads the clock of a camera set 5 minutes off, records the offset and calls
//! the stream degraded (`clock_skew`), and leaves one in step up.

mod common;
mod web_support;

use common::running_monitor::RunningMonitor;
use common::{command, run, wait_for_async, wait_for_heartbeat_where, wait_for_heartbeats, TestDir, SECRET};
use std::io::Write;
use std::time::Duration;
use streampulse::demo::{OnvifDevice, OnvifSimulator, RtspTestServer, SntpTestServer, DEMO_USER};
use streampulse::heartbeat::{Health, Reason};
use streampulse::store::Store;

/// `discover` sending its probe to `probe_to` and waiting 1 s for answers, then `extra`.
fn discover_args<'a>(probe_to: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["discover", "--probe-to", probe_to, "--wait-seconds", "1"];
    args.extend_from_slice(extra);
    args
}

/// Generous bound for one `discover` run (process start, a 1 s probe wait, four calls).
const DISCOVER_RUN_LIMIT: Duration = Duration::from_secs(20);

fn simulator(offset_ms: i64, stream_uri: &str) -> OnvifSimulator {
    OnvifSimulator::start(OnvifDevice {
        manufacturer: "Acme Optics".to_string(),
        model: "Sim Cam 9".to_string(),
        firmware_version: "4.2.1".to_string(),
        clock_offset_ms: offset_ms,
        stream_uri: stream_uri.to_string(),
        ..OnvifDevice::default()
    })
    .expect("ONVIF simulator")
}

#[test]
fn discover_lists_the_device_and_its_stream_uri() {
    let device = simulator(0, "rtsp://127.0.0.1:8554/live");
    let probe_to = device.discovery_addr().to_string();
    let finished = run(
        &discover_args(&probe_to, &["--user", DEMO_USER, "--password", SECRET]),
        DISCOVER_RUN_LIMIT,
    );
    assert_eq!(finished.code(), Some(0), "{finished:#?}");
    let out = &finished.stdout;
    assert!(out.contains("Acme Optics Sim Cam 9, firmware 4.2.1"), "{out}");
    assert!(out.contains(&device.device_service_url()), "{out}");
    assert!(out.contains("  - name: sim-cam-9-mainstream"), "{out}");
    assert!(out.contains("    url: rtsp://127.0.0.1:8554/live\n"), "{out}");
    let port = device.http_addr().port();
    assert!(
        out.contains(&format!("    onvif: {{host: 127.0.0.1, port: {port}}}")),
        "{out}"
    );
    assert!(!finished.all_output().contains(SECRET), "{finished:#?}");
}

#[test]
fn discover_reads_the_password_from_stdin_or_the_environment() {
    let device = simulator(0, "rtsp://127.0.0.1:8554/live");
    let probe_to = device.discovery_addr().to_string();
    let mut child = command(&discover_args(
        &probe_to,
        &["--user", DEMO_USER, "--password-stdin"],
    ))
    .stdin(std::process::Stdio::piped())
    .spawn()
    .expect("start streampulse");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{SECRET}\n").as_bytes())
        .expect("write the password");
    let output = child.wait_with_output().expect("discover ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(stdout.contains("url: rtsp://127.0.0.1:8554/live"), "{stdout}");

    let output = command(&discover_args(&probe_to, &["--user", DEMO_USER]))
        .env("STREAMPULSE_ONVIF_PASSWORD", SECRET)
        .output()
        .expect("discover ends");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}");
    assert!(stdout.contains("url: rtsp://127.0.0.1:8554/live"), "{stdout}");
}

#[test]
fn discover_without_credentials_lists_the_device_only() {
    let device = simulator(0, "rtsp://127.0.0.1:8554/live");
    let probe_to = device.discovery_addr().to_string();
    let finished = run(&discover_args(&probe_to, &[]), DISCOVER_RUN_LIMIT);
    assert_eq!(finished.code(), Some(0), "{finished:#?}");
    assert!(finished.stdout.contains("Acme Optics Sim Cam 9"), "{finished:#?}");
    assert!(
        finished
            .stdout
            .contains("its stream URIs need --user and a password"),
        "{finished:#?}"
    );
    assert!(!finished.stdout.contains("url:"), "{finished:#?}");
}

#[test]
fn discover_with_a_wrong_password_says_so_without_printing_it() {
    let device = simulator(0, "rtsp://127.0.0.1:8554/live");
    let probe_to = device.discovery_addr().to_string();
    let finished = run(
        &discover_args(&probe_to, &["--user", DEMO_USER, "--password", "not-the-pass"]),
        DISCOVER_RUN_LIMIT,
    );
    assert_eq!(finished.code(), Some(1), "{finished:#?}");
    assert!(
        finished
            .stderr
            .contains("the device refused the user name or password"),
        "{finished:#?}"
    );
    assert!(!finished.all_output().contains("not-the-pass"), "{finished:#?}");
}

#[test]
fn discover_with_nobody_answering_says_so() {
    // A bound UDP socket that never answers: the probe goes nowhere useful.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let probe_to = silent.local_addr().expect("addr").to_string();
    let finished = run(&discover_args(&probe_to, &[]), DISCOVER_RUN_LIMIT);
    assert_eq!(finished.code(), Some(1), "{finished:#?}");
    assert!(
        finished.stderr.contains("no ONVIF device answered"),
        "{finished:#?}"
    );
}

/// A config with one RTSP stream whose `onvif:` points at `device`.
fn clock_config(dir: &TestDir, ntp_port: u16, url: &str, device: &OnvifSimulator) -> std::path::PathBuf {
    let port = device.http_addr().port();
    dir.write_config_text(&format!(
        "# Written by tests/onvif.rs: loopback servers only.\n\
         heartbeat_seconds: 2\nprobe_timeout_seconds: 1.5\ntimezone: UTC\n\
         ntp_server: \"127.0.0.1:{ntp_port}\"\ndatabase: streams.db\nmax_clock_skew: 1m\n\
         streams:\n  - name: Gate\n    url: \"{url}\"\n    onvif: {{host: 127.0.0.1, port: {port}}}\n"
    ))
}

/// The stream's clock reading once one is stored.
async fn wait_for_clock(dir: &TestDir, name: &str) -> streampulse::store::CameraClock {
    let db = dir.db_path();
    wait_for_async(Duration::from_secs(20), || {
        let store = Store::open_read_only(&db).ok()?;
        let id = store.stream_id_by_name(name).ok()??;
        store.camera_clock(id).ok()?
    })
    .await
    .unwrap_or_else(|| panic!("{name}: no camera clock reading within 20 s"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_clock_five_minutes_ahead_makes_the_stream_degraded() {
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let device = simulator(300_000, &rtsp.url("/test"));
    let dir = TestDir::new();
    clock_config(&dir, sntp.port(), &rtsp.url("/test"), &device);
    let monitor = RunningMonitor::start(&dir);
    let clock = wait_for_clock(&dir, "Gate").await;
    let skewed = wait_for_heartbeat_where(&dir.db_path(), "Gate", 0, Duration::from_secs(20), |h| {
        h.outcome.reason == Some(Reason::ClockSkew)
    })
    .await;
    monitor.stop_cleanly().await;
    let offset_ms = clock.offset_ms.expect("the clock was read");
    // Whole seconds from the device, a loopback round trip: well within 3 s of 5 min.
    assert!((offset_ms - 300_000).abs() < 3_000, "{clock:?}");
    assert_eq!(clock.error, None);
    assert_eq!(skewed.outcome.health, Health::Degraded, "{skewed:#?}");
    assert!(
        skewed.outcome.message.starts_with("camera clock off by 5 min")
            || skewed.outcome.message.starts_with("camera clock off by 4 min 5"),
        "{skewed:#?}"
    );
    assert!(device.clock_reads() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_clock_in_step_leaves_the_stream_up() {
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let device = simulator(0, &rtsp.url("/test"));
    let dir = TestDir::new();
    clock_config(&dir, sntp.port(), &rtsp.url("/test"), &device);
    let monitor = RunningMonitor::start(&dir);
    let clock = wait_for_clock(&dir, "Gate").await;
    let rows = wait_for_heartbeats(&dir.db_path(), "Gate", 3, Duration::from_secs(20)).await;
    monitor.stop_cleanly().await;
    assert!(clock.offset_ms.is_some_and(|ms| ms.abs() < 3_000), "{clock:?}");
    for row in &rows {
        assert_eq!(row.outcome.health, Health::Up, "{row:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_camera_clock_leaves_the_stream_up_and_says_why() {
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let mut device = simulator(300_000, &rtsp.url("/test"));
    device.stop();
    let dir = TestDir::new();
    clock_config(&dir, sntp.port(), &rtsp.url("/test"), &device);
    let monitor = RunningMonitor::start(&dir);
    let clock = wait_for_clock(&dir, "Gate").await;
    let rows = wait_for_heartbeats(&dir.db_path(), "Gate", 2, Duration::from_secs(20)).await;
    monitor.stop_cleanly().await;
    assert_eq!(clock.offset_ms, None);
    assert!(
        clock
            .error
            .as_deref()
            .is_some_and(|e| e.contains("cannot connect")),
        "{clock:?}"
    );
    for row in &rows {
        assert_eq!(row.outcome.health, Health::Up, "{row:#?}");
    }
}

/// The web shows the stored reading: the stream page in words, the API and `/metrics` in seconds;
/// a stream without `onvif:` shows none even with a row left from before.
#[tokio::test]
async fn the_web_shows_the_camera_clock() {
    let config = web_support::standard_config().replace("554/stream1\n", "554/stream1\n    onvif: true\n");
    let (fixture, session) = web_support::Fixture::logged_in(&config).await;
    let now_ms = fixture.now_ms();
    fixture.seed(&["Gate", "Yard"], |ids| {
        ids.iter()
            .map(|&id| web_support::heartbeat(id, now_ms - 1_000, Health::Up))
            .collect()
    });
    let mut store = Store::open(&fixture.db_path).expect("store");
    for name in ["Gate", "Yard"] {
        let id = store.stream_id_by_name(name).expect("query").expect("id");
        let reading = streampulse::store::CameraClock {
            checked_at_ms: now_ms - 500,
            offset_ms: Some(300_000),
            error: None,
        };
        store.record_camera_clock(id, &reading).expect("record");
    }
    drop(store);

    let page = web_support::body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(page.contains("camera clock +5 min 0 s ahead"), "{page}");
    let page = web_support::body(&fixture.get("/streams/Yard", Some(&session)).await);
    assert!(!page.contains("Camera clock"), "{page}");

    let answer: serde_json::Value = serde_json::from_str(&web_support::body(
        &fixture.get("/api/v1/streams/Gate", Some(&session)).await,
    ))
    .expect("JSON");
    assert_eq!(answer["clock_offset_seconds"], 300.0, "{answer}");
    assert_eq!(answer["clock_checked_at_ms"], now_ms - 500, "{answer}");
    assert_eq!(answer["clock_error"], serde_json::Value::Null, "{answer}");

    let token = fixture.token("admin");
    let metrics = web_support::body(&fixture.get_with_token("/metrics", &token).await);
    assert!(
        metrics.contains("streampulse_camera_clock_offset_seconds{stream=\"Gate\"} 300\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("streampulse_camera_clock_offset_seconds{stream=\"Yard\"}"),
        "{metrics}"
    );

    // A camera that stopped answering ONVIF: the page says why, the API has no offset.
    let mut store = Store::open(&fixture.db_path).expect("store");
    let id = store.stream_id_by_name("Gate").expect("query").expect("id");
    let unreadable = streampulse::store::CameraClock {
        checked_at_ms: now_ms - 200,
        offset_ms: None,
        error: Some("cannot connect to 192.0.2.10:80: Connection refused".to_string()),
    };
    store.record_camera_clock(id, &unreadable).expect("record");
    drop(store);
    let page = web_support::body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(
        page.contains("clock not readable: cannot connect to 192.0.2.10:80"),
        "{page}"
    );
    let answer: serde_json::Value = serde_json::from_str(&web_support::body(
        &fixture.get("/api/v1/streams/Gate", Some(&session)).await,
    ))
    .expect("JSON");
    assert_eq!(
        answer["clock_offset_seconds"],
        serde_json::Value::Null,
        "{answer}"
    );
    assert!(
        answer["clock_error"]
            .as_str()
            .is_some_and(|e| e.contains("Connection refused")),
        "{answer}"
    );
}
