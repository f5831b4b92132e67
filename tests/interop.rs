//! Cameras that bend RTSP the ways real ones do (`docs/interop.md`, one test per row): each is
//! the demo RTSP server behind a [`RtspRelay`] that plays one [`Quirk`], probed as a user's
//! stream would be, with the shipped templates.

use std::time::Duration;
use streampulse::demo::{Quirk, RtspRelay, RtspTestServer};
use streampulse::heartbeat::Health;
use streampulse::heartbeat::ProbeOutcome;
use streampulse::pipeline::TemplateLibrary;
use streampulse::probe::{probe, ProbeRequest, Reaper};
use streampulse::url::CameraUrl;

const DEADLINE: Duration = Duration::from_secs(8);

fn request_for(url: &str, template: &str) -> ProbeRequest {
    ProbeRequest::new(
        Some(CameraUrl::new(url)),
        TemplateLibrary::new(None)
            .find(template)
            .expect("shipped template"),
        DEADLINE,
    )
}

async fn probe_with(url: &str, template: &str, reaper: &Reaper) -> ProbeOutcome {
    probe(&request_for(url, template), reaper).await
}

/// What a probe of the camera playing `quirk` gave, over UDP-first and TCP-only templates.
async fn probe_quirky(quirk: Quirk, credentials: &str) -> Vec<(&'static str, ProbeOutcome)> {
    let server = RtspTestServer::start().expect("rtsp server");
    let camera = RtspRelay::with_quirk(server.addr(), quirk).expect("relay");
    let url = camera
        .url("/test")
        .replacen("rtsp://", &format!("rtsp://{credentials}"), 1);
    let reaper = Reaper::new();
    let mut outcomes = Vec::new();
    for template in ["rtsp", "rtsp-tcp"] {
        outcomes.push((template, probe_with(&url, template, &reaper).await));
    }
    assert!(reaper.drain(Duration::from_secs(10), 2), "teardowns finish");
    assert!(camera.quirks_played() > 0, "the camera played {quirk:?}");
    outcomes
}

fn summary(outcome: &ProbeOutcome) -> String {
    format!("{:?} {:?}: {}", outcome.health, outcome.reason, outcome.message)
}

async fn assert_up(quirk: Quirk, credentials: &str) {
    for (template, outcome) in probe_quirky(quirk, credentials).await {
        eprintln!("{quirk:?} {template}: {}", summary(&outcome));
        assert_eq!(
            outcome.health,
            Health::Up,
            "{quirk:?} {template}: {}",
            summary(&outcome)
        );
    }
}

#[tokio::test]
async fn a_camera_that_rejects_options_is_up() {
    assert_up(Quirk::RejectOptions, "").await;
}

#[tokio::test]
async fn a_setup_answer_without_server_port_is_up() {
    assert_up(Quirk::NoServerPort, "").await;
}

#[tokio::test]
async fn odd_session_timeouts_are_up() {
    for seconds in [0, 1, 4_294_967] {
        assert_up(Quirk::SessionTimeout(seconds), "").await;
    }
}

#[tokio::test]
async fn a_describe_body_one_byte_shorter_than_declared_is_up() {
    assert_up(Quirk::ContentLengthOff(-1), "").await;
}

/// Every client waits for the byte that never comes (ffmpeg too): down, and the reason names
/// the request left unanswered.
#[tokio::test]
async fn a_describe_body_one_byte_longer_than_declared_names_describe() {
    for (template, outcome) in probe_quirky(Quirk::ContentLengthOff(1), "").await {
        let summary = summary(&outcome);
        assert_eq!(outcome.health, Health::Down, "{template}: {summary}");
        assert!(
            outcome.message.contains("no answer to DESCRIBE"),
            "{template}: {summary}"
        );
    }
}

#[tokio::test]
async fn a_challenge_that_switches_from_basic_to_digest_is_up() {
    assert_up(Quirk::BasicThenDigest { user: "demo" }, "demo:s3cret@").await;
}

#[tokio::test]
async fn a_redirect_is_followed() {
    assert_up(Quirk::Redirect, "").await;
}

/// What ffmpeg (the baseline users compare with) does with each quirk, for the table in
/// `docs/interop.md`: `cargo test --test interop -- --ignored --nocapture` (needs `ffprobe`).
#[test]
#[ignore = "prints ffprobe's behaviour for docs/interop.md; needs ffmpeg"]
fn ffprobe_on_each_quirk() {
    let quirks = [
        Quirk::RejectOptions,
        Quirk::NoServerPort,
        Quirk::SessionTimeout(0),
        Quirk::SessionTimeout(4_294_967),
        Quirk::ContentLengthOff(-1),
        Quirk::ContentLengthOff(1),
        Quirk::BasicThenDigest { user: "demo" },
        Quirk::Redirect,
    ];
    let server = RtspTestServer::start().expect("rtsp server");
    for quirk in quirks {
        let camera = RtspRelay::with_quirk(server.addr(), quirk).expect("relay");
        let url = camera.url("/test").replacen("rtsp://", "rtsp://demo:s3cret@", 1);
        for transport in ["udp", "tcp"] {
            let output = std::process::Command::new("timeout")
                .args(["10", "ffprobe", "-v", "error", "-rtsp_transport", transport])
                .args([
                    "-select_streams",
                    "v:0",
                    "-show_entries",
                    "stream=codec_name,width",
                ])
                .args(["-of", "csv=p=0", &url])
                .output()
                .expect("ffprobe runs");
            println!(
                "{quirk:?} {transport}: exit {:?}, out {:?}, err {:?}",
                output.status.code(),
                String::from_utf8_lossy(&output.stdout).trim(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
    }
    // Keep-alives only matter to a session that lasts: ffmpeg reads 14 s of it.
    let camera = RtspRelay::with_quirk(server.addr(), Quirk::RejectGetParameter).expect("relay");
    let output = std::process::Command::new("timeout")
        .args(["30", "ffmpeg", "-v", "error", "-rtsp_transport", "udp", "-i"])
        .args([&camera.url("/test"), "-t", "14", "-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    println!(
        "RejectGetParameter udp, 14 s: exit {:?}, keep-alives refused {}, err {:?}",
        output.status.code(),
        camera.quirks_played(),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// A camera that answers OPTIONS and DESCRIBE, then stalls at SETUP or PLAY: down at the
/// deadline, naming the last request answered and the one that was not.
#[tokio::test]
async fn a_camera_that_stalls_mid_exchange_names_the_request_left_unanswered() {
    for (stalled, says) in [
        ("SETUP", "answered DESCRIBE, no answer to SETUP"),
        ("PLAY", "answered SETUP, no answer to PLAY"),
    ] {
        for (template, outcome) in probe_quirky(Quirk::Stall(stalled), "").await {
            let summary = summary(&outcome);
            assert_eq!(outcome.health, Health::Down, "{stalled} {template}: {summary}");
            assert!(outcome.message.contains(says), "{stalled} {template}: {summary}");
        }
    }
}

/// A live view lasts longer than a session timeout, so rtspsrc sends keep-alives; a camera that
/// rejects `GET_PARAMETER` must not end it (probes end long before their first keep-alive).
#[tokio::test]
async fn a_live_view_survives_rejected_keep_alives() {
    use std::time::Instant;
    use streampulse::probe::live::LiveFeed;
    let server = RtspTestServer::start().expect("rtsp server");
    let camera = RtspRelay::with_quirk(server.addr(), Quirk::RejectGetParameter).expect("relay");
    let reaper = Reaper::new();
    let request = request_for(&camera.url("/test"), "rtsp-udp");
    let (mut feed, _first) = match LiveFeed::start(&request, &reaper).await {
        Ok(started) => started,
        Err(outcome) => panic!("live feed: {}", summary(&outcome)),
    };
    // Four announced session timeouts: several keep-alives, each refused.
    let watched = Instant::now();
    while watched.elapsed() < Duration::from_secs(16) {
        let frame = tokio::time::timeout(Duration::from_secs(5), feed.next_frame()).await;
        assert!(
            matches!(frame, Ok(Some(_))),
            "frames stopped after {:?} ({} keep-alives refused)",
            watched.elapsed(),
            camera.quirks_played()
        );
    }
    assert!(
        camera.quirks_played() >= 2,
        "keep-alives refused: {}",
        camera.quirks_played()
    );
    drop(feed);
    assert!(reaper.drain(Duration::from_secs(10), 1), "teardown finishes");
}

/// An MJPEG camera's timeout names how far it got, as an RTSP one does: connected but no HTTP
/// answer, answered but no part, parts but no decodable frame.
#[tokio::test]
async fn an_mjpeg_timeout_names_the_stage_it_stopped_at() {
    use streampulse::demo::{MjpegTestServer, SilentTcpServer};
    use streampulse::heartbeat::{Reason, TimeoutStage};
    let silent = SilentTcpServer::start().expect("silent server");
    let mjpeg = MjpegTestServer::start().expect("mjpeg server");
    let reaper = Reaper::new();
    let cases = [
        (
            format!("http://{}/", silent.addr()),
            TimeoutStage::Headers,
            "TCP connection accepted, no answer",
        ),
        (
            mjpeg.url("/headers-only"),
            TimeoutStage::FirstFrame,
            "answered the HTTP request, then sent no video data",
        ),
    ];
    for (url, stage, says) in cases {
        let outcome = probe_with(&url, "mjpeg", &reaper).await;
        assert_eq!(
            outcome.reason,
            Some(Reason::Timeout(stage)),
            "{url}: {}",
            summary(&outcome)
        );
        assert!(outcome.message.contains(says), "{url}: {}", summary(&outcome));
    }
}
