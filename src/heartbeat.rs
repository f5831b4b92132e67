//! The vocabulary of a probe's result, shared by everything on the data path: `probe` produces a
//! [`ProbeOutcome`], the monitor stamps it into a [`Heartbeat`], `store` stores it, `fleet`,
//! `status` and the web read it back. A camera that is down is data, not an error.
//!
//! [`Explanation`] is the one way a verdict is put in words ("reason: message").

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::probe::quality::PictureSummary;

/// The three states a stream can be in after a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// A decoded frame arrived and passed every quality check.
    Up,
    /// Video arrives but something is wrong with it (frozen, black, wrong size or fps).
    Degraded,
    /// No decoded frame before the deadline.
    Down,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Up => "up",
            Health::Degraded => "degraded",
            Health::Down => "down",
        }
    }

    /// Stored as a small integer in SQLite.
    pub fn code(self) -> i64 {
        match self {
            Health::Down => 0,
            Health::Up => 1,
            Health::Degraded => 2,
        }
    }

    pub fn from_code(code: i64) -> Option<Health> {
        match code {
            0 => Some(Health::Down),
            1 => Some(Health::Up),
            2 => Some(Health::Degraded),
            _ => None,
        }
    }
}

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a probe was when its deadline ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutStage {
    /// The TCP connection was never established.
    Connect,
    /// Connected, but the server never answered the request (RTSP DESCRIBE / HTTP headers).
    Headers,
    /// The server answered, but no decoded frame arrived.
    FirstFrame,
}

/// Why a probe did not come back plainly up. Stored by its stable `code()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Refused,
    Timeout(TimeoutStage),
    Unauthorized,
    /// The camera's TLS certificate was refused: not trusted, or not the pinned one.
    Tls,
    NotFound,
    /// Name resolution failed or the host is unreachable.
    Unreachable,
    Protocol,
    NoVideo,
    Decode,
    /// The stream ended before a frame arrived.
    EndOfStream,
    /// The pipeline could not be built (template or element problem).
    Pipeline,
    Frozen,
    Black,
    WrongResolution,
    LowFps,
    /// The camera's clock (read over ONVIF) is off by more than `max_clock_skew`.
    ClockSkew,
    /// The monitor itself failed while probing (its stream task panicked and was restarted).
    Internal,
    Other,
}

impl Reason {
    /// Stable machine code, stored in SQLite and shown in the JSON API.
    pub fn code(self) -> &'static str {
        match self {
            Reason::Refused => "refused",
            Reason::Timeout(TimeoutStage::Connect) => "timeout_connect",
            Reason::Timeout(TimeoutStage::Headers) => "timeout_headers",
            Reason::Timeout(TimeoutStage::FirstFrame) => "timeout_first_frame",
            Reason::Unauthorized => "unauthorized",
            Reason::Tls => "tls",
            Reason::NotFound => "not_found",
            Reason::Unreachable => "unreachable",
            Reason::Protocol => "protocol",
            Reason::NoVideo => "no_video",
            Reason::Decode => "decode",
            Reason::EndOfStream => "eos",
            Reason::Pipeline => "pipeline",
            Reason::Frozen => "frozen",
            Reason::Black => "black",
            Reason::WrongResolution => "wrong_resolution",
            Reason::LowFps => "low_fps",
            Reason::ClockSkew => "clock_skew",
            Reason::Internal => "internal",
            Reason::Other => "other",
        }
    }

    pub fn from_code(code: &str) -> Option<Reason> {
        Some(match code {
            "refused" => Reason::Refused,
            "timeout_connect" => Reason::Timeout(TimeoutStage::Connect),
            "timeout_headers" => Reason::Timeout(TimeoutStage::Headers),
            "timeout_first_frame" => Reason::Timeout(TimeoutStage::FirstFrame),
            "unauthorized" => Reason::Unauthorized,
            "tls" => Reason::Tls,
            "not_found" => Reason::NotFound,
            "unreachable" => Reason::Unreachable,
            "protocol" => Reason::Protocol,
            "no_video" => Reason::NoVideo,
            "decode" => Reason::Decode,
            "eos" => Reason::EndOfStream,
            "pipeline" => Reason::Pipeline,
            "frozen" => Reason::Frozen,
            "black" => Reason::Black,
            "wrong_resolution" => Reason::WrongResolution,
            "low_fps" => Reason::LowFps,
            "clock_skew" => Reason::ClockSkew,
            "internal" => Reason::Internal,
            "other" => Reason::Other,
            _ => return None,
        })
    }

    /// A short phrase a person understands, for pages and `status`.
    pub fn describe(self) -> &'static str {
        match self {
            Reason::Refused => "connection refused",
            Reason::Timeout(TimeoutStage::Connect) => "timed out connecting",
            Reason::Timeout(TimeoutStage::Headers) => "connected, but the camera never answered",
            Reason::Timeout(TimeoutStage::FirstFrame) => "answered, but no video frame arrived in time",
            Reason::Unauthorized => "unauthorized (wrong or missing credentials)",
            Reason::Tls => "TLS certificate refused (not trusted, or not the pinned one)",
            Reason::NotFound => "not found (wrong path or stream name)",
            Reason::Unreachable => "host unreachable or unknown",
            Reason::Protocol => "protocol error (the camera sent something unexpected)",
            Reason::NoVideo => "no video stream",
            Reason::Decode => "video could not be decoded",
            Reason::EndOfStream => "stream ended before a frame arrived",
            Reason::Pipeline => "probe pipeline could not start",
            Reason::Frozen => "picture frozen",
            Reason::Black => "picture black or blank",
            Reason::WrongResolution => "unexpected resolution",
            Reason::LowFps => "frame rate too low",
            Reason::ClockSkew => "camera clock wrong",
            Reason::Internal => "monitor error: the probe task failed and was restarted",
            Reason::Other => "probe failed",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The result of one probe of one stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeOutcome {
    pub health: Health,
    /// Milliseconds from probe start to the first decoded frame (up/degraded only).
    pub latency_ms: Option<u64>,
    /// `None` when plainly up.
    pub reason: Option<Reason>,
    /// Detail for a person, already redacted (no credentials).
    pub message: String,
    /// Codec of the stream as negotiated, e.g. `h264`, `jpeg`.
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Frames per second: measured over the sample window, else from the stream's caps.
    pub fps: Option<f64>,
    /// Compressed bitrate over the sample window.
    pub bitrate_kbps: Option<u64>,
    /// The first frame, summarised, for the next probe's "same picture again?" check.
    /// Kept in memory only (the monitor hands it to the next probe), never stored.
    #[serde(skip)]
    pub picture: Option<PictureSummary>,
}

impl ProbeOutcome {
    pub fn down(reason: Reason, message: impl Into<String>) -> Self {
        Self {
            health: Health::Down,
            latency_ms: None,
            reason: Some(reason),
            message: message.into(),
            codec: None,
            width: None,
            height: None,
            fps: None,
            bitrate_kbps: None,
            picture: None,
        }
    }

    /// Plainly up, `latency_ms` after the probe started; codec, size and rates unknown.
    pub fn up(latency_ms: u64) -> Self {
        Self {
            health: Health::Up,
            latency_ms: Some(latency_ms),
            reason: None,
            message: String::new(),
            codec: None,
            width: None,
            height: None,
            fps: None,
            bitrate_kbps: None,
            picture: None,
        }
    }

    pub fn is_up(&self) -> bool {
        self.health == Health::Up
    }

    /// Why it is not plainly up, in words; empty when it is.
    pub fn explanation(&self) -> Explanation<'_> {
        Explanation::new(self.reason, &self.message)
    }
}

/// One line for a person: the explanation when something is wrong, else what came through
/// (`h264, 640x360, 42 ms`).
impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_some() {
            return self.explanation().fmt(f);
        }
        let mut parts = Vec::new();
        if let Some(codec) = &self.codec {
            parts.push(codec.clone());
        }
        if let (Some(width), Some(height)) = (self.width, self.height) {
            parts.push(format!("{width}x{height}"));
        }
        if let Some(ms) = self.latency_ms {
            parts.push(format!("{ms} ms"));
        }
        f.write_str(&parts.join(", "))
    }
}

/// A verdict in words: `"connection refused: <detail>"`, just the reason's phrase without a
/// detail, just the detail without a reason. Used by the monitor's log, `check`, `status` and
/// the fleet view, so they all say the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation<'a> {
    pub reason: Option<Reason>,
    /// Detail, already redacted.
    pub message: &'a str,
}

impl<'a> Explanation<'a> {
    pub fn new(reason: Option<Reason>, message: &'a str) -> Self {
        Self { reason, message }
    }

    /// Nothing to say (plainly up, no detail).
    pub fn is_empty(&self) -> bool {
        self.reason.is_none() && self.message.is_empty()
    }
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.reason, self.message) {
            (Some(reason), "") => f.write_str(reason.describe()),
            (Some(reason), message) => write!(f, "{}: {message}", reason.describe()),
            (None, message) => f.write_str(message),
        }
    }
}

/// One probe result of one stream at one time: what the monitor sends the store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    pub stream_id: i64,
    pub ts_ms: i64,
    /// Whether the clock was NTP-synchronised when the heartbeat was taken.
    pub ntp_synced: bool,
    #[serde(flatten)]
    pub outcome: ProbeOutcome,
}

impl Heartbeat {
    /// The outcome's picture is dropped: the store keeps none, and the writer's disk-full buffer
    /// (up to 100,000 heartbeats) should not hold one each.
    pub fn new(stream_id: i64, ts_ms: i64, ntp_synced: bool, mut outcome: ProbeOutcome) -> Self {
        outcome.picture = None;
        Self {
            stream_id,
            ts_ms,
            ntp_synced,
            outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_round_trip() {
        let all = [
            Reason::Refused,
            Reason::Timeout(TimeoutStage::Connect),
            Reason::Timeout(TimeoutStage::Headers),
            Reason::Timeout(TimeoutStage::FirstFrame),
            Reason::Unauthorized,
            Reason::Tls,
            Reason::NotFound,
            Reason::Unreachable,
            Reason::Protocol,
            Reason::NoVideo,
            Reason::Decode,
            Reason::EndOfStream,
            Reason::Pipeline,
            Reason::Frozen,
            Reason::Black,
            Reason::WrongResolution,
            Reason::LowFps,
            Reason::ClockSkew,
            Reason::Internal,
            Reason::Other,
        ];
        for reason in all {
            assert_eq!(Reason::from_code(reason.code()), Some(reason));
        }
        for health in [Health::Up, Health::Down, Health::Degraded] {
            assert_eq!(Health::from_code(health.code()), Some(health));
        }
    }

    #[test]
    fn a_verdict_reads_reason_then_detail() {
        let refused = ProbeOutcome::down(Reason::Refused, "127.0.0.1:554");
        assert_eq!(refused.to_string(), "connection refused: 127.0.0.1:554");
        assert_eq!(
            ProbeOutcome::down(Reason::NotFound, "").to_string(),
            "not found (wrong path or stream name)"
        );
        assert_eq!(Explanation::new(None, "detail").to_string(), "detail");
        assert!(Explanation::new(None, "").is_empty());
        let up = ProbeOutcome {
            codec: Some("h264".into()),
            width: Some(640),
            height: Some(360),
            ..ProbeOutcome::up(42)
        };
        assert_eq!(up.to_string(), "h264, 640x360, 42 ms");
        assert!(up.explanation().is_empty());
    }
}
