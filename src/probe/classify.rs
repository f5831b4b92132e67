//! Turning GStreamer's errors into reasons a person understands.
//!
//! Only structured facts decide the reason: the error's domain and code, the HTTP/RTSP status
//! that souphttpsrc and rtspsrc attach as details (`http-status-code`, `rtsp-status-code`), the
//! flow return of a streaming error, and which element posted it. Never the English text: it is
//! translated with the locale, and words in it mislead ("Boundary not found" is no 404). Where
//! GStreamer cannot tell refused, unreachable and timed out apart, the port is asked directly
//! (`ambiguous_network`). Checked against rtspsrc and souphttpsrc on GStreamer 1.22
//! (tests/probe.rs, tests/cli.rs).

use super::Reason;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::time::Duration;

pub struct Classified {
    pub reason: Reason,
    pub message: String,
    /// The error does not tell refused from timed-out (souphttpsrc): ask the port.
    pub ambiguous_network: bool,
    /// What went wrong, when the structure says more than the reason code.
    pub cause: Cause,
}

/// Finer causes, for a message that says what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Plain,
    /// rtspsrc set up no stream: none of the transports the template allows was accepted.
    RtspNoTransport,
    /// A streaming thread found no element to hand its data to: the template's depayloader or
    /// demuxer does not take what the camera sends.
    NotLinked,
}

/// GstFlowReturn NOT_LINKED, as a streaming error's `flow-return` detail carries it.
const FLOW_NOT_LINKED: i32 = -1;

pub fn classify_error(err: &gst::message::Error) -> Classified {
    let error = err.error();
    let text = error.to_string();
    let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
    let message = summarize(&text, &debug);
    let details = err.details();
    let status = details.and_then(|d| {
        d.get::<u32>("http-status-code")
            .or_else(|_| d.get::<u32>("rtsp-status-code"))
            .ok()
    });
    let flow = details.and_then(|d| d.get::<i32>("flow-return").ok());
    let from_rtspsrc = err.src().is_some_and(within_rtspsrc);
    let (reason, ambiguous_network, cause) = reason_for(&error, status, flow, from_rtspsrc);
    Classified {
        reason,
        message,
        ambiguous_network,
        cause,
    }
}

/// The object is an rtspsrc or inside one (its udpsrc, its rtpbin).
fn within_rtspsrc(object: &gst::Object) -> bool {
    let mut current = Some(object.clone());
    while let Some(object) = current {
        if super::is_rtspsrc(&object) {
            return true;
        }
        current = object.parent();
    }
    false
}

fn reason_for(
    error: &gst::glib::Error,
    status: Option<u32>,
    flow: Option<i32>,
    from_rtspsrc: bool,
) -> (Reason, bool, Cause) {
    let plain = |reason| (reason, false, Cause::Plain);
    match status {
        Some(401 | 403 | 407) => return plain(Reason::Unauthorized),
        Some(404 | 410) => return plain(Reason::NotFound),
        Some(status) if status >= 400 => return plain(Reason::Protocol),
        _ => {}
    }
    if error.matches(gst::ResourceError::NotAuthorized) {
        return plain(Reason::Unauthorized);
    }
    if error.matches(gst::CoreError::MissingPlugin) {
        return plain(Reason::Decode);
    }
    if error.matches(gst::ResourceError::NotFound) {
        return plain(Reason::NotFound);
    }
    if error.matches(gst::StreamError::CodecNotFound) && from_rtspsrc {
        return (Reason::Protocol, false, Cause::RtspNoTransport);
    }
    if error.matches(gst::StreamError::Decode) || error.matches(gst::StreamError::CodecNotFound) {
        return plain(Reason::Decode);
    }
    if error.matches(gst::StreamError::Failed) && flow == Some(FLOW_NOT_LINKED) {
        return (Reason::Protocol, false, Cause::NotLinked);
    }
    if error.matches(gst::StreamError::TypeNotFound)
        || error.matches(gst::StreamError::WrongType)
        || error.matches(gst::StreamError::Demux)
        || error.matches(gst::StreamError::Format)
        || error.matches(gst::StreamError::NotImplemented)
        || error.matches(gst::CoreError::Negotiation)
    {
        return plain(Reason::Protocol);
    }
    if error.matches(gst::ResourceError::OpenRead)
        || error.matches(gst::ResourceError::OpenReadWrite)
        || error.matches(gst::ResourceError::Read)
        || error.matches(gst::ResourceError::Write)
        || error.matches(gst::StreamError::Failed)
    {
        // Refused, unreachable, reset or garbage look alike here: the port check tells.
        return (Reason::Protocol, true, Cause::Plain);
    }
    (Reason::Other, true, Cause::Plain)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every reason's own words, to put in the text of errors that mean something else.
    const MISLEADING: &str = "Not found (404), Unauthorized (401), Connection refused, timed out, \
        Could not resolve host, missing plug-in, no supported stream, invalid, parse error";

    fn classify(
        error: impl gst::MessageErrorDomain,
        details: Option<gst::Structure>,
        src: Option<&gst::Element>,
    ) -> Classified {
        gst::init().expect("GStreamer");
        let mut builder = gst::message::Error::builder(error, MISLEADING).debug(MISLEADING);
        if let Some(details) = details {
            builder = builder.details(details);
        }
        if let Some(src) = src {
            builder = builder.src(src);
        }
        let message = builder.build();
        match message.view() {
            gst::MessageView::Error(err) => classify_error(err),
            _ => unreachable!("an error message"),
        }
    }

    fn status(field: &str, code: u32) -> Option<gst::Structure> {
        Some(gst::Structure::builder("details").field(field, code).build())
    }

    #[test]
    fn statuses_decide_whatever_the_text_says() {
        for (field, code, reason) in [
            ("http-status-code", 401, Reason::Unauthorized),
            ("rtsp-status-code", 401, Reason::Unauthorized),
            ("http-status-code", 403, Reason::Unauthorized),
            ("http-status-code", 404, Reason::NotFound),
            ("rtsp-status-code", 404, Reason::NotFound),
            ("http-status-code", 503, Reason::Protocol),
            ("rtsp-status-code", 461, Reason::Protocol),
        ] {
            let classified = classify(gst::ResourceError::Failed, status(field, code), None);
            assert_eq!(classified.reason, reason, "{field} {code}");
            assert!(!classified.ambiguous_network);
        }
    }

    #[test]
    fn domains_and_codes_decide_whatever_the_text_says() {
        for (error, reason, ambiguous) in [
            (
                gst::ResourceError::NotAuthorized.into(),
                Reason::Unauthorized,
                false,
            ),
            (gst::ResourceError::NotFound.into(), Reason::NotFound, false),
            (gst::CoreError::MissingPlugin.into(), Reason::Decode, false),
            (gst::StreamError::Decode.into(), Reason::Decode, false),
            (gst::StreamError::CodecNotFound.into(), Reason::Decode, false),
            // multipartdemux's "Boundary not found in the multipart header" is no 404.
            (gst::StreamError::Demux.into(), Reason::Protocol, false),
            (gst::StreamError::TypeNotFound.into(), Reason::Protocol, false),
            (gst::StreamError::Format.into(), Reason::Protocol, false),
            (gst::ResourceError::OpenReadWrite.into(), Reason::Protocol, true),
            (gst::ResourceError::Read.into(), Reason::Protocol, true),
            (gst::StreamError::Failed.into(), Reason::Protocol, true),
            (gst::LibraryError::Init.into(), Reason::Other, true),
        ] as [(AnyDomain, Reason, bool); 12]
        {
            let classified = error.classify();
            assert_eq!(classified.reason, reason, "{error:?}");
            assert_eq!(classified.ambiguous_network, ambiguous, "{error:?}");
        }
    }

    #[test]
    fn rtspsrc_without_a_usable_transport_and_unlinked_streams_say_so() {
        gst::init().expect("GStreamer");
        let rtspsrc = gst::ElementFactory::make("rtspsrc").build().expect("rtspsrc");
        let classified = classify(gst::StreamError::CodecNotFound, None, Some(&rtspsrc));
        assert_eq!(
            (classified.reason, classified.cause),
            (Reason::Protocol, Cause::RtspNoTransport)
        );
        let flow = Some(
            gst::Structure::builder("details")
                .field("flow-return", FLOW_NOT_LINKED)
                .build(),
        );
        let classified = classify(gst::StreamError::Failed, flow, None);
        assert_eq!(
            (classified.reason, classified.cause),
            (Reason::Protocol, Cause::NotLinked)
        );
    }

    /// The test table's error codes, of any domain.
    #[derive(Debug, Clone, Copy)]
    enum AnyDomain {
        Core(gst::CoreError),
        Library(gst::LibraryError),
        Resource(gst::ResourceError),
        Stream(gst::StreamError),
    }

    impl AnyDomain {
        fn classify(self) -> Classified {
            match self {
                AnyDomain::Core(e) => classify(e, None, None),
                AnyDomain::Library(e) => classify(e, None, None),
                AnyDomain::Resource(e) => classify(e, None, None),
                AnyDomain::Stream(e) => classify(e, None, None),
            }
        }
    }

    impl From<gst::CoreError> for AnyDomain {
        fn from(e: gst::CoreError) -> Self {
            AnyDomain::Core(e)
        }
    }
    impl From<gst::LibraryError> for AnyDomain {
        fn from(e: gst::LibraryError) -> Self {
            AnyDomain::Library(e)
        }
    }
    impl From<gst::ResourceError> for AnyDomain {
        fn from(e: gst::ResourceError) -> Self {
            AnyDomain::Resource(e)
        }
    }
    impl From<gst::StreamError> for AnyDomain {
        fn from(e: gst::StreamError) -> Self {
            AnyDomain::Stream(e)
        }
    }
}
