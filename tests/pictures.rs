//! The monitor keeps each camera's last picture from its own probes: a real monitor against the
//! loopback RTSP and MJPEG servers writes a 320-px JPEG and its time beside the database, not
//! more often than `pictures.every_seconds`; the black scene leaves a verdict picture saying
//! black; `pictures.enabled: false` writes nothing; a removed camera's files go on reload and at
//! start.

mod common;

use common::running_monitor::RunningMonitor;
use common::{wait_for_async, wait_for_heartbeats, TestConfig, TestDir, TestStream};
use std::path::{Path, PathBuf};
use std::time::Duration;
use streampulse::demo::{MjpegTestServer, RtspTestServer, SntpTestServer};
use streampulse::pictures::{pictures_dir_path, PictureDir, PictureKind, PictureMeta};
use streampulse::store::Store;

fn with_pictures(config: &TestConfig, pictures: &str) -> String {
    format!("{}pictures:\n{pictures}", config.to_yaml())
}

fn stream_id(db: &Path, name: &str) -> Option<i64> {
    Store::open_read_only(db).ok()?.stream_id_by_name(name).ok()?
}

/// The picture of `name` once both of its files exist.
async fn wait_for_picture(
    dir: &TestDir,
    name: &str,
    kind: PictureKind,
    timeout: Duration,
) -> (Vec<u8>, PictureMeta) {
    let pictures = PictureDir::beside(&dir.db_path());
    let db = dir.db_path();
    wait_for_async(timeout, || pictures.read(stream_id(&db, name)?, kind))
        .await
        .unwrap_or_else(|| {
            panic!(
                "{name}: no {kind:?} picture within {timeout:?}; folder: {:?}",
                listing(&dir.db_path())
            )
        })
}

fn listing(db: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(pictures_dir_path(db))
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Width and height from a JPEG's start-of-frame segment; asserts the SOI and EOI markers.
fn jpeg_size(jpeg: &[u8]) -> (u32, u32) {
    assert_eq!(&jpeg[..2], b"\xff\xd8", "starts with SOI");
    assert_eq!(&jpeg[jpeg.len() - 2..], b"\xff\xd9", "ends with EOI");
    let mut at = 2;
    while at + 9 < jpeg.len() {
        assert_eq!(jpeg[at], 0xff, "a marker at {at}");
        let marker = jpeg[at + 1];
        let length = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        if (0xc0..=0xc3).contains(&marker) {
            let height = u16::from_be_bytes([jpeg[at + 5], jpeg[at + 6]]);
            let width = u16::from_be_bytes([jpeg[at + 7], jpeg[at + 8]]);
            return (u32::from(width), u32::from(height));
        }
        at += 2 + length;
    }
    panic!("no start-of-frame segment");
}

fn system_now_ms() -> i64 {
    common::system_now_ms()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_and_mjpeg_cameras_get_a_last_picture_at_most_once_an_interval() {
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let mjpeg = MjpegTestServer::start().expect("MJPEG server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dir = TestDir::new();
    // RTSP waits for a keyframe (every 2 s) on its picture checks: a longer deadline.
    let config = TestConfig::new(1, 0.8, sntp.port())
        .stream(
            TestStream::new("Lobby RTSP", &rtsp.url("/test"))
                .heartbeat_seconds(5)
                .probe_timeout_seconds(4.0),
        )
        .stream(TestStream::new(
            "Garage MJPEG",
            &mjpeg.url_with_credentials("/auth", "demo", common::SECRET),
        ));
    dir.write_config_text(&with_pictures(&config, "  every_seconds: 8\n"));
    let started_ms = system_now_ms();
    let monitor = RunningMonitor::start(&dir);

    for name in ["Lobby RTSP", "Garage MJPEG"] {
        let (jpeg, meta) = wait_for_picture(&dir, name, PictureKind::Last, Duration::from_secs(40)).await;
        assert_eq!(jpeg_size(&jpeg), (320, 240), "{name}");
        assert_eq!((meta.width, meta.height), (320, 240), "{name}");
        assert!(
            meta.ts_ms >= started_ms - 1_000 && meta.ts_ms <= system_now_ms(),
            "{name}: picture time {} not between the start {started_ms} and now",
            meta.ts_ms
        );
        assert_eq!(meta.health, "up", "{name}");
        assert!(jpeg.len() < 100 * 1024, "{name}: {} bytes", jpeg.len());
    }

    // MJPEG frames are all clean, so every probe (1 s apart) has a picture to keep: within
    // every_seconds none replaces the first.
    let garage = stream_id(&dir.db_path(), "Garage MJPEG").expect("id");
    let pictures = PictureDir::beside(&dir.db_path());
    let first = pictures.meta(garage, PictureKind::Last).expect("meta");
    let probes_before = common::heartbeats(&dir.db_path(), "Garage MJPEG").len();
    wait_for_heartbeats(
        &dir.db_path(),
        "Garage MJPEG",
        probes_before + 2,
        Duration::from_secs(20),
    )
    .await;
    let now = system_now_ms();
    if now - first.ts_ms < 7_000 {
        assert_eq!(
            pictures.meta(garage, PictureKind::Last),
            Some(first.clone()),
            "rewritten within every_seconds"
        );
    }

    // File names hold the store's ids only, and the JSON no camera name, URL or password.
    for name in listing(&dir.db_path()) {
        let stem = name.trim_end_matches(".jpg").trim_end_matches(".json");
        let id = stem.trim_end_matches("-verdict");
        assert!(id.bytes().all(|b| b.is_ascii_digit()), "{name}");
        assert!(!name.contains(common::SECRET), "{name}");
        if name.ends_with(".json") {
            let text = std::fs::read_to_string(pictures_dir_path(&dir.db_path()).join(&name)).expect("json");
            assert!(!text.contains("Garage") && !text.contains("://"), "{text}");
            assert!(!text.contains(common::SECRET), "{text}");
        }
    }
    monitor.stop_cleanly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_camera_leaves_the_picture_behind_its_verdict() {
    let rtsp = RtspTestServer::builder().scenes().start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dir = TestDir::new();
    let config =
        TestConfig::new(4, 3.5, sntp.port()).stream(TestStream::new("Cellar", &rtsp.url("/scene/black")));
    dir.write_config_text(&with_pictures(&config, "  every_seconds: 5\n"));
    let monitor = RunningMonitor::start(&dir);
    // Black stands once the second picture check confirms it.
    let (jpeg, meta) = wait_for_picture(&dir, "Cellar", PictureKind::Verdict, Duration::from_secs(60)).await;
    assert_eq!(meta.reason.as_deref(), Some("black"), "{meta:?}");
    assert_eq!(meta.health, "degraded");
    assert!(
        meta.message.as_deref().is_some_and(|m| m.contains("luma")),
        "{meta:?}"
    );
    assert_eq!(jpeg_size(&jpeg).0, 320);
    let (_, last) = wait_for_picture(&dir, "Cellar", PictureKind::Last, Duration::from_secs(5)).await;
    assert!(
        last.reason.is_none(),
        "the last picture carries no verdict: {last:?}"
    );
    monitor.stop_cleanly().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_turned_off_write_nothing() {
    let mjpeg = MjpegTestServer::start().expect("MJPEG server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Garage", &mjpeg.url("/")));
    dir.write_config_text(&with_pictures(&config, "  enabled: false\n"));
    let monitor = RunningMonitor::start(&dir);
    wait_for_heartbeats(&dir.db_path(), "Garage", 3, Duration::from_secs(20)).await;
    monitor.stop_cleanly().await;
    assert_eq!(listing(&dir.db_path()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_cameras_pictures_go_on_reload_and_at_start() {
    let mjpeg = MjpegTestServer::start().expect("MJPEG server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let dir = TestDir::new();
    // Left over from a camera configured before this start.
    let leftover: PathBuf = pictures_dir_path(&dir.db_path());
    std::fs::create_dir_all(&leftover).expect("folder");
    std::fs::write(leftover.join("999.jpg"), b"\xff\xd8\xff\xd9").expect("stray picture");
    std::fs::write(leftover.join("999.json"), b"{}").expect("stray meta");
    let both = TestConfig::new(1, 0.8, sntp.port())
        .stream(TestStream::new("Garage", &mjpeg.url("/")))
        .stream(TestStream::new("Shed", &mjpeg.url("/stream")));
    dir.write_config_text(&with_pictures(&both, "  every_seconds: 5\n"));
    let monitor = RunningMonitor::start(&dir);
    wait_for_picture(&dir, "Garage", PictureKind::Last, Duration::from_secs(20)).await;
    wait_for_picture(&dir, "Shed", PictureKind::Last, Duration::from_secs(20)).await;
    assert!(
        !listing(&dir.db_path()).iter().any(|n| n.starts_with("999")),
        "{:?}",
        listing(&dir.db_path())
    );

    let shed = stream_id(&dir.db_path(), "Shed").expect("id");
    let garage_only = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Garage", &mjpeg.url("/")));
    dir.write_config_text(&with_pictures(&garage_only, "  every_seconds: 5\n"));
    let gone = wait_for_async(Duration::from_secs(20), || {
        let names = listing(&dir.db_path());
        (!names.iter().any(|n| n.starts_with(&format!("{shed}.")))).then_some(names)
    })
    .await
    .expect("Shed's picture removed after the reload");
    assert_eq!(gone.len(), 2, "Garage's pair stays: {gone:?}");
    monitor.stop_cleanly().await;
}
