//! The live view: `GET /streams/{name}/live.mjpg`, a `multipart/x-mixed-replace` JPEG stream.
//!
//! Cameras accept few clients, so watching must never cost more than one camera slot: per camera
//! at most one live pipeline runs ([`crate::probe::live::LiveFeed`], the stream's own template),
//! started by the first viewer. Its frames (at most `web.live_fps` a second, chosen by arrival
//! time before encoding, at most [`LIVE_MAX_WIDTH`] wide) go into a `watch` channel that every
//! viewer of that camera reads: a slow viewer skips frames, never slows the others or queues
//! memory. The session ends `web.live_seconds` after it started, for everyone (so the slot is
//! bounded), or [`IDLE_GRACE`] after the last viewer left, or when the camera stops; responses
//! then end cleanly and the next request starts a new session.
//!
//! Limits: at most `web.live_max_cameras` sessions at once (0 turns live off); a live session
//! holds the camera's slot in the [`SnapshotGate`], so a camera never has a snapshot pipeline
//! and a live one at once, while the global caps stay separate (snapshots keep working while
//! cameras are watched). A snapshot of a camera being watched is the live view's latest frame.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;

use super::lock;
use super::snapshot::{CameraSlot, SnapshotGate};
use crate::config::{Config, StreamConfig};
use crate::pipeline::TemplateLibrary;
use crate::probe::jpeg::{self, Jpeg};
use crate::probe::live::{LiveFeed, LiveFrame};
use crate::probe::{ProbeOutcome, ProbeRequest, Reaper, Reason};
use crate::url::redact_text;

/// Live frames are scaled down to at most this width.
pub const LIVE_MAX_WIDTH: u32 = 640;
/// JPEG quality of live frames.
pub const LIVE_QUALITY: u8 = 70;
/// The multipart boundary between frames.
pub const BOUNDARY: &str = "streampulse-live-frame";
/// A session with no viewer left ends after this long (a page reload rejoins it meanwhile).
pub const IDLE_GRACE: Duration = Duration::from_secs(3);
/// How often a session looks for viewers.
const VIEWER_CHECK: Duration = Duration::from_secs(1);
/// The session keeps its slot until its pipeline is torn down, at most this long.
const TEARDOWN_WAIT: Duration = Duration::from_secs(2);
/// Past the probe deadline before a start is given up (the deadline itself answers first).
const START_MARGIN: Duration = Duration::from_secs(3);
/// A frame arriving this share of the interval early still counts as due: a 25 fps camera
/// then gives exactly 5 fps at a 5 fps limit instead of every sixth frame.
const DUE_TOLERANCE: f64 = 0.9;

/// Why a live view did not start.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LiveError {
    /// A limit: 503 with a `Retry-After`.
    #[error("{message}")]
    Refused { message: String, retry_after_s: u64 },
    /// The camera gave no picture: the probe's verdict, credentials masked.
    #[error("no live picture: {reason} ({message})")]
    Camera {
        reason: &'static str,
        timeout: bool,
        message: String,
    },
}

/// What a session shows its viewers now.
#[derive(Debug, Clone)]
enum LiveState {
    Starting,
    Frame(Arc<Jpeg>),
    Failed(Arc<LiveError>),
    Ended,
}

/// One camera's live pipeline and its viewers.
struct Session {
    state: watch::Sender<LiveState>,
    ends_at: Instant,
    /// Set when the session stops taking viewers (ended or failed).
    finished: AtomicBool,
    /// Set once the session left the hub (its pipeline torn down).
    removed: watch::Sender<bool>,
}

/// Every running live session, one per camera.
pub struct LiveHub {
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    started: AtomicU64,
    viewers_served: AtomicU64,
    torn_down: AtomicU64,
    /// Set when the server shuts down: sessions end, so their responses do not hold the drain.
    stopping: watch::Sender<bool>,
}

impl std::fmt::Debug for LiveHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveHub")
            .field("sessions", &self.sessions())
            .finish_non_exhaustive()
    }
}

impl LiveHub {
    pub fn new() -> Arc<LiveHub> {
        Arc::new(LiveHub {
            sessions: Mutex::new(HashMap::new()),
            started: AtomicU64::new(0),
            viewers_served: AtomicU64::new(0),
            torn_down: AtomicU64::new(0),
            stopping: watch::channel(false).0,
        })
    }

    /// Ends every session and refuses new ones (the server is shutting down).
    pub fn stop(&self) {
        self.stopping.send_replace(true);
    }

    /// Live pipelines now, including one being torn down.
    pub fn sessions(&self) -> usize {
        lock(&self.sessions).len()
    }

    /// Live pipelines started since the server started.
    pub fn sessions_started(&self) -> u64 {
        self.started.load(Ordering::Relaxed)
    }

    /// Live pipelines whose teardown finished.
    pub fn sessions_torn_down(&self) -> u64 {
        self.torn_down.load(Ordering::Relaxed)
    }

    /// Responses that streamed at least one frame.
    pub fn viewers_served(&self) -> u64 {
        self.viewers_served.load(Ordering::Relaxed)
    }

    /// The latest live frame of camera `name`, when it is being watched.
    pub fn latest(&self, name: &str) -> Option<Arc<Jpeg>> {
        let session = lock(&self.sessions).get(name).cloned()?;
        let state = session.state.borrow().clone();
        match state {
            LiveState::Frame(jpeg) => Some(jpeg),
            _ => None,
        }
    }

    /// The `/metrics` lines.
    pub fn metrics(&self) -> String {
        format!(
            "# HELP streampulse_web_live_sessions Live views running now (one camera pipeline each).\n\
             # TYPE streampulse_web_live_sessions gauge\n\
             streampulse_web_live_sessions {}\n\
             # HELP streampulse_web_live_viewers_total Live view responses that streamed a picture, since the web server started.\n\
             # TYPE streampulse_web_live_viewers_total counter\n\
             streampulse_web_live_viewers_total {}\n",
            self.sessions(),
            self.viewers_served()
        )
    }

    /// Joins the camera's running session, or starts one within the limits.
    pub async fn join(
        self: &Arc<Self>,
        gate: &SnapshotGate,
        config: &Config,
        stream: &StreamConfig,
    ) -> Result<LiveViewer, LiveError> {
        // A session that just ended keeps its entry until its teardown is done (bounded): wait
        // for that, then start anew.
        for _ in 0..3 {
            let mut removed = {
                let mut sessions = lock(&self.sessions);
                match sessions.get(&stream.name) {
                    Some(session) if !session.finished.load(Ordering::Acquire) => {
                        return Ok(self.viewer(session));
                    }
                    Some(session) => session.removed.subscribe(),
                    None => return self.start(&mut sessions, gate, config, stream),
                }
            };
            let _ = tokio::time::timeout(TEARDOWN_WAIT + VIEWER_CHECK, removed.wait_for(|gone| *gone)).await;
        }
        Err(LiveError::Refused {
            message: "the live view of this camera is ending; try again in a few seconds".into(),
            retry_after_s: 3,
        })
    }

    fn viewer(self: &Arc<Self>, session: &Session) -> LiveViewer {
        LiveViewer {
            receiver: session.state.subscribe(),
            ends_at: session.ends_at,
            hub: Arc::clone(self),
        }
    }

    fn start(
        self: &Arc<Self>,
        sessions: &mut HashMap<String, Arc<Session>>,
        gate: &SnapshotGate,
        config: &Config,
        stream: &StreamConfig,
    ) -> Result<LiveViewer, LiveError> {
        let web = &config.web;
        if *self.stopping.borrow() {
            return Err(LiveError::Refused {
                message: "the web server is shutting down".into(),
                retry_after_s: 10,
            });
        }
        if web.live_max_cameras == 0 {
            return Err(LiveError::Refused {
                message: "the live view is turned off here (web.live_max_cameras is 0)".into(),
                retry_after_s: 3600,
            });
        }
        let now = Instant::now();
        if sessions.len() >= web.live_max_cameras {
            let soonest = sessions
                .values()
                .map(|s| s.ends_at.saturating_duration_since(now))
                .min()
                .unwrap_or_default();
            let retry_after_s = soonest.as_secs() + 1;
            let watched = sessions.len();
            return Err(LiveError::Refused {
                message: format!(
                    "{watched} {} being watched live, the most allowed at once; try again in {retry_after_s} s",
                    if watched == 1 { "camera is" } else { "cameras are" }
                ),
                retry_after_s,
            });
        }
        let Some(slot) = gate.try_camera(&stream.name) else {
            return Err(LiveError::Refused {
                message: "a snapshot of this camera is being taken; try again in a few seconds".into(),
                retry_after_s: 3,
            });
        };
        let library = TemplateLibrary::new(config.pipelines_dir.as_deref());
        let request = ProbeRequest::for_stream(stream, &library).map_err(|e| LiveError::Camera {
            reason: Reason::Pipeline.describe(),
            timeout: false,
            message: redact_text(&e.to_string()),
        })?;
        let (state, _) = watch::channel(LiveState::Starting);
        let session = Arc::new(Session {
            state,
            ends_at: now + web.live_duration,
            finished: AtomicBool::new(false),
            removed: watch::channel(false).0,
        });
        // Subscribed before the session runs, so it never sees itself without viewers.
        let viewer = self.viewer(&session);
        sessions.insert(stream.name.clone(), Arc::clone(&session));
        self.started.fetch_add(1, Ordering::Relaxed);
        tracing::info!(stream = %stream.name, seconds = web.live_duration.as_secs(), "live view started");
        let run = Run {
            hub: Arc::clone(self),
            name: stream.name.clone(),
            session,
            request,
            reaper: gate.reaper().clone(),
            fps: web.live_fps.max(1),
            _slot: slot,
        };
        tokio::spawn(run.drive());
        Ok(viewer)
    }
}

/// One session's task: start the pipeline, publish frames, end, tear down, leave the hub.
struct Run {
    hub: Arc<LiveHub>,
    name: String,
    session: Arc<Session>,
    request: ProbeRequest,
    reaper: Reaper,
    fps: u32,
    /// The camera's slot, held until the pipeline is torn down.
    _slot: CameraSlot,
}

impl Run {
    async fn drive(self) {
        let start = LiveFeed::start(&self.request, &self.reaper);
        let started = tokio::time::timeout(self.request.timeout + START_MARGIN, start).await;
        let teardown = match started {
            Ok(Ok((feed, first))) => self.stream(feed, first).await,
            Ok(Err(outcome)) => {
                self.fail(camera_error(&outcome));
                None
            }
            Err(_) => {
                self.fail(LiveError::Camera {
                    reason: Reason::Timeout(crate::heartbeat::TimeoutStage::FirstFrame).describe(),
                    timeout: true,
                    message: format!("no picture within {} s", self.request.timeout.as_secs()),
                });
                None
            }
        };
        if let Some(done) = teardown {
            if done.wait(TEARDOWN_WAIT).await {
                self.hub.torn_down.fetch_add(1, Ordering::Relaxed);
            }
        }
        {
            let mut sessions = lock(&self.hub.sessions);
            if sessions
                .get(&self.name)
                .is_some_and(|s| Arc::ptr_eq(s, &self.session))
            {
                sessions.remove(&self.name);
            }
        }
        self.session.removed.send_replace(true);
        tracing::info!(stream = %self.name, "live view ended");
    }

    fn fail(&self, error: LiveError) {
        tracing::info!(stream = %self.name, "live view failed: {error}");
        self.session.finished.store(true, Ordering::Release);
        self.session
            .state
            .send_replace(LiveState::Failed(Arc::new(error)));
    }

    /// Publishes frames until the session's end, the last viewer's leaving or the stream's end;
    /// hands back the pipeline's teardown.
    async fn stream(&self, mut feed: LiveFeed, first: LiveFrame) -> Option<crate::probe::TeardownDone> {
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.fps));
        let mut last_sent = first.at;
        let media_type = first
            .sample
            .caps()
            .and_then(|caps| caps.structure(0))
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        if media_type != "video/x-raw" {
            // `rtsp-nodecode` and the like: the stream flows, but there is no picture to show.
            self.fail(LiveError::Camera {
                reason: Reason::Decode.describe(),
                timeout: false,
                message: format!(
                    "this stream's template does not decode video (it hands over {media_type}); \
                     the live view needs one that does"
                ),
            });
            return feed.close();
        }
        match encode(first).await {
            Ok(jpeg) => {
                self.session.state.send_replace(LiveState::Frame(Arc::new(jpeg)));
            }
            Err(message) => {
                self.fail(LiveError::Camera {
                    reason: Reason::Decode.describe(),
                    timeout: false,
                    message,
                });
                return feed.close();
            }
        }
        let mut checks = tokio::time::interval(VIEWER_CHECK);
        let mut alone_since: Option<Instant> = None;
        let mut stopping = self.hub.stopping.subscribe();
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(self.session.ends_at.into()) => break,
                _ = async { stopping.wait_for(|stop| *stop).await.is_ok() } => break,
                _ = checks.tick() => {
                    if self.session.state.receiver_count() > 0 {
                        alone_since = None;
                    } else if alone_since.get_or_insert_with(Instant::now).elapsed() >= IDLE_GRACE {
                        break;
                    }
                }
                frame = feed.next_frame() => {
                    let Some(frame) = frame else { break };
                    if !due(last_sent, frame.at, interval) {
                        continue;
                    }
                    last_sent = frame.at;
                    match encode(frame).await {
                        Ok(jpeg) => {
                            self.session.state.send_replace(LiveState::Frame(Arc::new(jpeg)));
                        }
                        Err(message) => tracing::debug!(stream = %self.name, "live frame skipped: {message}"),
                    }
                }
            }
        }
        self.session.finished.store(true, Ordering::Release);
        self.session.state.send_replace(LiveState::Ended);
        feed.close()
    }
}

/// Whether a frame arriving at `now` is due, the last one sent having arrived at `last`.
fn due(last: Instant, now: Instant, interval: Duration) -> bool {
    now.saturating_duration_since(last) >= interval.mul_f64(DUE_TOLERANCE)
}

async fn encode(frame: LiveFrame) -> Result<Jpeg, String> {
    let encoded =
        tokio::task::spawn_blocking(move || jpeg::encode(&frame.sample, LIVE_MAX_WIDTH, LIVE_QUALITY)).await;
    match encoded {
        Ok(Ok(jpeg)) => Ok(jpeg),
        Ok(Err(error)) => Err(error.to_string()),
        Err(error) => Err(format!("the encoder task failed: {error}")),
    }
}

fn camera_error(outcome: &ProbeOutcome) -> LiveError {
    let reason = outcome.reason.unwrap_or(Reason::Other);
    LiveError::Camera {
        reason: reason.describe(),
        timeout: matches!(reason, Reason::Timeout(_)),
        message: redact_text(&outcome.message),
    }
}

/// One viewer of a session.
pub struct LiveViewer {
    receiver: watch::Receiver<LiveState>,
    ends_at: Instant,
    hub: Arc<LiveHub>,
}

impl std::fmt::Debug for LiveViewer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveViewer")
            .field("ends_at", &self.ends_at)
            .finish_non_exhaustive()
    }
}

impl LiveViewer {
    /// Waits for the session's first frame (the session itself gives up at the probe deadline),
    /// or its failure.
    pub async fn first_frame(&mut self) -> Result<Arc<Jpeg>, LiveError> {
        let state = match self
            .receiver
            .wait_for(|s| !matches!(s, LiveState::Starting))
            .await
        {
            Ok(state) => state.clone(),
            Err(_) => LiveState::Ended,
        };
        match state {
            LiveState::Frame(jpeg) => {
                self.hub.viewers_served.fetch_add(1, Ordering::Relaxed);
                Ok(jpeg)
            }
            LiveState::Failed(error) => Err((*error).clone()),
            LiveState::Starting | LiveState::Ended => Err(LiveError::Refused {
                message: "the live view ended before a picture arrived; try again".into(),
                retry_after_s: 1,
            }),
        }
    }

    /// Time left until the session ends for everyone.
    pub fn remaining(&self) -> Duration {
        self.ends_at.saturating_duration_since(Instant::now())
    }

    /// The multipart body: `first`, then each new frame, then the closing boundary when the
    /// session ends.
    pub fn into_body(
        self,
        first: Arc<Jpeg>,
    ) -> impl futures::Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(Some((self.receiver, Some(first))), |state| async move {
            let (mut receiver, pending) = state?;
            if let Some(jpeg) = pending {
                return Some((Ok(part(&jpeg)), Some((receiver, None))));
            }
            loop {
                if receiver.changed().await.is_err() {
                    return Some((Ok(closing()), None));
                }
                let current = receiver.borrow_and_update().clone();
                match current {
                    LiveState::Frame(jpeg) => return Some((Ok(part(&jpeg)), Some((receiver, None)))),
                    LiveState::Starting => continue,
                    LiveState::Failed(_) | LiveState::Ended => return Some((Ok(closing()), None)),
                }
            }
        })
    }
}

/// The response's `Content-Type`.
pub fn content_type() -> String {
    format!("multipart/x-mixed-replace; boundary={BOUNDARY}")
}

/// One frame as a body part.
fn part(jpeg: &Jpeg) -> Bytes {
    let head = format!(
        "--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n",
        jpeg.bytes.len()
    );
    let mut bytes = Vec::with_capacity(head.len() + jpeg.bytes.len() + 2);
    bytes.extend_from_slice(head.as_bytes());
    bytes.extend_from_slice(&jpeg.bytes);
    bytes.extend_from_slice(b"\r\n");
    Bytes::from(bytes)
}

fn closing() -> Bytes {
    Bytes::from(format!("--{BOUNDARY}--\r\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_due_by_arrival_time() {
        let t0 = Instant::now();
        let interval = Duration::from_millis(200);
        let at = |ms| t0 + Duration::from_millis(ms);
        assert!(!due(t0, at(40), interval));
        assert!(!due(t0, at(160), interval));
        assert!(due(t0, at(200), interval), "a 25 fps camera: every fifth frame");
        assert!(
            due(t0, at(198), interval),
            "a 30 fps camera's sixth frame counts as due"
        );
        assert!(
            !due(at(500), t0, interval),
            "arrival times out of order never panic"
        );
    }

    #[test]
    fn a_part_carries_its_length_and_the_boundary() {
        let jpeg = Jpeg {
            bytes: vec![0xFF, 0xD8, 1, 2, 0xFF, 0xD9],
            width: 2,
            height: 2,
        };
        let bytes = part(&jpeg);
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with(
            "--streampulse-live-frame\r\nContent-Type: image/jpeg\r\nContent-Length: 6\r\n\r\n"
        ));
        assert!(bytes.ends_with(&[0xFF, 0xD9, b'\r', b'\n']));
        assert_eq!(&closing()[..], b"--streampulse-live-frame--\r\n");
        assert!(content_type().ends_with("boundary=streampulse-live-frame"));
    }
}
