//! `streampulse check URL`: one probe now, like curl for cameras.

use crate::pipeline::{default_template_for_scheme, TemplateLibrary};
use crate::probe::{probe, ProbeOutcome, ProbeRequest, Reaper};
use crate::url::CameraUrl;
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Camera URL (rtsp://, rtsps://, http://, https://); credentials in it are never printed
    pub url: String,
    /// Pipeline template (default: from the URL scheme)
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Directory of user templates, searched before the shipped ones
    #[arg(long)]
    pub pipelines_dir: Option<PathBuf>,
    /// Template parameter NAME=VALUE (repeatable)
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// Probe deadline in milliseconds
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
    /// Print one JSON object instead of a line of text
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CheckArgs) -> anyhow::Result<i32> {
    let url = CameraUrl::new(args.url.clone());
    let template_name = match &args.pipeline {
        Some(name) => name.clone(),
        None => {
            let scheme = url.scheme().ok_or_else(|| anyhow!("{url} has no scheme (rtsp:// or http://)"))?;
            default_template_for_scheme(&scheme)
                .ok_or_else(|| anyhow!("unsupported URL scheme '{scheme}' (use rtsp, rtsps, http or https)"))?
                .to_string()
        }
    };
    let template = TemplateLibrary::new(args.pipelines_dir.as_deref()).find(&template_name)?;
    let mut params = BTreeMap::new();
    for pair in &args.params {
        let (name, value) =
            pair.split_once('=').ok_or_else(|| anyhow!("--param takes NAME=VALUE, got '{pair}'"))?;
        params.insert(name.to_string(), value.to_string());
    }
    let request = ProbeRequest {
        url: Some(url.clone()),
        template,
        params,
        timeout: Duration::from_millis(args.timeout_ms.max(1)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().context("tokio")?;
    let reaper = Reaper::new();
    let outcome = runtime.block_on(probe(&request, &reaper));
    if args.json {
        println!("{}", serde_json::to_string(&check_json(&url, &outcome))?);
    } else {
        println!("{}", check_line(&url, &outcome));
    }
    Ok(if outcome.is_up() { 0 } else { 1 })
}

fn check_json(url: &CameraUrl, outcome: &ProbeOutcome) -> serde_json::Value {
    serde_json::json!({
        "url": url.redacted(),
        "up": outcome.is_up(),
        "health": outcome.health.as_str(),
        "latency_ms": outcome.latency_ms,
        "reason": outcome.reason.map(|r| r.code()),
        "message": if outcome.message.is_empty() { outcome.reason.map(|r| r.describe().to_string()) } else { Some(outcome.message.clone()) },
        "codec": outcome.codec,
        "width": outcome.width,
        "height": outcome.height,
    })
}

fn check_line(url: &CameraUrl, outcome: &ProbeOutcome) -> String {
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
    if let Some(reason) = outcome.reason {
        line.push_str(&format!(" — {}", reason.describe()));
        if !outcome.message.is_empty() {
            line.push_str(&format!(": {}", outcome.message));
        }
    }
    line
}
