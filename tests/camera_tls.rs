//! `rtsps://` and `https://` cameras with self-signed certificates (`tls:` per stream), against a
//! real RTSPS server (gst-rtsp-server with a certificate) and the MJPEG server behind a real TLS
//! front: refused by default with the fingerprint to pin, up when pinned, "certificate changed"
//! when the camera's certificate is replaced, up with `verify: false`; live view and `check` too.

mod common;

use std::time::Duration;
use streampulse::config::{parse, ConfigError, Fingerprint};
use streampulse::demo::{MjpegTestServer, RtspTestServer, SelfSignedPair, TlsFront};
use streampulse::heartbeat::{Health, ProbeOutcome, Reason};
use streampulse::pipeline::TemplateLibrary;
use streampulse::probe::live::LiveFeed;
use streampulse::probe::{probe, snapshot, ProbeRequest, Reaper};

const TIMEOUT_SECONDS: u64 = 8;

/// The probe request of a stream configured with `tls_line` (e.g. `tls: {verify: false}`), read
/// through the config like the monitor's.
fn request(url: &str, tls_line: &str) -> ProbeRequest {
    let text = format!(
        "streams:\n  - name: cam\n    url: {url}\n    heartbeat_seconds: 30\n    \
         probe_timeout_seconds: {TIMEOUT_SECONDS}\n    {tls_line}\n"
    );
    let config = match parse(&text, std::path::Path::new("/tmp/camera_tls.yaml")) {
        Ok(config) => config,
        Err(e) => panic!("{e}"),
    };
    let mut request =
        ProbeRequest::for_stream(&config.streams[0], &TemplateLibrary::new(None)).expect("shipped template");
    request.picture_check = false;
    request
}

fn pin(fingerprint: &Fingerprint) -> String {
    format!("tls: {{fingerprint: \"{fingerprint}\"}}")
}

fn pair() -> SelfSignedPair {
    SelfSignedPair::generate(&["camera.example"]).expect("self-signed pair")
}

fn assert_up(outcome: &ProbeOutcome, what: &str) {
    assert_eq!(outcome.health, Health::Up, "{what}: {outcome:?}");
}

fn assert_untrusted(outcome: &ProbeOutcome, shown: &Fingerprint) {
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert_eq!(outcome.reason, Some(Reason::Tls), "{outcome:?}");
    assert!(outcome.message.contains("not trusted"), "{}", outcome.message);
    assert!(
        outcome.message.contains(&pin(shown)),
        "ready to paste: {}",
        outcome.message
    );
}

fn assert_changed(outcome: &ProbeOutcome, expected: &Fingerprint, got: &Fingerprint) {
    assert_eq!(outcome.health, Health::Down, "{outcome:?}");
    assert_eq!(outcome.reason, Some(Reason::Tls), "{outcome:?}");
    let said = format!("certificate changed: expected {expected} got {got}");
    assert!(outcome.message.contains(&said), "{}", outcome.message);
}

#[tokio::test]
async fn rtsps_self_signed_refused_then_pinned_then_changed_and_unverified() {
    let first = pair();
    let mut server = RtspTestServer::builder()
        .shared(None)
        .tls(&first.combined_pem())
        .start()
        .expect("rtsps server");
    let url = server.url("/test");
    assert!(url.starts_with("rtsps://"), "{url}");
    let reaper = Reaper::new();

    let refused = probe(&request(&url, ""), &reaper).await;
    assert_untrusted(&refused, &first.fingerprint);

    let pinned = request(&url, &pin(&first.fingerprint));
    assert_up(&probe(&pinned, &reaper).await, "pinned");
    let shot = snapshot(&pinned, &reaper)
        .await
        .expect("a snapshot through the pin");
    assert!(shot.jpeg.starts_with(&[0xFF, 0xD8]), "a JPEG");

    assert_up(
        &probe(&request(&url, "tls: {verify: false}"), &reaper).await,
        "verify: false",
    );

    let second = pair();
    server
        .replace_tls(&second.combined_pem())
        .expect("new certificate");
    assert_changed(
        &probe(&pinned, &reaper).await,
        &first.fingerprint,
        &second.fingerprint,
    );
    assert_up(
        &probe(&request(&url, &pin(&second.fingerprint)), &reaper).await,
        "new pin",
    );
}

#[tokio::test]
async fn https_mjpeg_self_signed_refused_then_pinned_then_changed_and_unverified() {
    let mjpeg = tokio::task::spawn_blocking(MjpegTestServer::start)
        .await
        .expect("task")
        .expect("mjpeg server");
    let first = pair();
    let front = TlsFront::start(mjpeg.addr(), &first).expect("TLS front");
    let url = front.https_url("/stream");
    let reaper = Reaper::new();

    let refused = probe(&request(&url, ""), &reaper).await;
    assert_untrusted(&refused, &first.fingerprint);
    match LiveFeed::start(&request(&url, ""), &reaper).await {
        Ok(_) => panic!("the live view opened an untrusted camera"),
        Err(outcome) => assert_untrusted(&outcome, &first.fingerprint),
    }

    let pinned = request(&url, &pin(&first.fingerprint));
    assert_up(&probe(&pinned, &reaper).await, "pinned");
    assert_up(
        &probe(&request(&url, "tls: {verify: false}"), &reaper).await,
        "verify: false",
    );

    let second = pair();
    front.replace_certificate(&second).expect("new certificate");
    assert_changed(
        &probe(&pinned, &reaper).await,
        &first.fingerprint,
        &second.fingerprint,
    );
    // The live view honours the pin too.
    match LiveFeed::start(&pinned, &reaper).await {
        Ok(_) => panic!("the live view opened a camera whose certificate changed"),
        Err(outcome) => assert_changed(&outcome, &first.fingerprint, &second.fingerprint),
    }
    let repinned = request(&url, &pin(&second.fingerprint));
    let (feed, _first_frame) = LiveFeed::start(&repinned, &reaper)
        .await
        .expect("the live view through the new pin");
    drop(feed);
}

#[test]
fn tls_settings_are_checked_at_load_with_line_and_field() {
    let text = "streams:\n  - name: a\n    url: rtsps://h/a\n    tls: {fingerprint: \"sha256:AB:CD\"}\n\
                \x20 - name: b\n    url: rtsp://h/b\n    tls: {verify: false}\n\
                \x20 - name: c\n    url: https://h/c\n    tls:\n      verify: false\n      \
                fingerprint: \"sha256:{}\"\n  - name: d\n    url: https://h/d\n    tls: {verfy: false}\n";
    let text = text.replace("{}", &"ab".repeat(32));
    let problems = match parse(&text, std::path::Path::new("/tmp/tls.yaml")) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    };
    let found: Vec<(Option<usize>, &str)> = problems.iter().map(|p| (p.line, p.field.as_str())).collect();
    assert_eq!(
        found,
        [
            (Some(4), "streams[0].tls.fingerprint"),
            (Some(7), "streams[1].tls"),
            (Some(11), "streams[2].tls.verify"),
            (Some(15), "streams[3].tls.verfy"),
        ],
        "{problems:#?}"
    );
    assert!(
        problems[0].message.contains("64 hex digits"),
        "{}",
        problems[0].message
    );
}

#[test]
fn check_refuses_an_untrusted_rtsps_camera_and_takes_a_pin() {
    let pair = pair();
    let server = RtspTestServer::builder()
        .shared(None)
        .tls(&pair.combined_pem())
        .start()
        .expect("rtsps server");
    let url = server.url("/test");
    let limit = Duration::from_secs(20);
    let refused = common::run(&["check", &url, "--json", "--timeout-ms", "8000"], limit);
    assert_eq!(refused.code(), Some(1), "{refused:#?}");
    let json = refused.json();
    assert_eq!(json["reason"], "tls", "{refused:#?}");
    let message = json["message"].as_str().unwrap_or_default();
    assert!(message.contains(&pair.fingerprint.to_string()), "{message}");

    let fingerprint = pair.fingerprint.to_string().to_lowercase().replace(':', "");
    let fingerprint = fingerprint.replacen("sha256", "sha256:", 1);
    let pinned = common::run(
        &[
            "check",
            &url,
            "--tls-fingerprint",
            &fingerprint,
            "--timeout-ms",
            "8000",
        ],
        limit,
    );
    assert_eq!(pinned.code(), Some(0), "{pinned:#?}");
}
