//! The live view (`/streams/{name}/live.mjpg`) against a real demo RTSP camera behind the real
//! web server on loopback, read part by part as the frames come: JPEG parts, one pipeline (and one
//! RTSP session) however many watch, the end after `web.live_seconds`, the global cap, a camera
//! that is down, who may watch, and the teardown afterwards.

mod web_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use streampulse::demo::rtsp::RtspTestServer;
use streampulse::store::accounts::{Accounts, Role};
use warp::http::{HeaderMap, Request, StatusCode};
use web_support::*;

const LIVE_SECONDS: u64 = 4;
const VIEWER_PASSWORD: &str = "viewer password 123";

async fn camera() -> RtspTestServer {
    tokio::task::spawn_blocking(RtspTestServer::start)
        .await
        .expect("join")
        .expect("demo RTSP server")
}

/// An answer whose body is read as it arrives.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Incoming,
    buffer: Vec<u8>,
}

/// `GET path` with one header (a cookie or a bearer token) over a fresh connection, as a browser
/// would ask (gzip accepted).
async fn get(addr: SocketAddr, path: &str, header: (&str, String)) -> Answer {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(tcp))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", "127.0.0.1")
        // As browsers send it: a streamed body must pass through uncompressed.
        .header("accept-encoding", "gzip, deflate")
        .header(header.0, header.1)
        .body(Empty::new())
        .expect("request");
    let response = sender.send_request(request).await.expect("response");
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body,
        buffer: Vec::new(),
    }
}

fn bearer(token: &str) -> (&'static str, String) {
    ("authorization", format!("Bearer {token}"))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

impl Answer {
    async fn text(mut self) -> String {
        while let Some(frame) = self.body.frame().await {
            if let Ok(data) = frame.expect("body").into_data() {
                self.buffer.extend_from_slice(&data);
            }
        }
        String::from_utf8_lossy(&self.buffer).into_owned()
    }

    fn boundary(&self) -> String {
        let content_type = self.headers["content-type"].to_str().expect("ascii");
        assert!(
            content_type.starts_with("multipart/x-mixed-replace;"),
            "{content_type}"
        );
        content_type
            .split("boundary=")
            .nth(1)
            .expect("a boundary")
            .to_string()
    }

    /// The next JPEG part (checked: SOI, EOI, its Content-Length), or `None` at the closing
    /// boundary. Panics when the body ends without one.
    async fn next_jpeg(&mut self) -> Option<Vec<u8>> {
        let boundary = self.boundary();
        let closing = format!("--{boundary}--");
        loop {
            while self.buffer.starts_with(b"\r\n") {
                self.buffer.drain(..2);
            }
            if self.buffer.starts_with(closing.as_bytes()) {
                return None;
            }
            if let Some(end) = find(&self.buffer, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
                assert!(head.starts_with(&format!("--{boundary}\r\n")), "{head}");
                assert!(head.contains("Content-Type: image/jpeg"), "{head}");
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("Content-Length: "))
                    .expect("a Content-Length")
                    .trim()
                    .parse()
                    .expect("a number");
                let start = end + 4;
                if self.buffer.len() >= start + length {
                    let jpeg: Vec<u8> = self.buffer[start..start + length].to_vec();
                    self.buffer.drain(..start + length);
                    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "SOI");
                    assert_eq!(&jpeg[jpeg.len() - 2..], &[0xFF, 0xD9], "EOI");
                    return Some(jpeg);
                }
            }
            match self.body.frame().await {
                Some(frame) => {
                    if let Ok(data) = frame.expect("body frame").into_data() {
                        self.buffer.extend_from_slice(&data);
                    }
                }
                None => panic!("the body ended without the closing boundary"),
            }
        }
    }

    /// Reads parts to the end; how many there were.
    async fn count_to_end(&mut self) -> usize {
        let mut parts = 0;
        while self.next_jpeg().await.is_some() {
            parts += 1;
        }
        parts
    }
}

/// Polls `condition` every 100 ms for up to `limit`.
async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < end, "not within {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn config(streams: &str, web: &str) -> String {
    format!(
        "database: streams.db\nprobe_timeout_seconds: 10\nweb:\n  live_seconds: {LIVE_SECONDS}\n{web}streams:\n{streams}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_share_one_pipeline_that_ends_by_itself_and_is_torn_down() {
    let camera = camera().await;
    let fixture = Fixture::new(&config(
        &format!("  - name: Cam\n    url: {}\n", camera.url("/test")),
        "",
    ));
    let token = fixture.token("tests");
    let server = LoopbackServer::start(&fixture).await;
    let addr = server.addr;
    let hub = fixture.state.live().clone();

    let started = Instant::now();
    let mut first = get(addr, "/streams/Cam/live.mjpg", bearer(&token)).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.boundary(), "streampulse-live-frame");
    let ends_in: u64 = first.headers["x-live-ends-in"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(ends_in <= LIVE_SECONDS, "{ends_in}");
    first.next_jpeg().await.expect("a first frame");
    // Two more viewers join the running session.
    let mut others = Vec::new();
    for _ in 0..2 {
        let mut other = get(addr, "/streams/Cam/live.mjpg", bearer(&token)).await;
        assert_eq!(other.status, StatusCode::OK);
        other.next_jpeg().await.expect("a frame for a later viewer");
        others.push(other);
    }
    assert_eq!(hub.sessions(), 1, "one pipeline for three viewers");
    assert_eq!(hub.sessions_started(), 1);
    assert_eq!(camera.active_sessions(), 1, "one RTSP session at the camera");
    // A snapshot of the watched camera is the live frame: no second pipeline.
    let snapshot = get(addr, "/api/v1/streams/Cam/snapshot.jpg", bearer(&token)).await;
    assert_eq!(snapshot.status, StatusCode::OK);
    assert_eq!(snapshot.headers["content-type"], "image/jpeg");
    assert_eq!(camera.active_sessions(), 1);

    // Everyone's stream ends after live_seconds, with the closing boundary.
    let mut counts = vec![1 + first.count_to_end().await];
    for other in &mut others {
        counts.push(1 + other.count_to_end().await);
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(LIVE_SECONDS - 1) && elapsed < Duration::from_secs(30),
        "ended after {elapsed:?}"
    );
    // 5 fps for 4 s is about 20 frames; a loaded machine may deliver fewer.
    assert!(counts[0] >= 3, "frames: {counts:?}");
    assert!(
        counts
            .iter()
            .all(|&c| c >= 2 && c <= 6 * LIVE_SECONDS as usize + 3),
        "frames: {counts:?}"
    );

    eventually(Duration::from_secs(10), "the hub is empty", || {
        hub.sessions() == 0
    })
    .await;
    assert_eq!(hub.sessions_torn_down(), 1, "the pipeline was torn down");
    eventually(Duration::from_secs(10), "the RTSP session is gone", || {
        camera.active_sessions() == 0
    })
    .await;

    // A request after the end starts a new session; leaving it ends the session early.
    let mut again = get(addr, "/streams/Cam/live.mjpg", bearer(&token)).await;
    assert_eq!(again.status, StatusCode::OK);
    again.next_jpeg().await.expect("a frame from the new session");
    assert_eq!(hub.sessions_started(), 2);
    drop(again);
    eventually(Duration::from_secs(15), "an abandoned session ends", || {
        hub.sessions() == 0
    })
    .await;
    assert_eq!(hub.sessions_torn_down(), 2);

    let metrics = body(&fixture.get_with_token("/metrics", &token).await);
    assert!(
        metrics.contains("\nstreampulse_web_live_sessions 0\n"),
        "{metrics}"
    );
    assert!(
        metrics.contains("\nstreampulse_web_live_viewers_total 4\n"),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_a_camera_that_is_down_and_who_may_watch() {
    let camera = camera().await;
    let closed = streampulse::demo::mjpeg::closed_port();
    let fixture = Fixture::new(&config(
        &format!(
            "  - name: Cam\n    url: {}\n  - name: Ball\n    url: {}\n  \
             - name: Closed\n    url: rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:{closed}/s\n",
            camera.url("/test"),
            camera.url("/tcp"),
        ),
        "  live_max_cameras: 1\n",
    ));
    let token = fixture.token("tests");
    let server = LoopbackServer::start(&fixture).await;
    let addr = server.addr;
    let hub = fixture.state.live().clone();

    // Anonymous: sent to the login page, no pipeline.
    let anonymous = fixture.get("/streams/Cam/live.mjpg", None).await;
    assert_eq!(anonymous.status(), 303);
    assert!(
        location(&anonymous).starts_with("/login"),
        "{}",
        location(&anonymous)
    );
    assert_eq!(hub.sessions_started(), 0);

    // A viewer may watch.
    Accounts::open(&fixture.db_path)
        .expect("accounts")
        .with_hasher(cheap_hasher())
        .add_user_with_role("vera", VIEWER_PASSWORD, Role::Viewer, fixture.now_ms())
        .expect("add viewer");
    let login = fixture.try_login("vera", VIEWER_PASSWORD).await;
    let cookie = cookie_pair(&login, "sp_session").expect("session cookie");
    let mut watching = get(addr, "/streams/Cam/live.mjpg", ("cookie", cookie)).await;
    assert_eq!(watching.status, StatusCode::OK);
    watching.next_jpeg().await.expect("the viewer sees a frame");

    // Over the global cap: 503, how many are watched and when to retry.
    let refused = get(addr, "/streams/Ball/live.mjpg", bearer(&token)).await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!((1..=LIVE_SECONDS + 1).contains(&retry), "{retry}");
    let message = refused.text().await;
    assert!(
        message.contains("1 camera is being watched live") && message.contains("try again in"),
        "{message}"
    );
    assert_eq!(hub.sessions_started(), 1);
    drop(watching);
    eventually(Duration::from_secs(15), "the abandoned session ends", || {
        hub.sessions() == 0
    })
    .await;

    // A camera that is down: the probe's reason, in plain words, without the password.
    let down = get(addr, "/streams/Closed/live.mjpg", bearer(&token)).await;
    assert!(
        down.status == StatusCode::BAD_GATEWAY || down.status == StatusCode::GATEWAY_TIMEOUT,
        "{}",
        down.status
    );
    let message = down.text().await;
    assert!(message.starts_with("no live picture: "), "{message}");
    assert!(!message.contains(CAMERA_PASSWORD), "{message}");
    eventually(Duration::from_secs(10), "the failed session leaves", || {
        hub.sessions() == 0
    })
    .await;

    assert_eq!(
        get(addr, "/streams/Nope/live.mjpg", bearer(&token)).await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(hub.sessions(), 0);
}

#[tokio::test]
async fn the_stream_page_offers_live_unless_it_is_turned_off() {
    let (fixture, session) = Fixture::logged_in(&standard_config()).await;
    let page = body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(
        page.contains("href=\"/streams/Gate/live.mjpg\"") && page.contains("id=\"live-button\""),
        "{page}"
    );
    assert!(page.contains("data-seconds=\"30\""), "the default: 30 s");
    let disabled = body(&fixture.get("/streams/Old", Some(&session)).await);
    assert!(
        !disabled.contains("live-button"),
        "a disabled stream has no live view"
    );
    let refused = fixture.get("/streams/Old/live.mjpg", Some(&session)).await;
    assert_eq!(refused.status(), 409, "{}", body(&refused));

    let off = format!("{}web:\n  live_max_cameras: 0\n", standard_config());
    let (fixture, session) = Fixture::logged_in(&off).await;
    let page = body(&fixture.get("/streams/Gate", Some(&session)).await);
    assert!(!page.contains("live-button"), "turned off: no button");
    let refused = fixture.get("/streams/Gate/live.mjpg", Some(&session)).await;
    assert_eq!(refused.status(), 503);
    assert!(body(&refused).contains("turned off"), "{}", body(&refused));
    assert_eq!(fixture.state.live().sessions_started(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutting_the_server_down_ends_live_views() {
    let camera = camera().await;
    let fixture = Fixture::new(&format!(
        "database: streams.db\nprobe_timeout_seconds: 10\nweb:\n  live_seconds: 600\nstreams:\n  \
         - name: Cam\n    url: {}\n",
        camera.url("/test")
    ));
    let token = fixture.token("tests");
    let server = LoopbackServer::start(&fixture).await;
    let addr = server.addr;
    let mut watching = get(addr, "/streams/Cam/live.mjpg", bearer(&token)).await;
    assert_eq!(watching.status, StatusCode::OK);
    watching.next_jpeg().await.expect("a frame");
    let asked = Instant::now();
    drop(server);
    let more = tokio::time::timeout(Duration::from_secs(60), watching.count_to_end())
        .await
        .expect("the live view ends at shutdown, not after 600 s");
    assert!(more <= 6 * 60, "{more}");
    assert!(asked.elapsed() < Duration::from_secs(60));
    let hub = fixture.state.live().clone();
    eventually(Duration::from_secs(10), "the hub is empty", || {
        hub.sessions() == 0
    })
    .await;
    eventually(Duration::from_secs(10), "the RTSP session is gone", || {
        camera.active_sessions() == 0
    })
    .await;
}

/// The stream's own template runs the live view (here a user template with a test source, as a
/// custom `libcamerasrc` or `v4l2src` one would), frames scaled to 640 px; a template that does
/// not decode says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_streams_own_template_runs_and_a_nodecode_one_says_why_not() {
    let camera = camera().await;
    let templates = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        templates.path().join("testcard.pipeline"),
        "# A test card, as a custom capture pipeline would give.\n\
         videotestsrc is-live=true pattern=ball ! video/x-raw,width=1280,height=720,framerate=10/1\n  \
         ! appsink name=sink\n",
    )
    .expect("template");
    let fixture = Fixture::new(&format!(
        "database: streams.db\nprobe_timeout_seconds: 10\npipelines_dir: {}\nweb:\n  live_seconds: {LIVE_SECONDS}\n\
         streams:\n  - name: Card\n    pipeline: testcard\n  \
         - name: Raw\n    url: {}\n    pipeline: rtsp-nodecode\n",
        templates.path().display(),
        camera.url("/test"),
    ));
    let token = fixture.token("tests");
    let server = LoopbackServer::start(&fixture).await;
    let addr = server.addr;
    let mut watching = get(addr, "/streams/Card/live.mjpg", bearer(&token)).await;
    assert_eq!(watching.status, StatusCode::OK);
    watching
        .next_jpeg()
        .await
        .expect("a frame from the user's template");
    let snapshot = get(addr, "/api/v1/streams/Card/snapshot.jpg", bearer(&token)).await;
    assert_eq!(
        snapshot.headers["x-snapshot-size"], "640x360",
        "scaled to 640 px wide"
    );
    drop(watching);

    let raw = get(addr, "/streams/Raw/live.mjpg", bearer(&token)).await;
    assert_eq!(raw.status, StatusCode::BAD_GATEWAY);
    let message = raw.text().await;
    assert!(message.contains("does not decode video"), "{message}");
    let hub = fixture.state.live().clone();
    eventually(Duration::from_secs(15), "both sessions end", || {
        hub.sessions() == 0
    })
    .await;
    assert_eq!(hub.sessions_started(), 2);
}
