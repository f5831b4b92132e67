//! Probe behaviour a camera owner relies on beyond up/down: the RTSP session is torn down at
//! once (2-slot cameras), a silent camera costs at most the deadline, and snapshots are JPEGs.

mod common;

use common::child;
use std::time::{Duration, Instant};
use streampulse::demo::{RtspTestServer, SilentTcpServer};
use streampulse::heartbeat::{Health, Reason, TimeoutStage};
use streampulse::pipeline::TemplateLibrary;
use streampulse::probe::{probe, snapshot, ProbeRequest, Reaper};
use streampulse::url::CameraUrl;

fn request(url: &str, timeout: Duration) -> ProbeRequest {
    let template = TemplateLibrary::new(None).find("rtsp").expect("shipped template");
    ProbeRequest::new(Some(CameraUrl::new(url)), template, timeout)
}

#[tokio::test]
async fn each_probe_tears_its_rtsp_session_down_at_once() {
    let server = RtspTestServer::start().expect("rtsp server");
    let reaper = Reaper::new();
    let probe_count = 5;
    for _ in 0..probe_count {
        let outcome = probe(&request(&server.url("/test"), Duration::from_secs(5)), &reaper).await;
        assert_eq!(outcome.health, Health::Up, "{outcome:?}");
    }
    assert!(
        reaper.drain(Duration::from_secs(3), probe_count),
        "teardowns finish"
    );
    // Without TEARDOWN each session would linger for the server's 60 s session timeout.
    let deadline = Instant::now() + Duration::from_secs(2);
    while server.active_sessions() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(server.active_sessions(), 0, "every probe released its session");
}

#[tokio::test]
async fn a_silent_camera_costs_the_deadline_and_no_more() {
    let silent = SilentTcpServer::start().expect("silent server");
    let reaper = Reaper::new();
    let deadline = Duration::from_millis(1500);
    let started = Instant::now();
    let outcome = probe(&request(&silent.rtsp_url("/stream1"), deadline), &reaper).await;
    let took = started.elapsed();
    assert_eq!(
        outcome.reason,
        Some(Reason::Timeout(TimeoutStage::Headers)),
        "{outcome:?}"
    );
    assert!(
        took >= deadline && took < deadline + Duration::from_millis(250),
        "took {took:?}"
    );
    // Teardown happens off the probe's path and still completes.
    assert!(
        reaper.drain(Duration::from_secs(5), 1),
        "teardown of the silent probe finished"
    );
}

#[tokio::test]
async fn a_snapshot_is_a_clean_jpeg_of_the_stream() {
    let server = RtspTestServer::start().expect("rtsp server");
    let reaper = Reaper::new();
    let shot = snapshot(&request(&server.url("/test"), Duration::from_secs(5)), &reaper)
        .await
        .expect("snapshot");
    assert_eq!((shot.width, shot.height), (320, 240));
    assert!(
        shot.jpeg.starts_with(&[0xFF, 0xD8]) && shot.jpeg.ends_with(&[0xFF, 0xD9]),
        "a JPEG"
    );
    assert!(shot.jpeg.len() > 1000);
    let failure = snapshot(&request(&server.url("/nope"), Duration::from_secs(5)), &reaper)
        .await
        .expect_err("no such mount");
    assert_eq!(failure.reason, Some(Reason::NotFound));
    // The server goes when the test ends: not while a TEARDOWN is still in flight.
    assert!(reaper.drain(Duration::from_secs(3), 2), "teardowns finish");
}

/// The SSRC the fixed-SSRC mount announces, and the caps field rtspsrc would name after it.
const FIXED_SSRC: u32 = 305_419_896;
const SSRC_URL_VARIABLE: &str = "STREAMPULSE_TEST_SSRC_URL";

#[test]
fn rtsp_probes_intern_nothing_per_session() {
    // rtspsrc would turn the SDP's `a=ssrc:<id> cname:…` into a caps field named after the SSRC:
    // a GLib quark, never freed. Servers pick a new SSRC per session, so each probe would leak
    // one. The SSRC is fixed here, and the probe runs in a child process without the server, so
    // GLib can be asked whether the probe (and only it) interned that name.
    const NAME: &str = "rtsp_probes_intern_nothing_per_session";
    let field = format!("ssrc-{FIXED_SSRC}-cname");
    if child::is_child(NAME) {
        let url = std::env::var(SSRC_URL_VARIABLE).expect("the server's URL");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let reaper = Reaper::new();
        let outcome = runtime.block_on(probe(&request(&url, Duration::from_secs(10)), &reaper));
        assert_eq!(outcome.health, Health::Up, "{outcome:?}");
        assert!(reaper.drain(Duration::from_secs(5), 1), "teardown finished");
        assert!(
            gstreamer::glib::Quark::try_from_str(&field).is_none(),
            "`{field}` was interned: every probe of a server with per-session SSRCs would leak one"
        );
        return;
    }
    let launch = format!(
        "( videotestsrc is-live=true ! video/x-raw,width=160,height=120,framerate=15/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=15 \
         ! rtph264pay name=pay0 pt=96 ssrc={FIXED_SSRC} config-interval=-1 )"
    );
    let server = RtspTestServer::builder()
        .mount("/fixed-ssrc", &launch)
        .start()
        .expect("rtsp server");
    let url = server.url("/fixed-ssrc");
    let run = child::rerun(
        NAME,
        &[(SSRC_URL_VARIABLE, url.as_str())],
        Duration::from_secs(60),
    );
    assert!(run.succeeded(), "the probing child failed: {run:?}");
}

/// A server that answers DESCRIBE without `Content-Base` and with relative media controls, and
/// knows only the appended control URL (what ffmpeg and VLC send): rtspsrc's strict SETUP gets
/// a 404, it retries with the appended form, and the camera is up over UDP and TCP.
#[tokio::test]
async fn a_relative_control_without_a_base_header_is_up_like_ffmpeg_sees_it() {
    use std::io::{Read, Write};
    let server = RtspTestServer::start().expect("rtsp server");
    let camera = streampulse::demo::NoBaseRtspServer::start(server.addr()).expect("relay");
    let url = camera.url("/test");

    // The camera as a strict client meets it: no base header, and the RFC form is refused.
    let mut raw = std::net::TcpStream::connect(url.trim_start_matches("rtsp://").trim_end_matches("/test"))
        .expect("connect");
    raw.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut exchange = |request: String| {
        raw.write_all(request.as_bytes()).expect("send");
        let mut answer = vec![0u8; 4096];
        let length = raw.read(&mut answer).expect("answer");
        String::from_utf8_lossy(&answer[..length]).into_owned()
    };
    let described = exchange(format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"
    ));
    assert!(described.starts_with("RTSP/1.0 200"), "{described}");
    assert!(
        !described.to_ascii_lowercase().contains("content-base"),
        "{described}"
    );
    assert!(described.contains("a=control:stream=0"), "{described}");
    let strict = url.replace("/test", "/stream=0");
    let refused = exchange(format!(
        "SETUP {strict} RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
    ));
    assert!(refused.starts_with("RTSP/1.0 404"), "{refused}");

    let reaper = Reaper::new();
    for template in ["rtsp", "rtsp-tcp"] {
        let mut probe_request = request(&url, Duration::from_secs(5));
        probe_request.template = TemplateLibrary::new(None)
            .find(template)
            .expect("shipped template");
        let outcome = probe(&probe_request, &reaper).await;
        assert_eq!(outcome.health, Health::Up, "{template}: {outcome:?}");
    }
    assert!(reaper.drain(Duration::from_secs(5), 2), "teardowns finish");
}

/// A camera like the one above that never answers the strict SETUP (the form rtspsrc sends
/// first; issue 14 met one, called down while ffmpeg played it): the probe gives up on that
/// SETUP early, retries with the appended form within the same deadline, and remembers it, so
/// the next probe of the camera starts with it.
#[tokio::test]
async fn an_unanswered_strict_setup_is_retried_with_the_appended_control_and_remembered() {
    use streampulse::probe::learned::ControlForm;
    let server = RtspTestServer::start().expect("rtsp server");
    let camera = streampulse::demo::NoBaseRtspServer::start_with(
        server.addr(),
        streampulse::demo::StrictSetup::Ignore,
    )
    .expect("relay");
    let reaper = Reaper::new();
    let probe_request = request(&camera.url("/test"), Duration::from_secs(8));
    let outcome = probe(&probe_request, &reaper).await;
    assert_eq!(outcome.health, Health::Up, "{outcome:?}");
    assert_eq!(probe_request.memory.control_form(), ControlForm::Appended);
    // The next probe starts with the appended form: up, and no early give-up needed.
    let again = probe(&probe_request, &reaper).await;
    assert_eq!(again.health, Health::Up, "{again:?}");
    assert_eq!(probe_request.memory.control_form(), ControlForm::Appended);
    // A snapshot-like fresh request knows nothing yet and still gets there.
    let fresh = probe(&request(&camera.url("/test"), Duration::from_secs(8)), &reaper).await;
    assert_eq!(fresh.health, Health::Up, "{fresh:?}");
    // The plain server, whose SDP carries a base, stays up with the form rtspsrc resolves.
    let plain = request(&server.url("/test"), Duration::from_secs(8));
    assert_eq!(probe(&plain, &reaper).await.health, Health::Up);
    assert_eq!(plain.memory.control_form(), ControlForm::AsResolved);
    assert!(reaper.drain(Duration::from_secs(5), 4), "teardowns finish");
}

/// A timeout names the last RTSP request the camera answered and the one it did not.
#[tokio::test]
async fn an_rtsp_timeout_names_the_request_left_unanswered() {
    let silent = SilentTcpServer::start().expect("silent server");
    let reaper = Reaper::new();
    let outcome = probe(
        &request(&silent.rtsp_url("/cam"), Duration::from_secs(3)),
        &reaper,
    )
    .await;
    assert_eq!(
        outcome.reason,
        Some(Reason::Timeout(TimeoutStage::Headers)),
        "{outcome:?}"
    );
    assert!(
        outcome.message.contains("no answer to OPTIONS"),
        "{}",
        outcome.message
    );
}

/// Issue 14's two misleading verdicts, measured against a UDP-only H.264 mount: the `rtsp-tcp`
/// template said "video could not be decoded", `rtsp-h265` said "not-linked". Both now name what
/// happened and what to change; the reason codes stay what they were for the API.
#[tokio::test]
async fn a_template_that_does_not_fit_the_camera_says_what_to_use_instead() {
    let server = RtspTestServer::start().expect("rtsp server");
    let reaper = Reaper::new();
    let with_template = |url: &str, template: &str| {
        let mut probe_request = request(url, Duration::from_secs(5));
        probe_request.template = TemplateLibrary::new(None)
            .find(template)
            .expect("shipped template");
        probe_request
    };
    let tcp_on_udp_only = probe(&with_template(&server.url("/udp"), "rtsp-tcp"), &reaper).await;
    assert_eq!(
        tcp_on_udp_only.reason,
        Some(Reason::Protocol),
        "{tcp_on_udp_only:?}"
    );
    assert!(
        tcp_on_udp_only
            .message
            .contains("transports the `rtsp-tcp` template allows")
            && tcp_on_udp_only.message.contains("try `rtsp`"),
        "{}",
        tcp_on_udp_only.message
    );
    let h265_on_h264 = probe(&with_template(&server.url("/test"), "rtsp-h265"), &reaper).await;
    assert_eq!(h265_on_h264.reason, Some(Reason::Protocol), "{h265_on_h264:?}");
    assert!(
        h265_on_h264.message.contains("sends H264") && h265_on_h264.message.contains("use `rtsp`"),
        "{}",
        h265_on_h264.message
    );
    assert!(reaper.drain(Duration::from_secs(5), 2), "teardowns finish");
}

/// A camera behind a firewall that drops UDP: the first probe waits for rtspsrc's UDP timeout
/// (40% of the deadline) before it falls back to TCP; the camera's memory then starts the next
/// probes over TCP, without the wait. Margins are seconds, not milliseconds.
#[tokio::test]
async fn a_camera_whose_udp_is_blocked_is_probed_over_tcp_once_learned() {
    use streampulse::probe::learned::Transport;
    let server = RtspTestServer::start().expect("rtsp server");
    let camera = streampulse::demo::RtspRelay::udp_blocked(server.addr()).expect("relay");
    let reaper = Reaper::new();
    let probe_request = request(&camera.url("/test"), Duration::from_secs(10));
    let first = probe(&probe_request, &reaper).await;
    assert_eq!(first.health, Health::Up, "{}", first.message);
    let first_latency = first.latency_ms.expect("latency");
    assert!(
        first_latency >= 3_000,
        "waited for the UDP timeout: {first_latency} ms"
    );
    assert_eq!(probe_request.memory.transport(), Transport::Tcp);
    for _ in 0..2 {
        let learned = probe(&probe_request, &reaper).await;
        assert_eq!(learned.health, Health::Up, "{}", learned.message);
        let latency = learned.latency_ms.expect("latency");
        assert!(
            latency < 2_000,
            "no UDP wait once learned: {latency} ms (first: {first_latency} ms)"
        );
        eprintln!("udp-blocked camera: first probe {first_latency} ms, learned {latency} ms");
    }
    // A camera that does take UDP is not pushed to TCP.
    let plain = request(&server.url("/test"), Duration::from_secs(10));
    assert_eq!(probe(&plain, &reaper).await.health, Health::Up);
    assert_eq!(plain.memory.transport(), Transport::Auto);
    assert!(reaper.drain(Duration::from_secs(5), 4), "teardowns finish");
}

/// A camera learned as TCP-only that now refuses TCP (its settings changed) is not lost: the
/// probe forgets the transport and tries again as the template says, in the same probe.
#[tokio::test]
async fn a_learned_transport_the_camera_no_longer_takes_is_forgotten_at_once() {
    use streampulse::probe::learned::Transport;
    let server = RtspTestServer::start().expect("rtsp server");
    let reaper = Reaper::new();
    let probe_request = request(&server.url("/udp"), Duration::from_secs(10));
    probe_request.memory.remember_transport(Transport::Tcp);
    let outcome = probe(&probe_request, &reaper).await;
    assert_eq!(outcome.health, Health::Up, "{}", outcome.message);
    assert_eq!(probe_request.memory.transport(), Transport::Auto);
    assert!(reaper.drain(Duration::from_secs(5), 2), "teardowns finish");
}
