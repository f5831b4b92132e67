//! Which template an `http(s)://` stream without `pipeline:` needs, from what its server says.
//!
//! The question goes through GStreamer itself (`souphttpsrc ! typefind ! fakesink`), so
//! credentials, proxies and TLS behave exactly as in the probe that follows. souphttpsrc hands
//! the response headers downstream in a sticky `http-headers` event: a specific `Content-Type`
//! decides at once; a missing or generic one (`application/octet-stream`) waits for typefind's
//! look at the first bytes. Failures (401, 404, refused, silence) come out through the probe's
//! own diagnosis ([`error_outcome`], [`timeout_outcome`]), so they read as a probe's would.

use super::classify::ConnectDiagnosis;
use super::diagnosis::{error_outcome, timeout_outcome, ConnectCheck, RtspProgress};
use super::learned::DetectedTemplate;
use super::sdp::SdpSeen;
use super::teardown::{Reaper, TeardownDone};
use super::{template_values, ProbeOutcome, ProbeRequest, Reason};
use crate::pipeline::{Template, TemplateSource};
use futures::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::time::Instant;
use tokio::sync::mpsc;

/// The asking pipeline; placeholders as in the shipped HTTP templates.
const SNIFF_TEMPLATE: &str = "souphttpsrc location={location} user-id={user} user-pw={password} timeout={timeout_s} ! typefind name=typefind ! fakesink sync=false";

/// What the server's answer says about the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict {
    /// This template, for this reason.
    Template(&'static str, String),
    /// Not video at all: the message says what it is.
    NotVideo(String),
    /// The header says too little: let typefind look at the data.
    Unsure,
}

/// The template for a `Content-Type` (parameters and case ignored) and the URL's path.
pub(super) fn from_content_type(content_type: Option<&str>, path: &str) -> Verdict {
    let essence = content_type
        .and_then(|value| value.split(';').next())
        .map(|value| value.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let said = |template| Verdict::Template(template, format!("server said {essence}"));
    match essence.as_str() {
        "multipart/x-mixed-replace" => return said("mjpeg"),
        "application/vnd.apple.mpegurl" | "application/x-mpegurl" | "audio/mpegurl" | "audio/x-mpegurl" => {
            return said("hls")
        }
        "video/mp2t" | "video/mpeg" | "video/mp4" | "video/quicktime" | "video/x-flv"
        | "video/x-matroska" | "video/webm" => return said("http-h264"),
        "image/jpeg" | "image/jpg" => return said("snapshot"),
        _ => {}
    }
    // Many web servers send playlists as text/plain or octet-stream.
    let path = path.split(['?', '#']).next().unwrap_or_default();
    if path.to_ascii_lowercase().ends_with(".m3u8") && essence != "text/html" {
        return Verdict::Template("hls", "the path ends in .m3u8".to_string());
    }
    if essence.starts_with("text/") || essence.starts_with("application/json") || essence.ends_with("+xml") {
        return Verdict::NotVideo(not_video(&essence));
    }
    Verdict::Unsure
}

/// The template for what typefind found in the first bytes; `content_type` is what the server
/// said, for the reason given.
pub(super) fn from_typefind(found: &str, content_type: Option<&str>) -> Verdict {
    let because = match content_type {
        Some(said) if !said.is_empty() => format!("typefind found {found}; server said {said}"),
        _ => format!("typefind found {found}; server sent no Content-Type"),
    };
    match found {
        "application/x-hls" => Verdict::Template("hls", because),
        "video/mpegts" | "video/quicktime" | "video/x-flv" | "video/x-matroska" | "video/webm"
        | "video/mpeg" => Verdict::Template("http-h264", because),
        "image/jpeg" => Verdict::Template("snapshot", because),
        "multipart/x-mixed-replace" => Verdict::Template("mjpeg", because),
        other => Verdict::NotVideo(not_video(other)),
    }
}

fn not_video(what: &str) -> String {
    if what == "text/html" {
        "the server sent text/html, not video: is this the camera's web page?".to_string()
    } else {
        format!("the server sent {what}, not video (name the template with `pipeline:` if it is)")
    }
}

/// What the watchers of the asking pipeline report.
enum Seen {
    /// Response headers of a successful answer: its `Content-Type`, if any.
    Headers(Option<String>),
    /// typefind's answer: the caps' structure name.
    Type(String),
}

/// Asks the server of `request.url`, under `deadline`. Hands back the teardown of its pipeline.
pub(super) async fn sniff(
    request: &ProbeRequest,
    reaper: &Reaper,
    started: Instant,
    deadline: Instant,
) -> (Result<DetectedTemplate, ProbeOutcome>, Option<TeardownDone>) {
    let built = crate::pipeline::init_gstreamer()
        .and_then(|()| {
            Template::from_text("sniff", TemplateSource::Shipped, SNIFF_TEMPLATE)
                .render(&template_values(request))
        })
        .map_err(|e| e.to_string())
        .and_then(|rendered| {
            gst::parse::launch_full(&rendered, None, gst::ParseFlags::FATAL_ERRORS)
                .map_err(|e| crate::url::redact_text(&e.to_string()))
        })
        .and_then(|element| {
            element
                .downcast::<gst::Pipeline>()
                .map_err(|_| "the asking pipeline is not a pipeline".to_string())
        });
    let pipeline = match built {
        Ok(pipeline) => pipeline,
        Err(why) => {
            let outcome = ProbeOutcome::down(Reason::Pipeline, format!("cannot ask the server: {why}"));
            return (Err(outcome), None);
        }
    };
    // ssl-strict as the probe will have it (a pin was checked before the sniff).
    super::tls::hook(&pipeline, request.tls);
    let result = watch(&pipeline, request, started, deadline).await;
    (result, Some(reaper.dispose(pipeline)))
}

async fn watch(
    pipeline: &gst::Pipeline,
    request: &ProbeRequest,
    started: Instant,
    deadline: Instant,
) -> Result<DetectedTemplate, ProbeOutcome> {
    let (seen_tx, mut seen) = mpsc::unbounded_channel::<Seen>();
    attach_watchers(pipeline, seen_tx);
    let Some(bus) = pipeline.bus() else {
        return Err(ProbeOutcome::down(Reason::Pipeline, "pipeline has no bus"));
    };
    let mut messages = bus.stream();
    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        return Err(ProbeOutcome::down(
            Reason::Pipeline,
            format!("pipeline would not start: {e}"),
        ));
    }
    let path = request
        .url
        .as_ref()
        .map(|url| url_path(&url.without_credentials()))
        .unwrap_or_default();
    let mut content_type: Option<String> = None;
    let mut answered = false;
    let diagnose_at = started + request.timeout / 2;
    let mut connect_check: Option<ConnectCheck> = None;
    loop {
        let verdict = tokio::select! {
            biased;
            Some(found) = seen.recv() => match found {
                Seen::Headers(said) => {
                    answered = true;
                    content_type = said;
                    match from_content_type(content_type.as_deref(), &path) {
                        Verdict::Unsure => continue,
                        decided => decided,
                    }
                }
                Seen::Type(found) => from_typefind(&found, content_type.as_deref()),
            },
            msg = messages.next() => {
                let Some(msg) = msg else { continue };
                match msg.view() {
                    gst::MessageView::Error(err) => {
                        return Err(error_outcome(err, request, deadline, &SdpSeen::default()).await);
                    }
                    gst::MessageView::Eos(_) => {
                        return Err(ProbeOutcome::down(
                            Reason::EndOfStream,
                            "the server's answer ended before it said what it sends",
                        ));
                    }
                    _ => continue,
                }
            }
            _ = tokio::time::sleep_until(diagnose_at.into()), if connect_check.is_none() => {
                connect_check = Some(ConnectCheck::start(request.url.as_ref(), deadline));
                continue;
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let diagnosis = match connect_check.take() {
                    Some(check) => check.finish(),
                    None => ConnectDiagnosis::NotApplicable,
                };
                let diagnosis = if answered { ConnectDiagnosis::Answered } else { diagnosis };
                return Err(timeout_outcome(request, &RtspProgress::default(), false, diagnosis));
            }
        };
        return match verdict {
            Verdict::Template(template, evidence) => Ok(DetectedTemplate {
                template: template.to_string(),
                evidence,
            }),
            Verdict::NotVideo(message) => Err(ProbeOutcome::down(Reason::NoVideo, message)),
            Verdict::Unsure => continue,
        };
    }
}

/// Response headers from souphttpsrc's `http-headers` event, typefind's answer from its signal.
fn attach_watchers(pipeline: &gst::Pipeline, seen: mpsc::UnboundedSender<Seen>) {
    for element in pipeline.iterate_elements().into_iter().flatten() {
        let Some(factory) = element.factory() else {
            continue;
        };
        match factory.name().as_str() {
            "souphttpsrc" => {
                let Some(pad) = element.static_pad("src") else {
                    continue;
                };
                let seen = seen.clone();
                pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
                    if let Some(gst::PadProbeData::Event(event)) = &info.data {
                        if let Some(headers) = event.structure().filter(|s| s.name() == "http-headers") {
                            if let Some(content_type) = successful_content_type(headers) {
                                let _ = seen.send(Seen::Headers(content_type));
                            }
                        }
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            "typefind" => {
                let seen = seen.clone();
                element.connect("have-type", false, move |values| {
                    if let Some(caps) = values.get(2).and_then(|v| v.get::<gst::Caps>().ok()) {
                        if let Some(structure) = caps.structure(0) {
                            let _ = seen.send(Seen::Type(structure.name().to_string()));
                        }
                    }
                    None
                });
            }
            _ => {}
        }
    }
}

/// `Some(Content-Type or None)` for a 2xx answer; `None` for an error status (the bus error that
/// follows says what went wrong).
fn successful_content_type(headers: &gst::StructureRef) -> Option<Option<String>> {
    let status = headers.get::<u32>("http-status-code").unwrap_or(200);
    if !(200..300).contains(&status) {
        return None;
    }
    let response = headers.get::<gst::Structure>("response-headers").ok()?;
    let content_type = response
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))
        .and_then(|(_, value)| value.get::<String>().ok());
    Some(content_type)
}

/// The path of a URL (after the host), query included.
fn url_path(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    rest.find('/')
        .map_or_else(|| "/".to_string(), |i| rest[i..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn template(verdict: Verdict) -> Option<&'static str> {
        match verdict {
            Verdict::Template(name, _) => Some(name),
            _ => None,
        }
    }

    #[test]
    fn content_types_choose_templates() {
        let choose = |ct: &str| template(from_content_type(Some(ct), "/live"));
        assert_eq!(choose("multipart/x-mixed-replace; boundary=frame"), Some("mjpeg"));
        assert_eq!(choose("application/vnd.apple.mpegurl"), Some("hls"));
        assert_eq!(choose("Application/X-MpegURL"), Some("hls"));
        assert_eq!(choose("video/MP2T"), Some("http-h264"));
        assert_eq!(choose("video/mp4"), Some("http-h264"));
        assert_eq!(choose("video/x-flv"), Some("http-h264"));
        assert_eq!(choose("image/jpeg"), Some("snapshot"));
        assert_eq!(
            from_content_type(Some("text/html; charset=utf-8"), "/"),
            Verdict::NotVideo("the server sent text/html, not video: is this the camera's web page?".into())
        );
        assert_eq!(
            from_content_type(Some("application/octet-stream"), "/x"),
            Verdict::Unsure
        );
        assert_eq!(from_content_type(None, "/x"), Verdict::Unsure);
        assert_eq!(
            template(from_content_type(Some("text/plain"), "/live/index.M3U8?token=1")),
            Some("hls")
        );
        assert_eq!(
            from_content_type(Some("application/vnd.apple.mpegurl"), "/a"),
            Verdict::Template("hls", "server said application/vnd.apple.mpegurl".into())
        );
    }

    #[test]
    fn typefind_decides_when_the_header_does_not() {
        assert_eq!(
            from_typefind("application/x-hls", Some("application/octet-stream")),
            Verdict::Template(
                "hls",
                "typefind found application/x-hls; server said application/octet-stream".into()
            )
        );
        assert_eq!(template(from_typefind("video/mpegts", None)), Some("http-h264"));
        assert_eq!(template(from_typefind("image/jpeg", None)), Some("snapshot"));
        assert!(matches!(from_typefind("text/html", None), Verdict::NotVideo(m) if m.contains("web page")));
    }

    #[test]
    fn paths_leave_out_the_host() {
        assert_eq!(url_path("http://h:8080/a/b.m3u8?x=1"), "/a/b.m3u8?x=1");
        assert_eq!(url_path("http://h"), "/");
    }

    proptest! {
        /// Whatever a server sends: no panic, and parameters and case never change the verdict.
        #[test]
        fn any_content_type_is_read_safely(essence in "[a-zA-Z/+.-]{0,30}", params in ";[ -~]{0,30}", path in "[ -~]{0,40}") {
            let plain = from_content_type(Some(&essence), &path);
            let with_params = from_content_type(Some(&format!("{}{params}", essence.to_uppercase())), &path);
            prop_assert_eq!(template(plain), template(with_params));
        }
    }
}
