//! The configuration file: loading, validating (every problem with file, line and field), and the
//! typed `Config` the rest of the program uses.

use crate::url::CameraUrl;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_HEARTBEAT_SECONDS: u64 = 15;
pub const DEFAULT_TIMEZONE: &str = "UTC";
pub const DEFAULT_NTP_SERVER: &str = "pool.ntp.org";
/// The probe deadline when the config gives none: 10 s, or 80% of a shorter heartbeat.
pub const DEFAULT_PROBE_TIMEOUT_SECONDS: f64 = 10.0;
pub const DEFAULT_MAX_CONCURRENT_PROBES: usize = 32;
pub const DEFAULT_NTP_INTERVAL_SECONDS: u64 = 3600;
pub const DEFAULT_DATABASE: &str = "streams.db";

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for reload and error messages).
    pub path: PathBuf,
    pub heartbeat: Duration,
    pub timezone_name: String,
    pub timezone: &'static time_tz::Tz,
    /// `host` or `host:port` (port 123 by default).
    pub ntp_server: String,
    pub ntp_interval: Duration,
    pub probe_timeout: Duration,
    pub max_concurrent_probes: usize,
    /// SQLite file; relative paths are resolved against the config file's directory.
    pub database: PathBuf,
    /// User pipeline templates, looked up before the shipped ones.
    pub pipelines_dir: Option<PathBuf>,
    pub streams: Vec<StreamConfig>,
}

/// One camera.
#[derive(Debug, Clone)]
pub struct StreamConfig {
    /// Explicit stable identity; keeps history across renames and URL changes.
    pub id: Option<String>,
    pub name: String,
    /// Absent only for templates that need no URL (local cameras).
    pub url: Option<CameraUrl>,
    pub enabled: bool,
    pub heartbeat: Duration,
    pub probe_timeout: Duration,
    /// Template name, resolved: explicit, or the default for the URL's scheme.
    pub pipeline: String,
    /// Extra placeholder values for the template.
    pub params: BTreeMap<String, String>,
}

/// One thing wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// Dotted path of the field, e.g. `streams[2].url`.
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}", format_problems(path, problems))]
    Invalid { path: PathBuf, problems: Vec<Problem> },
}

/// `file:line: field: message`, one per line.
pub fn format_problems(path: &std::path::Path, problems: &[Problem]) -> String {
    let mut out = format!("{} has {} problem(s):", path.display(), problems.len());
    for problem in problems {
        out.push('\n');
        match problem.line {
            Some(line) => out.push_str(&format!("  {}:{}: {}: {}", path.display(), line, problem.field, problem.message)),
            None => out.push_str(&format!("  {}: {}: {}", path.display(), problem.field, problem.message)),
        }
    }
    out
}
