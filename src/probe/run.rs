//! One probe: build the stream's pipeline, play it, and wait for the first decoded frame, a bus
//! error, EOS, or the deadline — whichever comes first. The deadline is a tokio timer, outside
//! GStreamer, so a camera that accepts the connection and then says nothing costs at most the
//! deadline. The watching is a [`ProbeSession`], the verdict [`grade`]; teardown goes to the
//! [`Reaper`] so it never delays the answer.

use super::grade::{grade, Previous};
use super::learned::{CameraMemory, ControlForm, DetectedTemplate, Transport};
use super::quality::PictureSummary;
use super::session::{FrameWanted, ProbeSession};
use super::teardown::{Reaper, TeardownDone};
use super::{ProbeOutcome, Reason};
use crate::config::{CameraTls, StreamConfig};
use crate::config::{Expectation, QualityConfig};
use crate::pipeline::{self, PipelineError, Template, TemplateLibrary};
use crate::url::CameraUrl;
use gstreamer as gst;
use gstreamer::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// RTSP: how long rtspsrc waits for UDP packets before retrying over TCP. Kept well under the
/// probe deadline so UDP-blocked cameras still come up within one probe.
const UDP_FALLBACK_FRACTION: f64 = 0.4;

/// Everything needed to probe one stream.
#[derive(Debug, Clone)]
pub struct ProbeRequest {
    pub url: Option<CameraUrl>,
    pub template: Template,
    pub params: BTreeMap<String, String>,
    pub timeout: Duration,
    pub quality: QualityConfig,
    pub expect: Expectation,
    /// The last clean picture and when it was taken: a camera that replays one stale frame on
    /// every new connection, or whose picture froze under a ticking clock, shows up as frozen.
    pub previous_picture: Option<(PictureSummary, Instant)>,
    /// A picture check: after a corrupt first frame, wait (up to the deadline) for the next
    /// keyframe and judge it. Otherwise the first frame ends the probe.
    pub picture_check: bool,
    /// What earlier probes of this camera learned (shared by clones of the request).
    pub memory: Arc<CameraMemory>,
    /// `Some` for an `http(s)://` stream without `pipeline:`: the template is chosen from what
    /// the server says (`sniff`), remembered in `memory`, and found in this library; `template`
    /// is only the fallback name shown before the first probe.
    pub detect: Option<Arc<TemplateLibrary>>,
    /// The stream's `transport:`: `Auto` follows what was learned, `Tcp`/`Udp` are imposed.
    pub transport: Transport,
    /// How an `rtsps://` / `https://` camera's certificate is checked.
    pub tls: CameraTls,
}

impl ProbeRequest {
    /// The request for a configured stream: its template, URL, params and deadline.
    pub fn for_stream(
        stream: &StreamConfig,
        library: &TemplateLibrary,
    ) -> Result<ProbeRequest, PipelineError> {
        Ok(ProbeRequest {
            url: stream.url.clone(),
            template: library.find(&stream.pipeline)?,
            params: stream.params.clone(),
            timeout: stream.probe_timeout,
            quality: stream.quality.clone(),
            expect: stream.expect.clone(),
            previous_picture: None,
            picture_check: true,
            memory: Arc::default(),
            detect: stream.detect_template.then(|| Arc::new(library.clone())),
            transport: stream.transport.into(),
            tls: stream.tls,
        })
    }

    /// A request for `url` with `template` and nothing else configured: default picture rules,
    /// first frame only, nothing learned yet, the template's transport, verified TLS.
    pub fn new(url: Option<CameraUrl>, template: Template, timeout: Duration) -> ProbeRequest {
        ProbeRequest {
            url,
            template,
            params: BTreeMap::new(),
            timeout,
            quality: QualityConfig::default(),
            expect: Expectation::default(),
            previous_picture: None,
            picture_check: false,
            memory: Arc::default(),
            detect: None,
            transport: Transport::Auto,
            tls: CameraTls::Verify,
        }
    }
}

/// A JPEG picture from a camera, for the web UI.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub jpeg: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

/// Placeholder values for a template, from the request.
pub fn template_values(request: &ProbeRequest) -> BTreeMap<String, String> {
    let mut values = request.params.clone();
    let timeout_us = request.timeout.as_micros() as u64;
    let (user, password) = request
        .url
        .as_ref()
        .and_then(CameraUrl::credentials)
        .map(|(u, p)| (u, p.unwrap_or_default()))
        .unwrap_or_default();
    values.insert(
        "url".into(),
        request
            .url
            .as_ref()
            .map(|u| u.expose().to_string())
            .unwrap_or_default(),
    );
    values.insert(
        "location".into(),
        request
            .url
            .as_ref()
            .map(CameraUrl::without_credentials)
            .unwrap_or_default(),
    );
    values.insert("user".into(), user);
    values.insert("password".into(), password);
    values.insert("timeout_us".into(), timeout_us.to_string());
    // Whole seconds, rounded up plus one, so souphttpsrc's own timeout never fires before the
    // probe's deadline (which knows at which stage the camera stuck).
    values.insert(
        "timeout_s".into(),
        (request.timeout.as_secs_f64().ceil() as u64 + 1).to_string(),
    );
    values.insert(
        "udp_fallback_us".into(),
        ((timeout_us as f64) * UDP_FALLBACK_FRACTION).round().to_string(),
    );
    values.entry("latency_ms".into()).or_insert_with(|| "0".into());
    values
}

/// Runs one probe to completion. Never panics, never takes longer than the deadline plus a few
/// milliseconds of bookkeeping.
pub async fn probe(request: &ProbeRequest, reaper: &Reaper) -> ProbeOutcome {
    probe_with_teardown(request, reaper).await.0
}

/// Like [`probe`], also handing back the teardown of its pipeline, for callers that bound how
/// many pipelines exist at once (the monitor's pool).
pub async fn probe_with_teardown(
    request: &ProbeRequest,
    reaper: &Reaper,
) -> (ProbeOutcome, Option<TeardownDone>) {
    let (outcome, _, teardown) = probe_with_picture(request, reaper).await;
    (outcome, teardown)
}

/// Like [`probe_with_teardown`], also handing back the clean decoded frame the verdict was drawn
/// from (`Some` exactly when `outcome.picture` is), for the monitor's last pictures: no second
/// connection to the camera. Never a frame the decoder flagged corrupt.
pub async fn probe_with_picture(
    request: &ProbeRequest,
    reaper: &Reaper,
) -> (ProbeOutcome, Option<gst::Sample>, Option<TeardownDone>) {
    let wanted = if request.picture_check {
        FrameWanted::FirstThenClean
    } else {
        FrameWanted::First
    };
    let (result, teardown) = run(request, reaper, wanted).await;
    let (outcome, sample) = match result {
        Ok((up, sample)) => {
            let judged = sample.filter(|_| up.picture.is_some());
            (up, judged)
        }
        Err(down) => (down, None),
    };
    (outcome, sample, teardown)
}

/// JPEG quality of snapshots (full size; the live view and last pictures use their own).
const SNAPSHOT_QUALITY: u8 = 85;

/// Grabs one clean frame and encodes it as a full-size JPEG, under the request's deadline.
pub async fn snapshot(request: &ProbeRequest, reaper: &Reaper) -> Result<Snapshot, ProbeOutcome> {
    let (outcome, sample) = run(request, reaper, FrameWanted::Clean).await.0?;
    let sample = sample.ok_or_else(|| ProbeOutcome::down(Reason::Decode, "no clean frame"))?;
    // The same in-process encoder as the last pictures: no converter pipeline and its threads.
    let encoded =
        tokio::task::spawn_blocking(move || super::jpeg::encode(&sample, u32::MAX, SNAPSHOT_QUALITY)).await;
    let jpeg = match encoded {
        Ok(Ok(jpeg)) => jpeg.bytes,
        Ok(Err(e)) => return Err(ProbeOutcome::down(Reason::Decode, e.to_string())),
        Err(e) => {
            return Err(ProbeOutcome::down(
                Reason::Other,
                format!("JPEG encoder task failed: {e}"),
            ))
        }
    };
    Ok(Snapshot {
        jpeg,
        width: outcome.width.unwrap_or(0),
        height: outcome.height.unwrap_or(0),
    })
}

/// The outcome and, for a snapshot the clean frame, for a probe the clean frame judged (if any).
type Watched = Result<(ProbeOutcome, Option<gst::Sample>), ProbeOutcome>;

async fn run(
    request: &ProbeRequest,
    reaper: &Reaper,
    wanted: FrameWanted,
) -> (Watched, Option<TeardownDone>) {
    let started = Instant::now();
    let deadline = started + request.timeout;
    let detected = match prepare(request, reaper, started, deadline).await {
        Ok(detected) => detected,
        Err((down, teardown)) => return (Err(down), teardown),
    };
    let original = request;
    let request = detected.as_ref().map_or(request, |d| &d.request);
    let remembered = Plan::remembered(request);
    let mut tried = attempt(request, reaper, wanted, remembered, started, deadline, true).await;
    let learned_tcp = remembered.transport == Transport::Tcp && request.transport == Transport::Auto;
    let second_plan = if tried.result.is_err() && learned_tcp {
        // Learned TCP no longer works (the camera changed, or is down): forget it and try as
        // the template says.
        request.memory.remember_transport(Transport::Auto);
        Some(Plan {
            transport: Transport::Auto,
            ..remembered
        })
    } else if tried.try_other_form {
        // The camera ignored or refused the SETUP of a relative control in this form; ffmpeg's
        // form (or the RFC's, if that was remembered) may be the one it knows.
        Some(Plan {
            form: remembered.form.other(),
            ..remembered
        })
    } else {
        None
    };
    if let Some(plan) = second_plan.filter(|_| Instant::now() < deadline) {
        // The first pipeline's teardown is short (nothing is streaming); waiting for it keeps
        // one pipeline per probe.
        if let Some(teardown) = tried.teardown.take() {
            teardown.wait(RETRY_TEARDOWN_WAIT).await;
        }
        tracing::debug!(form = plan.form.describe(), ?plan.transport, "probing again");
        tried = attempt(request, reaper, wanted, plan, started, deadline, false).await;
    }
    if let Err(down) = tried.result {
        tried.result = Err(super::tls::explained(request, deadline, down).await);
    }
    if tried.result.is_ok() {
        if tried.relative_controls {
            request.memory.remember_control_form(tried.plan.form);
        }
        if tried.fell_back_to_tcp
            && request.transport == Transport::Auto
            && request.memory.remember_transport(Transport::Tcp)
        {
            let location = request.url.as_ref().map(CameraUrl::without_credentials);
            tracing::info!(
                "{}: no UDP media arrived; RTSP over TCP from now on (learned)",
                location.unwrap_or_default()
            );
        }
    }
    if let Some(detected) = detected {
        match &tried.result {
            // The camera changed what it sends: ask its server again next time.
            Err(down) if down.reason.is_some_and(camera_changed) => original.memory.remember_template(None),
            _ if detected.fresh => original.memory.remember_template(Some(detected.found)),
            _ => {}
        }
    }
    (tried.result, tried.teardown)
}

/// A failure with a detected template that says the camera no longer sends what it did (not a
/// timeout or a refused connection, which say nothing about the format).
fn camera_changed(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Protocol | Reason::Decode | Reason::NoVideo | Reason::EndOfStream
    )
}

/// The request with the template the server's answer calls for (see `sniff`).
pub(super) struct Detected {
    pub(super) request: ProbeRequest,
    found: DetectedTemplate,
    /// Asked in this probe, not remembered from an earlier one.
    fresh: bool,
}

/// Why no template was detected: the outcome, and the teardown of the asking pipeline.
pub(super) type NotDetected = (ProbeOutcome, Option<TeardownDone>);

/// What every pipeline of a stream (probe or live view) needs first: a pinned `https://`
/// certificate checked, then the template of an `http(s)://` stream without `pipeline:`. A
/// failure is said as a probe says it (an untrusted certificate with its fingerprint to pin).
pub(super) async fn prepare(
    request: &ProbeRequest,
    reaper: &Reaper,
    started: Instant,
    deadline: Instant,
) -> Result<Option<Detected>, NotDetected> {
    // The pin first: the server is asked (sniff) over TLS too.
    if let Err(refused) = super::tls::check_before_pipeline(request, deadline).await {
        return Err((refused, None));
    }
    match detect_template(request, reaper, started, deadline).await {
        Ok(detected) => Ok(detected),
        Err((down, teardown)) => Err((super::tls::explained(request, deadline, down).await, teardown)),
    }
}

/// For a request with `detect`: the template remembered for the camera, else the one its
/// server's answer calls for, under the probe's deadline. `None` when the template is configured.
async fn detect_template(
    request: &ProbeRequest,
    reaper: &Reaper,
    started: Instant,
    deadline: Instant,
) -> Result<Option<Detected>, NotDetected> {
    let Some(library) = &request.detect else {
        return Ok(None);
    };
    let (found, fresh) = match request.memory.template() {
        Some(known) => (known, false),
        None => {
            let (result, teardown) = super::sniff::sniff(request, reaper, started, deadline).await;
            let found = match result {
                Ok(found) => found,
                Err(outcome) => return Err((outcome, teardown)),
            };
            // One pipeline per probe: the asking one goes before the probing one starts.
            if let Some(teardown) = teardown {
                teardown.wait(RETRY_TEARDOWN_WAIT).await;
            }
            (found, true)
        }
    };
    let template = library
        .find(&found.template)
        .map_err(|e| (ProbeOutcome::down(Reason::Pipeline, e.to_string()), None))?;
    tracing::debug!(template = %found.template, evidence = %found.evidence, "template detected");
    Ok(Some(Detected {
        request: ProbeRequest {
            template,
            detect: None,
            ..request.clone()
        },
        found,
        fresh,
    }))
}

/// Longest a probe waits for its first pipeline's teardown before it tries again.
const RETRY_TEARDOWN_WAIT: Duration = Duration::from_millis(500);

/// How one pipeline of a probe talks to the camera, from what earlier probes learned.
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    form: ControlForm,
    transport: Transport,
}

impl Plan {
    /// What the camera's memory says to try first.
    pub(super) fn remembered(request: &ProbeRequest) -> Plan {
        Plan {
            form: request.memory.control_form(),
            transport: match request.transport {
                Transport::Auto => request.memory.transport(),
                imposed => imposed,
            },
        }
    }
}

/// One pipeline's try at the probe, and what it found out about the camera.
struct Attempt {
    result: Watched,
    teardown: Option<TeardownDone>,
    plan: Plan,
    relative_controls: bool,
    try_other_form: bool,
    fell_back_to_tcp: bool,
}

async fn attempt(
    request: &ProbeRequest,
    reaper: &Reaper,
    wanted: FrameWanted,
    plan: Plan,
    started: Instant,
    deadline: Instant,
    may_retry: bool,
) -> Attempt {
    let window = match wanted {
        FrameWanted::First | FrameWanted::FirstThenClean => request.quality.sample,
        FrameWanted::Clean | FrameWanted::Live => Duration::ZERO,
    };
    let mut session = match open_session(request, reaper, wanted, window, plan) {
        Ok(session) => session,
        Err(not_opened) => {
            return Attempt {
                result: Err(not_opened.outcome),
                teardown: not_opened.teardown,
                plan,
                relative_controls: false,
                try_other_form: false,
                fell_back_to_tcp: false,
            }
        }
    };
    if may_retry {
        session.allow_setup_retry();
    }
    let result = watch(&mut session, request, started, deadline, wanted, window).await;
    Attempt {
        try_other_form: may_retry && result.is_err() && session.setup_failed(),
        relative_controls: session.relative_controls(),
        fell_back_to_tcp: session.fell_back_to_tcp(),
        result,
        plan,
        teardown: Some(reaper.dispose(session.into_pipeline())),
    }
}

/// The first steps of a probe, a snapshot and a live view alike: renders the request's template,
/// builds its pipeline as `plan` says, and attaches the watchers. On failure, the outcome and
/// the teardown of a pipeline that was built.
pub(super) fn open_session(
    request: &ProbeRequest,
    reaper: &Reaper,
    wanted: FrameWanted,
    window: Duration,
    plan: Plan,
) -> Result<ProbeSession, Box<NotOpened>> {
    let not_built = |message: String| {
        Box::new(NotOpened {
            outcome: ProbeOutcome::down(Reason::Pipeline, message),
            teardown: None,
        })
    };
    let rendered = request
        .template
        .render(&template_values(request))
        .map_err(|e| not_built(e.to_string()))?;
    let (pipeline, sink) =
        pipeline::build(&request.template, &rendered).map_err(|e| not_built(e.to_string()))?;
    // A template that names its transports (`rtsp-tcp`, `rtsp-udp`) is the user's choice.
    if let Some(protocols) = plan
        .transport
        .protocols()
        .filter(|_| !rendered.contains("protocols="))
    {
        rtsp_protocols(&pipeline, protocols);
    }
    ProbeSession::attach(pipeline, &sink, wanted, window, plan.form, request.tls).map_err(|pipeline| {
        Box::new(NotOpened {
            outcome: ProbeOutcome::down(Reason::Pipeline, "pipeline has no bus"),
            teardown: Some(reaper.dispose(pipeline)),
        })
    })
}

/// Why [`open_session`] has no session: the outcome, and the teardown of a pipeline it built.
pub(super) struct NotOpened {
    pub(super) outcome: ProbeOutcome,
    pub(super) teardown: Option<TeardownDone>,
}

/// Every rtspsrc of the pipeline asks for these transports only (`tcp`: TCP-interleaved).
fn rtsp_protocols(pipeline: &gst::Pipeline, protocols: &str) {
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        if super::is_rtspsrc(element.upcast_ref()) {
            element.set_property_from_str("protocols", protocols);
        }
    }
}

/// The first frame, then (for a probe, not a snapshot) the sample window and the verdict.
async fn watch(
    session: &mut ProbeSession,
    request: &ProbeRequest,
    started: Instant,
    deadline: Instant,
    wanted: FrameWanted,
    window: Duration,
) -> Watched {
    let first = session.first_frame(request, started, deadline).await?;
    let outcome = session.up_outcome(&first, started);
    if wanted == FrameWanted::Clean {
        return Ok((outcome, Some(first.sample)));
    }
    // The latency is the first frame's; a picture check may then wait for a clean one.
    let first = if wanted == FrameWanted::FirstThenClean && window.is_zero() {
        session.clean_frame(first, deadline).await
    } else {
        first
    };
    let (seen, judged) = session.sample_window(&first, window, deadline).await;
    let previous = request.previous_picture.as_ref().map(|(picture, at)| Previous {
        picture,
        age: at.elapsed(),
    });
    let outcome = grade(outcome, &seen, previous, &request.quality, &request.expect);
    Ok((outcome, judged))
}
