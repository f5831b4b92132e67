//! Issue 14, "The right pipeline without being told": an `http(s)://` camera without `pipeline:`
//! gets the template its server's answer calls for. Real servers on loopback: an HLS playlist
//! made here by GStreamer (`hlssink`) and a snapshot JPEG, both served by the static file server
//! with the right `Content-Type`s, the MJPEG demo camera, and a web page. `check` and a monitor are
//! up on each without `--pipeline`, and say which template they chose and why; the choice is kept
//! in the store and shown by the API. Also `transport:` (tcp / udp) against the demo RTSP server's
//! UDP-only mount.

mod common;
mod web_support;

use common::running_monitor::RunningMonitor;
use common::{run, wait_for_heartbeat_where, TestDir};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;
use streampulse::demo::{MjpegTestServer, RtspTestServer, SntpTestServer, StaticHttpServer};
use streampulse::heartbeat::Health;
use streampulse::store::Store;
use streampulse::web::api::types::StreamAnswer;

/// Generous bound for one `check` (process start included); probes on loopback take milliseconds.
const CHECK_RUN_LIMIT: Duration = Duration::from_secs(20);
/// How long a monitor test waits for the heartbeat it expects.
const MONITOR_WAIT: Duration = Duration::from_secs(30);

/// Runs a GStreamer description to its end (EOS), failing the test on an error.
fn run_to_end(description: &str) {
    gst::init().expect("gstreamer");
    let pipeline = gst::parse::launch(description).expect("pipeline parses");
    pipeline.set_state(gst::State::Playing).expect("plays");
    let bus = pipeline.bus().expect("bus");
    let message = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(60),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the pipeline ends within a minute");
    pipeline.set_state(gst::State::Null).expect("stops");
    if let gst::MessageView::Error(err) = message.view() {
        panic!("{description}: {}", err.error());
    }
}

/// Files served by one static server: an HLS playlist with its segments (`live/index.m3u8`), a
/// snapshot (`snap.jpg`), MPEG-TS under a name that tells nothing (`stream.bin`, served as
/// `application/octet-stream`) and a web page (`index.html`).
fn camera_files(dir: &Path) {
    let live = dir.join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    run_to_end(&format!(
        "videotestsrc num-buffers=60 pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 \
         ! x264enc key-int-max=15 tune=zerolatency ! h264parse ! mpegtsmux \
         ! hlssink playlist-location={} location={} target-duration=1 max-files=0 playlist-length=0",
        live.join("index.m3u8").display(),
        live.join("segment%05d.ts").display()
    ));
    run_to_end(&format!(
        "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,width=320,height=240 ! jpegenc ! filesink location={}",
        dir.join("snap.jpg").display()
    ));
    run_to_end(&format!(
        "videotestsrc num-buffers=30 pattern=ball ! video/x-raw,width=320,height=240,framerate=15/1 \
         ! x264enc key-int-max=15 tune=zerolatency ! h264parse ! mpegtsmux ! filesink location={}",
        dir.join("stream.bin").display()
    ));
    std::fs::write(
        dir.join("index.html"),
        "<!doctype html><html><body><h1>IP camera</h1><p>Log in to watch.</p></body></html>",
    )
    .expect("web page");
}

fn check(args: &[&str]) -> common::Finished {
    run(&[&["check"], args].concat(), CHECK_RUN_LIMIT)
}

fn assert_up_with(finished: &common::Finished, template: &str, evidence: &str) {
    let json = finished.json();
    assert_eq!(json["up"], Value::Bool(true), "{finished:#?}");
    assert_eq!(json["template"], Value::from(template), "{finished:#?}");
    assert!(
        json["template_evidence"]
            .as_str()
            .is_some_and(|e| e.contains(evidence)),
        "{finished:#?}"
    );
    assert_eq!(finished.code(), Some(0), "{finished:#?}");
}

#[test]
fn check_chooses_the_template_from_what_the_server_says() {
    let files = tempfile::tempdir().expect("tempdir");
    camera_files(files.path());
    let server = StaticHttpServer::start(files.path()).expect("static server");
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");

    let hls = check(&[&server.url("live/index.m3u8"), "--json"]);
    assert_up_with(&hls, "hls", "server said application/vnd.apple.mpegurl");
    let snapshot = check(&[&server.url("snap.jpg"), "--json"]);
    assert_up_with(&snapshot, "snapshot", "server said image/jpeg");
    assert_eq!(snapshot.json()["width"], Value::from(320), "{snapshot:#?}");
    let multipart = check(&[&mjpeg.url("/stream"), "--json"]);
    assert_up_with(&multipart, "mjpeg", "server said multipart/x-mixed-replace");
    // A generic Content-Type: typefind looks at the bytes.
    let typefound = check(&[&server.url("stream.bin"), "--json"]);
    assert_up_with(&typefound, "http-h264", "typefind found video/mpegts");

    // The line for people names the template and why.
    let line = check(&[&server.url("live/index.m3u8")]);
    assert_eq!(line.code(), Some(0), "{line:#?}");
    assert!(
        line.stdout
            .contains("template `hls` (server said application/vnd.apple.mpegurl)"),
        "{line:#?}"
    );
    // `--pipeline` still decides when given.
    let told = check(&[&server.url("live/index.m3u8"), "--pipeline", "hls", "--json"]);
    assert_eq!(told.json()["up"], Value::Bool(true), "{told:#?}");
    assert_eq!(told.json()["template"], Value::Null, "{told:#?}");
}

#[test]
fn a_web_page_or_a_missing_file_is_down_with_a_reason_a_person_understands() {
    let files = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        files.path().join("index.html"),
        "<html><body>camera login</body></html>",
    )
    .expect("page");
    let server = StaticHttpServer::start(files.path()).expect("static server");

    let page = check(&[&server.url("index.html"), "--json"]);
    let json = page.json();
    assert_eq!(page.code(), Some(1), "{page:#?}");
    assert_eq!(json["reason"], Value::from("no_video"), "{page:#?}");
    assert_eq!(
        json["message"],
        Value::from("the server sent text/html, not video: is this the camera's web page?"),
        "{page:#?}"
    );
    // The sniff's failures are the probe's reasons: a 404 is not_found, as with `--pipeline`.
    let missing = check(&[&server.url("nothing.m3u8"), "--json"]);
    assert_eq!(missing.json()["reason"], Value::from("not_found"), "{missing:#?}");
    let told = check(&[&server.url("nothing.m3u8"), "--pipeline", "hls", "--json"]);
    assert_eq!(told.json()["reason"], Value::from("not_found"), "{told:#?}");
    // A server that takes the connection and never answers: the same timeout stage and words
    // whether the template was asked for or named.
    let silent = streampulse::demo::SilentTcpServer::start().expect("silent server");
    let url = silent.http_url("/live.m3u8");
    let asked = check(&[&url, "--json", "--timeout-ms", "2000"]);
    let told = check(&[&url, "--pipeline", "hls", "--json", "--timeout-ms", "2000"]);
    assert_eq!(
        asked.json()["reason"],
        Value::from("timeout_headers"),
        "{asked:#?}"
    );
    assert_eq!(
        asked.json()["message"],
        told.json()["message"],
        "{asked:#?} {told:#?}"
    );
    // Nothing listening: refused, as a probe says.
    let closed = format!("http://127.0.0.1:{}/live.m3u8", streampulse::demo::closed_port());
    let refused = check(&[&closed, "--json", "--timeout-ms", "5000"]);
    assert_eq!(refused.json()["reason"], Value::from("refused"), "{refused:#?}");
}

#[test]
fn transport_tcp_on_a_udp_only_camera_is_what_was_asked_for() {
    let server = RtspTestServer::start().expect("rtsp server");
    let udp_only = server.url("/udp");
    let tcp = check(&[&udp_only, "--transport", "tcp", "--json", "--timeout-ms", "8000"]);
    assert_eq!(
        tcp.code(),
        Some(1),
        "TCP was refused, and not worked around: {tcp:#?}"
    );
    assert_eq!(tcp.json()["reason"], Value::from("protocol"), "{tcp:#?}");
    assert!(
        tcp.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("no stream over TCP (`transport: tcp`)")),
        "{tcp:#?}"
    );
    let udp = check(&[&udp_only, "--transport", "udp", "--json", "--timeout-ms", "8000"]);
    assert_eq!(udp.json()["up"], Value::Bool(true), "{udp:#?}");
    let tcp_ok = check(&[
        &server.url("/tcp"),
        "--transport",
        "tcp",
        "--json",
        "--timeout-ms",
        "8000",
    ]);
    assert_eq!(tcp_ok.json()["up"], Value::Bool(true), "{tcp_ok:#?}");
    let not_rtsp = check(&["http://127.0.0.1:1/x", "--transport", "tcp"]);
    assert_ne!(not_rtsp.code(), Some(0), "{not_rtsp:#?}");
}

#[test]
fn transport_on_a_stream_that_is_not_rtsp_is_a_config_error() {
    let text = "streams:\n  - name: cam\n    url: http://127.0.0.1:8080/live.m3u8\n    transport: tcp\n  - name: gate\n    url: rtsp://127.0.0.1/x\n    transport: sideways\n";
    let problems = match streampulse::config::parse(text, Path::new("/tmp/autodetect.yaml")) {
        Ok(_) => panic!("accepted"),
        Err(streampulse::config::ConfigError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("{other}"),
    };
    let found: Vec<(Option<usize>, &str)> = problems.iter().map(|p| (p.line, p.field.as_str())).collect();
    assert_eq!(
        found,
        vec![
            (Some(4), "streams[0].transport"),
            (Some(7), "streams[1].transport")
        ],
        "{problems:?}"
    );
    assert!(problems[0].message.contains("only RTSP"), "{problems:?}");
    assert!(problems[1].message.contains("udp, tcp or auto"), "{problems:?}");
    let good = "streams:\n  - name: cam\n    url: http://127.0.0.1:8080/live.m3u8\n  - name: gate\n    url: rtsp://127.0.0.1/x\n    transport: TCP\n";
    let config = streampulse::config::parse(good, Path::new("/tmp/autodetect.yaml")).expect("valid");
    assert!(config.streams[0].detect_template);
    assert_eq!(
        config.streams[1].transport,
        streampulse::config::StreamTransport::Tcp
    );
    assert!(!config.streams[1].detect_template);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_monitor_is_up_on_each_without_being_told_and_keeps_what_it_learned() {
    let files = tempfile::tempdir().expect("tempdir");
    let made = files.path().to_path_buf();
    tokio::task::spawn_blocking(move || camera_files(&made))
        .await
        .expect("files made");
    let server = StaticHttpServer::start(files.path()).expect("static server");
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let rtsp = RtspTestServer::start().expect("rtsp server");
    let ntp = SntpTestServer::start(0).expect("sntp");
    let dir = TestDir::new();
    let config = format!(
        "heartbeat_seconds: 5\nprobe_timeout_seconds: 4\ntimezone: UTC\nntp_server: \"127.0.0.1:{}\"\ndatabase: streams.db\nstreams:\n\
         \x20 - name: hls\n    url: \"{}\"\n\
         \x20 - name: snapshot\n    url: \"{}\"\n\
         \x20 - name: mjpeg\n    url: \"{}\"\n\
         \x20 - name: tcp-on-udp-only\n    url: \"{}\"\n    transport: tcp\n\
         \x20 - name: udp\n    url: \"{}\"\n    transport: udp\n",
        ntp.port(),
        server.url("live/index.m3u8"),
        server.url("snap.jpg"),
        mjpeg.url("/stream"),
        rtsp.url("/udp"),
        rtsp.url("/udp"),
    );
    dir.write_config_text(&config);
    let monitor = RunningMonitor::start(&dir);
    let db = dir.db_path();
    for name in ["hls", "snapshot", "mjpeg", "udp"] {
        let heartbeat =
            wait_for_heartbeat_where(&db, name, 0, MONITOR_WAIT, |h| h.outcome.health == Health::Up).await;
        assert_eq!(heartbeat.outcome.health, Health::Up, "{name}");
    }
    let refused = wait_for_heartbeat_where(&db, "tcp-on-udp-only", 0, MONITOR_WAIT, |_| true).await;
    assert_eq!(refused.outcome.health, Health::Down, "{refused:?}");

    // The API shows what was learned, and why.
    let answer = |name: &str| {
        let store = Store::open_read_only(&db).expect("store");
        let config = streampulse::config::load(&dir.config_path()).expect("config");
        let summary = streampulse::fleet::load_one(&config, &store, name, common::system_now_ms())
            .expect("read")
            .expect("configured");
        StreamAnswer::of(&summary)
    };
    let learned = common::wait_for_async(MONITOR_WAIT, || answer("hls").learned).await;
    let learned = learned.expect("the HLS stream's template is in the API");
    assert_eq!(learned.template.as_deref(), Some("hls"));
    assert!(
        learned.notes[0].contains("template hls, detected (server said application/vnd.apple.mpegurl)"),
        "{learned:?}"
    );
    let snapshot = common::wait_for_async(MONITOR_WAIT, || answer("snapshot").learned).await;
    assert_eq!(snapshot.and_then(|l| l.template).as_deref(), Some("snapshot"));
    assert_eq!(
        answer("udp").learned,
        None,
        "a configured transport is not learned"
    );
    monitor.stop_cleanly().await;

    // A restart starts from what was saved: the row stays, unchanged (written only on change).
    let before = Store::open_read_only(&db)
        .expect("store")
        .learned()
        .expect("rows");
    let monitor = RunningMonitor::start(&dir);
    let count = common::heartbeats(&db, "hls").len();
    wait_for_heartbeat_where(&db, "hls", count, MONITOR_WAIT, |h| {
        h.outcome.health == Health::Up
    })
    .await;
    monitor.stop_cleanly().await;
    let after = Store::open_read_only(&db)
        .expect("store")
        .learned()
        .expect("rows");
    assert_eq!(before, after, "nothing changed, nothing rewritten");
}

/// A camera whose server changed what it sends: the learned template fails with a protocol or
/// decoding reason, is forgotten, and the next probe asks the server again. A timeout or a
/// refused connection says nothing about the format and keeps it.
#[tokio::test]
async fn a_learned_template_that_stops_working_is_asked_for_again() {
    use std::sync::Arc;
    use streampulse::pipeline::TemplateLibrary;
    use streampulse::probe::learned::DetectedTemplate;
    use streampulse::probe::{probe, ProbeRequest, Reaper};
    let files = tempfile::tempdir().expect("tempdir");
    let made = files.path().to_path_buf();
    tokio::task::spawn_blocking(move || camera_files(&made))
        .await
        .expect("files made");
    let server = StaticHttpServer::start(files.path()).expect("static server");
    let library = TemplateLibrary::new(None);
    let request = ProbeRequest {
        url: Some(streampulse::url::CameraUrl::new(server.url("live/index.m3u8"))),
        template: library.find("mjpeg").expect("shipped"),
        params: Default::default(),
        timeout: Duration::from_secs(8),
        quality: Default::default(),
        expect: Default::default(),
        previous_picture: None,
        picture_check: false,
        memory: Default::default(),
        detect: Some(Arc::new(library)),
        transport: Default::default(),
        tls: Default::default(),
    };
    // What an earlier run learned, when the URL still served MJPEG.
    request.memory.remember_template(Some(DetectedTemplate {
        template: "mjpeg".into(),
        evidence: "server said multipart/x-mixed-replace".into(),
    }));
    let reaper = Reaper::new();
    let stale = probe(&request, &reaper).await;
    assert_eq!(stale.health, Health::Down, "{stale:?}");
    assert_eq!(request.memory.template(), None, "forgotten after {stale:?}");
    let asked = probe(&request, &reaper).await;
    assert_eq!(asked.health, Health::Up, "{asked:?}");
    assert_eq!(
        request.memory.template().map(|t| t.template).as_deref(),
        Some("hls")
    );
    // The server goes away: refused keeps what was learned.
    let mut server = server;
    server.stop();
    let refused = probe(&request, &reaper).await;
    assert_eq!(refused.health, Health::Down, "{refused:?}");
    assert_eq!(
        request.memory.template().map(|t| t.template).as_deref(),
        Some("hls"),
        "{refused:?}"
    );
    assert!(reaper.drain(Duration::from_secs(5), 4), "teardowns finish");
}

/// The stream page and the API show what the monitor learned, in words; a camera with nothing
/// learned shows no such line and `learned: null`.
#[tokio::test]
async fn the_stream_page_and_the_api_show_what_was_learned() {
    use streampulse::store::learned::LearnedFacts;
    let (fixture, session) = web_support::Fixture::logged_in(&web_support::standard_config()).await;
    let now = fixture.now_ms();
    fixture.seed(&["Dock", "Gate", "Yard"], |ids| {
        ids.iter()
            .map(|id| web_support::heartbeat(*id, now - 1_000, Health::Up))
            .collect()
    });
    let store = Store::open(&fixture.db_path).expect("store");
    let id = |name: &str| store.stream_id_by_name(name).expect("read").expect("seeded");
    let mut dock = LearnedFacts::default_facts();
    dock.template = Some("hls".into());
    dock.template_evidence = Some("server said application/vnd.apple.mpegurl".into());
    store.save_learned(id("Dock"), &dock, now).expect("save");
    let mut gate = LearnedFacts::default_facts();
    gate.transport = "tcp".into();
    store.save_learned(id("Gate"), &gate, now).expect("save");

    let page = web_support::body(&fixture.get("/streams/Dock", Some(&session)).await);
    assert!(
        page.contains("template hls, detected (server said application/vnd.apple.mpegurl)"),
        "{page}"
    );
    assert!(
        page.contains("<dd>hls every 15 s</dd>"),
        "the template in use: {page}"
    );
    let page = web_support::body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(page.contains("RTSP over TCP, learned"), "{page}");
    let page = web_support::body(&fixture.get("/streams/Yard", Some(&session)).await);
    assert!(
        !page.contains("id=\"stream-learned\""),
        "nothing learned, no line"
    );

    let token = fixture.token("tests");
    let api: Value = serde_json::from_str(&web_support::body(
        &fixture.get_with_token("/api/v1/streams", &token).await,
    ))
    .expect("json");
    let learned = |name: &str| {
        api["streams"]
            .as_array()
            .and_then(|streams| streams.iter().find(|s| s["name"] == name))
            .map(|s| s["learned"].clone())
            .expect("listed")
    };
    assert_eq!(learned("Dock")["template"], Value::from("hls"));
    assert_eq!(learned("Gate")["transport"], Value::from("tcp"));
    assert_eq!(learned("Yard"), Value::Null);
}

/// A top-level `transport:` is the fleet's default: an RTSP stream without its own takes it (so a
/// UDP-only camera is refused over TCP, and says so), one with its own keeps that, and a stream
/// that is not RTSP ignores it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_top_level_transport_reaches_every_rtsp_stream_without_its_own() {
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let rtsp = RtspTestServer::start().expect("rtsp server");
    let ntp = SntpTestServer::start(0).expect("sntp");
    let dir = TestDir::new();
    let config = format!(
        "heartbeat_seconds: 5\nprobe_timeout_seconds: 4\ntimezone: UTC\nntp_server: \"127.0.0.1:{}\"\ndatabase: streams.db\ntransport: tcp\nstreams:\n\
         \x20 - name: fleet-default\n    url: \"{}\"\n\
         \x20 - name: own-udp\n    url: \"{}\"\n    transport: udp\n\
         \x20 - name: tcp-capable\n    url: \"{}\"\n\
         \x20 - name: mjpeg\n    url: \"{}\"\n",
        ntp.port(),
        rtsp.url("/udp"),
        rtsp.url("/udp"),
        rtsp.url("/tcp"),
        mjpeg.url("/stream"),
    );
    dir.write_config_text(&config);
    let monitor = RunningMonitor::start(&dir);
    let db = dir.db_path();
    for name in ["own-udp", "tcp-capable", "mjpeg"] {
        let heartbeat =
            wait_for_heartbeat_where(&db, name, 0, MONITOR_WAIT, |h| h.outcome.health == Health::Up).await;
        assert_eq!(heartbeat.outcome.health, Health::Up, "{name}");
    }
    let refused = wait_for_heartbeat_where(&db, "fleet-default", 0, MONITOR_WAIT, |_| true).await;
    assert_eq!(refused.outcome.health, Health::Down, "{refused:?}");
    assert!(
        refused
            .outcome
            .message
            .contains("no stream over TCP (`transport: tcp`)"),
        "{refused:?}"
    );
    monitor.stop_cleanly().await;
}
