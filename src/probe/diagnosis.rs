//! Why no frame arrived: a bus error classified (and, when GStreamer cannot tell refused from
//! timed out, the port asked directly), or — at the deadline — how far rtspsrc got, whether any
//! data arrived, and what a plain TCP connection to the camera found.

use super::classify::{classify_error, diagnose_connect, diagnose_now, Cause, ConnectDiagnosis};
use super::sdp::SdpSeen;
use super::{ProbeOutcome, ProbeRequest, Reason, TimeoutStage};
use crate::url::{redact_text, CameraUrl};
use gstreamer as gst;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Longest a port check after an ambiguous bus error may take.
const ERROR_DIAGNOSIS_BUDGET: Duration = Duration::from_secs(2);

/// How far rtspsrc's exchange with the camera got, in order. Each request is known to be
/// answered when the next one starts (rtspsrc reads the answer before it sends the next).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum RtspStage {
    /// No progress message yet (not RTSP, or not started).
    #[default]
    NotStarted,
    /// Connecting to the camera.
    Connecting,
    /// OPTIONS sent.
    Options,
    /// DESCRIBE sent: OPTIONS was answered.
    Describe,
    /// SETUP sent: DESCRIBE was answered.
    Setup,
    /// Every SETUP answered; PLAY next.
    Opened,
    /// PLAY answered: media should flow.
    Playing,
}

/// Tracks how far rtspsrc got, from its progress messages.
#[derive(Debug, Default)]
pub(super) struct RtspProgress {
    stage: RtspStage,
    /// When the current stage began.
    since: Option<Instant>,
}

impl RtspProgress {
    pub(super) fn note(&mut self, progress: &gst::message::Progress) {
        // Read the message's structure, not `Progress::get()`: gstreamer-rs 0.25's accessor (and
        // its `Debug`) leaks the two strings `gst_message_parse_progress` hands over, about 20
        // allocations per probe (STACK-NOTES).
        let Some(fields) = progress.structure() else {
            return;
        };
        let Ok(kind) = fields.get::<gst::ProgressType>("type") else {
            return;
        };
        let code = fields.get::<&str>("code").unwrap_or_default();
        let text = fields
            .get::<&str>("text")
            .unwrap_or_default()
            .to_ascii_lowercase();
        tracing::debug!(?kind, code, text, "rtsp progress");
        if let Some(stage) = stage_of(kind, code, &text) {
            if stage > self.stage {
                self.stage = stage;
                self.since = Some(Instant::now());
            }
        }
    }

    pub(super) fn stage(&self) -> RtspStage {
        self.stage
    }

    /// When the current stage began (`None` before any progress).
    pub(super) fn since(&self) -> Option<Instant> {
        self.since
    }

    /// DESCRIBE answered (the server speaks RTSP and knows the stream).
    fn described(&self) -> bool {
        self.stage >= RtspStage::Setup
    }
}

/// The stage a progress message of rtspsrc (GStreamer 1.22) announces. Its codes are stable
/// ("connect", "open", "request"); which request is only in the (untranslated) text. rtspsrc
/// announces "Sending PLAY request" before it even connects, so for PLAY only the completion
/// counts.
fn stage_of(kind: gst::ProgressType, code: &str, text: &str) -> Option<RtspStage> {
    match (kind, code) {
        (gst::ProgressType::Continue, "connect") => Some(RtspStage::Connecting),
        (gst::ProgressType::Continue, "open") if text.contains("options") => Some(RtspStage::Options),
        (gst::ProgressType::Continue, "open") if text.contains("media info") => Some(RtspStage::Describe),
        (gst::ProgressType::Continue, "request") if text.starts_with("setup") => Some(RtspStage::Setup),
        (gst::ProgressType::Complete, "open") => Some(RtspStage::Opened),
        (gst::ProgressType::Complete, "request") if text.contains("play") => Some(RtspStage::Playing),
        (gst::ProgressType::Complete, "request") => Some(RtspStage::Opened),
        _ => None,
    }
}

/// A TCP connection to the camera's port, tried in parallel once a probe is halfway to its
/// deadline without a frame, so a timeout can say at which stage the camera stuck. Aborted when
/// dropped.
pub(super) struct ConnectCheck {
    task: JoinHandle<()>,
    found: watch::Receiver<ConnectDiagnosis>,
}

impl ConnectCheck {
    /// Starts the check, with what is left until `deadline` as its budget.
    pub(super) fn start(url: Option<&CameraUrl>, deadline: Instant) -> ConnectCheck {
        let (progress, found) = watch::channel(ConnectDiagnosis::Pending);
        let task = match url.and_then(CameraUrl::host_port) {
            Some((host, port)) => {
                let budget = deadline.saturating_duration_since(Instant::now());
                let http_path = url.and_then(plain_http_path);
                tokio::spawn(diagnose_connect(host, port, http_path, budget, progress))
            }
            None => {
                let _ = progress.send(ConnectDiagnosis::NotApplicable);
                tokio::spawn(async {})
            }
        };
        ConnectCheck { task, found }
    }

    /// How far the connection got so far; the check stops.
    pub(super) fn finish(self) -> ConnectDiagnosis {
        self.task.abort();
        let found = self.found.borrow().clone();
        found
    }
}

impl Drop for ConnectCheck {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The path of a plain `http://` URL (not https: the diagnosis speaks no TLS).
fn plain_http_path(url: &CameraUrl) -> Option<String> {
    if url.scheme().as_deref() != Some("http") {
        return None;
    }
    let without = url.without_credentials();
    let rest = without.split_once("://").map_or("", |(_, rest)| rest);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    let path = path.split('#').next().unwrap_or("/");
    Some(if path.is_empty() {
        "/".to_string()
    } else {
        path.to_string()
    })
}

/// The outcome of a probe whose deadline passed without a frame: at which stage it stuck.
pub(super) fn timeout_outcome(
    request: &ProbeRequest,
    progress: &RtspProgress,
    data_seen: bool,
    diagnosis: ConnectDiagnosis,
) -> ProbeOutcome {
    let secs = request.timeout.as_secs_f64();
    // The RTSP exchange stopped half-way: name the last request answered and the one that was not.
    let unanswered = match progress.stage() {
        RtspStage::Options => Some("TCP connection accepted, no answer to OPTIONS"),
        RtspStage::Describe => Some("answered OPTIONS, no answer to DESCRIBE"),
        RtspStage::Setup => Some("answered DESCRIBE, no answer to SETUP"),
        RtspStage::Opened => Some("answered SETUP, no answer to PLAY"),
        RtspStage::NotStarted | RtspStage::Connecting | RtspStage::Playing => None,
    };
    if let Some(unanswered) = unanswered.filter(|_| !data_seen) {
        return ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::Headers),
            format!("{unanswered} within {secs:.1} s"),
        );
    }
    if progress.stage() == RtspStage::Playing && !data_seen {
        return ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::FirstFrame),
            format!(
                "PLAY answered, no media packet within {secs:.1} s (UDP blocked on the way? the `rtsp-tcp` template asks for TCP)"
            ),
        );
    }
    if progress.described() || data_seen {
        let detail = if data_seen && !progress.described() {
            "data arrived but no decodable video frame"
        } else {
            "stream opened but no video frame arrived"
        };
        return ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::FirstFrame),
            format!("{detail} within {secs:.1} s"),
        );
    }
    match diagnosis {
        ConnectDiagnosis::Refused => {
            ProbeOutcome::down(Reason::Refused, "nothing listens on the camera's port")
        }
        ConnectDiagnosis::Unreachable(why) => ProbeOutcome::down(Reason::Unreachable, why),
        ConnectDiagnosis::Pending => ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::Connect),
            format!("no TCP connection within {secs:.1} s"),
        ),
        ConnectDiagnosis::Answered => ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::FirstFrame),
            format!("the camera answered the HTTP request, then sent no video data within {secs:.1} s"),
        ),
        ConnectDiagnosis::Connected => ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::Headers),
            format!("TCP connection accepted, no answer within {secs:.1} s"),
        ),
        ConnectDiagnosis::NotApplicable => ProbeOutcome::down(
            Reason::Timeout(TimeoutStage::FirstFrame),
            format!("no video frame within {secs:.1} s"),
        ),
    }
}

/// The outcome of a bus error before the first frame.
pub(super) async fn error_outcome(
    err: &gst::message::Error,
    request: &ProbeRequest,
    deadline: Instant,
    sdp: &SdpSeen,
) -> ProbeOutcome {
    let classified = classify_error(err);
    let mut reason = classified.reason;
    let mut message = match classified.cause {
        Cause::Plain => classified.message,
        Cause::RtspNoTransport => match request.transport.protocols() {
            // The stream's `transport:` asked for this one; the template's choice is not at fault.
            Some(imposed) => format!(
                "the camera set up no stream over {} (`transport: {imposed}`): try `transport: auto`",
                imposed.to_uppercase()
            ),
            None => format!(
                "the camera set up no stream over the transports the `{}` template allows: try `rtsp` (UDP, then TCP), `rtsp-udp` or `rtsp-tcp`",
                request.template.name
            ),
        },
        Cause::NotLinked => match sdp.video_encoding() {
            Some(encoding) => format!(
                "this camera sends {encoding}, which the `{}` template does not take: use `rtsp`, which finds the decoder itself",
                request.template.name
            ),
            None => format!(
                "the stream does not fit the `{}` template (its elements do not take what the camera sends)",
                request.template.name
            ),
        },
    };
    if classified.ambiguous_network {
        // souphttpsrc reports refused and timed-out connections as one generic error: ask the
        // port directly, within what is left of the deadline.
        if let Some((host, port)) = request.url.as_ref().and_then(CameraUrl::host_port) {
            let budget = deadline
                .saturating_duration_since(Instant::now())
                .min(ERROR_DIAGNOSIS_BUDGET);
            match diagnose_now(host, port, budget).await {
                ConnectDiagnosis::Refused => {
                    reason = Reason::Refused;
                    message = "nothing listens on the camera's port".into();
                }
                ConnectDiagnosis::Unreachable(why) => {
                    reason = Reason::Unreachable;
                    message = why;
                }
                ConnectDiagnosis::Pending => {
                    reason = Reason::Timeout(TimeoutStage::Connect);
                    message = "no TCP connection".into();
                }
                ConnectDiagnosis::Connected
                | ConnectDiagnosis::Answered
                | ConnectDiagnosis::NotApplicable => {}
            }
        }
    }
    ProbeOutcome::down(reason, redact_text(&message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_urls_get_a_path_to_request() {
        let path = |url: &str| plain_http_path(&CameraUrl::new(url));
        assert_eq!(
            path("http://u:p@cam:8080/video.mjpg#x"),
            Some("/video.mjpg".into())
        );
        assert_eq!(path("http://cam"), Some("/".into()));
        assert_eq!(path("https://cam/video"), None);
        assert_eq!(path("rtsp://cam/stream"), None);
    }
}
