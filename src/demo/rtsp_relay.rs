//! A camera that answers DESCRIBE without a `Content-Base` or `Content-Location` header, as some
//! real RTSP servers do, with relative `a=control:stream=0` media controls. RFC 2326 resolves
//! such a control against the request URL as a relative reference, dropping its last path
//! segment (`rtsp://h/test` + `stream=0` → `rtsp://h/stream=0`); ffmpeg, VLC and live555 append
//! it instead (`rtsp://h/test/stream=0`), and the server only knows the appended form.
//!
//! Built as a relay in front of a [`super::RtspTestServer`]: requests pass unchanged (so a
//! strict SETUP reaches gst-rtsp-server as `/stream=0`, which no mount matches: 404), responses
//! lose their base headers until PLAY; after that every byte (interleaved RTP) passes as is.
//! UDP media goes from the server to the client directly.
//!
//! The same relay also plays a camera behind a firewall that drops UDP ([`RtspRelay::udp_blocked`]):
//! headers untouched, but every UDP SETUP asks the server to send to ports nobody listens on, so
//! the client sees no media until it retries over TCP, as rtspsrc does after its `timeout`.
//!
//! And each other way real cameras bend RTSP ([`Quirk`], the rows of `docs/interop.md`): a
//! rejected OPTIONS or GET_PARAMETER, a Transport without `server_port`, odd session timeouts, a
//! wrong Content-Length, a Basic challenge that turns into Digest, a redirect.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::DemoError;

/// What the camera does with a SETUP of the strict (RFC-resolved) control URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StrictSetup {
    /// Answers `404 Not Found` (rtspsrc then retries with the appended form by itself).
    Refuse,
    /// Never answers it, and ignores the connection from then on (rtspsrc waits until its
    /// `tcp-timeout`): the case issue 14 met, where ffmpeg still plays the camera.
    Ignore,
}

/// One way a real camera bends RTSP (the rows of `docs/interop.md`), played by the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quirk {
    /// Answers `OPTIONS` with `501 Not Implemented`.
    RejectOptions,
    /// Answers SETUP with a `Transport` header that has no `server_port`.
    NoServerPort,
    /// Announces this session timeout (seconds) in every `Session` header.
    SessionTimeout(u32),
    /// Declares a DESCRIBE body this many bytes longer (+) or shorter (-) than it sends.
    ContentLengthOff(i8),
    /// Challenges with `Basic`, and once answered in Basic, challenges again with `Digest`;
    /// lets the request through once it carries a Digest answer for `user`.
    BasicThenDigest { user: &'static str },
    /// Answers the first DESCRIBE with `302 Moved Temporarily` to the real server's URL.
    Redirect,
    /// Reads this request (`"SETUP"`, `"PLAY"`) and never answers it, nor anything after.
    Stall(&'static str),
    /// Announces a 4 s session timeout (so clients keep the session alive early) and answers
    /// every `GET_PARAMETER` keep-alive with `501 Not Implemented`. RTP over UDP only: over
    /// TCP the relay copies bytes after PLAY.
    RejectGetParameter,
}

/// What the relay changes in the RTSP exchange.
#[derive(Debug, Clone, Copy)]
struct Bends {
    /// Drop `Content-Base`/`Content-Location`; treat strict SETUPs so.
    no_base: Option<StrictSetup>,
    /// Send UDP media to dead ports.
    udp_blocked: bool,
    quirk: Option<Quirk>,
}

/// The relay; stops accepting when dropped (connections in flight end with their peers).
#[derive(Debug)]
pub struct RtspRelay {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// Messages the relay answered itself or changed because of its [`Quirk`].
    bent: Arc<AtomicUsize>,
}

/// The camera without base headers.
pub type NoBaseRtspServer = RtspRelay;

impl RtspRelay {
    /// A camera behind a firewall that drops UDP: RTSP over TCP works, UDP media never arrives.
    pub fn udp_blocked(upstream: SocketAddr) -> Result<RtspRelay, DemoError> {
        RtspRelay::start_bent(
            upstream,
            Bends {
                no_base: None,
                udp_blocked: true,
                quirk: None,
            },
        )
    }

    /// Relays to the RTSP server at `upstream` (`127.0.0.1:PORT`), refusing strict SETUPs.
    pub fn start(upstream: SocketAddr) -> Result<RtspRelay, DemoError> {
        RtspRelay::start_with(upstream, StrictSetup::Refuse)
    }

    /// Relays to `upstream`, treating strict SETUPs as `strict` says.
    pub fn start_with(upstream: SocketAddr, strict: StrictSetup) -> Result<RtspRelay, DemoError> {
        RtspRelay::start_bent(
            upstream,
            Bends {
                no_base: Some(strict),
                udp_blocked: false,
                quirk: None,
            },
        )
    }

    /// Relays to `upstream` unchanged but for one `quirk`.
    pub fn with_quirk(upstream: SocketAddr, quirk: Quirk) -> Result<RtspRelay, DemoError> {
        RtspRelay::start_bent(
            upstream,
            Bends {
                no_base: None,
                udp_blocked: false,
                quirk: Some(quirk),
            },
        )
    }

    fn start_bent(upstream: SocketAddr, bends: Bends) -> Result<RtspRelay, DemoError> {
        let listener = TcpListener::bind("127.0.0.1:0").map_err(DemoError::Io)?;
        let addr = listener.local_addr().map_err(DemoError::Io)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = Arc::clone(&stop);
        let bent = Arc::new(AtomicUsize::new(0));
        let bending = Arc::clone(&bent);
        std::thread::Builder::new()
            .name("rtsp-relay".into())
            .spawn(move || {
                for client in listener.incoming() {
                    if stopping.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let Ok(server) = TcpStream::connect(upstream) else {
                        continue;
                    };
                    relay(client, server, upstream, bends, Arc::clone(&bending));
                }
            })
            .map_err(DemoError::Io)?;
        Ok(RtspRelay { addr, stop, bent })
    }

    /// How many messages the [`Quirk`] answered or changed so far (tests check it played).
    pub fn quirks_played(&self) -> usize {
        self.bent.load(Ordering::Relaxed)
    }

    /// `rtsp://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}{path}", self.addr.port())
    }
}

impl Drop for RtspRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

/// One RTSP message head (request or response) and its body, or `None` at the end of the stream.
fn read_message(reader: &mut BufReader<TcpStream>) -> Option<(Vec<String>, Vec<u8>)> {
    let mut lines = Vec::new();
    let mut content_length = 0usize;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        if line == "\r\n" || line == "\n" {
            break;
        }
        if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            content_length = value.trim().parse().unwrap_or(0);
        }
        lines.push(line);
    }
    let mut body = vec![0; content_length];
    reader.read_exact(&mut body).ok()?;
    Some((lines, body))
}

fn write_message(to: &mut TcpStream, lines: &[String], body: &[u8]) -> std::io::Result<()> {
    let mut bytes = lines.concat().into_bytes();
    bytes.extend_from_slice(b"\r\n");
    bytes.extend_from_slice(body);
    to.write_all(&bytes)
}

/// Until PLAY, one request and its answer at a time: DESCRIBE's answer loses its base headers
/// and a SETUP of a control not appended to the described URL is refused here with 404. Then
/// every byte both ways (interleaved media, keep-alives, TEARDOWN).
fn relay(client: TcpStream, server: TcpStream, upstream: SocketAddr, bends: Bends, bent: Arc<AtomicUsize>) {
    std::thread::spawn(move || {
        let (Ok(mut to_client), Ok(mut to_server)) = (client.try_clone(), server.try_clone()) else {
            return;
        };
        let mut from_client = BufReader::new(client);
        let mut from_server = BufReader::new(server);
        let mut described: Option<String> = None;
        let mut challenges = Challenges::default();
        let mut interleaved = false;
        let mut playing = false;
        loop {
            let Some((request, body)) = read_message(&mut from_client) else {
                return;
            };
            let request_line = request.first().cloned().unwrap_or_default();
            let mut words = request_line.split_whitespace();
            let (method, url) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
            if method == "DESCRIBE" {
                described = Some(url.trim_end_matches('/').to_string());
            }
            if method == "SETUP" {
                interleaved |= header(&request, "transport").is_some_and(|t| t.contains("interleaved"));
            }
            let mut request = request;
            if let Some(quirk) = bends.quirk {
                let cseq = header(&request, "cseq").unwrap_or_default();
                let answered_here = match quirk {
                    Quirk::RejectOptions if method == "OPTIONS" => {
                        Some(vec!["RTSP/1.0 501 Not Implemented\r\n".to_string(), cseq])
                    }
                    Quirk::Redirect if method == "DESCRIBE" && !challenges.redirected => {
                        challenges.redirected = true;
                        let path = url.splitn(4, '/').nth(3).unwrap_or("");
                        Some(vec![
                            "RTSP/1.0 302 Moved Temporarily\r\n".to_string(),
                            cseq,
                            format!("Location: rtsp://{upstream}/{path}\r\n"),
                        ])
                    }
                    Quirk::Stall(stalled) if method == stalled => {
                        bent.fetch_add(1, Ordering::Relaxed);
                        while read_message(&mut from_client).is_some() {}
                        return;
                    }
                    Quirk::RejectGetParameter if method == "GET_PARAMETER" => {
                        Some(vec!["RTSP/1.0 501 Not Implemented\r\n".to_string(), cseq])
                    }
                    Quirk::BasicThenDigest { user } => {
                        let answer = challenges.answer(&request, user, cseq);
                        request.retain(|line| header_name(line) != "authorization");
                        answer
                    }
                    _ => None,
                };
                if let Some(answer) = answered_here {
                    bent.fetch_add(1, Ordering::Relaxed);
                    if write_message(&mut to_client, &answer, &[]).is_err() {
                        return;
                    }
                    continue;
                }
            }
            if method == "SETUP" && bends.udp_blocked {
                request = request.into_iter().map(|line| misdirect_udp(&line)).collect();
            }
            if let (true, Some(strict)) = (method == "SETUP", bends.no_base) {
                let appended = described
                    .as_deref()
                    .is_some_and(|base| url.starts_with(&format!("{base}/")));
                if !appended && strict == StrictSetup::Ignore {
                    // Reads on and answers nothing, until the client gives up.
                    while read_message(&mut from_client).is_some() {}
                    return;
                }
                if !appended {
                    let cseq = request
                        .iter()
                        .find(|line| line.to_ascii_lowercase().starts_with("cseq:"))
                        .cloned()
                        .unwrap_or_default();
                    let refusal = ["RTSP/1.0 404 Not Found\r\n".to_string(), cseq];
                    if write_message(&mut to_client, &refusal, &[]).is_err() {
                        return;
                    }
                    continue;
                }
            }
            if write_message(&mut to_server, &request, &body).is_err() {
                return;
            }
            let Some((mut answer, answer_body)) = read_message(&mut from_server) else {
                return;
            };
            if bends.no_base.is_some() {
                answer.retain(|line| {
                    let lower = line.to_ascii_lowercase();
                    !(lower.starts_with("content-base:") || lower.starts_with("content-location:"))
                });
            }
            if let Some(quirk) = bends.quirk {
                let changed = bend_answer(&mut answer, &method_of(&request_line), quirk, answer_body.len());
                bent.fetch_add(changed, Ordering::Relaxed);
            }
            if write_message(&mut to_client, &answer, &answer_body).is_err() {
                return;
            }
            playing |= method == "PLAY";
            let keep_parsing = bends.quirk == Some(Quirk::RejectGetParameter) && !interleaved;
            if playing && !keep_parsing {
                break;
            }
        }
        // What each reader buffered already goes first.
        let (client_rest, server_rest) = (from_client.buffer().to_vec(), from_server.buffer().to_vec());
        if to_server.write_all(&client_rest).is_err() || to_client.write_all(&server_rest).is_err() {
            return;
        }
        let (client, server) = (from_client.into_inner(), from_server.into_inner());
        std::thread::spawn(move || copy_and_close(client, to_server));
        copy_and_close(server, to_client);
    });
}

fn method_of(request_line: &str) -> String {
    request_line.split_whitespace().next().unwrap_or("").to_string()
}

/// The lower-case name of a header line.
fn header_name(line: &str) -> String {
    line.split(':').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// The whole line of the first header called `name` (lower case), CRLF included.
fn header(lines: &[String], name: &str) -> Option<String> {
    lines
        .iter()
        .skip(1)
        .find(|line| header_name(line) == name)
        .cloned()
}

/// Where a [`Quirk::BasicThenDigest`] camera is in its challenges, and whether a
/// [`Quirk::Redirect`] camera has redirected yet.
#[derive(Debug, Default)]
struct Challenges {
    redirected: bool,
}

impl Challenges {
    /// The 401 to send instead of forwarding the request, or `None` to let it through: no
    /// credentials or Basic ones get a challenge (Basic first, then Digest, as some cameras switch
    /// after a firmware update); a Digest answer for `user` passes.
    fn answer(&mut self, request: &[String], user: &str, cseq: String) -> Option<Vec<String>> {
        let authorization = header(request, "authorization").unwrap_or_default();
        let value = authorization
            .split_once(':')
            .map(|(_, value)| value.trim())
            .unwrap_or("");
        if value.starts_with("Digest ")
            && value.contains(&format!("username=\"{user}\""))
            && value.contains("response=\"")
        {
            return None;
        }
        let challenge = if value.starts_with("Basic ") {
            "WWW-Authenticate: Digest realm=\"camera\", nonce=\"5f1e0c3a9b\"\r\n"
        } else {
            "WWW-Authenticate: Basic realm=\"camera\"\r\n"
        };
        Some(vec![
            "RTSP/1.0 401 Unauthorized\r\n".to_string(),
            cseq,
            challenge.to_string(),
        ])
    }
}

/// Bends a server's answer to `method` as `quirk` says (`body_length`: what is really sent);
/// returns how many header lines changed.
fn bend_answer(answer: &mut [String], method: &str, quirk: Quirk, body_length: usize) -> usize {
    let mut changed = 0;
    for line in answer.iter_mut().skip(1) {
        let before = line.clone();
        let name = header_name(line);
        match quirk {
            Quirk::NoServerPort if name == "transport" => {
                let kept: Vec<&str> = line
                    .trim_end()
                    .split(';')
                    .filter(|part| !part.trim_start().starts_with("server_port="))
                    .collect();
                *line = kept.join(";") + "\r\n";
            }
            Quirk::SessionTimeout(seconds) if name == "session" => {
                *line = with_session_timeout(line, seconds);
            }
            Quirk::RejectGetParameter if name == "session" => {
                *line = with_session_timeout(line, 4);
            }
            Quirk::ContentLengthOff(off) if name == "content-length" && method == "DESCRIBE" => {
                let declared = (body_length as i64 + i64::from(off)).max(0);
                *line = format!("Content-Length: {declared}\r\n");
            }
            _ => {}
        }
        changed += usize::from(*line != before);
    }
    changed
}

/// A `Session:` header line announcing `seconds` as its timeout.
fn with_session_timeout(line: &str, seconds: u32) -> String {
    let id = line
        .trim_end()
        .split_once(':')
        .map(|(_, value)| value.split(';').next().unwrap_or("").trim().to_string())
        .unwrap_or_default();
    format!("Session: {id};timeout={seconds}\r\n")
}

/// A `Transport:` header asking for UDP gets `client_port` pairs nobody listens on.
fn misdirect_udp(line: &str) -> String {
    if !line.to_ascii_lowercase().starts_with("transport:") || !line.contains("client_port=") {
        return line.to_string();
    }
    let dead = super::closed_udp_port();
    line.split(';')
        .map(|part| {
            if part.trim_start().starts_with("client_port=") {
                format!("client_port={dead}-{}", dead.saturating_add(1))
            } else {
                part.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(";")
        .trim_end()
        .to_string()
        + "\r\n"
}

fn copy_and_close(mut from: TcpStream, mut to: TcpStream) {
    let _ = std::io::copy(&mut from, &mut to);
    let _ = to.shutdown(Shutdown::Write);
}
