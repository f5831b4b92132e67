//! The demo servers behave like the cameras (and the NTP server) they stand in for: checked with raw
//! sockets for the protocol details and with real GStreamer client pipelines for "a frame arrives".

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::time::{Duration, Instant};
use streampulse::clock::{query_offset_ms, ClockError};
use streampulse::demo::{
    closed_port, closed_udp_port, MjpegTestServer, RtspAuthMethods, RtspTestServer, SilentTcpServer,
    SntpTestServer, DEMO_PASSWORD, DEMO_USER,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BOUNDARY: &str = "--BoundaryString";

// ---------------------------------------------------------------------------------------------
// SNTP

#[tokio::test]
async fn sntp_round_trip_recovers_the_configured_offset() {
    for offset in [3_600_000, -1_234_567, 0] {
        let server = SntpTestServer::start(offset).unwrap();
        let measured = query_offset_ms(&server.addr().to_string(), Duration::from_secs(2))
            .await
            .unwrap();
        assert!(
            (measured - offset).abs() <= 50,
            "server offset {offset} ms, measured {measured} ms"
        );
    }
}

#[tokio::test]
async fn ntp_on_a_closed_udp_port_fails_within_the_timeout() {
    let server = format!("127.0.0.1:{}", closed_udp_port());
    let started = Instant::now();
    let err = query_offset_ms(&server, Duration::from_millis(500))
        .await
        .unwrap_err();
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "took {:?}",
        started.elapsed()
    );
    assert!(err.to_string().contains(&server), "{err}");
}

#[tokio::test]
async fn ntp_server_that_never_answers_times_out() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let server = silent.local_addr().unwrap().to_string();
    let started = Instant::now();
    let err = query_offset_ms(&server, Duration::from_millis(300))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(matches!(err, ClockError::Timeout { .. }), "{err}");
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_millis(800),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn stopped_sntp_server_no_longer_answers() {
    let mut server = SntpTestServer::start(10_000).unwrap();
    let addr = server.addr().to_string();
    assert!(query_offset_ms(&addr, Duration::from_secs(2)).await.is_ok());
    server.stop();
    assert!(query_offset_ms(&addr, Duration::from_millis(300)).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// Raw socket helpers

async fn connect(port: u16) -> TcpStream {
    TcpStream::connect(("127.0.0.1", port)).await.unwrap()
}

/// Sends `request` and collects what arrives for `window` (or until EOF). The flag says whether
/// the server closed the connection.
async fn exchange(port: u16, request: &str, window: Duration) -> (Vec<u8>, bool) {
    let mut stream = connect(port).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    read_for(&mut stream, window).await
}

async fn read_for(stream: &mut TcpStream, window: Duration) -> (Vec<u8>, bool) {
    let deadline = tokio::time::Instant::now() + window;
    let mut received = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Err(_) => return (received, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (received, true),
            Ok(Ok(n)) => received.extend_from_slice(&chunk[..n]),
        }
    }
}

fn http_get(path: &str, extra_headers: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: streampulse-test\r\n{extra_headers}\r\n")
}

fn head_of(bytes: &[u8]) -> String {
    let end = find(bytes, b"\r\n\r\n").map_or(bytes.len(), |end| end + 4);
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

/// The complete parts of a multipart body: (content type, payload).
fn parts(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut parts = Vec::new();
    let Some(body_start) = find(bytes, b"\r\n\r\n").map(|end| end + 4) else {
        return parts;
    };
    let mut rest = &bytes[body_start..];
    while let Some(start) = find(rest, BOUNDARY.as_bytes()) {
        rest = &rest[start..];
        let Some(head_end) = find(rest, b"\r\n\r\n") else {
            break;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        let header = |name: &str| {
            head.lines()
                .find_map(|line| line.strip_prefix(name).map(|value| value.trim().to_string()))
        };
        let content_type = header("content-type:").unwrap_or_default();
        let Some(length) = header("content-length:").and_then(|value| value.parse::<usize>().ok()) else {
            break;
        };
        let body = &rest[head_end + 4..];
        if body.len() < length {
            break;
        }
        parts.push((content_type, body[..length].to_vec()));
        rest = &body[length..];
    }
    parts
}

fn is_jpeg(bytes: &[u8]) -> bool {
    bytes.starts_with(&[0xFF, 0xD8]) && bytes.ends_with(&[0xFF, 0xD9])
}

// ---------------------------------------------------------------------------------------------
// MJPEG

#[tokio::test]
async fn mjpeg_stream_sends_changing_jpeg_frames_at_about_10_fps() {
    let server = MjpegTestServer::start().unwrap();
    for path in ["/", "/stream", "/stream?action=stream"] {
        let (bytes, closed) = exchange(server.port(), &http_get(path, ""), Duration::from_millis(1050)).await;
        let head = head_of(&bytes);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {head}");
        assert!(
            head.contains("Content-Type: multipart/x-mixed-replace; boundary=BoundaryString"),
            "{head}"
        );
        assert!(!closed, "{path}: the stream ended");
        let parts = parts(&bytes);
        assert!(
            (7..=13).contains(&parts.len()),
            "{path}: {} parts in ~1 s",
            parts.len()
        );
        assert!(
            parts
                .iter()
                .all(|(kind, body)| kind == "image/jpeg" && is_jpeg(body)),
            "{path}"
        );
        assert_ne!(parts[0].1, parts[1].1, "{path}: frames should change");
    }
}

#[tokio::test]
async fn mjpeg_auth_requires_basic_credentials() {
    let server = MjpegTestServer::start().unwrap();
    let window = Duration::from_millis(400);

    let (bytes, closed) = exchange(server.port(), &http_get("/auth", ""), window).await;
    let head = head_of(&bytes);
    assert!(head.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{head}");
    assert!(head.contains("WWW-Authenticate: Basic realm="), "{head}");
    assert!(closed);

    let wrong = format!(
        "Authorization: Basic {}\r\n",
        gst::glib::base64_encode(b"demo:wrong")
    );
    let (bytes, _) = exchange(server.port(), &http_get("/auth", &wrong), window).await;
    assert!(head_of(&bytes).starts_with("HTTP/1.1 401"), "{}", head_of(&bytes));

    let credentials = format!("{DEMO_USER}:{DEMO_PASSWORD}");
    let right = format!(
        "Authorization: Basic {}\r\n",
        gst::glib::base64_encode(credentials.as_bytes())
    );
    let (bytes, _) = exchange(server.port(), &http_get("/auth", &right), window).await;
    assert!(
        head_of(&bytes).starts_with("HTTP/1.1 200 OK"),
        "{}",
        head_of(&bytes)
    );
    assert!(!parts(&bytes).is_empty());
}

#[tokio::test]
async fn mjpeg_unknown_paths_are_404() {
    let server = MjpegTestServer::start().unwrap();
    for path in ["/missing", "/nope", "/stream/extra"] {
        let (bytes, closed) = exchange(server.port(), &http_get(path, ""), Duration::from_millis(500)).await;
        assert!(
            head_of(&bytes).starts_with("HTTP/1.1 404 Not Found\r\n"),
            "{path}: {}",
            head_of(&bytes)
        );
        assert!(closed);
    }
}

#[tokio::test]
async fn mjpeg_garbage_is_not_http() {
    let server = MjpegTestServer::start().unwrap();
    let (bytes, closed) = exchange(server.port(), &http_get("/garbage", ""), Duration::from_secs(2)).await;
    assert!(bytes.len() >= 1024, "{} bytes", bytes.len());
    assert!(!bytes.starts_with(b"HTTP/"));
    assert!(closed);
}

#[tokio::test]
async fn mjpeg_silent_and_headers_only_keep_the_socket_open() {
    let server = MjpegTestServer::start().unwrap();
    let window = Duration::from_millis(700);

    let (bytes, closed) = exchange(server.port(), &http_get("/silent", ""), window).await;
    assert!(bytes.is_empty(), "{bytes:?}");
    assert!(!closed);

    let (bytes, closed) = exchange(server.port(), &http_get("/headers-only", ""), window).await;
    let head = head_of(&bytes);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.contains("multipart/x-mixed-replace"), "{head}");
    assert_eq!(head.len(), bytes.len(), "nothing after the headers");
    assert!(!closed);
}

#[tokio::test]
async fn mjpeg_frozen_black_stale_and_notjpeg() {
    let server = MjpegTestServer::start().unwrap();
    let window = Duration::from_millis(650);

    let (bytes, _) = exchange(server.port(), &http_get("/frozen", ""), window).await;
    let frozen = parts(&bytes);
    assert!(frozen.len() >= 4, "{} parts", frozen.len());
    assert!(frozen
        .iter()
        .all(|(kind, body)| kind == "image/jpeg" && is_jpeg(body) && *body == frozen[0].1));

    let (bytes, _) = exchange(server.port(), &http_get("/black", ""), window).await;
    let black = parts(&bytes);
    assert!(black.len() >= 4, "{} parts", black.len());
    assert!(black.iter().all(|(_, body)| is_jpeg(body) && *body == black[0].1));
    assert_ne!(black[0].1, frozen[0].1);

    let (first, closed) = exchange(server.port(), &http_get("/stale", ""), window).await;
    let (second, _) = exchange(server.port(), &http_get("/stale", ""), window).await;
    let (first, second) = (parts(&first), parts(&second));
    assert_eq!(first.len(), 1, "one frame, then silence");
    assert!(!closed, "the stale camera keeps the socket open");
    assert_eq!(first, second, "every connection gets the same old frame");

    let (bytes, _) = exchange(server.port(), &http_get("/notjpeg", ""), window).await;
    let not_jpeg = parts(&bytes);
    assert!(not_jpeg.len() >= 4, "{} parts", not_jpeg.len());
    assert!(not_jpeg
        .iter()
        .all(|(kind, body)| kind == "text/plain" && !is_jpeg(body)));

    let (bytes, _) = exchange(server.port(), &http_get("/corrupt", ""), window).await;
    let corrupt = parts(&bytes);
    assert!(!corrupt.is_empty());
    assert!(corrupt
        .iter()
        .all(|(kind, body)| kind == "image/jpeg" && !is_jpeg(body)));
}

#[tokio::test]
async fn mjpeg_stop_drops_clients_and_restart_serves_the_same_port() {
    let mut server = MjpegTestServer::start().unwrap();
    let port = server.port();
    let mut stream = connect(port).await;
    stream.write_all(http_get("/", "").as_bytes()).await.unwrap();
    let (bytes, closed) = read_for(&mut stream, Duration::from_millis(300)).await;
    assert!(!bytes.is_empty() && !closed);

    server.stop();
    let (_, closed) = read_for(&mut stream, Duration::from_secs(2)).await;
    assert!(closed, "stop() must drop open connections");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "nothing listens after stop()"
    );

    server.restart().unwrap();
    assert_eq!(server.port(), port);
    let (bytes, _) = exchange(port, &http_get("/", ""), Duration::from_millis(300)).await;
    assert!(head_of(&bytes).starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test]
async fn silent_tcp_server_accepts_and_says_nothing() {
    let mut server = SilentTcpServer::start().unwrap();
    let request = format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", server.rtsp_url("/test"));
    let mut stream = connect(server.port()).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let (bytes, closed) = read_for(&mut stream, Duration::from_millis(500)).await;
    assert!(bytes.is_empty() && !closed);
    server.stop();
    let (_, closed) = read_for(&mut stream, Duration::from_secs(2)).await;
    assert!(closed);
}

#[tokio::test]
async fn closed_port_refuses_connections() {
    assert!(TcpStream::connect(("127.0.0.1", closed_port())).await.is_err());
}

// ---------------------------------------------------------------------------------------------
// RTSP

fn rtsp_request(method: &str, url: &str, extra_headers: &str) -> String {
    format!("{method} {url} RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: streampulse-test\r\n{extra_headers}\r\n")
}

/// One RTSP request on a fresh connection; the response head and body, read until the body is
/// complete (Content-Length) or `window` passes.
async fn rtsp_exchange(port: u16, request: &str, window: Duration) -> String {
    let mut stream = connect(port).await;
    stream.write_all(request.as_bytes()).await.unwrap();
    let deadline = tokio::time::Instant::now() + window;
    let mut received = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(end) = find(&received, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&received[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                break;
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

#[tokio::test]
async fn rtsp_describe_answers_200_401_and_404() {
    let server = tokio::task::spawn_blocking(RtspTestServer::start)
        .await
        .unwrap()
        .unwrap();
    let window = Duration::from_secs(10);

    let url = server.url("/test");
    assert_eq!(url, format!("rtsp://127.0.0.1:{}/test", server.port()));
    let response = rtsp_exchange(server.port(), &rtsp_request("DESCRIBE", &url, ""), window).await;
    assert!(response.starts_with("RTSP/1.0 200 OK\r\n"), "{response}");
    assert!(
        response.contains("m=video") && response.contains("H264"),
        "{response}"
    );

    let response = rtsp_exchange(
        server.port(),
        &rtsp_request("DESCRIBE", &server.url("/auth"), ""),
        window,
    )
    .await;
    assert!(
        response.starts_with("RTSP/1.0 401 Unauthorized\r\n"),
        "{response}"
    );
    assert!(response.contains("WWW-Authenticate: Basic"), "{response}");
    assert!(response.contains("WWW-Authenticate: Digest"), "{response}");

    let basic = format!(
        "Authorization: Basic {}\r\n",
        gst::glib::base64_encode(format!("{DEMO_USER}:{DEMO_PASSWORD}").as_bytes())
    );
    let response = rtsp_exchange(
        server.port(),
        &rtsp_request("DESCRIBE", &server.url("/auth"), &basic),
        window,
    )
    .await;
    assert!(response.starts_with("RTSP/1.0 200 OK\r\n"), "{response}");

    let response = rtsp_exchange(
        server.port(),
        &rtsp_request("DESCRIBE", &server.url("/nope"), ""),
        window,
    )
    .await;
    assert!(response.starts_with("RTSP/1.0 404 Not Found\r\n"), "{response}");
}

#[tokio::test]
async fn rtsp_stop_kills_clients_and_restart_serves_the_same_port() {
    let mut server = tokio::task::spawn_blocking(RtspTestServer::start)
        .await
        .unwrap()
        .unwrap();
    let port = server.port();
    let window = Duration::from_secs(10);

    let mut stream = connect(port).await;
    stream
        .write_all(rtsp_request("OPTIONS", &server.url("/test"), "").as_bytes())
        .await
        .unwrap();
    let (bytes, closed) = read_for(&mut stream, Duration::from_millis(500)).await;
    assert!(
        String::from_utf8_lossy(&bytes).starts_with("RTSP/1.0 200 OK"),
        "{bytes:?}"
    );
    assert!(!closed);

    let started = Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop took {:?}",
        started.elapsed()
    );
    let (_, closed) = read_for(&mut stream, Duration::from_secs(2)).await;
    assert!(closed, "stop() must disconnect clients");
    assert!(
        TcpStream::connect(("127.0.0.1", port)).await.is_err(),
        "nothing listens after stop()"
    );
    server.stop();

    server.restart().unwrap();
    assert_eq!(server.port(), port);
    let response = rtsp_exchange(port, &rtsp_request("DESCRIBE", &server.url("/test"), ""), window).await;
    assert!(response.starts_with("RTSP/1.0 200 OK\r\n"), "{response}");
}

#[test]
fn rtsp_given_port_and_credentials_url() {
    let port = closed_port();
    let server = RtspTestServer::builder().port(port).shared(None).start().unwrap();
    assert_eq!(server.port(), port);
    assert_eq!(
        server.url_with_credentials("auth", DEMO_USER, DEMO_PASSWORD),
        format!("rtsp://demo:s3cret!@127.0.0.1:{port}/auth")
    );
    assert!(!server.mount_paths().contains(&"/shared".to_string()));
}

// ---------------------------------------------------------------------------------------------
// Real GStreamer clients

/// Runs `description` (ending in `appsink name=sink`) until the first sample, a bus error or
/// `timeout`.
fn first_sample(description: &str, timeout: Duration) -> Result<gst::Sample, String> {
    gst::init().map_err(|err| err.to_string())?;
    let pipeline = gst::parse::launch(description)
        .map_err(|err| format!("{description}: {err}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;
    let sink = pipeline
        .by_name("sink")
        .and_then(|element| element.downcast::<gst_app::AppSink>().ok())
        .ok_or("no appsink named sink")?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|err| err.to_string())?;
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_mseconds(100)) {
                return Ok(sample);
            }
            while let Some(message) = bus.pop() {
                if let gst::MessageView::Error(err) = message.view() {
                    return Err(format!("{}: {:?}", err.error(), err.debug()));
                }
            }
        }
        Err(format!("no frame within {timeout:?}"))
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}

fn mean_luma(sample: &gst::Sample) -> f64 {
    let buffer = sample.buffer().unwrap();
    let map = buffer.map_readable().unwrap();
    let info = gstreamer_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let (width, height, stride) = (
        info.width() as usize,
        info.height() as usize,
        info.stride()[0] as usize,
    );
    let mut total = 0u64;
    for row in 0..height {
        total += map[row * stride..row * stride + width]
            .iter()
            .map(|&v| u64::from(v))
            .sum::<u64>();
    }
    total as f64 / (width * height) as f64
}

const GRAY_SINK: &str = "videoconvert ! video/x-raw,format=GRAY8 ! appsink name=sink sync=false";

#[test]
fn gstreamer_rtsp_clients_get_frames_over_every_transport() {
    let server = RtspTestServer::start().unwrap();
    let timeout = Duration::from_secs(20);
    let cases = [
        (server.url("/test"), "tcp+udp"),
        (server.url("/test"), "tcp"),
        (server.url("/udp"), "udp"),
        (server.url("/udp"), "tcp+udp"),
        (server.url("/tcp"), "tcp"),
        // A TCP-only camera refuses the UDP SETUP; rtspsrc must fall back to TCP.
        (server.url("/tcp"), "tcp+udp"),
        (server.url("/shared"), "tcp"),
        (server.url("/slow5fps"), "tcp"),
    ];
    for (url, protocols) in cases {
        let description = format!(
            "rtspsrc location={url} protocols={protocols} latency=100 tcp-timeout=5000000 \
             ! decodebin ! {GRAY_SINK}"
        );
        let sample =
            first_sample(&description, timeout).unwrap_or_else(|err| panic!("{url} {protocols}: {err}"));
        assert!(sample.buffer().is_some());
    }
}

#[test]
fn gstreamer_rtsp_client_authenticates_and_sees_black() {
    let server = RtspTestServer::builder().shared(None).start().unwrap();
    let timeout = Duration::from_secs(20);

    let anonymous = format!(
        "rtspsrc location={} latency=100 ! decodebin ! {GRAY_SINK}",
        server.url("/auth")
    );
    let err = first_sample(&anonymous, timeout).unwrap_err();
    assert!(err.contains("Unauthorized"), "{err}");

    let with_credentials = format!(
        "rtspsrc location={} user-id={DEMO_USER} user-pw={DEMO_PASSWORD} latency=100 ! decodebin ! {GRAY_SINK}",
        server.url("/auth")
    );
    first_sample(&with_credentials, timeout).unwrap();

    let in_url = format!(
        "rtspsrc location={} latency=100 ! decodebin ! {GRAY_SINK}",
        server.url_with_credentials("/auth", DEMO_USER, DEMO_PASSWORD)
    );
    first_sample(&in_url, timeout).unwrap();

    // The first frames of a joined stream may predate a keyframe; skip a few.
    let black = format!(
        "rtspsrc location={} latency=100 ! decodebin ! identity drop-buffer-flags=delta-unit ! {GRAY_SINK}",
        server.url("/black")
    );
    let sample = first_sample(&black, timeout).unwrap();
    assert!(mean_luma(&sample) < 30.0, "mean luma {}", mean_luma(&sample));
}

#[test]
fn gstreamer_rtsp_digest_only_server() {
    let server = RtspTestServer::builder()
        .shared(None)
        .auth_methods(RtspAuthMethods::Digest)
        .start()
        .unwrap();
    let description = format!(
        "rtspsrc location={} user-id={DEMO_USER} user-pw={DEMO_PASSWORD} latency=100 ! decodebin ! {GRAY_SINK}",
        server.url("/auth")
    );
    first_sample(&description, Duration::from_secs(20)).unwrap();
}

#[test]
fn gstreamer_rtsp_custom_mount() {
    let launch = "( videotestsrc is-live=true pattern=white \
                  ! video/x-raw,format=I420,width=160,height=120,framerate=10/1 \
                  ! jpegenc ! rtpjpegpay name=pay0 pt=26 )";
    let server = RtspTestServer::builder()
        .shared(None)
        .mount("/jpeg", launch)
        .start()
        .unwrap();
    let description = format!(
        "rtspsrc location={} latency=100 ! decodebin ! {GRAY_SINK}",
        server.url("/jpeg")
    );
    let sample = first_sample(&description, Duration::from_secs(20)).unwrap();
    assert!(mean_luma(&sample) > 200.0, "mean luma {}", mean_luma(&sample));
}

#[test]
fn gstreamer_mjpeg_clients_get_frames() {
    let server = MjpegTestServer::start().unwrap();
    let timeout = Duration::from_secs(10);
    let mjpeg = |location: &str, extra: &str| {
        format!("souphttpsrc location={location} {extra} ! multipartdemux ! jpegdec ! {GRAY_SINK}")
    };

    first_sample(&mjpeg(&server.url("/"), ""), timeout).unwrap();
    first_sample(
        &mjpeg(
            &server.url("/auth"),
            &format!("user-id={DEMO_USER} user-pw={DEMO_PASSWORD}"),
        ),
        timeout,
    )
    .unwrap();
    let err = first_sample(&mjpeg(&server.url("/auth"), ""), timeout).unwrap_err();
    assert!(err.contains("Unauthorized"), "{err}");
    let err = first_sample(&mjpeg(&server.url("/missing"), ""), timeout).unwrap_err();
    assert!(err.contains("Not Found"), "{err}");

    let black = first_sample(&mjpeg(&server.url("/black"), ""), timeout).unwrap();
    assert!(mean_luma(&black) < 30.0, "mean luma {}", mean_luma(&black));

    // Parts of another type leave multipartdemux's new pad unlinked: an error at once.
    let err = first_sample(&mjpeg(&server.url("/notjpeg"), ""), Duration::from_secs(3)).unwrap_err();
    assert!(err.contains("not-linked"), "{err}");
    // Parts labelled JPEG that are not give no frame and no bus error: only a deadline catches them.
    let err = first_sample(&mjpeg(&server.url("/corrupt"), ""), Duration::from_secs(2)).unwrap_err();
    assert!(err.contains("no frame"), "{err}");
}
