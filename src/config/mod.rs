//! The configuration file: loading, validating (every problem with file, line and field), and the
//! typed `Config` the rest of the program uses.
//!
//! Two stages: [`raw`] checks the shape (known keys, types) of a tree parsed by [`tree`], which
//! keeps every value's line; [`validate`] checks meaning and builds the [`Config`]. Both collect
//! every problem instead of stopping at the first, so one `streampulse validate` run shows them all.
//! [`Watcher`] reloads the file when it changes, for the monitor and the web alike.

mod alerts;
mod camera_tls;
pub mod maintenance;
mod mqtt;
mod pictures;
mod raw;
mod suggest;
mod transport;
mod tree;
mod validate;
mod watch;

pub use alerts::{
    has_bot_token, parse_addresses, AlertsConfig, ChannelConfig, ChannelKind, EmailChannel, Secret, SmtpTls,
    WebhookChannel, WebhookFormat,
};
pub use camera_tls::{CameraTls, Fingerprint, FingerprintError};
pub use mqtt::{MqttConfig, MqttTransport};
pub use pictures::PicturesConfig;
pub use transport::{detects_template, has_transport, StreamTransport};
pub use watch::Watcher;

/// Reads YAML events without recursion and with a depth limit (for the web editor's own reading).
pub(crate) use tree::read_events as read_yaml_events;

use crate::url::CameraUrl;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_HEARTBEAT_SECONDS: u64 = 15;
pub const DEFAULT_TIMEZONE: &str = "UTC";
pub const DEFAULT_NTP_SERVER: &str = "pool.ntp.org";
/// The probe deadline when the config gives none: 10 s, or 80% of a shorter heartbeat.
pub const DEFAULT_PROBE_TIMEOUT_SECONDS: f64 = 10.0;
pub const DEFAULT_MAX_CONCURRENT_PROBES: usize = 32;
pub const DEFAULT_NTP_INTERVAL_SECONDS: u64 = 3600;
pub const DEFAULT_DATABASE: &str = "streams.db";
/// Heartbeats older than this are deleted; `retention_days: 0` keeps them forever.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;
/// While the disk is full, the monitor holds this many minutes of heartbeats in memory;
/// `disk_full_buffer_minutes: 0` holds none.
pub const DEFAULT_DISK_FULL_BUFFER_MINUTES: u64 = 10;
pub const DEFAULT_WEB_LISTEN: &str = "127.0.0.1:8000";
pub const DEFAULT_SESSION_IDLE_MINUTES: u64 = 60;
pub const DEFAULT_SESSION_MAX_HOURS: u64 = 24 * 7;
/// Connections the web server holds at once; a new one beyond that replaces the oldest idle one
/// or is closed. Well under the packaged units' `LimitNOFILE=`.
pub const DEFAULT_WEB_MAX_CONNECTIONS: usize = 512;
/// Connections one client address may hold at once; beyond that new ones are closed at once.
pub const DEFAULT_WEB_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
/// A request's header (and a TLS handshake) must arrive within this; it also ends kept-alive
/// connections that sit idle this long.
pub const DEFAULT_WEB_HEADER_TIMEOUT_SECONDS: u64 = 10;
/// A live view ends this long after it started, for every viewer: the camera slot it holds is
/// bounded (`web.live_seconds`, 1–600).
pub const DEFAULT_WEB_LIVE_SECONDS: u64 = 30;
pub const MAX_WEB_LIVE_SECONDS: i64 = 600;
/// Cameras watched live at once over the whole server (`web.live_max_cameras`; 0 turns it off).
pub const DEFAULT_WEB_LIVE_MAX_CAMERAS: usize = 2;
pub const MAX_WEB_LIVE_MAX_CAMERAS: i64 = 64;
/// Frames a second a live view sends at most (`web.live_fps`, 1–30).
pub const DEFAULT_WEB_LIVE_FPS: u32 = 5;
pub const MAX_WEB_LIVE_FPS: i64 = 30;
/// Longest stream name or id, in characters: they appear in page titles and table cells.
pub const MAX_NAME_CHARS: usize = 100;
/// URL schemes the shipped templates can probe.
pub const SUPPORTED_SCHEMES: &[&str] = &["rtsp", "rtsps", "http", "https"];

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
    /// User pipeline templates, looked up before the shipped ones; resolved like `database`.
    pub pipelines_dir: Option<PathBuf>,
    /// How long heartbeats are kept; `None` keeps them forever (`retention_days: 0`).
    pub retention: Option<Duration>,
    /// While the disk is full, heartbeats of this last span are held in memory and written when
    /// space returns; `None` holds none (`disk_full_buffer_minutes: 0`). Read at monitor start.
    pub disk_full_buffer: Option<Duration>,
    /// Picture checks every stream inherits unless it overrides them.
    pub quality: QualityConfig,
    pub web: WebConfig,
    pub metrics: MetricsConfig,
    /// `self_check_url:`, called every minute while the monitor is healthy (healthchecks.io,
    /// Uptime Kuma push): its path is often a secret, never logged.
    pub self_check_url: Option<crate::url::CameraUrl>,
    /// `site:`, a label for this installation in notifications.
    pub site: Option<String>,
    pub alerts: AlertsConfig,
    /// `maintenance:` windows of every stream (a stream's own add to them).
    pub maintenance: Vec<maintenance::MaintenanceWindow>,
    /// `mqtt:` with `enabled: true`: fleet status, state topics, Home Assistant discovery.
    pub mqtt: Option<MqttConfig>,
    /// `pictures:`: the last picture of each stream, kept beside the database.
    pub pictures: PicturesConfig,
    pub streams: Vec<StreamConfig>,
    /// Accepted settings worth a word (`streampulse validate` prints them), in file order.
    pub notices: Vec<Problem>,
}

/// The `metrics:` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsConfig {
    /// Also serve StreamPulse v1's metric names (`stream_up`, `system_up`, …), so dashboards
    /// built on v1 keep working after an upgrade (docs/upgrading-from-v1.md).
    pub v1_names: bool,
}

/// The `web:` section: the dashboard's listener and login sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebConfig {
    /// `host:port` to listen on.
    pub listen: String,
    /// Serve `/metrics` without a login.
    pub metrics_public: bool,
    /// Serve `/status` (names, states, uptimes) without a login.
    pub public_status: bool,
    /// With `public_status`, the public page also shows the last pictures (served without login).
    pub public_pictures: bool,
    /// A TLS-terminating proxy is in front, so cookies can be marked `Secure`.
    pub behind_tls: bool,
    /// A session ends after this long without a request.
    pub session_idle: Duration,
    /// A session ends this long after login, however active.
    pub session_max: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed: behind one, every client would
    /// otherwise share the proxy's address (and its login throttle).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Built-in HTTPS. Read when the web server starts.
    pub tls: WebTls,
    /// Connections held at once, in all and per client address. Read when the web server starts.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Time allowed for a request's header (and a TLS handshake), and for a kept-alive
    /// connection to send its next request. Read when the web server starts.
    pub header_timeout: Duration,
    /// The live view: how long one session runs, how many cameras may be watched at once (0:
    /// none), and its frame rate cap.
    pub live_duration: Duration,
    pub live_max_cameras: usize,
    pub live_fps: u32,
}

/// `web.tls`: how the web server speaks HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum WebTls {
    /// Plain HTTP (the default; behind a TLS proxy, see `behind_tls`).
    #[default]
    Off,
    /// PEM files (resolved like `database`), checked when the config is, re-read when they change.
    Files { cert: PathBuf, key: PathBuf },
    /// A certificate made on first start and kept next to the database.
    SelfSigned,
}

impl WebTls {
    pub fn is_on(&self) -> bool {
        !matches!(self, WebTls::Off)
    }
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            listen: DEFAULT_WEB_LISTEN.to_string(),
            metrics_public: false,
            public_status: false,
            public_pictures: false,
            behind_tls: false,
            session_idle: Duration::from_secs(DEFAULT_SESSION_IDLE_MINUTES * 60),
            session_max: Duration::from_secs(DEFAULT_SESSION_MAX_HOURS * 3600),
            trusted_proxies: Vec::new(),
            tls: WebTls::Off,
            max_connections: DEFAULT_WEB_MAX_CONNECTIONS,
            max_connections_per_client: DEFAULT_WEB_MAX_CONNECTIONS_PER_CLIENT,
            header_timeout: Duration::from_secs(DEFAULT_WEB_HEADER_TIMEOUT_SECONDS),
            live_duration: Duration::from_secs(DEFAULT_WEB_LIVE_SECONDS),
            live_max_cameras: DEFAULT_WEB_LIVE_MAX_CAMERAS,
            live_fps: DEFAULT_WEB_LIVE_FPS,
        }
    }
}

/// Picture checks for one stream. A frame that fails one makes the stream `degraded`.
#[derive(Debug, Clone, PartialEq)]
pub struct QualityConfig {
    /// Watch the stream this long after the first frame (fps, bitrate, frozen within a probe);
    /// zero checks the first frame only.
    pub sample: Duration,
    /// Largest luma change (0–255, on a coarse grid of block averages) still counted as "the
    /// same picture". Raise it for noisy static scenes; 0 flags only identical pictures.
    pub frozen_max_difference: f64,
    /// Mean luma at or below this is a black picture.
    pub black_max_luma: f64,
    /// Luma standard deviation at or below this is a blank, single-colour picture.
    pub blank_max_stddev: f64,
    /// A probe waits for a clean picture (the next keyframe) when the last one is this old;
    /// zero checks on every probe. Its verdict stands until the next check.
    pub picture_check: Duration,
}

pub const DEFAULT_FROZEN_MAX_DIFFERENCE: f64 = 1.0;
pub const DEFAULT_BLACK_MAX_LUMA: f64 = 20.0;
pub const DEFAULT_BLANK_MAX_STDDEV: f64 = 2.0;
pub const DEFAULT_PICTURE_CHECK_MINUTES: f64 = 5.0;

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            sample: Duration::ZERO,
            frozen_max_difference: DEFAULT_FROZEN_MAX_DIFFERENCE,
            black_max_luma: DEFAULT_BLACK_MAX_LUMA,
            blank_max_stddev: DEFAULT_BLANK_MAX_STDDEV,
            picture_check: Duration::from_secs_f64(DEFAULT_PICTURE_CHECK_MINUTES * 60.0),
        }
    }
}

/// What a stream should deliver; a frame that does not is `degraded`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expectation {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub min_fps: Option<f64>,
}

/// One camera.
#[derive(Debug, Clone, PartialEq)]
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
    /// No `pipeline:` on an `http(s)://` stream: each probe uses the template its server's
    /// answer calls for (`pipeline` is then only the fallback name), remembered per camera.
    pub detect_template: bool,
    /// `transport:` (RTSP): overrides what the probes learn.
    pub transport: StreamTransport,
    /// Extra placeholder values for the template.
    pub params: BTreeMap<String, String>,
    pub quality: QualityConfig,
    pub expect: Expectation,
    /// `alerts:` overridden by the stream's own `alerts:`.
    pub alerts: crate::alert::confirm::ConfirmRules,
    /// The stream's own `maintenance:` windows, besides the top-level ones.
    pub maintenance: Vec<maintenance::MaintenanceWindow>,
    /// `tls:`: how an `rtsps://` / `https://` camera's certificate is checked.
    pub tls: CameraTls,
    /// `onvif:`: read the camera's clock and call it degraded past `max_clock_skew`.
    pub onvif: Option<crate::onvif::skew::ClockCheck>,
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

/// `line N: field: message`, without the file (for the web editor, which knows it).
impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(line) = self.line {
            write!(f, "line {line}: ")?;
        }
        if !self.field.is_empty() {
            write!(f, "{}: ", self.field)?;
        }
        f.write_str(&self.message)
    }
}

/// `file:line: field: message`, one per line. File-level problems (syntax, empty file) have no
/// field.
pub fn format_problems(path: &std::path::Path, problems: &[Problem]) -> String {
    let noun = if problems.len() == 1 {
        "problem"
    } else {
        "problems"
    };
    let mut out = format!("{} has {} {noun}:", path.display(), problems.len());
    for problem in problems {
        out.push_str("\n  ");
        out.push_str(&path.display().to_string());
        if let Some(line) = problem.line {
            out.push_str(&format!(":{line}"));
        }
        if !problem.field.is_empty() {
            out.push_str(&format!(": {}", problem.field));
        }
        out.push_str(&format!(": {}", problem.message));
    }
    out
}

/// Reads and validates the config file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    parse(&read_text(path)?, path)
}

fn read_text(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Validates config text as if it were the file at `path`: the web editor calls this before
/// writing. `path` names the file in messages and anchors relative `database` and
/// `pipelines_dir`; it need not exist.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let invalid = |problems| ConfigError::Invalid {
        path: path.to_path_buf(),
        problems,
    };
    let root = tree::parse(text).map_err(|problem| invalid(vec![problem]))?;
    let mut problems = Vec::new();
    let raw = raw::check(root.as_ref(), &mut problems);
    let config = validate::validate(&raw, path, &mut problems);
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => {
            if problems.is_empty() {
                // Unreachable by construction; never fail without saying why.
                problems.push(Problem {
                    line: None,
                    field: String::new(),
                    message: "invalid configuration".into(),
                });
            }
            // In file order; problems on one line keep the order they were found in.
            problems.sort_by_key(|p| p.line.unwrap_or(0));
            Err(invalid(problems))
        }
    }
}

/// The probe deadline when none is configured: [`DEFAULT_PROBE_TIMEOUT_SECONDS`], or 80% of a
/// heartbeat that short, so a probe ends before the next one is due.
pub fn default_probe_timeout(heartbeat: Duration) -> Duration {
    let default = Duration::from_secs_f64(DEFAULT_PROBE_TIMEOUT_SECONDS);
    if heartbeat <= default {
        heartbeat.mul_f64(0.8)
    } else {
        default
    }
}

/// Hex SHA-256 of the URL without its credentials: lets the store recognise a renamed stream by
/// where it points. Credentials are left out so the database holds nothing a password could be
/// guessed against, and a password change alone does not split a camera's history.
pub fn stream_identity_fingerprint(url: &CameraUrl) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(url.without_credentials().as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests;
