//! The monitor in-process on a tokio runtime, against real loopback cameras and a local SNTP
//! server: the heartbeat rows it writes (video details, NTP time), how it rides out dead, silent
//! and restarted cameras, config reloads, shutdown, and that hundreds of probes leak neither
//! threads nor file descriptors.

mod common;

use common::running_monitor::RunningMonitor;
use common::{
    heartbeats, system_now_ms, wait_for_async, wait_for_heartbeat_where, wait_for_heartbeats, TestConfig,
    TestDir, TestStream,
};
use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use streampulse::demo::{
    closed_port, closed_udp_port, MjpegTestServer, RtspTestServer, SilentTcpServer, SntpTestServer,
};
use streampulse::heartbeat::{Health, Heartbeat, Reason, TimeoutStage};
use streampulse::monitor::{MonitorStats, PanicInjection};
use streampulse::pipeline::TemplateLibrary;
use streampulse::probe::{probe, ProbeRequest, Reaper};
use streampulse::store::Store;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The leak check counts the whole process's threads and descriptors, so it runs alone: it takes
/// this lock for writing, every other test for reading.
static PROCESS_WIDE: RwLock<()> = RwLock::const_new(());

async fn shared_process() -> RwLockReadGuard<'static, ()> {
    PROCESS_WIDE.read().await
}

async fn whole_process() -> RwLockWriteGuard<'static, ()> {
    PROCESS_WIDE.write().await
}

/// Config polling in tests: fast, so reload tests need not wait the production 2 s.
fn probes(stats: &MonitorStats) -> u64 {
    stats.probes.load(Ordering::Relaxed)
}

/// Asserts a plainly-up heartbeat with the demo cameras' picture size.
fn assert_up(heartbeat: &Heartbeat, codec: &str, timeout_ms: u64) {
    assert_eq!(heartbeat.outcome.health, Health::Up, "{heartbeat:#?}");
    assert_eq!(heartbeat.outcome.reason, None, "{heartbeat:#?}");
    let latency = heartbeat
        .outcome
        .latency_ms
        .expect("an up heartbeat has a latency");
    assert!(
        latency > 0 && latency < timeout_ms,
        "latency {latency} ms: {heartbeat:#?}"
    );
    assert_eq!(heartbeat.outcome.codec.as_deref(), Some(codec), "{heartbeat:#?}");
    assert_eq!(
        (heartbeat.outcome.width, heartbeat.outcome.height),
        (Some(320), Some(240)),
        "{heartbeat:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Heartbeat rows

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_and_mjpeg_heartbeats_carry_video_details_and_ntp_time() {
    let _process = shared_process().await;
    const OFFSET_MS: i64 = 3_600_000;
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let mjpeg = MjpegTestServer::start().expect("MJPEG server");
    let sntp = SntpTestServer::start(OFFSET_MS).expect("SNTP server");
    let dir = TestDir::new();
    dir.write_config(
        &TestConfig::new(1, 0.8, sntp.port())
            .stream(TestStream::new("Lobby RTSP", &rtsp.url("/test")))
            .stream(TestStream::new("Garage MJPEG", &mjpeg.url("/"))),
    );
    let before_ms = system_now_ms();
    let monitor = RunningMonitor::start(&dir);
    let lobby = wait_for_heartbeats(&dir.db_path(), "Lobby RTSP", 2, Duration::from_secs(15)).await;
    let garage = wait_for_heartbeats(&dir.db_path(), "Garage MJPEG", 2, Duration::from_secs(15)).await;
    let after_ms = system_now_ms();
    let (result, _) = monitor.stop().await;
    result.expect("the monitor ran without error");

    for (rows, codec) in [(&lobby, "h264"), (&garage, "jpeg")] {
        for heartbeat in rows.iter() {
            assert_up(heartbeat, codec, 800);
            assert!(
                heartbeat.ntp_synced,
                "a local SNTP server answered: {heartbeat:#?}"
            );
            // Stamped with NTP time: the system clock plus the server's hour, within 2 s.
            let system_ms = heartbeat.ts_ms - OFFSET_MS;
            assert!(
                system_ms >= before_ms - 2_000 && system_ms <= after_ms + 2_000,
                "ts_ms {} is not system time + 1 h (system time was {before_ms}..{after_ms})",
                heartbeat.ts_ms
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_ntp_server_still_gives_heartbeats_on_the_system_clock() {
    let _process = shared_process().await;
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let dir = TestDir::new();
    dir.write_config(
        &TestConfig::new(1, 0.8, closed_udp_port()).stream(TestStream::new("Lobby", &rtsp.url("/test"))),
    );
    let before_ms = system_now_ms();
    let monitor = RunningMonitor::start(&dir);
    let rows = wait_for_heartbeats(&dir.db_path(), "Lobby", 2, Duration::from_secs(15)).await;
    let after_ms = system_now_ms();
    let (result, _) = monitor.stop().await;
    result.expect("the monitor ran without error");
    for heartbeat in &rows {
        assert_up(heartbeat, "h264", 800);
        assert!(
            !heartbeat.ntp_synced,
            "no NTP answer, so not synced: {heartbeat:#?}"
        );
        assert!(
            heartbeat.ts_ms >= before_ms && heartbeat.ts_ms <= after_ms,
            "ts_ms {} is not the system time ({before_ms}..{after_ms})",
            heartbeat.ts_ms
        );
    }
}

/// A black H.264 camera (keyframe every 2 s, probes join between keyframes) with the shipped
/// `picture_check_minutes`: the first probes are picture checks, which wait for a keyframe, and
/// their verdict stands on the ordinary probes that follow: black from the second heartbeat on
/// (the second check confirms the first's black).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_h264_camera_is_black_from_the_second_heartbeat_with_the_shipped_picture_checks() {
    let _process = shared_process().await;
    let rtsp = RtspTestServer::builder().scenes().start().expect("RTSP server");
    let dir = TestDir::new();
    // The deadline leaves a check time for a connection and a whole GOP.
    dir.write_config(
        &TestConfig::new(4, 3.5, closed_udp_port())
            .stream(TestStream::new("Night", &rtsp.url("/scene/black"))),
    );
    let monitor = RunningMonitor::start(&dir);
    let rows = wait_for_heartbeats(&dir.db_path(), "Night", 4, Duration::from_secs(40)).await;
    let checks = monitor.stats.picture_checks.load(Ordering::Relaxed);
    let (result, _) = monitor.stop().await;
    result.expect("the monitor ran without error");
    assert_eq!(rows[0].outcome.health, Health::Up, "unconfirmed: {:#?}", rows[0]);
    for heartbeat in &rows[1..] {
        assert_eq!(heartbeat.outcome.health, Health::Degraded, "{heartbeat:#?}");
        assert_eq!(heartbeat.outcome.reason, Some(Reason::Black), "{heartbeat:#?}");
    }
    assert!(
        (2..=3).contains(&checks),
        "two checks (black confirmed, frozen needs two pictures), then none: {checks}"
    );
}

// ---------------------------------------------------------------------------------------------
// Cameras that die, hang or come back

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn camera_killed_mid_run_goes_down_and_comes_back_after_restart() {
    let _process = shared_process().await;
    let mut rtsp = RtspTestServer::start().expect("RTSP server");
    let dir = TestDir::new();
    let db = dir.db_path();
    // A closed NTP port: heartbeats are stamped with the system clock, comparable with ours.
    dir.write_config(
        &TestConfig::new(1, 0.8, closed_udp_port()).stream(TestStream::new("Lobby", &rtsp.url("/test"))),
    );
    let monitor = RunningMonitor::start(&dir);
    wait_for_heartbeat_where(&db, "Lobby", 0, Duration::from_secs(15), |h| {
        h.outcome.health == Health::Up
    })
    .await;

    tokio::task::block_in_place(|| rtsp.stop());
    let stopped_ms = system_now_ms();
    let after_stop = wait_for_async(Duration::from_secs(10), || {
        heartbeats(&db, "Lobby")
            .into_iter()
            .find(|h| h.ts_ms >= stopped_ms)
    })
    .await
    .expect("a heartbeat after the camera died");
    assert_eq!(after_stop.outcome.health, Health::Down, "{after_stop:#?}");
    assert_eq!(
        after_stop.outcome.reason,
        Some(Reason::Refused),
        "{after_stop:#?}"
    );
    assert_eq!(after_stop.outcome.latency_ms, None, "{after_stop:#?}");

    tokio::task::block_in_place(|| rtsp.restart()).expect("RTSP server restarts on its port");
    let restarted_ms = system_now_ms();
    let after_restart = wait_for_async(Duration::from_secs(10), || {
        heartbeats(&db, "Lobby")
            .into_iter()
            .find(|h| h.ts_ms >= restarted_ms)
    })
    .await
    .expect("a heartbeat after the camera came back");
    assert_up(&after_restart, "h264", 800);

    let (result, _) = monitor.stop().await;
    result.expect("the monitor ran without error");
    let store = Store::open_read_only(&db).expect("database");
    let status = store
        .status_by_name("Lobby")
        .expect("query")
        .expect("Lobby is known");
    assert_eq!(status.health, Some(Health::Up), "{status:#?}");
}

/// A stream task that panics is reported (a redacted `down`/`internal` heartbeat, counted with
/// the probe outcomes that `/metrics` exports) and restarted: the stream never goes silent, and
/// the other streams never notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_stream_task_is_reported_and_restarted() {
    let _process = shared_process().await;
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dir = TestDir::new();
    let secret_url = rtsp.url_with_credentials("/auth", streampulse::demo::DEMO_USER, common::SECRET);
    dir.write_config(
        &TestConfig::new(2, 1.5, sntp.port())
            .stream(TestStream::new("Crashy", &secret_url))
            .stream(TestStream::new("Steady", &rtsp.url("/test"))),
    );
    let injection = PanicInjection::new("Crashy", 2);
    let monitor =
        RunningMonitor::start_with(&dir, |options| options.panic_injection = Some(injection.clone()));

    // Two panics in a row (restarted after 1 s, then 2 s: the heartbeat caps the backoff), then video.
    let up = wait_for_heartbeat_where(&dir.db_path(), "Crashy", 0, Duration::from_secs(30), |h| {
        h.outcome.health == Health::Up
    })
    .await;
    let steady = wait_for_heartbeats(&dir.db_path(), "Steady", 3, Duration::from_secs(15)).await;
    let restarts = monitor.stats.task_restarts.load(Ordering::Relaxed);
    let (result, _) = monitor.stop().await;
    result.expect("the monitor survives a panicking stream task");

    assert_eq!(injection.remaining(), 0);
    assert_eq!(restarts, 2, "one restart per panic");
    let crashy = heartbeats(&dir.db_path(), "Crashy");
    let internal: Vec<&Heartbeat> = crashy
        .iter()
        .filter(|h| h.outcome.reason == Some(Reason::Internal))
        .collect();
    assert_eq!(internal.len(), 2, "one heartbeat per panic: {crashy:#?}");
    for heartbeat in &internal {
        assert_eq!(heartbeat.outcome.health, Health::Down);
        assert!(heartbeat.outcome.message.contains("panicked"), "{heartbeat:#?}");
        assert!(heartbeat.outcome.message.contains("restarted"), "{heartbeat:#?}");
        assert!(
            heartbeat.outcome.message.contains("demo:***@"),
            "the URL is kept, masked: {heartbeat:#?}"
        );
        assert!(
            !heartbeat.outcome.message.contains(common::SECRET),
            "password leaked: {heartbeat:#?}"
        );
    }
    assert!(up.ts_ms > internal[1].ts_ms, "video again after the restarts");
    assert!(
        steady.iter().all(|h| h.outcome.health == Health::Up),
        "{steady:#?}"
    );

    // `/metrics` exports the store's probe counts by outcome: the panics count as `internal`.
    let store = Store::open_read_only(dir.db_path()).expect("database");
    let crashy_id = store.stream_id_by_name("Crashy").expect("query").expect("stream");
    let counts = store.probe_counts().expect("probe counts");
    assert!(
        counts.contains(&(crashy_id, "internal".to_string(), 2)),
        "{counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_camera_times_out_on_its_own_without_delaying_the_others() {
    let _process = shared_process().await;
    const SILENT_TIMEOUT_MS: i64 = 2_500;
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let mjpeg = MjpegTestServer::start().expect("MJPEG server");
    let silent = SilentTcpServer::start().expect("silent server");
    let dir = TestDir::new();
    let db = dir.db_path();
    let fast = ["Fast RTSP", "Fast TCP", "Fast MJPEG", "Fast refused"];
    dir.write_config(
        &TestConfig::new(1, 0.8, closed_udp_port())
            .stream(TestStream::new(fast[0], &rtsp.url("/test")))
            .stream(TestStream::new(fast[1], &rtsp.url("/tcp")))
            .stream(TestStream::new(fast[2], &mjpeg.url("/")))
            .stream(TestStream::new(
                fast[3],
                &format!("rtsp://127.0.0.1:{}/test", closed_port()),
            ))
            // Its probe outlives two of the fast streams' heartbeats.
            .stream(
                TestStream::new("Silent", &silent.rtsp_url("/stream1"))
                    .heartbeat_seconds(3)
                    .probe_timeout_seconds(SILENT_TIMEOUT_MS as f64 / 1000.0),
            ),
    );
    let monitor = RunningMonitor::start(&dir);

    // Watch for the silent camera's heartbeats and note when each first shows up in the store.
    let mut first_seen_ms: HashMap<i64, i64> = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(25);
    while first_seen_ms.len() < 3 {
        assert!(
            Instant::now() < deadline,
            "3 silent heartbeats within 25 s; saw {first_seen_ms:?}"
        );
        let now_ms = system_now_ms();
        for heartbeat in heartbeats(&db, "Silent") {
            first_seen_ms.entry(heartbeat.ts_ms).or_insert(now_ms);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (result, _) = monitor.stop().await;
    result.expect("the monitor ran without error");

    let silent_rows = heartbeats(&db, "Silent");
    for heartbeat in &silent_rows {
        assert_eq!(heartbeat.outcome.health, Health::Down, "{heartbeat:#?}");
        assert_eq!(
            heartbeat.outcome.reason,
            Some(Reason::Timeout(TimeoutStage::Headers)),
            "{heartbeat:#?}"
        );
        assert!(!heartbeat.outcome.message.is_empty(), "{heartbeat:#?}");
        if let Some(seen_ms) = first_seen_ms.get(&heartbeat.ts_ms) {
            let after_slot_ms = seen_ms - heartbeat.ts_ms;
            assert!(
                after_slot_ms <= SILENT_TIMEOUT_MS + 500,
                "the silent probe's heartbeat was stored {after_slot_ms} ms after its slot (deadline \
                 {SILENT_TIMEOUT_MS} ms)"
            );
            assert!(
                after_slot_ms >= SILENT_TIMEOUT_MS - 100,
                "it waited its deadline: {after_slot_ms} ms"
            );
        }
    }
    for pair in silent_rows.windows(2) {
        let gap = pair[1].ts_ms - pair[0].ts_ms;
        assert!(
            (gap - 3_000).abs() <= 300,
            "silent heartbeats {gap} ms apart, not 3 s"
        );
    }

    for name in fast {
        let rows = heartbeats(&db, name);
        assert!(rows.len() >= 6, "{name}: only {} heartbeats", rows.len());
        let gaps: Vec<i64> = rows
            .windows(2)
            .map(|pair| pair[1].ts_ms - pair[0].ts_ms)
            .collect();
        assert!(
            gaps.iter().all(|gap| (gap - 1_000).abs() <= 300),
            "{name}: heartbeats should stay 1 s apart, gaps were {gaps:?} ms"
        );
    }
    for heartbeat in heartbeats(&db, fast[0]).iter().chain(&heartbeats(&db, fast[1])) {
        assert_up(heartbeat, "h264", 800);
    }
    for heartbeat in &heartbeats(&db, fast[2]) {
        assert_up(heartbeat, "jpeg", 800);
    }
    for heartbeat in &heartbeats(&db, fast[3]) {
        assert_eq!(heartbeat.outcome.reason, Some(Reason::Refused), "{heartbeat:#?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Config reload

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_reload_adds_streams_refuses_invalid_files_and_keeps_history_across_renames() {
    let _process = shared_process().await;
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let mjpeg = MjpegTestServer::start().expect("MJPEG server");
    let ntp_port = closed_udp_port();
    let dir = TestDir::new();
    let db = dir.db_path();
    let alpha = TestStream::new("Alpha", &rtsp.url("/test"));
    let bravo = TestStream::new("Bravo", &mjpeg.url("/"));
    dir.write_config(&TestConfig::new(1, 0.8, ntp_port).stream(alpha.clone()));
    let monitor = RunningMonitor::start(&dir);
    wait_for_heartbeats(&db, "Alpha", 2, Duration::from_secs(15)).await;

    // A stream added to the file is probed without a restart.
    dir.write_config(
        &TestConfig::new(1, 0.8, ntp_port)
            .stream(alpha.clone())
            .stream(bravo.clone()),
    );
    let bravo_up = wait_for_heartbeat_where(&db, "Bravo", 0, Duration::from_secs(10), |h| {
        h.outcome.health == Health::Up
    })
    .await;
    assert_up(&bravo_up, "jpeg", 800);
    assert_eq!(monitor.stats.reloads.load(Ordering::Relaxed), 1);

    // An invalid file is refused; the streams already running keep their heartbeats.
    dir.write_config_text(
        "heartbeat_seconds: often\nntp_server: 127.0.0.1:9\nstreams:\n  - name: Alpha\n    url: ftp://nowhere/\n",
    );
    wait_for_async(Duration::from_secs(5), || {
        (monitor.stats.rejected_reloads.load(Ordering::Relaxed) == 1).then_some(())
    })
    .await
    .expect("the invalid config is noticed and refused");
    let alpha_before = heartbeats(&db, "Alpha").len();
    let bravo_before = heartbeats(&db, "Bravo").len();
    wait_for_heartbeats(&db, "Alpha", alpha_before + 2, Duration::from_secs(10)).await;
    wait_for_heartbeats(&db, "Bravo", bravo_before + 2, Duration::from_secs(10)).await;
    assert_eq!(
        monitor.stats.reloads.load(Ordering::Relaxed),
        1,
        "the invalid file was not applied"
    );
    assert!(!monitor.task.is_finished(), "the monitor keeps running");

    // Renamed, same URL: the store keeps the stream, so its history is under the new name.
    let alpha_id = Store::open_read_only(&db)
        .expect("database")
        .stream_id_by_name("Alpha")
        .expect("query")
        .expect("Alpha is known");
    let history = heartbeats(&db, "Alpha");
    let renamed = TestStream::new("Alpha (lobby)", &rtsp.url("/test"));
    dir.write_config(&TestConfig::new(1, 0.8, ntp_port).stream(renamed).stream(bravo));
    let rows = wait_for_heartbeats(&db, "Alpha (lobby)", history.len() + 2, Duration::from_secs(10)).await;
    assert_eq!(monitor.stats.reloads.load(Ordering::Relaxed), 2);
    let (result, _) = monitor.stop().await;
    result.expect("the monitor ran without error");

    let store = Store::open_read_only(&db).expect("database");
    assert_eq!(
        store.stream_id_by_name("Alpha (lobby)").expect("query"),
        Some(alpha_id)
    );
    assert_eq!(
        store.stream_id_by_name("Alpha").expect("query"),
        None,
        "the old name is gone"
    );
    assert_eq!(
        rows[..history.len()],
        history[..],
        "the old heartbeats are under the new name"
    );
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_returns_promptly_and_writes_the_probes_in_flight() {
    let _process = shared_process().await;
    const SILENT_TIMEOUT: Duration = Duration::from_millis(1_500);
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let silent = SilentTcpServer::start().expect("silent server");
    let dir = TestDir::new();
    let db = dir.db_path();
    dir.write_config(
        &TestConfig::new(1, 0.8, closed_udp_port())
            .stream(TestStream::new("Lobby", &rtsp.url("/test")))
            .stream(
                TestStream::new("Gate", &silent.rtsp_url("/stream1"))
                    .heartbeat_seconds(2)
                    .probe_timeout_seconds(SILENT_TIMEOUT.as_secs_f64()),
            ),
    );
    let monitor = RunningMonitor::start(&dir);
    wait_for_heartbeats(&db, "Lobby", 2, Duration::from_secs(15)).await;
    let gate = wait_for_heartbeats(&db, "Gate", 1, Duration::from_secs(15)).await;

    // Shut down while a Gate probe is in flight: 300 ms into a slot of its 2 s grid.
    let last_slot_ms = gate.last().expect("one heartbeat").ts_ms;
    let mut in_flight_slot_ms = last_slot_ms + 2_000;
    while in_flight_slot_ms + 300 < system_now_ms() {
        in_flight_slot_ms += 2_000;
    }
    let wait_ms = u64::try_from(in_flight_slot_ms + 300 - system_now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(wait_ms)).await;
    let stats = Arc::clone(&monitor.stats);
    let (result, took) = monitor.stop().await;
    result.expect("run() returns Ok");
    assert!(
        took <= SILENT_TIMEOUT + Duration::from_secs(2),
        "shutdown took {took:?}, more than the probe timeout + 2 s"
    );
    assert!(
        took >= Duration::from_millis(900),
        "shutdown waited for the Gate probe in flight: {took:?}"
    );

    let gate = heartbeats(&db, "Gate");
    let last = gate.last().expect("Gate heartbeats");
    assert!(
        (last.ts_ms - in_flight_slot_ms).abs() <= 300,
        "the probe in flight at shutdown ({in_flight_slot_ms}) was written; last Gate heartbeat {last:#?}"
    );
    assert_eq!(
        last.outcome.reason,
        Some(Reason::Timeout(TimeoutStage::Headers)),
        "{last:#?}"
    );
    let stored = gate.len() + heartbeats(&db, "Lobby").len();
    assert_eq!(
        u64::try_from(stored).ok(),
        Some(probes(&stats)),
        "every probe the monitor ran has its heartbeat in the database"
    );
}

// ---------------------------------------------------------------------------------------------
// Resources

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(Iterator::count)
        .unwrap_or(0)
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(Iterator::count)
        .unwrap_or(0)
}

/// The request the monitor would build for a stream with this URL and deadline.
fn request(url: &str, timeout: Duration) -> ProbeRequest {
    let yaml = TestConfig::new(10, timeout.as_secs_f64(), closed_udp_port())
        .stream(TestStream::new("probe", url))
        .to_yaml();
    let config = streampulse::config::parse(&yaml, Path::new("/nonexistent/config.yaml"))
        .unwrap_or_else(|e| panic!("test config is valid: {e}"));
    ProbeRequest::for_stream(&config.streams[0], &TemplateLibrary::new(None)).expect("shipped template")
}

/// Runs `rounds` rounds of the probes in `round`, all of a round at once; the 4 healthy ones must
/// come up every time.
async fn probe_rounds(round: &[ProbeRequest], reaper: &Reaper, rounds: usize) {
    for _ in 0..rounds {
        let outcomes = futures::future::join_all(round.iter().map(|request| probe(request, reaper))).await;
        let up = outcomes
            .iter()
            .filter(|outcome| outcome.health == Health::Up)
            .count();
        assert_eq!(up, 4, "{outcomes:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_probes_leak_neither_threads_nor_descriptors() {
    let _process = whole_process().await;
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let silent = SilentTcpServer::start().expect("silent server");
    let refused = format!("rtsp://127.0.0.1:{}/test", closed_port());
    let round: Vec<ProbeRequest> = [rtsp.url("/test"), rtsp.url("/tcp")]
        .iter()
        .cycle()
        .take(4)
        .map(|url| request(url, Duration::from_secs(3)))
        .chain((0..3).map(|_| request(&refused, Duration::from_secs(3))))
        .chain((0..3).map(|_| request(&silent.rtsp_url("/stream1"), Duration::from_millis(500))))
        .collect();
    let reaper = Reaper::new();
    // Warm-up: GStreamer's registry, thread pools and the server's first media.
    probe_rounds(&round, &reaper, 3).await;
    assert!(
        reaper.drain(Duration::from_secs(10), 30),
        "warm-up pipelines torn down"
    );
    let (threads_before, fds_before) = (thread_count(), fd_count());

    probe_rounds(&round, &reaper, 17).await;
    assert!(
        reaper.drain(Duration::from_secs(10), 200),
        "every pipeline torn down"
    );
    // Sessions and sockets close asynchronously on both sides: give them a moment to settle.
    let settled = wait_for_async(Duration::from_secs(10), || {
        let (threads, fds) = (thread_count(), fd_count());
        (threads <= threads_before + 3 && fds <= fds_before + 6).then_some((threads, fds))
    })
    .await;
    eprintln!(
        "after warm-up: {threads_before} threads, {fds_before} fds; after 200 probes: {} threads, {} fds",
        thread_count(),
        fd_count()
    );
    assert!(
        settled.is_some(),
        "after 200 probes: {} threads (was {threads_before}), {} fds (was {fds_before})",
        thread_count(),
        fd_count()
    );
}
