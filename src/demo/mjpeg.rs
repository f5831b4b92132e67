//! An HTTP/1.1 server that streams MJPEG the way MotionEye, motion and mjpg-streamer do
//! (`multipart/x-mixed-replace`), with paths that misbehave in the ways real cameras do.
//!
//! | path | behaviour |
//! | --- | --- |
//! | `/`, `/stream` | a moving picture, about 10 frames per second |
//! | `/auth` | the same, behind HTTP Basic `demo` / `s3cret!`; otherwise 401 with `WWW-Authenticate` |
//! | `/frozen` | the same JPEG forever |
//! | `/black` | black JPEGs |
//! | `/stale` | one frame per connection, then silence with the socket open |
//! | `/headers-only` | 200 and the multipart headers, then silence |
//! | `/silent` | reads the request, never answers, keeps the socket open |
//! | `/garbage` | random bytes that are not HTTP, then closes |
//! | `/notjpeg` | multipart parts of `text/plain` |
//! | `/corrupt` | parts labelled `image/jpeg` holding random bytes |
//! | `/scene/still`, `/scene/dark`, `/scene/frozen-clock` | the calibration scenes of [`super::scenes`], 10 fps |
//! | anything else | 404 |
//!
//! The JPEG frames are encoded once, at start, with GStreamer (`videotestsrc ! jpegenc`); the
//! scenes' loops once per process.
//! Query strings are ignored (`/stream?action=stream` is `/stream`).

use super::mjpeg_frames::{encode_jpegs, scene_loops, SceneLoops};
use super::scenes::Scene;
use super::{bind_tcp, userinfo, DemoError, ServerThread, DEMO_PASSWORD, DEMO_USER, LOOPBACK};
use bytes::Bytes;
use gstreamer as gst;
use rand::RngCore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Frames in the moving loop and the scenes' loops: 3.7 s, so probes a whole number of seconds
/// apart do not see the same frame (which would rightly be called frozen).
pub const FRAME_COUNT: u32 = 37;
/// Frame size of every stream.
pub const FRAME_WIDTH: u32 = 320;
pub const FRAME_HEIGHT: u32 = 240;
/// Pause between two parts of a stream (about 10 frames per second).
pub const FRAME_INTERVAL: Duration = Duration::from_millis(100);
/// The multipart boundary, as motion spells it.
pub const BOUNDARY: &str = "BoundaryString";
/// Realm announced in the 401 challenge.
pub const REALM: &str = "StreamPulse demo";

const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// JPEG frames shared by every connection.
#[derive(Debug)]
struct Frames {
    moving: Vec<Bytes>,
    black: Bytes,
    scenes: Arc<SceneLoops>,
}

impl Frames {
    fn encode() -> Result<Frames, DemoError> {
        let moving = encode_jpegs(Scene::Ball, FRAME_COUNT)?;
        let black = encode_jpegs(Scene::Black, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| DemoError::Gst("jpegenc produced no black frame".into()))?;
        Ok(Frames {
            moving,
            black,
            scenes: scene_loops()?,
        })
    }

    fn looped(&self, feed: &Feed) -> &[Bytes] {
        match feed {
            Feed::Still => &self.scenes.still,
            Feed::Dark => &self.scenes.dark,
            Feed::FrozenClock => &self.scenes.frozen_clock,
            _ => &self.moving,
        }
    }
}

/// An MJPEG camera on `127.0.0.1`. See the module documentation for its paths.
#[derive(Debug)]
pub struct MjpegTestServer {
    port: u16,
    frames: Arc<Frames>,
    thread: Option<ServerThread>,
}

impl MjpegTestServer {
    /// Encodes the frames and serves on an ephemeral loopback port.
    ///
    /// Blocks for the encoding (well under a second); from async code call it in `spawn_blocking`
    /// if that matters.
    pub fn start() -> Result<MjpegTestServer, DemoError> {
        MjpegTestServer::start_on(0)
    }

    /// Like [`MjpegTestServer::start`] on a given port (0 = ephemeral).
    pub fn start_on(port: u16) -> Result<MjpegTestServer, DemoError> {
        let frames = Arc::new(Frames::encode()?);
        let mut server = MjpegTestServer {
            port,
            frames,
            thread: None,
        };
        server.serve()?;
        Ok(server)
    }

    fn serve(&mut self) -> Result<(), DemoError> {
        let listener = bind_tcp(self.port)?;
        self.port = listener.local_addr()?.port();
        let frames = Arc::clone(&self.frames);
        let thread = ServerThread::spawn("mjpeg-test-server", move || accept_loop(listener, frames))?;
        self.thread = Some(thread);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), normalize_path(path))
    }

    /// `http://user:pass@127.0.0.1:PORT/path`, with the credentials percent-encoded as needed.
    pub fn url_with_credentials(&self, path: &str, user: &str, password: &str) -> String {
        format!(
            "http://{}{}{}",
            userinfo(user, password),
            self.addr(),
            normalize_path(path)
        )
    }

    pub fn is_running(&self) -> bool {
        self.thread.is_some()
    }

    /// Closes the listening socket and every open connection. Idempotent.
    pub fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }

    /// Serves again on the same port (stopping first if still running).
    pub fn restart(&mut self) -> Result<(), DemoError> {
        self.stop();
        self.serve()
    }
}

impl Drop for MjpegTestServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn normalize_path(path: &str) -> String {
    if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    }
}

async fn accept_loop(listener: std::net::TcpListener, frames: Arc<Frames>) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!("MJPEG test server cannot use its socket: {err}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                let frames = Arc::clone(&frames);
                tokio::spawn(async move {
                    // A client going away mid-stream is normal; nothing to report.
                    let _ = handle_connection(stream, frames).await;
                });
            }
            Err(err) => {
                tracing::warn!("MJPEG test server accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// The parts of an HTTP request the server looks at.
#[derive(Debug, Default)]
struct Request {
    path: String,
    authorization: Option<String>,
}

/// Reads up to the blank line ending the headers. `None` if the client closes first or sends too much.
async fn read_request(stream: &mut TcpStream) -> std::io::Result<Option<Request>> {
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find(&buffer, b"\r\n\r\n") {
            return Ok(Some(parse_request(&buffer[..end])));
        }
        if buffer.len() > MAX_REQUEST_BYTES {
            return Ok(None);
        }
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            return Ok(None);
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|window| window == needle)
}

fn parse_request(head: &[u8]) -> Request {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n");
    let target = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .unwrap_or("/");
    // Absolute-form targets (`GET http://host/path`) are legal too.
    let target = match target.find("://") {
        Some(scheme_end) => {
            let after = &target[scheme_end + 3..];
            after.find('/').map_or("/", |slash| &after[slash..])
        }
        None => target,
    };
    let path = target.split(['?', '#']).next().unwrap_or("/").to_string();
    let authorization = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("authorization")
            .then(|| value.trim().to_string())
    });
    Request { path, authorization }
}

fn is_authorized(request: &Request) -> bool {
    let expected = gst::glib::base64_encode(format!("{DEMO_USER}:{DEMO_PASSWORD}").as_bytes());
    request.authorization.as_deref().is_some_and(|value| {
        value
            .split_once(' ')
            .is_some_and(|(scheme, token)| scheme.eq_ignore_ascii_case("basic") && token.trim() == expected)
    })
}

/// What a path streams.
enum Feed {
    Moving,
    Still,
    Dark,
    FrozenClock,
    Frozen,
    Black,
    NotJpeg,
    Corrupt,
}

async fn handle_connection(mut stream: TcpStream, frames: Arc<Frames>) -> std::io::Result<()> {
    let Some(request) = read_request(&mut stream).await? else {
        return Ok(());
    };
    match request.path.as_str() {
        "/" | "/stream" => stream_parts(&mut stream, &frames, Feed::Moving).await,
        "/auth" if is_authorized(&request) => stream_parts(&mut stream, &frames, Feed::Moving).await,
        "/auth" => {
            let head = format!(
                "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"{REALM}\"\r\n\
                 Content-Type: text/plain\r\nContent-Length: 13\r\nConnection: close\r\n\r\nUnauthorized\n"
            );
            stream.write_all(head.as_bytes()).await?;
            stream.shutdown().await
        }
        "/frozen" => stream_parts(&mut stream, &frames, Feed::Frozen).await,
        "/scene/still" => stream_parts(&mut stream, &frames, Feed::Still).await,
        "/scene/dark" => stream_parts(&mut stream, &frames, Feed::Dark).await,
        "/scene/frozen-clock" => stream_parts(&mut stream, &frames, Feed::FrozenClock).await,
        "/black" => stream_parts(&mut stream, &frames, Feed::Black).await,
        "/notjpeg" => stream_parts(&mut stream, &frames, Feed::NotJpeg).await,
        "/corrupt" => stream_parts(&mut stream, &frames, Feed::Corrupt).await,
        "/stale" => {
            stream.write_all(multipart_head().as_bytes()).await?;
            let frame = frames.moving.first().cloned().unwrap_or_default();
            write_part(&mut stream, "image/jpeg", &frame).await?;
            hold_open(&mut stream).await
        }
        "/headers-only" => {
            stream.write_all(multipart_head().as_bytes()).await?;
            hold_open(&mut stream).await
        }
        "/silent" => hold_open(&mut stream).await,
        "/garbage" => {
            stream.write_all(&garbage(4096)).await?;
            stream.shutdown().await
        }
        _ => {
            stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 10\r\n\
                      Connection: close\r\n\r\nNot Found\n",
                )
                .await?;
            stream.shutdown().await
        }
    }
}

fn multipart_head() -> String {
    format!(
        "HTTP/1.1 200 OK\r\nServer: StreamPulse-demo\r\nConnection: close\r\n\
         Cache-Control: no-cache, private\r\nPragma: no-cache\r\n\
         Content-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\n\r\n"
    )
}

async fn write_part(stream: &mut TcpStream, content_type: &str, body: &[u8]) -> std::io::Result<()> {
    let header = format!(
        "--{BOUNDARY}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.write_all(b"\r\n").await?;
    stream.flush().await
}

async fn stream_parts(stream: &mut TcpStream, frames: &Frames, feed: Feed) -> std::io::Result<()> {
    stream.write_all(multipart_head().as_bytes()).await?;
    let mut ticker = tokio::time::interval(FRAME_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Like a real camera, the picture depends on the time, not on when this client connected.
    let mut index = wall_clock_frame_index();
    loop {
        ticker.tick().await;
        match feed {
            Feed::Moving | Feed::Still | Feed::Dark | Feed::FrozenClock => {
                let looped = frames.looped(&feed);
                let frame = looped.get(index % looped.len().max(1));
                write_part(stream, "image/jpeg", frame.map(Bytes::as_ref).unwrap_or_default()).await?;
            }
            Feed::Frozen => {
                let frame = frames.moving.first().map(Bytes::as_ref).unwrap_or_default();
                write_part(stream, "image/jpeg", frame).await?;
            }
            Feed::Black => write_part(stream, "image/jpeg", &frames.black).await?,
            Feed::NotJpeg => {
                let text = format!("frame {index}: this camera sends text, not pictures\n");
                write_part(stream, "text/plain", text.as_bytes()).await?;
            }
            Feed::Corrupt => write_part(stream, "image/jpeg", &garbage(2048)).await?,
        }
        index = index.wrapping_add(1);
    }
}

fn wall_clock_frame_index() -> usize {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    (since_epoch.as_millis() / FRAME_INTERVAL.as_millis().max(1)) as usize
}

/// Keeps the connection open, discarding whatever the client sends, until it closes.
async fn hold_open(stream: &mut TcpStream) -> std::io::Result<()> {
    let mut sink = [0u8; 1024];
    while stream.read(&mut sink).await? > 0 {}
    Ok(())
}

/// Random bytes that cannot be mistaken for an HTTP response or a JPEG.
fn garbage(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    if let Some(first) = bytes.first_mut() {
        *first = 0x00;
    }
    bytes
}

/// A TCP server that accepts connections and never sends a byte: a camera whose RTSP (or HTTP)
/// service hangs. Stopping it closes every accepted connection.
#[derive(Debug)]
pub struct SilentTcpServer {
    port: u16,
    thread: Option<ServerThread>,
}

impl SilentTcpServer {
    pub fn start() -> Result<SilentTcpServer, DemoError> {
        SilentTcpServer::start_on(0)
    }

    pub fn start_on(port: u16) -> Result<SilentTcpServer, DemoError> {
        let mut server = SilentTcpServer { port, thread: None };
        server.serve()?;
        Ok(server)
    }

    fn serve(&mut self) -> Result<(), DemoError> {
        let listener = bind_tcp(self.port)?;
        self.port = listener.local_addr()?.port();
        let thread = ServerThread::spawn("silent-tcp-server", move || silent_accept_loop(listener))?;
        self.thread = Some(thread);
        Ok(())
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((LOOPBACK, self.port))
    }

    /// `rtsp://127.0.0.1:PORT/path`, for RTSP silent-socket tests.
    pub fn rtsp_url(&self, path: &str) -> String {
        format!("rtsp://{}{}", self.addr(), normalize_path(path))
    }

    /// `http://127.0.0.1:PORT/path`.
    pub fn http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr(), normalize_path(path))
    }

    pub fn stop(&mut self) {
        if let Some(mut thread) = self.thread.take() {
            thread.stop();
        }
    }

    pub fn restart(&mut self) -> Result<(), DemoError> {
        self.stop();
        self.serve()
    }
}

impl Drop for SilentTcpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn silent_accept_loop(listener: std::net::TcpListener) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            tracing::error!("silent test server cannot use its socket: {err}");
            return;
        }
    };
    loop {
        match listener.accept().await {
            Ok((mut stream, _peer)) => {
                tokio::spawn(async move {
                    let _ = hold_open(&mut stream).await;
                });
            }
            Err(err) => {
                tracing::warn!("silent test server accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// A loopback TCP port with nothing listening on it (bound, read, released). Another process could
/// take it in between, which on a test machine does not happen in practice.
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind((LOOPBACK, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        // Binding port 0 on loopback only fails if the machine has no loopback; 9 (discard) is
        // then as closed as anything.
        .unwrap_or(9)
}

/// A loopback UDP port with nothing bound to it, like [`closed_port`].
pub fn closed_udp_port() -> u16 {
    std::net::UdpSocket::bind((LOOPBACK, 0))
        .and_then(|socket| socket.local_addr())
        .map(|addr| addr.port())
        .unwrap_or(9)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_path_without_query_and_finds_authorization() {
        let request = parse_request(
            b"GET /stream?action=stream HTTP/1.1\r\nHost: x\r\nauthorization: Basic ZGVtbzpzM2NyZXQh",
        );
        assert_eq!(request.path, "/stream");
        assert!(is_authorized(&request));
    }

    #[test]
    fn absolute_form_target_and_wrong_password() {
        let request = parse_request(b"GET http://127.0.0.1:1/auth HTTP/1.1\r\nAuthorization: Basic ZGVtbzp4");
        assert_eq!(request.path, "/auth");
        assert!(!is_authorized(&request));
    }

    #[test]
    fn garbage_is_not_http() {
        let bytes = garbage(64);
        assert_eq!(bytes.len(), 64);
        assert!(!bytes.starts_with(b"HTTP/"));
    }
}
