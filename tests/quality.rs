//! Picture verdicts and pipeline templates against real GStreamer sources on loopback: black,
//! frozen (within a probe and across probes), low frame rate, wrong size, a healthy moving
//! picture; templates from a user directory, hostile credentials, missing hardware elements.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use streampulse::config::{Expectation, QualityConfig};
use streampulse::demo::{MjpegTestServer, RtspTestServer, DEMO_PASSWORD, DEMO_USER};
use streampulse::heartbeat::{Health, ProbeOutcome, Reason};
use streampulse::pipeline::{PipelineError, TemplateLibrary};
use streampulse::probe::{probe_with_teardown, ProbeRequest, Reaper};
use streampulse::url::CameraUrl;

/// Teardowns take 1–10 ms on loopback, ~100 ms against a frozen server (teardown-timeout).
const TEARDOWN_LIMIT: Duration = Duration::from_secs(3);

fn request(url: &str, template: &str, sample_seconds: f64, expect: Expectation) -> ProbeRequest {
    ProbeRequest {
        url: Some(CameraUrl::new(url)),
        template: TemplateLibrary::new(None)
            .find(template)
            .expect("shipped template"),
        params: BTreeMap::new(),
        timeout: Duration::from_secs(5),
        quality: QualityConfig {
            sample: Duration::from_secs_f64(sample_seconds),
            ..QualityConfig::default()
        },
        expect,
        previous_picture: None,
    }
}

/// Probes, then waits for the pipeline's teardown, so no test drops its server while a TEARDOWN
/// is still in flight.
async fn run(request: &ProbeRequest) -> ProbeOutcome {
    let (outcome, teardown) = probe_with_teardown(request, &Reaper::new()).await;
    if let Some(teardown) = teardown {
        assert!(
            teardown.wait(TEARDOWN_LIMIT).await,
            "teardown within {TEARDOWN_LIMIT:?}"
        );
    }
    outcome
}

fn assert_degraded(outcome: &ProbeOutcome, reason: Reason, detail: &str) {
    assert_eq!(outcome.health, Health::Degraded, "{outcome:?}");
    assert_eq!(outcome.reason, Some(reason), "{outcome:?}");
    assert!(
        outcome.message.contains(detail),
        "message {:?} lacks {detail:?}",
        outcome.message
    );
    assert!(
        outcome.latency_ms.is_some(),
        "a degraded stream still delivered a frame"
    );
}

#[tokio::test]
async fn a_moving_rtsp_picture_is_up_with_measured_rate_and_bitrate() {
    let server = RtspTestServer::start().expect("rtsp server");
    let outcome = run(&request(
        &server.url("/test"),
        "rtsp",
        1.5,
        Expectation::default(),
    ))
    .await;
    assert_eq!(outcome.health, Health::Up, "{outcome:?}");
    let fps = outcome.fps.expect("fps measured");
    assert!(
        (10.0..=20.0).contains(&fps),
        "the demo mount runs at 15 fps, measured {fps}"
    );
    assert!(outcome.bitrate_kbps.is_some_and(|kbps| kbps > 0), "{outcome:?}");
    assert_eq!(outcome.codec.as_deref(), Some("h264"));
}

#[tokio::test]
async fn a_black_rtsp_picture_is_degraded_black() {
    let server = RtspTestServer::start().expect("rtsp server");
    let outcome = run(&request(
        &server.url("/black"),
        "rtsp",
        0.0,
        Expectation::default(),
    ))
    .await;
    assert_degraded(&outcome, Reason::Black, "mean luma");
}

#[tokio::test]
async fn a_frozen_picture_is_degraded_within_one_probe() {
    let rtsp = RtspTestServer::start().expect("rtsp server");
    let outcome = run(&request(
        &rtsp.url("/frozen"),
        "rtsp",
        1.2,
        Expectation::default(),
    ))
    .await;
    assert_degraded(&outcome, Reason::Frozen, "identical picture");

    // An MJPEG camera repeating one JPEG (a MotionEye placeholder, a hung encoder).
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let outcome = run(&request(
        &mjpeg.url("/frozen"),
        "mjpeg",
        1.2,
        Expectation::default(),
    ))
    .await;
    assert_degraded(&outcome, Reason::Frozen, "identical picture");
    // The same server's live path changes picture: up.
    let live = run(&request(&mjpeg.url("/"), "mjpeg", 1.2, Expectation::default())).await;
    assert_eq!(live.health, Health::Up, "{live:?}");
}

#[tokio::test]
async fn a_camera_replaying_a_stale_frame_is_frozen_across_heartbeats() {
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let mut stale = request(&mjpeg.url("/stale"), "mjpeg", 0.0, Expectation::default());
    let first = run(&stale).await;
    assert_eq!(first.health, Health::Up, "one probe alone cannot tell: {first:?}");
    stale.previous_picture = Some((first.picture.clone().expect("picture summary"), Instant::now()));
    let second = run(&stale).await;
    assert_degraded(&second, Reason::Frozen, "as the previous probe");

    // A live camera probed twice is not "the same picture as last time".
    let mut live = request(&mjpeg.url("/"), "mjpeg", 0.0, Expectation::default());
    let first = run(&live).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    live.previous_picture = Some((first.picture.clone().expect("picture summary"), Instant::now()));
    let second = run(&live).await;
    assert_eq!(second.health, Health::Up, "{second:?}");
}

#[tokio::test]
async fn five_fps_against_min_fps_ten_is_degraded_and_size_is_checked() {
    let server = RtspTestServer::start().expect("rtsp server");
    let slow = Expectation {
        min_fps: Some(10.0),
        ..Expectation::default()
    };
    let outcome = run(&request(&server.url("/slow5fps"), "rtsp", 2.0, slow)).await;
    assert_degraded(&outcome, Reason::LowFps, "expected at least 10");
    let hd = Expectation {
        width: Some(1920),
        height: Some(1080),
        min_fps: None,
    };
    let outcome = run(&request(&server.url("/test"), "rtsp", 0.0, hd)).await;
    assert_degraded(&outcome, Reason::WrongResolution, "320x240, expected 1920x1080");
}

#[tokio::test]
async fn transport_and_nodecode_templates_reach_the_server() {
    let server = RtspTestServer::start().expect("rtsp server");
    for (mount, template) in [
        ("/tcp", "rtsp-tcp"),
        ("/udp", "rtsp-udp"),
        ("/test", "rtsp-nodecode"),
    ] {
        let outcome = run(&request(
            &server.url(mount),
            template,
            0.0,
            Expectation::default(),
        ))
        .await;
        assert_eq!(outcome.health, Health::Up, "{template} on {mount}: {outcome:?}");
        assert_eq!(outcome.codec.as_deref(), Some("h264"), "{template}");
    }
    // Forcing the wrong transport fails rather than pretending.
    let outcome = run(&request(
        &server.url("/udp"),
        "rtsp-tcp",
        0.0,
        Expectation::default(),
    ))
    .await;
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
}

#[tokio::test]
async fn a_password_with_shell_and_pipeline_characters_reaches_the_camera_intact() {
    let server = RtspTestServer::start().expect("rtsp server");
    // DEMO_PASSWORD contains '!', the gst-launch link operator.
    let url = server.url_with_credentials("/auth", DEMO_USER, DEMO_PASSWORD);
    let outcome = run(&request(&url, "rtsp", 0.0, Expectation::default())).await;
    assert_eq!(outcome.health, Health::Up, "{outcome:?}");
    let wrong = server.url_with_credentials("/auth", DEMO_USER, "x\" ! fakesink name=evil \"y z");
    let outcome = run(&request(&wrong, "rtsp", 0.0, Expectation::default())).await;
    assert_eq!(outcome.reason, Some(Reason::Unauthorized), "{outcome:?}");
    assert!(!outcome.message.contains("evil"), "{}", outcome.message);
}

#[tokio::test]
async fn a_user_template_overrides_the_shipped_one_of_the_same_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("rtsp.pipeline"),
        "# local test source instead of a camera\nvideotestsrc pattern={pattern=snow} num-buffers=30 ! video/x-raw,width=160,height=120 ! appsink name=sink\n",
    )
    .expect("write template");
    let library = TemplateLibrary::new(Some(dir.path()));
    let template = library.find("rtsp").expect("found");
    assert_eq!(template.description, "local test source instead of a camera");
    let request = ProbeRequest {
        template,
        ..request("rtsp://127.0.0.1:1/unused", "rtsp", 0.0, Expectation::default())
    };
    let outcome = run(&request).await;
    assert_eq!(outcome.health, Health::Up, "{outcome:?}");
    assert_eq!((outcome.width, outcome.height), (Some(160), Some(120)));
}

#[test]
fn hardware_templates_name_the_missing_element_and_its_package() {
    let library = TemplateLibrary::new(None);
    let pi_decoder = library.find("rtsp-h264-v4l2").expect("shipped");
    match pi_decoder.check(&BTreeMap::new()) {
        Err(PipelineError::MissingElement { element, package, .. }) => {
            assert_eq!(element, "v4l2h264dec");
            assert!(package.contains("gstreamer1.0-plugins-good"), "{package}");
        }
        // On a Raspberry Pi with the decoder the template is simply valid.
        other => assert!(other.is_ok(), "{other:?}"),
    }
    let camera_module = library.find("libcamera").expect("shipped");
    if let Err(error) = camera_module.check(&BTreeMap::new()) {
        let text = error.to_string();
        assert!(
            text.contains("libcamerasrc") && text.contains("gstreamer1.0-libcamera"),
            "{text}"
        );
    }
    let webcam = library.find("v4l2").expect("shipped");
    assert!(!webcam.uses_url());
    assert!(
        webcam.check(&BTreeMap::new()).is_ok(),
        "v4l2src is installed; the device param has a default"
    );
}
