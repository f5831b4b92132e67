//! The `streampulse` binary as a user runs it: `check` against real loopback cameras (one per
//! fault a camera can have), `validate` on good and bad files, and `monitor` + `status` as two
//! processes sharing a database. Each test asserts what the user sees: the exit code, the JSON
//! or the lines printed, and that camera passwords never appear.

mod common;

use common::{run, RunningChild, TestConfig, TestDir, TestStream, SECRET};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use streampulse::demo::{
    closed_port, MjpegTestServer, RtspTestServer, SilentTcpServer, SntpTestServer, DEMO_PASSWORD, DEMO_USER,
};

/// Generous bound for one `check` against a healthy loopback camera (process start included).
const CHECK_RUN_LIMIT: Duration = Duration::from_secs(15);

fn check_json(url: &str, timeout_ms: u64) -> common::Finished {
    let timeout = timeout_ms.to_string();
    run(
        &["check", url, "--json", "--timeout-ms", &timeout],
        CHECK_RUN_LIMIT,
    )
}

/// Fails unless no camera password appears in anything the command printed. The wrong password
/// of these tests is the word "wrong", which the description of `unauthorized` legitimately
/// contains, so that phrase is taken out before looking.
fn assert_no_password(finished: &common::Finished) {
    let output = finished.all_output();
    assert!(
        !output.contains(SECRET),
        "the password was printed: {finished:#?}"
    );
    let without_description = output.replace("wrong or missing credentials", "");
    assert!(
        !without_description.contains("wrong"),
        "the wrong password was printed: {finished:#?}"
    );
}

/// Asserts a down result: exit 1, `up: false`, the reason code, and a message for a person.
fn assert_down(finished: &common::Finished, reason: &str) -> Value {
    let json = finished.json();
    assert_eq!(json["up"], Value::Bool(false), "{finished:#?}");
    assert_eq!(json["reason"], Value::from(reason), "{finished:#?}");
    assert!(
        json["message"].as_str().is_some_and(|m| !m.is_empty()),
        "a down result explains itself: {finished:#?}"
    );
    assert_eq!(json["latency_ms"], Value::Null, "{finished:#?}");
    assert_eq!(finished.code(), Some(1), "down exits 1: {finished:#?}");
    assert_no_password(finished);
    json
}

/// Asserts an up H.264 320x240 result with exit 0.
fn assert_up_h264(finished: &common::Finished, url_shown: &str) {
    let json = finished.json();
    assert_eq!(finished.code(), Some(0), "up exits 0: {finished:#?}");
    assert_eq!(json["url"], Value::from(url_shown), "{finished:#?}");
    assert_eq!(json["up"], Value::Bool(true), "{finished:#?}");
    assert_eq!(json["reason"], Value::Null, "{finished:#?}");
    assert!(
        json.get("message").is_some(),
        "the message key is always present: {finished:#?}"
    );
    assert_eq!(json["codec"], Value::from("h264"), "{finished:#?}");
    assert_eq!(json["width"], Value::from(320), "{finished:#?}");
    assert_eq!(json["height"], Value::from(240), "{finished:#?}");
    let latency = json["latency_ms"]
        .as_u64()
        .expect("latency_ms is a number when up");
    assert!(
        latency > 0 && latency < 10_000,
        "latency {latency} ms: {finished:#?}"
    );
    assert_no_password(finished);
}

// ---------------------------------------------------------------------------------------------
// check: RTSP

#[test]
fn check_rtsp_test_mount_is_up_with_codec_and_size() {
    let server = RtspTestServer::start().expect("RTSP server");
    let url = server.url("/test");
    let finished = check_json(&url, 10_000);
    assert_up_h264(&finished, &url);
    let json = finished.json();
    let keys: Vec<&str> = json
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    for key in [
        "url",
        "up",
        "latency_ms",
        "reason",
        "message",
        "codec",
        "width",
        "height",
    ] {
        assert!(keys.contains(&key), "missing {key}: {json}");
    }
}

#[test]
fn check_rtsp_with_credentials_is_up_and_never_shows_the_password() {
    let server = RtspTestServer::start().expect("RTSP server");
    let url = server.url_with_credentials("/auth", DEMO_USER, DEMO_PASSWORD);
    let shown = format!("rtsp://{DEMO_USER}:***@127.0.0.1:{}/auth", server.port());
    assert_up_h264(&check_json(&url, 10_000), &shown);

    // The plain-text line redacts it too.
    let line = run(&["check", &url], CHECK_RUN_LIMIT);
    assert_eq!(line.code(), Some(0), "{line:#?}");
    assert!(line.stdout.starts_with(&format!("{shown}: UP")), "{line:#?}");
    assert!(line.stdout.contains("320x240"), "{line:#?}");
    assert_no_password(&line);
}

/// Issue 14's camera: no base header, relative controls, and no answer at all to the SETUP form
/// rtspsrc resolves (ffmpeg appends and plays it). `check` is up on it too.
#[test]
fn check_rtsp_camera_that_ignores_the_strict_setup_is_up() {
    let server = RtspTestServer::start().expect("RTSP server");
    let camera = streampulse::demo::NoBaseRtspServer::start_with(
        server.addr(),
        streampulse::demo::StrictSetup::Ignore,
    )
    .expect("relay");
    let url = camera.url("/test");
    assert_up_h264(&check_json(&url, 10_000), &url);
}

#[test]
fn check_rtsp_udp_only_and_tcp_only_mounts_are_up() {
    let server = RtspTestServer::start().expect("RTSP server");
    for path in ["/udp", "/tcp"] {
        let url = server.url(path);
        assert_up_h264(&check_json(&url, 10_000), &url);
    }
}

#[test]
fn check_rtsp_closed_port_is_refused() {
    let url = format!("rtsp://127.0.0.1:{}/test", closed_port());
    let finished = check_json(&url, 5_000);
    assert_down(&finished, "refused");
    assert!(
        finished.elapsed < Duration::from_secs(5),
        "a refusal is immediate: {finished:#?}"
    );
}

#[test]
fn check_rtsp_silent_socket_times_out_within_its_deadline() {
    let silent = SilentTcpServer::start().expect("silent server");
    let finished = run(
        &[
            "check",
            &silent.rtsp_url("/stream1"),
            "--json",
            "--timeout-ms",
            "1500",
        ],
        CHECK_RUN_LIMIT,
    );
    let json = finished.json();
    assert_eq!(finished.code(), Some(1), "{finished:#?}");
    let reason = json["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("timeout_"), "{finished:#?}");
    // Connected, but the camera never answered: the stage a person needs to know.
    assert_eq!(reason, "timeout_headers", "{finished:#?}");
    assert!(
        finished.elapsed < Duration::from_millis(2_500),
        "the 1.5 s deadline held (process start included): {:?}",
        finished.elapsed
    );
}

#[test]
fn check_rtsp_wrong_password_is_unauthorized_and_redacted() {
    let server = RtspTestServer::start().expect("RTSP server");
    let url = server.url_with_credentials("/auth", DEMO_USER, "wrong");
    let finished = check_json(&url, 5_000);
    let json = assert_down(&finished, "unauthorized");
    assert_eq!(
        json["url"],
        Value::from(format!("rtsp://{DEMO_USER}:***@127.0.0.1:{}/auth", server.port())),
        "{finished:#?}"
    );
    let line = run(&["check", &url], CHECK_RUN_LIMIT);
    assert_eq!(line.code(), Some(1), "{line:#?}");
    assert!(line.stdout.contains(":***@"), "{line:#?}");
    assert_no_password(&line);
}

#[test]
fn check_rtsp_unknown_mount_is_not_found() {
    let server = RtspTestServer::start().expect("RTSP server");
    assert_down(&check_json(&server.url("/no-such-stream"), 5_000), "not_found");
}

// ---------------------------------------------------------------------------------------------
// check: MJPEG over HTTP

#[test]
fn check_mjpeg_root_is_up_as_jpeg() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    let url = server.url("/");
    let finished = check_json(&url, 10_000);
    let json = finished.json();
    assert_eq!(finished.code(), Some(0), "{finished:#?}");
    assert_eq!(json["up"], Value::Bool(true), "{finished:#?}");
    assert_eq!(json["codec"], Value::from("jpeg"), "{finished:#?}");
    assert_eq!(
        (json["width"].as_u64(), json["height"].as_u64()),
        (Some(320), Some(240))
    );
}

#[test]
fn check_mjpeg_garbage_is_a_protocol_error() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    assert_down(&check_json(&server.url("/garbage"), 5_000), "protocol");
}

#[test]
fn check_mjpeg_auth_without_credentials_is_unauthorized() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    assert_down(&check_json(&server.url("/auth"), 5_000), "unauthorized");
}

#[test]
fn check_mjpeg_with_wrong_password_is_unauthorized_and_redacted() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    let url = server.url_with_credentials("/auth", DEMO_USER, "wrong");
    let json = assert_down(&check_json(&url, 5_000), "unauthorized");
    assert_eq!(
        json["url"],
        Value::from(format!("http://{DEMO_USER}:***@127.0.0.1:{}/auth", server.port()))
    );
}

#[test]
fn check_mjpeg_headers_without_frames_is_a_first_frame_timeout() {
    // The camera answers 200 with a multipart header, then never sends a part: it did answer, so
    // the stage that timed out is the first frame, not the headers.
    let server = MjpegTestServer::start().expect("MJPEG server");
    let finished = check_json(&server.url("/headers-only"), 1_500);
    assert_down(&finished, "timeout_first_frame");
    assert!(finished.elapsed < Duration::from_millis(2_500), "{finished:#?}");
}

#[test]
fn check_mjpeg_silent_path_times_out_waiting_for_headers() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    let finished = check_json(&server.url("/silent"), 900);
    assert_down(&finished, "timeout_headers");
    assert!(finished.elapsed < Duration::from_millis(2_000), "{finished:#?}");
}

#[test]
fn check_mjpeg_silent_path_with_a_fractional_deadline_times_out_waiting_for_headers() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    let finished = check_json(&server.url("/silent"), 1_500);
    assert_down(&finished, "timeout_headers");
    assert!(finished.elapsed < Duration::from_millis(2_500), "{finished:#?}");
}

#[test]
fn check_mjpeg_missing_path_is_not_found() {
    let server = MjpegTestServer::start().expect("MJPEG server");
    assert_down(&check_json(&server.url("/missing"), 5_000), "not_found");
}

// ---------------------------------------------------------------------------------------------
// validate

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/monitor")
        .join(name)
}

#[test]
fn validate_names_file_line_and_field_of_every_problem() {
    let bad = fixture("bad.yaml");
    let bad_arg = bad.to_str().expect("a UTF-8 path");
    let finished = run(&["validate", "--config", bad_arg], Duration::from_secs(10));
    assert_eq!(finished.code(), Some(1), "{finished:#?}");
    let output = finished.all_output();
    for (line, field) in [
        (2, "probe_timeout_seconds"),
        (4, "timezone"),
        (7, "streams[0].name"),
        (9, "streams[1].name"),
        (12, "streams[2].url"),
        (16, "streams[3].colour"),
    ] {
        let expected = format!("{bad_arg}:{line}: {field}: ");
        assert!(output.contains(&expected), "missing `{expected}` in:\n{output}");
    }
    assert!(output.contains("6 problems"), "{output}");
    assert!(
        !output.contains("s3cretPass"),
        "a password in the file was printed:\n{output}"
    );
}

/// 30,000 levels of `- - - …` (about 60 KB) used to overflow the stack (rc 134); nesting is now
/// limited while the YAML is read, and refused with the file and line.
#[test]
fn validate_refuses_deep_nesting_without_crashing() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in [
        ("block.yaml", format!("streams:\n  {}x\n", "- ".repeat(30_000))),
        (
            "flow.yaml",
            format!("streams: {}{}\n", "[".repeat(30_000), "]".repeat(30_000)),
        ),
        (
            "mixed.yaml",
            format!(
                "streams:\n{}",
                (0..3_000)
                    .map(|i| format!("{}k{i}:\n", " ".repeat(i)))
                    .collect::<String>()
            ),
        ),
    ] {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write config");
        let arg = path.to_str().expect("a UTF-8 path");
        let finished = run(&["validate", "--config", arg], Duration::from_secs(20));
        assert_eq!(finished.code(), Some(1), "{name}: {finished:#?}");
        let output = finished.all_output();
        assert!(
            output.contains(&format!("{arg}:")),
            "{name}: no file and line in:\n{output}"
        );
        assert!(
            output.contains("nested more than 64 deep") || output.contains("YAML syntax error"),
            "{name}: {output}"
        );
    }
}

#[test]
fn validate_accepts_the_shipped_config() {
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.yaml");
    let finished = run(
        &["validate", "--config", shipped.to_str().expect("a UTF-8 path")],
        Duration::from_secs(10),
    );
    assert_eq!(finished.code(), Some(0), "{finished:#?}");
    assert!(finished.stdout.contains(": ok ("), "{finished:#?}");
    assert!(!finished.all_output().contains(SECRET), "{finished:#?}");
}

// ---------------------------------------------------------------------------------------------
// monitor + status

/// `streampulse monitor` on this config and database, as a child process.
fn spawn_monitor(config: &Path, db: &Path) -> RunningChild {
    RunningChild::spawn(&[
        "monitor",
        "--config",
        config.to_str().expect("a UTF-8 path"),
        "--db",
        db.to_str().expect("a UTF-8 path"),
    ])
}

/// A name whose first slot, on a 60 s heartbeat, is at least 40 s after start: its stream stays
/// unprobed ("unknown") for the whole test.
fn name_probed_late(interval: Duration) -> String {
    (0..1000)
        .map(|i| format!("Later {i}"))
        .find(|name| streampulse::monitor::phase_for(name, interval) >= Duration::from_secs(40))
        .expect("some name hashes into the last third of the minute")
}

fn status_json(config: &Path, db: &Path) -> Vec<Value> {
    let finished = run(
        &[
            "status",
            "--config",
            config.to_str().expect("a UTF-8 path"),
            "--db",
            db.to_str().expect("a UTF-8 path"),
            "--json",
        ],
        Duration::from_secs(10),
    );
    assert_eq!(finished.code(), Some(0), "{finished:#?}");
    assert!(!finished.all_output().contains(SECRET), "{finished:#?}");
    match finished.json() {
        Value::Array(rows) => rows,
        other => panic!("status --json prints an array, got {other}"),
    }
}

fn row<'a>(rows: &'a [Value], name: &str) -> &'a Value {
    rows.iter()
        .find(|row| row["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in {rows:#?}"))
}

#[test]
fn monitor_process_writes_heartbeats_that_status_shows_and_stops_on_sigterm() {
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let later = name_probed_late(Duration::from_secs(60));
    let dir = TestDir::new();
    let config = TestConfig::new(2, 1.5, sntp.port())
        .stream(TestStream::new("Lobby", &rtsp.url("/test")))
        .stream(TestStream::new(
            "Office",
            &rtsp.url_with_credentials("/auth", DEMO_USER, DEMO_PASSWORD),
        ))
        .stream(TestStream::new(
            "Backyard",
            &rtsp.url_with_credentials("/auth", DEMO_USER, "wrong"),
        ))
        .stream(TestStream::new(
            "Dead",
            &format!("rtsp://127.0.0.1:{}/test", closed_port()),
        ))
        .stream(
            TestStream::new(&later, &rtsp.url("/test"))
                .heartbeat_seconds(60)
                .probe_timeout_seconds(2.0),
        );
    let config_path = dir.write_config(&config);
    let db = dir.db_path();
    let mut monitor = spawn_monitor(&config_path, &db);

    let wanted = |rows: &[Value]| {
        rows.len() == 5
            && row(rows, "Lobby")["state"] == "up"
            && row(rows, "Office")["state"] == "up"
            && row(rows, "Backyard")["state"] == "down"
            && row(rows, "Dead")["state"] == "down"
    };
    let rows = common::wait_for(Duration::from_secs(20), || {
        assert!(monitor.is_running(), "the monitor exited early");
        if !db.exists() {
            return None;
        }
        let rows = status_json(&config_path, &db);
        wanted(&rows).then_some(rows)
    })
    .unwrap_or_else(|| {
        panic!(
            "status never showed the expected states: {:#?}",
            status_json(&config_path, &db)
        )
    });

    for row in &rows {
        for key in ["name", "state", "since", "latency_ms", "reason", "uptime_24h"] {
            assert!(row.get(key).is_some(), "{key} missing in {row}");
        }
    }
    let lobby = row(&rows, "Lobby");
    assert!(
        lobby["since"].as_str().is_some_and(|s| s.ends_with(" UTC")),
        "{lobby}"
    );
    assert!(lobby["latency_ms"].as_u64().is_some_and(|ms| ms > 0), "{lobby}");
    assert_eq!(lobby["reason"], Value::Null, "{lobby}");
    assert!(
        lobby["uptime_24h"].as_f64().is_some_and(|r| r > 0.0 && r <= 1.0),
        "{lobby}"
    );
    let dead = row(&rows, "Dead");
    assert_eq!(dead["reason"], "refused", "{dead}");
    assert_eq!(dead["latency_ms"], Value::Null, "{dead}");
    assert_eq!(dead["uptime_24h"], Value::from(0.0), "{dead}");
    assert!(dead["since"].as_str().is_some(), "{dead}");
    assert_eq!(row(&rows, "Backyard")["reason"], "unauthorized");
    let unprobed = row(&rows, &later);
    assert_eq!(unprobed["state"], "unknown", "{unprobed}");
    assert_eq!(unprobed["since"], Value::Null, "{unprobed}");
    assert_eq!(unprobed["uptime_24h"], Value::Null, "{unprobed}");

    monitor.signal(libc::SIGTERM);
    let status = monitor
        .wait_timeout(Duration::from_secs(6))
        .expect("the monitor stops within probe timeout + a few seconds of SIGTERM");
    let (stdout, stderr) = monitor.output();
    assert_eq!(status.code(), Some(0), "stdout:\n{stdout}\nstderr:\n{stderr}");
    let output = format!("{stdout}\n{stderr}");
    assert!(
        !output.contains(SECRET),
        "the monitor printed the password:\n{output}"
    );
    assert!(
        !output
            .replace("wrong or missing credentials", "")
            .contains("wrong"),
        "the monitor printed the wrong password:\n{output}"
    );
    assert!(stderr.contains("SIGTERM"), "{stderr}");
    drop(rtsp);
}

#[test]
fn status_counts_heartbeats_stamped_by_an_ntp_clock_ahead_of_the_system_clock() {
    // The monitor stamps heartbeats with NTP time; here that is an hour ahead of this machine's
    // clock. `status` must still count them in the last 24 hours.
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(3_600_000).expect("SNTP server");
    let dir = TestDir::new();
    let config_path = dir.write_config(
        &TestConfig::new(2, 1.5, sntp.port()).stream(TestStream::new("Lobby", &rtsp.url("/test"))),
    );
    let db = dir.db_path();
    let mut monitor = spawn_monitor(&config_path, &db);
    let stored = common::wait_for(Duration::from_secs(20), || {
        assert!(monitor.is_running(), "the monitor exited early");
        Some(common::heartbeats(&db, "Lobby")).filter(|rows| rows.iter().any(|h| h.ntp_synced))
    })
    .expect("a heartbeat within 20 s");
    assert!(
        stored[0].ts_ms > common::system_now_ms() + 3_000_000,
        "{stored:?}"
    );

    let rows = status_json(&config_path, &db);
    let lobby = row(&rows, "Lobby");
    assert_eq!(lobby["state"], "up", "{lobby}");
    assert_eq!(lobby["uptime_24h"], Value::from(1.0), "{lobby}");
    monitor.signal(libc::SIGTERM);
    let status = monitor
        .wait_timeout(Duration::from_secs(6))
        .expect("stops on SIGTERM");
    assert_eq!(status.code(), Some(0));
}

/// `%` + hex digit + a multi-byte character in a password made `check` panic (rc 101) and print
/// the password; `validate` accepted it. Now it is refused with file and line, unquoted.
#[test]
fn validate_refuses_undecodable_credentials_without_printing_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("config.yaml");
    std::fs::write(
        &path,
        "ntp_server: 127.0.0.1:9\nstreams:\n  - name: Gate\n    url: rtsp://u:%aé-Pw@127.0.0.1:9/x\n",
    )
    .expect("write config");
    let arg = path.to_str().expect("a UTF-8 path");
    let finished = run(&["validate", "--config", arg], Duration::from_secs(20));
    let output = finished.all_output();
    assert_eq!(finished.code(), Some(1), "{output}");
    assert!(output.contains(&format!("{arg}:4: streams[0].url: ")), "{output}");
    assert!(
        output.contains("'%' that is not followed by two hex digits"),
        "{output}"
    );
    assert!(!output.contains("-Pw"), "validate printed the password: {output}");

    let url = format!("rtsp://u:%aé-Pw@127.0.0.1:{}/x", streampulse::demo::closed_port());
    let finished = run(&["check", &url], Duration::from_secs(30));
    let output = finished.all_output();
    assert_ne!(finished.code(), Some(101), "check panicked: {output}");
    assert!(output.contains("u:***@127.0.0.1"), "{output}");
    assert!(!output.contains("-Pw"), "check printed the password: {output}");
}

/// GLib's and GStreamer's allocations must go through the binary's jemalloc, not glibc's malloc,
/// whose arenas fragmented under the monitor's churn (issue 9). That holds only while the binary
/// exports its unprefixed `malloc`/`free` and the libraries bind to them, which a linker flag or
/// a feature dropped from the allocator crate would silently undo. glibc's loader reports every
/// binding (`LD_DEBUG=bindings`); `LD_BIND_NOW` makes it resolve them all at start.
#[test]
fn glib_and_gstreamer_allocate_through_the_binarys_jemalloc() {
    let binary = env!("CARGO_BIN_EXE_streampulse");
    let output = common::command(&["--version"])
        .env("LD_DEBUG", "bindings")
        .env("LD_BIND_NOW", "1")
        .output()
        .expect("run streampulse --version");
    assert!(output.status.success(), "{output:?}");
    let trace = String::from_utf8_lossy(&output.stderr);
    let imports = [
        (
            "libglib-2.0.so",
            ["malloc", "calloc", "realloc", "free"].as_slice(),
        ),
        ("libgstreamer-1.0.so", ["malloc", "free"].as_slice()),
    ];
    for (library, symbols) in imports {
        for &symbol in symbols {
            let bound_to_binary = trace.lines().any(|line| {
                line.contains("binding file ")
                    && line.contains(library)
                    && line.contains(&format!("to {binary} [0]: normal symbol `{symbol}'"))
            });
            assert!(
                bound_to_binary,
                "{library} does not take `{symbol}` from the streampulse binary; its bindings:\n{}",
                trace
                    .lines()
                    .filter(|line| line.contains(library) && line.contains(&format!("`{symbol}'")))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}

/// The monitor's thread count, from `/proc` (None once the process is gone).
fn thread_count(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Threads:"))
        .and_then(|count| count.trim().parse().ok())
}

/// Every stream's task reads what earlier runs learned about it as it starts. Done on tokio's
/// blocking pool, a fleet start parked one thread per stream (up to 512, at 1,000 streams 456
/// threads at the peak) and a trickle of picture encodes kept dozens alive (issue 16). Streams
/// spread over an hour's heartbeat probe almost nothing in the first seconds, so the threads
/// seen then are the start's own.
#[test]
fn a_fleet_of_hundreds_starts_without_a_thread_per_stream() {
    const STREAMS: usize = 600;
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dead = format!("rtsp://127.0.0.1:{}/", closed_port());
    let dir = TestDir::new();
    let config = (0..STREAMS).fold(TestConfig::new(3600, 2.0, sntp.port()), |config, i| {
        config.stream(TestStream::new(&format!("Camera {i}"), &format!("{dead}{i}")))
    });
    let config_path = dir.write_config(&config);
    let db = dir.db_path();
    let mut monitor = spawn_monitor(&config_path, &db);
    let mut peak = 0;
    let sampling = std::time::Instant::now();
    while sampling.elapsed() < Duration::from_secs(8) {
        assert!(
            monitor.is_running(),
            "the monitor exited early: {:?}",
            monitor.output()
        );
        peak = peak.max(thread_count(monitor.id()).unwrap_or(0));
        std::thread::sleep(Duration::from_millis(10));
    }
    monitor.signal(libc::SIGTERM);
    assert!(
        monitor.wait_timeout(Duration::from_secs(20)).is_some(),
        "the monitor did not stop on SIGTERM"
    );
    let (_, log) = monitor.output();
    assert!(
        log.contains(&format!("monitoring {STREAMS} stream(s)")),
        "the monitor never started its fleet:\n{log}"
    );
    // Runtime, writer, clock, reaper, allocator, GLib and the odd early probe: a few dozen.
    assert!(
        peak < 100,
        "{peak} threads at the start of a {STREAMS}-stream fleet:\n{log}"
    );
}
