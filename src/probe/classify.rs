//! Turning GStreamer's errors into reasons a person understands.
//!
//! GStreamer reports by error domain and free text that differs per element; the rules here were
//! checked against rtspsrc and souphttpsrc on GStreamer 1.22 (see tests/probe.rs).

use super::{Reason, TimeoutStage};
use gstreamer as gst;
use std::time::Duration;

pub struct Classified {
    pub reason: Reason,
    pub message: String,
    /// The error does not tell refused from timed-out (souphttpsrc): ask the port.
    pub ambiguous_network: bool,
}

pub fn classify_error(err: &gst::message::Error) -> Classified {
    let error = err.error();
    let text = error.to_string();
    let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
    let haystack = format!("{text}\n{debug}").to_ascii_lowercase();
    let message = summarize(&text, &debug);
    let (reason, ambiguous_network) = reason_for(&error, &haystack);
    Classified {
        reason,
        message,
        ambiguous_network,
    }
}

fn reason_for(error: &gst::glib::Error, haystack: &str) -> (Reason, bool) {
    let has = |needle: &str| haystack.contains(needle);
    if error.matches(gst::ResourceError::NotAuthorized) || has("unauthorized") || has(" 401") {
        return (Reason::Unauthorized, false);
    }
    if error.matches(gst::ResourceError::NotFound) || has("not found") || has(" 404") {
        // A missing decoder plug-in also says "not found" in places; check for that first.
        if has("missing") && has("plug-in") {
            return (Reason::Decode, false);
        }
        return (Reason::NotFound, false);
    }
    if has("connection refused") {
        return (Reason::Refused, false);
    }
    if has("timeout while waiting for server response") || has("timed out") {
        return (Reason::Timeout(TimeoutStage::Headers), false);
    }
    if has("could not resolve")
        || has("name or service not known")
        || has("no route to host")
        || has("network is unreachable")
        || has("temporary failure in name resolution")
    {
        return (Reason::Unreachable, false);
    }
    if error.matches(gst::CoreError::MissingPlugin) || (has("missing") && has("plug-in")) {
        return (Reason::Decode, false);
    }
    if error.matches(gst::StreamError::Decode) {
        return (Reason::Decode, false);
    }
    if error.matches(gst::StreamError::CodecNotFound) {
        return (Reason::Decode, false);
    }
    if has("no supported stream") || has("no video") || has("no streams") || has("no stream") {
        return (Reason::NoVideo, false);
    }
    if error.matches(gst::StreamError::TypeNotFound)
        || error.matches(gst::StreamError::WrongType)
        || error.matches(gst::StreamError::Demux)
        || error.matches(gst::StreamError::Format)
        || has("parse")
        || has("invalid")
        || has("malformed")
        || has("not-negotiated")
    {
        return (Reason::Protocol, false);
    }
    if error.matches(gst::ResourceError::OpenRead)
        || error.matches(gst::ResourceError::OpenReadWrite)
        || error.matches(gst::ResourceError::Read)
        || error.matches(gst::StreamError::Failed)
    {
        return (Reason::Protocol, true);
    }
    (Reason::Other, true)
}

/// One line: GStreamer's message plus the most useful part of the debug text.
fn summarize(text: &str, debug: &str) -> String {
    // Debug text is "file.c(line): function (): /Pipeline/element:\nDetail". Keep the detail.
    let detail = debug
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.contains("): "))
        .unwrap_or("");
    let line = if detail.is_empty() || text.contains(detail) {
        text.to_string()
    } else if detail
        .to_ascii_lowercase()
        .contains(&text.trim_end_matches('.').to_ascii_lowercase())
    {
        detail.to_string()
    } else {
        format!("{text} ({detail})")
    };
    crate::url::redact_text(&line)
}

/// What a plain connection to the camera's port says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnectDiagnosis {
    Refused,
    Connected,
    /// An HTTP camera sent a status line: it answers requests, so what is missing is video.
    Answered,
    Unreachable(String),
    /// Still connecting when the budget ran out.
    Pending,
    /// No host/port to try (local devices).
    NotApplicable,
}

/// Connects to `host:port` within `budget`. For plain HTTP it also sends a request and waits for
/// the status line, which tells "the camera never answers" from "it answers but sends no video".
/// Only used when a probe is already failing, so healthy cameras never see the extra connection.
/// Progress is published on `progress` as it happens, so a caller whose deadline comes first
/// still learns how far the connection got.
pub async fn diagnose_connect(
    host: String,
    port: u16,
    http_path: Option<String>,
    budget: Duration,
    progress: tokio::sync::watch::Sender<ConnectDiagnosis>,
) {
    let started = tokio::time::Instant::now();
    let attempt = tokio::net::TcpStream::connect((host.as_str(), port));
    let mut stream = match tokio::time::timeout(budget, attempt).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            let _ = progress.send(ConnectDiagnosis::Refused);
            return;
        }
        Ok(Err(e)) => {
            let _ = progress.send(ConnectDiagnosis::Unreachable(format!(
                "cannot connect to {host}:{port}: {e}"
            )));
            return;
        }
        Err(_) => return,
    };
    let _ = progress.send(ConnectDiagnosis::Connected);
    let Some(path) = http_path else { return };
    let remaining = budget.saturating_sub(started.elapsed());
    let exchange = async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let request = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: StreamPulse\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut first = [0u8; 12];
        let read = stream.read(&mut first).await?;
        Ok::<bool, std::io::Error>(first[..read].starts_with(b"HTTP/"))
    };
    if let Ok(Ok(true)) = tokio::time::timeout(remaining, exchange).await {
        let _ = progress.send(ConnectDiagnosis::Answered);
    }
}

/// Runs [`diagnose_connect`] to the end of its budget and returns what it found.
pub async fn diagnose_now(host: String, port: u16, budget: Duration) -> ConnectDiagnosis {
    let (sender, receiver) = tokio::sync::watch::channel(ConnectDiagnosis::Pending);
    diagnose_connect(host, port, None, budget, sender).await;
    let found = receiver.borrow().clone();
    found
}
