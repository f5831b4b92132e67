//! What the benchmarks (`fleet`, `web`, `soak`) need: settings from the environment, where to write,
//! what machine they ran on, percentiles, and child processes: stopping them, and (in [`proc`])
//! reading `/proc`.
#![allow(dead_code)]

pub mod proc;
pub mod threads;

pub use proc::{cpu_model, load_average};

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// A whole-number setting from the environment; unset or empty gives `default`.
pub fn env_number(name: &str, default: usize) -> Result<usize> {
    match std::env::var(name) {
        Ok(text) if !text.trim().is_empty() => text
            .trim()
            .parse()
            .with_context(|| format!("{name}={text:?} is not a whole number")),
        _ => Ok(default),
    }
}

/// Cargo's target directory (the one holding the `streampulse` binary being measured).
pub fn target_dir() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_streampulse"));
    binary
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("target"))
}

/// The `pct` percentile of `values` (nearest rank); NaN when there are none.
pub fn percentile(values: &[f64], pct: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

// ---------------------------------------------------------------------------------------------
// Child processes.

/// SIGTERM (through kill(1): no unsafe), up to `grace` to exit, then SIGKILL. Returns what went
/// wrong, if anything (`what` names the process in the message).
pub fn stop_child(
    child: &mut std::process::Child,
    what: &str,
    grace: std::time::Duration,
) -> Result<Option<String>> {
    use std::time::{Duration, Instant};
    if let Some(exit) = child.try_wait()? {
        return Ok(Some(format!("{what} had already exited ({exit})")));
    }
    let status = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .context("running kill(1)")?;
    if !status.success() {
        anyhow::bail!("kill -TERM {} ({what}) failed", child.id());
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Some(exit) = child.try_wait()? {
            return Ok((!exit.success()).then(|| format!("{what} ended with {exit}")));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill()?;
    child.wait()?;
    Ok(Some(format!(
        "{what} did not stop within {} s of SIGTERM and was killed",
        grace.as_secs()
    )))
}

/// The last `lines` lines of a log file (empty when it cannot be read).
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Now as `YYYY-MM-DD HH:MM UTC` (from date(1); empty when that fails).
pub fn utc_date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| text.trim().to_string())
        .unwrap_or_default()
}

/// Least-squares slope of `y` over `x` (NaN with fewer than two distinct `x`).
pub fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    if points.len() < 2 {
        return f64::NAN;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    if sxx == 0.0 {
        f64::NAN
    } else {
        sxy / sxx
    }
}
