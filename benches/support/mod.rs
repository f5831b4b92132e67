//! What the benchmarks (`fleet`, `web`, `soak`) need: settings from the environment, where to write,
//! what machine they ran on, percentiles, and child processes: stopping them, reading `/proc`.
#![allow(dead_code)]

use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

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

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// The CPU's model name from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
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
// Child processes and what `/proc` says about them (used by `soak`).

/// Memory and threads from `/proc/<pid>/status`.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcStatus {
    pub rss_kb: u64,
    pub peak_rss_kb: u64,
    pub threads: u64,
}

/// `VmRSS`, `VmHWM` and `Threads` of a live process; `None` once it is gone or a zombie.
pub fn proc_status(pid: u32) -> Option<ProcStatus> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let mut status = ProcStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || {
            value
                .split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        match key {
            "VmRSS" => status.rss_kb = number(),
            "VmHWM" => status.peak_rss_kb = number(),
            "Threads" => status.threads = number(),
            _ => {}
        }
    }
    // A zombie has no memory lines left.
    (status.peak_rss_kb > 0).then_some(status)
}

/// `Anonymous:` of `/proc/<pid>/smaps_rollup`: heap, thread stacks and other private memory, as
/// opposed to the pages of mapped libraries that RSS also counts.
pub fn anonymous_memory_kb(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|line| line.starts_with("Anonymous:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Open file descriptors of a process (entries of `/proc/<pid>/fd`).
pub fn open_fds(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// utime + stime of a process, all its threads, in clock ticks (fields 14 and 15 of `stat`).
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces: count fields after its closing parenthesis.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(1)
        .map(|field| field.parse().unwrap_or(0))
        .collect();
    Some(fields.get(10)? + fields.get(11)?)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on Linux when that fails).
pub fn ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|ticks| *ticks > 0.0)
        .unwrap_or(100.0)
}

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
