//! Picture verdicts and pipeline templates against real GStreamer sources on loopback: black,
//! frozen (within a probe and across probes), low frame rate, wrong size, a healthy moving
//! picture; templates from a user directory, hostile credentials, missing hardware elements.
//! The calibration scenes (`demo::scenes`) with the shipped defaults: picture checks, sticky
//! verdicts, a frozen picture under a ticking clock, noisy, dark and moving live scenes.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use streampulse::config::{Expectation, QualityConfig};
use streampulse::demo::scenes::WarmClients;
use streampulse::demo::{CustomMount, MjpegTestServer, RtspTestServer, DEMO_PASSWORD, DEMO_USER};
use streampulse::heartbeat::{Health, ProbeOutcome, Reason};
use streampulse::pipeline::{PipelineError, TemplateLibrary};
use streampulse::probe::picture::PictureMemory;
use streampulse::probe::quality::PictureSummary;
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
        picture_check: true,
        memory: Default::default(),
        detect: None,
        transport: Default::default(),
        tls: Default::default(),
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
    // The window outlasts the 2 s GOP: frames decoded before the first keyframe are not
    // pictures (the decoder makes them up), so the window must hold a keyframe and what follows.
    let outcome = run(&request(
        &rtsp.url("/frozen"),
        "rtsp",
        2.5,
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

/// A camera whose GOP is long (here 200 s) is up at once for every RTSP template: the first
/// frame proves the stream flows, decoded (corrupt, joined mid-GOP) or not (`rtsp-nodecode`
/// once waited for a keyframe: down at the deadline here, and 2 s a probe on a 2 s GOP).
#[tokio::test]
async fn a_long_gop_camera_joined_between_keyframes_is_up_with_and_without_decoding() {
    let launch = "( videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=15/1 \
                  ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=3000 \
                  ! rtph264pay name=pay0 pt=96 )";
    let server = RtspTestServer::builder()
        .custom_mount(CustomMount {
            shared: true,
            ..CustomMount::new("/longgop", launch)
        })
        .start()
        .expect("rtsp server");
    // A viewer keeps the camera's one encoder running past its first keyframe.
    let _viewer = WarmClients::start(&[server.url("/longgop")]).expect("viewer");
    tokio::time::sleep(Duration::from_secs(3)).await;
    for template in ["rtsp-nodecode", "rtsp"] {
        let outcome = run(&request(
            &server.url("/longgop"),
            template,
            0.0,
            Expectation::default(),
        ))
        .await;
        assert_eq!(outcome.health, Health::Up, "{template}: {outcome:?}");
    }
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

// ---------------------------------------------------------------------------------------------
// Calibration scenes with the shipped defaults (issue 13)

/// A stream probed the way the monitor does: a picture check when one is due under the shipped
/// `picture_check_minutes`, verdicts that stand between checks.
struct Watched {
    request: ProbeRequest,
    memory: PictureMemory,
}

/// One probe as the monitor saw it.
struct Probed {
    outcome: ProbeOutcome,
    /// The clean picture it judged, if it had one.
    picture: Option<PictureSummary>,
    checked: bool,
    /// From the probe's start to its teardown's end: what the monitor's pool slot covers.
    slot_hold: Duration,
}

impl Watched {
    fn new(url: &str, template: &str) -> Watched {
        Watched {
            request: ProbeRequest {
                quality: QualityConfig::default(),
                // A check ends at the first clean keyframe (GOP 2 s); the long deadline only
                // matters on a loaded machine, where CI once saw a check end without one.
                timeout: Duration::from_secs(15),
                ..request(url, template, 0.0, Expectation::default())
            },
            memory: PictureMemory::default(),
        }
    }

    async fn probe(&mut self) -> Probed {
        let checked = self
            .memory
            .check_due(self.request.quality.picture_check, Instant::now());
        self.request.picture_check = checked;
        self.request.previous_picture = self.memory.previous();
        let started = Instant::now();
        let mut outcome = run(&self.request).await;
        let slot_hold = started.elapsed();
        let picture = outcome.picture.clone();
        let ts_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        self.memory.absorb(&mut outcome, ts_ms, Instant::now());
        Probed {
            outcome,
            picture,
            checked,
            slot_hold,
        }
    }
}

/// Prints what the cell comparison saw (the calibration numbers) and returns the outcome.
fn report(scene: &str, before: Option<&PictureSummary>, probed: &Probed) {
    let quality = QualityConfig::default();
    let Some(after) = &probed.picture else {
        eprintln!("{scene}: no clean picture; {:?}", probed.outcome.health);
        return;
    };
    let cells = &after.cells;
    let mut line = format!(
        "{scene}: mean {:.1}, brightest cell {:.1}, noise {:.2}",
        after.mean_luma,
        cells.brightest(),
        cells.noise()
    );
    if let Some(before) = before {
        let c = before.compare(after, &quality);
        line += &format!(
            "; vs previous: {} cells changed, {} unchanged with detail, median change {:.2}, largest {:.1}",
            c.changed, c.unchanged_with_detail, c.median_change, c.largest_change
        );
    }
    eprintln!(
        "{line} → {} {:?} {}",
        probed.outcome.health, probed.outcome.reason, probed.outcome.message
    );
}

/// A camera's encoder has been running for a while when it is probed. Freshly started, x264's
/// rate control has not settled: its first keyframes of one frozen picture differ everywhere
/// (by ~3.5 levels a cell); two GOPs (4 s) later they differ only where the clock ticks.
async fn settle() {
    tokio::time::sleep(Duration::from_secs(5)).await;
}

/// Checks pictures until two have been compared; the outcome of the second.
async fn two_checks(stream: &mut Watched, scene: &str) -> ProbeOutcome {
    let first = stream.probe().await;
    assert!(first.checked, "the first probe is a picture check");
    report(scene, None, &first);
    let previous = first.picture.clone().unwrap_or_else(|| {
        panic!(
            "{scene}: a clean picture within the deadline: {:?}",
            first.outcome
        )
    });
    // Apart like two heartbeats: a clock overlay ticks at least once.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = stream.probe().await;
    assert!(
        second.checked,
        "the second probe is a picture check too (frozen needs two)"
    );
    report(scene, Some(&previous), &second);
    assert!(
        second.picture.is_some(),
        "{scene}: no clean picture in {:?}: {:?}",
        second.slot_hold,
        second.outcome
    );
    second.outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_h264_with_a_2s_gop_is_black_once_a_second_check_confirms_it_and_stays_black_between_checks() {
    let server = RtspTestServer::builder().scenes().start().expect("rtsp server");
    let mut black = Watched::new(&server.url("/scene/black"), "rtsp");
    // The first check sees black; black is confirmed by a second clean picture before it stands
    // (a decoder can hand over one flat black frame that no encoder sent).
    let unconfirmed = black.probe().await;
    report("black h264", None, &unconfirmed);
    assert!(unconfirmed.checked);
    assert_eq!(
        unconfirmed.outcome.health,
        Health::Up,
        "{:?}",
        unconfirmed.outcome
    );
    let first = black.probe().await;
    assert!(first.checked, "the confirmation is a picture check too");
    assert_degraded(&first.outcome, Reason::Black, "mean luma");
    // Between checks, probes join mid-GOP, see no clean picture, and the verdict stands.
    for _ in 0..3 {
        let ordinary = black.probe().await;
        assert_degraded(&ordinary.outcome, Reason::Black, "mean luma");
    }
    let standing = black.memory.standing().expect("a standing verdict");
    assert_eq!(standing.reason, Reason::Black);

    // A camera that was fine at its last check and then went black: the next check, due after
    // the shipped 5 minutes, says so.
    let mut turned = Watched::new(&server.url("/scene/black"), "rtsp");
    let five_minutes_ago = Instant::now()
        .checked_sub(QualityConfig::default().picture_check)
        .expect("the machine has been up for 5 minutes");
    let mut live = ProbeOutcome {
        picture: first.picture.clone(),
        ..ProbeOutcome::up(100)
    };
    turned.memory.absorb(&mut live, 0, five_minutes_ago);
    turned.memory.absorb(
        &mut ProbeOutcome {
            picture: first.picture.clone(),
            ..ProbeOutcome::up(100)
        },
        0,
        five_minutes_ago,
    );
    let due = turned.probe().await;
    assert!(due.checked, "a check is due after picture_check_minutes");
    assert_eq!(
        due.outcome.health,
        Health::Up,
        "not yet confirmed: {:?}",
        due.outcome
    );
    // ... and the next heartbeat, within picture_check_minutes + one heartbeat, confirms it.
    let confirmed = turned.probe().await;
    assert!(confirmed.checked);
    assert_degraded(&confirmed.outcome, Reason::Black, "mean luma");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_picture_under_a_ticking_clock_is_frozen_mjpeg_and_h264() {
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let mut frozen = Watched::new(&mjpeg.url("/scene/frozen-clock"), "mjpeg");
    let outcome = two_checks(&mut frozen, "frozen+clock mjpeg").await;
    assert_degraded(&outcome, Reason::Frozen, "the same picture in");

    let rtsp = RtspTestServer::builder().scenes().start().expect("rtsp server");
    settle().await;
    let mut frozen = Watched::new(&rtsp.url("/scene/frozen-clock"), "rtsp");
    let mut outcome = two_checks(&mut frozen, "frozen+clock h264").await;
    // Keyframes from before the rate control settled may still differ everywhere: a few more
    // checks at most (on a loaded machine the encoder takes longer to settle).
    for _ in 0..3 {
        if outcome.reason == Some(Reason::Frozen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1200)).await;
        frozen.request.quality.picture_check = Duration::ZERO;
        let previous = frozen.memory.previous().map(|(picture, _)| picture);
        let third = frozen.probe().await;
        report("frozen+clock h264", previous.as_ref(), &third);
        outcome = third.outcome;
        frozen.request.quality.picture_check = QualityConfig::default().picture_check;
    }
    assert_degraded(&outcome, Reason::Frozen, "the same picture in");
    // And it stands on the ordinary probes that follow, with the time of its picture.
    let ordinary = frozen.probe().await;
    assert!(!ordinary.checked);
    // (Its first frame is usually corrupt: the verdict of the last check, "(picture of …)".)
    assert_degraded(&ordinary.outcome, Reason::Frozen, "the same picture in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_scenes_noisy_still_dark_and_moving_are_up() {
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let rtsp = RtspTestServer::builder().scenes().start().expect("rtsp server");
    settle().await;
    for (scene, url, template) in [
        ("noisy still mjpeg", mjpeg.url("/scene/still"), "mjpeg"),
        ("noisy still h264", rtsp.url("/scene/still"), "rtsp"),
        ("dark live mjpeg", mjpeg.url("/scene/dark"), "mjpeg"),
        ("dark live h264", rtsp.url("/scene/dark"), "rtsp"),
        ("ball on black mjpeg", mjpeg.url("/"), "mjpeg"),
        ("ball on black h264", rtsp.url("/scene/ball"), "rtsp"),
        ("moving h264", rtsp.url("/test"), "rtsp"),
    ] {
        let mut stream = Watched::new(&url, template);
        let outcome = two_checks(&mut stream, scene).await;
        assert_eq!(outcome.health, Health::Up, "{scene}: {outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ball_moving_over_black_is_never_black_nor_frozen() {
    let rtsp = RtspTestServer::builder().scenes().start().expect("rtsp server");
    let mut ball = Watched::new(&rtsp.url("/scene/ball"), "rtsp");
    ball.request.quality.picture_check = Duration::ZERO;
    for round in 0..12 {
        let probed = ball.probe().await;
        assert_eq!(
            probed.outcome.health,
            Health::Up,
            "round {round}: {:?}",
            probed.outcome
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordinary_probes_of_an_h264_camera_free_it_at_once() {
    let rtsp = RtspTestServer::builder().scenes().start().expect("rtsp server");
    let mut camera = Watched::new(&rtsp.url("/scene/still"), "rtsp");
    two_checks(&mut camera, "slot hold h264").await;
    let mut holds = Vec::new();
    for _ in 0..9 {
        let probed = camera.probe().await;
        assert!(!probed.checked, "no check due within picture_check_minutes");
        assert_eq!(probed.outcome.health, Health::Up, "{:?}", probed.outcome);
        holds.push(probed.slot_hold);
    }
    holds.sort();
    let median = holds[holds.len() / 2];
    eprintln!("ordinary probes' slot hold: median {median:?}, all {holds:?}");
    // A GOP is 2 s: waiting for a keyframe would hold the camera ~1 s on average.
    assert!(median < Duration::from_millis(500), "median slot hold {median:?}");
}
