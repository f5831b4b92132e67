//! `streampulse check URL`: one probe now, like curl for cameras. Exit 0 up, 1 down, 3 degraded
//! (video arrives but fails a picture check), 2 usage error. Without `--pipeline`, an
//! `http(s)://` URL's template is chosen from what the server says, and the line says which.

use crate::config::{CameraTls, Expectation, Fingerprint, QualityConfig, StreamTransport};
use crate::heartbeat::{Health, ProbeOutcome};
use crate::pipeline::{default_template_for_scheme, TemplateLibrary};
use crate::probe::learned::DetectedTemplate;
use crate::probe::{probe, ProbeRequest, Reaper};
use crate::url::CameraUrl;
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Camera URL (rtsp://, rtsps://, http://, https://); credentials in it are never printed
    pub url: String,
    /// Pipeline template (default: `rtsp` for rtsp://; for http:// chosen from what the server says)
    #[arg(long)]
    pub pipeline: Option<String>,
    /// RTSP transport: udp, tcp or auto (UDP first, then TCP)
    #[arg(long, default_value = "auto", value_parser = StreamTransport::parse)]
    pub transport: StreamTransport,
    /// Directory of user templates, searched before the shipped ones
    #[arg(long)]
    pub pipelines_dir: Option<PathBuf>,
    /// Template parameter NAME=VALUE (repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Probe deadline in milliseconds
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Watch the stream this many seconds after the first frame (fps, bitrate, frozen picture)
    #[arg(long, default_value_t = 0.0)]
    pub sample_seconds: f64,
    /// Expected resolution WIDTHxHEIGHT (a different one is degraded)
    #[arg(long, value_name = "WxH")]
    pub expect_size: Option<String>,
    /// Lowest acceptable frame rate (needs --sample-seconds, or a rate in the stream's caps)
    #[arg(long)]
    pub min_fps: Option<f64>,
    /// rtsps:// / https://: accept only the certificate with this SHA-256 fingerprint
    /// ("sha256:AB:CD:…", as the down message of an untrusted camera prints it)
    #[arg(long, value_name = "sha256:…", conflicts_with = "tls_insecure")]
    pub tls_fingerprint: Option<String>,
    /// rtsps:// / https://: accept any certificate (`tls: {verify: false}`)
    #[arg(long)]
    pub tls_insecure: bool,
    /// Print one JSON object instead of a line of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let url = CameraUrl::new(args.url.clone());
    let scheme = url.scheme();
    let template_name = match &args.pipeline {
        Some(name) => name.clone(),
        None => {
            let scheme = scheme
                .as_deref()
                .ok_or_else(|| anyhow!("{url} has no scheme (rtsp:// or http://)"))?;
            default_template_for_scheme(scheme)
                .ok_or_else(|| anyhow!("unsupported URL scheme '{scheme}' (use rtsp, rtsps, http or https)"))?
                .to_string()
        }
    };
    let library = TemplateLibrary::new(args.pipelines_dir.as_deref());
    let template = library.find(&template_name)?;
    let detect = crate::config::detects_template(scheme.as_deref(), args.pipeline.is_some());
    if args.transport != StreamTransport::Auto && !crate::config::has_transport(scheme.as_deref()) {
        return Err(anyhow!("--transport is for rtsp:// and rtsps:// URLs"));
    }
    let mut params = BTreeMap::new();
    for pair in &args.params {
        let (name, value) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--param takes NAME=VALUE, got '{pair}'"))?;
        params.insert(name.to_string(), value.to_string());
    }
    let timeout = Duration::from_millis(args.timeout_ms.max(1));
    if !(0.0..=60.0).contains(&args.sample_seconds) || args.sample_seconds >= timeout.as_secs_f64() {
        return Err(anyhow!(
            "--sample-seconds must be between 0 and 60 and shorter than --timeout-ms"
        ));
    }
    let mut expect = Expectation {
        min_fps: args.min_fps,
        ..Expectation::default()
    };
    if let Some(size) = &args.expect_size {
        let (w, h) = size
            .split_once('x')
            .ok_or_else(|| anyhow!("--expect-size takes WIDTHxHEIGHT, got '{size}'"))?;
        expect.width = Some(w.parse().with_context(|| format!("bad width in '{size}'"))?);
        expect.height = Some(h.parse().with_context(|| format!("bad height in '{size}'"))?);
    }
    let tls = match (&args.tls_fingerprint, args.tls_insecure) {
        (Some(text), _) => {
            CameraTls::Pinned(Fingerprint::parse(text).map_err(|e| anyhow!("--tls-fingerprint: {e}"))?)
        }
        (None, true) => CameraTls::AcceptAny,
        (None, false) => CameraTls::Verify,
    };
    let request = ProbeRequest {
        url: Some(url.clone()),
        template,
        params,
        timeout,
        quality: QualityConfig {
            sample: Duration::from_secs_f64(args.sample_seconds),
            ..QualityConfig::default()
        },
        expect,
        previous_picture: None,
        // A one-shot check judges the picture: it waits for a keyframe after a corrupt first frame.
        picture_check: true,
        memory: Default::default(),
        detect: detect.then(|| std::sync::Arc::new(library)),
        transport: args.transport.into(),
        tls,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio")?;
    let reaper = Reaper::new();
    let outcome = runtime.block_on(probe(&request, &reaper));
    let detected = request.memory.template();
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&check_json(&url, &outcome, detected.as_ref()))?
        );
    } else {
        println!("{}", check_line(&url, &outcome, detected.as_ref()));
    }
    Ok(match outcome.health {
        Health::Up => 0,
        Health::Down => 1,
        Health::Degraded => 3,
    })
}

fn check_json(
    url: &CameraUrl,
    outcome: &ProbeOutcome,
    detected: Option<&DetectedTemplate>,
) -> serde_json::Value {
    serde_json::json!({
        "template": detected.map(|d| d.template.clone()),
        "template_evidence": detected.map(|d| d.evidence.clone()),
        "url": url.redacted(),
        "up": outcome.is_up(),
        "health": outcome.health.as_str(),
        "latency_ms": outcome.latency_ms,
        "reason": outcome.reason.map(|r| r.code()),
        "message": if outcome.message.is_empty() { outcome.reason.map(|r| r.describe().to_string()) } else { Some(outcome.message.clone()) },
        "codec": outcome.codec,
        "width": outcome.width,
        "height": outcome.height,
        "fps": outcome.fps,
        "bitrate_kbps": outcome.bitrate_kbps,
    })
}

fn check_line(url: &CameraUrl, outcome: &ProbeOutcome, detected: Option<&DetectedTemplate>) -> String {
    let mut line = format!("{url}: {}", outcome.health.as_str().to_uppercase());

    if let Some(ms) = outcome.latency_ms {
        line.push_str(&format!(" in {ms} ms"));
    }
    if let (Some(w), Some(h)) = (outcome.width, outcome.height) {
        line.push_str(&format!(", {w}x{h}"));
    }
    if let Some(codec) = &outcome.codec {
        line.push_str(&format!(" {codec}"));
    }
    if let Some(fps) = outcome.fps {
        line.push_str(&format!(", {fps:.1} fps"));
    }
    if let Some(kbps) = outcome.bitrate_kbps {
        line.push_str(&format!(", {kbps} kbit/s"));
    }
    if let Some(detected) = detected {
        line.push_str(&format!(
            ", template `{}` ({})",
            detected.template, detected.evidence
        ));
    }
    if outcome.reason.is_some() {
        line.push_str(&format!(" — {}", outcome.explanation()));
    }
    line
}
