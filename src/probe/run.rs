//! One probe: build the stream's pipeline, play it, and wait for the first decoded frame, a bus
//! error, EOS, or the deadline — whichever comes first. The deadline is a tokio timer, outside
//! GStreamer, so a camera that accepts the connection and then says nothing costs at most the
//! deadline. Teardown goes to the [`Reaper`] so it never delays the answer.

use super::classify::{classify_error, diagnose_connect, diagnose_now, ConnectDiagnosis};
use super::outcome::{Health, ProbeOutcome, Reason, TimeoutStage};
use super::quality::{self, Observation, PictureSummary, Verdict};
use super::teardown::{Reaper, TeardownDone};
use crate::config::StreamConfig;
use crate::config::{Expectation, QualityConfig};
use crate::pipeline::{self, PipelineError, Template, TemplateLibrary};
use crate::url::{redact_text, CameraUrl};
use futures::StreamExt;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

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
    /// The previous probe's picture and when it was taken, to catch a camera that replays one
    /// stale frame on every new connection.
    pub previous_picture: Option<(PictureSummary, Instant)>,
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
        })
    }
}

/// Which frame answers the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameWanted {
    /// The first decoded frame: proves the stream flows.
    First,
    /// The first frame the decoder did not flag as corrupt: joining a live H.264 stream between
    /// keyframes gives garbage pictures until the next keyframe, so snapshots wait for a clean one.
    Clean,
}

/// What the appsink saw: a decoded frame and when it arrived.
struct ArrivedFrame {
    at: Instant,
    sample: gst::Sample,
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
    let (result, teardown) = run(request, reaper, FrameWanted::First).await;
    let outcome = result.map_or_else(|down| down, |(up, _)| up);
    (outcome, teardown)
}

/// Grabs one clean frame and encodes it as JPEG, under the request's deadline.
pub async fn snapshot(request: &ProbeRequest, reaper: &Reaper) -> Result<Snapshot, ProbeOutcome> {
    let started = Instant::now();
    let (outcome, sample) = run(request, reaper, FrameWanted::Clean).await.0?;
    let remaining = request
        .timeout
        .saturating_sub(started.elapsed())
        .max(Duration::from_millis(500));
    let jpeg_caps = gst::Caps::builder("image/jpeg").build();
    let encoded = tokio::task::spawn_blocking(move || {
        gstreamer_video::convert_sample(
            &sample,
            &jpeg_caps,
            Some(gst::ClockTime::from_mseconds(remaining.as_millis() as u64)),
        )
    })
    .await;
    let jpeg_sample = match encoded {
        Ok(Ok(sample)) => sample,
        Ok(Err(e)) => {
            return Err(ProbeOutcome::down(
                Reason::Decode,
                format!("JPEG encoding failed: {e}"),
            ))
        }
        Err(e) => {
            return Err(ProbeOutcome::down(
                Reason::Other,
                format!("JPEG encoder task failed: {e}"),
            ))
        }
    };
    let jpeg = jpeg_sample
        .buffer()
        .and_then(|buffer| buffer.map_readable().ok().map(|map| map.as_slice().to_vec()))
        .ok_or_else(|| ProbeOutcome::down(Reason::Decode, "JPEG encoder gave no data"))?;
    Ok(Snapshot {
        jpeg,
        width: outcome.width.unwrap_or(0),
        height: outcome.height.unwrap_or(0),
    })
}

type Watched = Result<(ProbeOutcome, gst::Sample), ProbeOutcome>;

async fn run(
    request: &ProbeRequest,
    reaper: &Reaper,
    wanted: FrameWanted,
) -> (Watched, Option<TeardownDone>) {
    let started = Instant::now();
    let deadline = started + request.timeout;
    let rendered = match request.template.render(&template_values(request)) {
        Ok(rendered) => rendered,
        Err(e) => return (Err(ProbeOutcome::down(Reason::Pipeline, e.to_string())), None),
    };
    let (pipeline, sink) = match pipeline::build(&request.template, &rendered) {
        Ok(built) => built,
        Err(e) => return (Err(ProbeOutcome::down(Reason::Pipeline, e.to_string())), None),
    };
    let result = watch(&pipeline, &sink, request, started, deadline, wanted).await;
    let teardown = reaper.dispose(pipeline);
    (result, Some(teardown))
}

async fn watch(
    pipeline: &gst::Pipeline,
    sink: &gst_app::AppSink,
    request: &ProbeRequest,
    started: Instant,
    deadline: Instant,
    wanted: FrameWanted,
) -> Result<(ProbeOutcome, gst::Sample), ProbeOutcome> {
    let window = if wanted == FrameWanted::First {
        request.quality.sample
    } else {
        Duration::ZERO
    };
    // A few frames may queue while the task is busy; newer ones are dropped, the count goes on.
    let (frame_tx, mut frame_rx) = mpsc::channel::<ArrivedFrame>(2);
    let frames_counted = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&frames_counted);
    // While set, decoders get no delta frames: after a corrupt picture (joined mid-GOP) only the
    // next keyframe is decoded, so the picture checks see a clean frame at little CPU cost.
    let skip_deltas = Arc::new(AtomicBool::new(wanted == FrameWanted::Clean));
    let skip = Arc::clone(&skip_deltas);
    // Appsink: no clock sync (we want the first frame as soon as it is decoded), keep one buffer.
    sink.set_sync(false);
    sink.set_max_buffers(1);
    sink.set_drop(true);
    sink.set_property("enable-last-sample", false);
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |appsink| {
                let sample = appsink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                if !acceptable(&sample, wanted) {
                    skip.store(wanted == FrameWanted::Clean, Ordering::Relaxed);
                    return Ok(gst::FlowSuccess::Ok);
                }
                counter.fetch_add(1, Ordering::Relaxed);
                let _ = frame_tx.try_send(ArrivedFrame {
                    at: Instant::now(),
                    sample,
                });
                if window.is_zero() {
                    // The frame answers the probe; stop upstream work until teardown.
                    Err(gst::FlowError::Eos)
                } else {
                    Ok(gst::FlowSuccess::Ok)
                }
            })
            .build(),
    );
    let data_seen = watch_source_data(pipeline);
    prepare_decoders(pipeline, skip_deltas);
    let wire_bytes = (!window.is_zero()).then(|| count_encoded_bytes(pipeline));
    let Some(bus) = pipeline.bus() else {
        return Err(ProbeOutcome::down(Reason::Pipeline, "pipeline has no bus"));
    };
    let mut messages = bus.stream();
    let mut progress = RtspProgress::default();

    if let Err(e) = pipeline.set_state(gst::State::Playing) {
        // The bus usually holds the real reason (e.g. a device that cannot open).
        while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            if let gst::MessageView::Error(err) = msg.view() {
                return Err(error_outcome(err, request, deadline).await);
            }
        }
        return Err(ProbeOutcome::down(
            Reason::Pipeline,
            format!("pipeline would not start: {e}"),
        ));
    }

    let diagnose_at = started + request.timeout / 2;
    let mut diagnosis: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Receiver<ConnectDiagnosis>,
    )> = None;
    let first = loop {
        tokio::select! {
            biased;
            Some(frame) = frame_rx.recv() => break frame,
            msg = messages.next() => {
                let Some(msg) = msg else { continue };
                match msg.view() {
                    gst::MessageView::Error(err) => return Err(error_outcome(err, request, deadline).await),
                    gst::MessageView::Eos(_) => {
                        return Err(ProbeOutcome::down(Reason::EndOfStream, "the stream ended before a frame arrived"));
                    }
                    gst::MessageView::Progress(p) => progress.note(p),
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(diagnose_at.into()), if diagnosis.is_none() => {
                // Halfway through with no frame: find out, in parallel, whether the camera's port
                // even answers, so a timeout can say at which stage it stuck.
                let (progress, found) = tokio::sync::watch::channel(ConnectDiagnosis::Pending);
                let task = match request.url.as_ref().and_then(CameraUrl::host_port) {
                    Some((host, port)) => {
                        let budget = deadline.saturating_duration_since(Instant::now());
                        let http_path = request.url.as_ref().and_then(plain_http_path);
                        tokio::spawn(diagnose_connect(host, port, http_path, budget, progress))
                    }
                    None => {
                        let _ = progress.send(ConnectDiagnosis::NotApplicable);
                        tokio::spawn(async {})
                    }
                };
                diagnosis = Some((task, found));
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                let diag = match diagnosis {
                    Some((task, found)) => {
                        task.abort();
                        let diag = found.borrow().clone();
                        diag
                    }
                    None => ConnectDiagnosis::NotApplicable,
                };
                return Err(timeout_outcome(request, &progress, data_seen.load(Ordering::Relaxed), diag));
            }
        }
    };
    if let Some((task, _)) = diagnosis {
        task.abort();
    }
    let mut outcome = up_outcome(pipeline, &first, started);
    if wanted == FrameWanted::Clean {
        return Ok((outcome, first.sample));
    }

    // Picture checks judge clean frames only: the first one, or the first after it.
    let mut reference: Option<ArrivedFrame> = None;
    let mut observation = Observation {
        width: outcome.width,
        height: outcome.height,
        fps: caps_framerate(first.sample.caps()),
        ..Observation::default()
    };
    let first_at = first.at;
    // A corrupt first frame (joined between keyframes) proves the stream flows but shows no real
    // picture: without a sample window there is nothing clean to judge. Waiting for the next
    // keyframe here would hold every probe for up to a GOP and starve the pool of a large fleet.
    if !is_corrupt(&first.sample) {
        reference = Some(ArrivedFrame {
            at: first.at,
            sample: first.sample.clone(),
        });
    }
    // The sample window: keep the latest clean frame until it ends (never past the deadline).
    if !window.is_zero() {
        let frames_at_first = frames_counted.load(Ordering::Relaxed);
        let window_end = (first.at + window).min(deadline);
        let mut last: Option<ArrivedFrame> = None;
        loop {
            tokio::select! {
                Some(frame) = frame_rx.recv() => {
                    if is_corrupt(&frame.sample) {
                        continue;
                    }
                    if reference.is_none() {
                        reference = Some(frame);
                    } else {
                        last = Some(frame);
                    }
                }
                msg = messages.next() => {
                    // The stream broke after delivering video: judge what arrived.
                    if msg.is_some_and(|m| matches!(m.view(), gst::MessageView::Error(_) | gst::MessageView::Eos(_))) {
                        break;
                    }
                }
                _ = tokio::time::sleep_until(window_end.into()) => break,
            }
        }
        let frames = frames_counted
            .load(Ordering::Relaxed)
            .saturating_sub(frames_at_first);
        let span = Instant::now().saturating_duration_since(first_at).as_secs_f64();
        if span > 0.2 {
            observation.fps = Some(frames as f64 / span);
            outcome.fps = observation.fps;
            if let Some(bytes) = &wire_bytes {
                outcome.bitrate_kbps =
                    Some((bytes.load(Ordering::Relaxed) as f64 * 8.0 / span / 1000.0) as u64);
            }
        }
        if let (Some(last), Some(reference)) = (&last, &reference) {
            observation.span_seconds = last.at.saturating_duration_since(reference.at).as_secs_f64();
            observation.last = quality::summarize(&last.sample);
        }
        // A whole window without a second frame: the camera sent one picture and stalled.
        if frames == 0 && span >= 1.0 {
            observation.stalled_seconds = Some(span);
        }
    } else {
        outcome.fps = observation.fps;
    }
    observation.first = reference
        .as_ref()
        .and_then(|frame| quality::summarize(&frame.sample));
    let previous = request.previous_picture.as_ref();
    let verdict = quality::judge(
        &observation,
        previous.map(|(summary, _)| summary),
        previous.map_or(0.0, |(_, at)| at.elapsed().as_secs_f64()),
        &request.quality,
        &request.expect,
    );
    if let Some(verdict) = verdict {
        let (reason, detail) = match verdict {
            Verdict::Black(d) => (Reason::Black, d),
            Verdict::Blank(d) => (Reason::Black, d),
            Verdict::Frozen(d) => (Reason::Frozen, d),
            Verdict::WrongResolution(d) => (Reason::WrongResolution, d),
            Verdict::LowFps(d) => (Reason::LowFps, d),
        };
        outcome.health = Health::Degraded;
        outcome.reason = Some(reason);
        outcome.message = detail;
    }
    outcome.picture = observation.first;
    Ok((outcome, first.sample))
}

/// Whether a frame can answer the probe. Compressed frames (the nodecode template) count only
/// from a keyframe; for snapshots, frames the decoder flagged corrupt are skipped.
fn acceptable(sample: &gst::Sample, wanted: FrameWanted) -> bool {
    let Some(buffer) = sample.buffer() else {
        return false;
    };
    let raw = sample
        .caps()
        .and_then(|c| c.structure(0))
        .is_some_and(|s| s.name().starts_with("video/x-raw"));
    if !raw && buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) {
        return false;
    }
    !(wanted == FrameWanted::Clean && buffer.flags().contains(gst::BufferFlags::CORRUPTED))
}

fn caps_framerate(caps: Option<&gst::CapsRef>) -> Option<f64> {
    let rate = caps?.structure(0)?.get::<gst::Fraction>("framerate").ok()?;
    (rate.numer() > 0 && rate.denom() > 0).then(|| f64::from(rate.numer()) / f64::from(rate.denom()))
}

/// Decoders as a probe wants them. libav decoders default to one thread per core plus frame
/// threading, which holds frames back and, across a fleet of short-lived pipelines, multiplies
/// threads: a probe decodes a handful of frames, one thread is cheaper. And while `skip_deltas`
/// is set, delta frames are dropped before the decoder, so only the next keyframe is decoded.
fn prepare_decoders(pipeline: &gst::Pipeline, skip_deltas: Arc<AtomicBool>) {
    for_each_decoder(pipeline, move |decoder| {
        let is_libav = decoder.factory().is_some_and(|f| f.name().starts_with("avdec_"));
        if is_libav && decoder.find_property("max-threads").is_some() {
            decoder.set_property("max-threads", 1i32);
        }
        if let Some(pad) = decoder.static_pad("sink") {
            let skip = Arc::clone(&skip_deltas);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if !skip.load(Ordering::Relaxed) {
                    return gst::PadProbeReturn::Ok;
                }
                match info.buffer() {
                    Some(buffer) if buffer.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
                        gst::PadProbeReturn::Drop
                    }
                    _ => {
                        skip.store(false, Ordering::Relaxed);
                        gst::PadProbeReturn::Ok
                    }
                }
            });
        }
    });
}

/// Calls `setup` on every real decoder of the pipeline: those the description names, and those
/// decodebin creates later.
fn for_each_decoder(pipeline: &gst::Pipeline, setup: impl Fn(&gst::Element) + Send + Sync + 'static) {
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        if is_decoder(&element) {
            setup(&element);
        }
    }
    pipeline.connect_deep_element_added(move |_, _, element| {
        if is_decoder(element) {
            setup(element);
        }
    });
}

/// decodebin calls itself a decoder too; only real decoders (not bins) count.
fn is_decoder(element: &gst::Element) -> bool {
    !element.is::<gst::Bin>() && element.factory().is_some_and(|f| f.klass().contains("Decoder"))
}

/// Counts the compressed bytes entering the decoders, for the bitrate over the sample window.
fn count_encoded_bytes(pipeline: &gst::Pipeline) -> Arc<AtomicU64> {
    let bytes = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&bytes);
    for_each_decoder(pipeline, move |decoder| {
        if let Some(pad) = decoder.static_pad("sink") {
            let counter = Arc::clone(&counter);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(buffer) = info.buffer() {
                    counter.fetch_add(buffer.size() as u64, Ordering::Relaxed);
                }
                gst::PadProbeReturn::Ok
            });
        }
    });
    bytes
}

fn is_corrupt(sample: &gst::Sample) -> bool {
    sample
        .buffer()
        .is_some_and(|b| b.flags().contains(gst::BufferFlags::CORRUPTED))
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

/// Marks when any source element first pushes data (HTTP body bytes, a device's first buffer).
fn watch_source_data(pipeline: &gst::Pipeline) -> Arc<AtomicBool> {
    let seen = Arc::new(AtomicBool::new(false));
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        let is_source = element.factory().is_some_and(|f| f.klass().contains("Source"));
        if !is_source {
            continue;
        }
        for pad in element.src_pads() {
            let seen = Arc::clone(&seen);
            pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                seen.store(true, Ordering::Relaxed);
                gst::PadProbeReturn::Remove
            });
        }
    }
    seen
}

/// Tracks how far rtspsrc got, from its progress messages.
#[derive(Default)]
struct RtspProgress {
    /// DESCRIBE answered (the server speaks RTSP and knows the stream).
    described: bool,
    /// SETUP/PLAY done: media should flow.
    playing: bool,
}

impl RtspProgress {
    fn note(&mut self, progress: &gst::message::Progress) {
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
        // rtspsrc announces "Sending PLAY request" before it even connects, so only
        // completions count as progress.
        if kind == gst::ProgressType::Complete && (code == "open" || code == "request") {
            self.described = true;
            if text.contains("play") {
                self.playing = true;
            }
        }
    }
}

fn timeout_outcome(
    request: &ProbeRequest,
    progress: &RtspProgress,
    data_seen: bool,
    diagnosis: ConnectDiagnosis,
) -> ProbeOutcome {
    let secs = request.timeout.as_secs_f64();
    if progress.playing || progress.described || data_seen {
        let detail = if data_seen && !progress.described {
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
            format!("the camera answers HTTP requests but sent no video frame within {secs:.1} s"),
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

async fn error_outcome(err: &gst::message::Error, request: &ProbeRequest, deadline: Instant) -> ProbeOutcome {
    let classified = classify_error(err);
    let mut reason = classified.reason;
    let mut message = classified.message;
    if classified.ambiguous_network {
        // souphttpsrc reports refused and timed-out connections as one generic error: ask the
        // port directly, within what is left of the deadline.
        if let Some((host, port)) = request.url.as_ref().and_then(CameraUrl::host_port) {
            let budget = deadline
                .saturating_duration_since(Instant::now())
                .min(Duration::from_secs(2));
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

fn up_outcome(pipeline: &gst::Pipeline, frame: &ArrivedFrame, started: Instant) -> ProbeOutcome {
    let latency_ms = frame.at.saturating_duration_since(started).as_millis() as u64;
    let caps = frame.sample.caps();
    let (width, height) = caps
        .and_then(|caps| caps.structure(0))
        .map(|s| (s.get::<i32>("width").ok(), s.get::<i32>("height").ok()))
        .unwrap_or((None, None));
    ProbeOutcome {
        health: Health::Up,
        latency_ms: Some(latency_ms),
        reason: None,
        message: String::new(),
        codec: stream_codec(pipeline, caps),
        width: width.and_then(|w| u32::try_from(w).ok()),
        height: height.and_then(|h| u32::try_from(h).ok()),
        fps: None,
        bitrate_kbps: None,
        picture: None,
    }
}

/// The codec the camera sends: the input caps of the pipeline's decoder (or of the sink when the
/// template does not decode).
fn stream_codec(pipeline: &gst::Pipeline, sink_caps: Option<&gst::CapsRef>) -> Option<String> {
    for element in pipeline.iterate_recurse().into_iter().flatten() {
        if !is_decoder(&element) {
            continue;
        }
        let caps = element.static_pad("sink").and_then(|pad| pad.current_caps());
        if let Some(name) = caps
            .as_ref()
            .and_then(|c| c.structure(0))
            .map(|s| s.name().to_string())
        {
            return Some(codec_name(&name));
        }
    }
    let name = sink_caps?.structure(0)?.name().to_string();
    (name != "video/x-raw").then(|| codec_name(&name))
}

fn codec_name(media_type: &str) -> String {
    let short = media_type
        .strip_prefix("video/x-")
        .or_else(|| media_type.strip_prefix("image/"));
    short.unwrap_or(media_type).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_names_are_short() {
        assert_eq!(codec_name("video/x-h264"), "h264");
        assert_eq!(codec_name("image/jpeg"), "jpeg");
        assert_eq!(codec_name("application/x-rtp"), "application/x-rtp");
    }
}
