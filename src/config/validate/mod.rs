//! Stage two: meaning. Turns the raw structs into a [`Config`], checking values against each other
//! (timeouts against heartbeats, unique names) and against the world (timezones, templates),
//! collecting every problem.
//!
//! This file: the top-level (global) settings and the checks every section shares. [`streams`]
//! checks the cameras (names, URLs, templates, timing, picture thresholds), [`web`] the `web:`
//! section.

mod alerts;
mod maintenance;
mod mqtt;
mod onvif;
mod pictures;
mod streams;
mod tls;
mod transport;
mod web;

use super::raw::{Field, RawConfig, Spanned};
use super::{
    default_probe_timeout, DEFAULT_DATABASE, DEFAULT_DISK_FULL_BUFFER_MINUTES, DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_MAX_CONCURRENT_PROBES, DEFAULT_NTP_INTERVAL_SECONDS, DEFAULT_NTP_SERVER, DEFAULT_RETENTION_DAYS,
    DEFAULT_TIMEZONE,
};
use super::{suggest, Config, MetricsConfig, Problem, QualityConfig};
use crate::pipeline::TemplateLibrary;
use crate::url::CameraUrl;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use streams::{Globals, Templates};
use time_tz::TimeZone;

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// Builds the config; `None` when anything is wrong (every problem is then in `problems`).
pub(crate) fn validate(raw: &RawConfig, path: &Path, problems: &mut Vec<Problem>) -> Option<Config> {
    let mut check = Check {
        problems,
        notices: Vec::new(),
    };
    let base_dir = path.parent().unwrap_or(Path::new(""));

    let heartbeat = match &raw.heartbeat_seconds {
        Field::Given(seconds) => check.positive_whole(seconds, "heartbeat_seconds", 1),
        Field::Missing => Some(Duration::from_secs(DEFAULT_HEARTBEAT_SECONDS)),
        Field::Invalid => None,
    };
    let explicit_timeout = match &raw.probe_timeout_seconds {
        Field::Given(seconds) => check.positive_seconds(seconds, "probe_timeout_seconds"),
        Field::Missing | Field::Invalid => None,
    };
    let probe_timeout = match (&raw.probe_timeout_seconds, heartbeat) {
        (Field::Given(seconds), Some(heartbeat)) => {
            if let Some(timeout) = explicit_timeout.filter(|t| *t >= heartbeat) {
                check.push(
                    seconds.line,
                    "probe_timeout_seconds",
                    format!(
                        "probe timeout ({} s) must be shorter than the heartbeat ({} s)",
                        secs(timeout),
                        secs(heartbeat)
                    ),
                );
            }
            explicit_timeout
        }
        (Field::Missing, Some(heartbeat)) => Some(default_probe_timeout(heartbeat)),
        _ => explicit_timeout,
    };

    let (timezone_name, timezone) = match &raw.timezone {
        Field::Given(name) => match time_tz::timezones::get_by_name(&name.value) {
            Some(tz) => (name.value.clone(), Some(tz)),
            None => {
                let message = format!("unknown timezone {:?}{}", name.value, timezone_hint(&name.value));
                check.push(name.line, "timezone", message);
                (name.value.clone(), None)
            }
        },
        _ => (
            DEFAULT_TIMEZONE.to_string(),
            time_tz::timezones::get_by_name(DEFAULT_TIMEZONE),
        ),
    };

    let ntp_server = match &raw.ntp_server {
        Field::Given(server) => {
            if let Err(why) = check_host_port(&server.value, false) {
                check.push(server.line, "ntp_server", why);
            }
            server.value.trim().to_string()
        }
        _ => DEFAULT_NTP_SERVER.to_string(),
    };
    let ntp_interval = match &raw.ntp_interval_seconds {
        Field::Given(seconds) => check.positive_whole(seconds, "ntp_interval_seconds", 1),
        _ => Some(Duration::from_secs(DEFAULT_NTP_INTERVAL_SECONDS)),
    };
    let max_concurrent_probes = match &raw.max_concurrent_probes {
        Field::Given(count) if count.value >= 1 => usize::try_from(count.value).ok(),
        Field::Given(count) => {
            check.push(
                count.line,
                "max_concurrent_probes",
                "must be at least 1".to_string(),
            );
            None
        }
        _ => Some(DEFAULT_MAX_CONCURRENT_PROBES),
    };
    let retention = match &raw.retention_days {
        Field::Given(days) if days.value == 0 => None,
        Field::Given(days) => check.positive_whole(days, "retention_days", SECONDS_PER_DAY),
        _ => Some(Duration::from_secs(DEFAULT_RETENTION_DAYS * SECONDS_PER_DAY)),
    };
    let disk_full_buffer = match &raw.disk_full_buffer_minutes {
        Field::Given(minutes) if minutes.value == 0 => None,
        Field::Given(minutes) => check.positive_whole(minutes, "disk_full_buffer_minutes", 60),
        _ => Some(Duration::from_secs(DEFAULT_DISK_FULL_BUFFER_MINUTES * 60)),
    };

    let database = match &raw.database {
        Field::Given(file) if file.value.trim().is_empty() => {
            check.push(file.line, "database", "is empty; give a file path".to_string());
            PathBuf::from(DEFAULT_DATABASE)
        }
        Field::Given(file) => base_dir.join(&file.value),
        _ => base_dir.join(DEFAULT_DATABASE),
    };
    let pipelines_dir = match &raw.pipelines_dir {
        Field::Given(dir) if dir.value.trim().is_empty() => {
            check.push(
                dir.line,
                "pipelines_dir",
                "is empty; give a directory or leave the key out".to_string(),
            );
            None
        }
        Field::Given(dir) => {
            let resolved = base_dir.join(&dir.value);
            if !resolved.is_dir() {
                check.push(
                    dir.line,
                    "pipelines_dir",
                    format!("{} is not a directory", resolved.display()),
                );
            }
            Some(resolved)
        }
        _ => None,
    };

    let web = check.web(&raw.web, base_dir);
    let quality = check.quality(&QualityConfig::default(), &raw.sample_seconds, &raw.quality, "");

    let library = TemplateLibrary::new(pipelines_dir.as_deref());
    let mut templates = Templates {
        library: &library,
        found: HashMap::new(),
        checked: HashMap::new(),
    };
    let alerts = check.alerts(&raw.alerts);
    let self_check_url = check.self_check_url(&raw.self_check_url);
    let maintenance = check.maintenance(&raw.maintenance);
    let globals = Globals {
        heartbeat,
        raw_timeout: &raw.probe_timeout_seconds,
        explicit_timeout,
        alert_rules: alerts.rules,
        max_clock_skew: check.global_clock_skew(&raw.max_clock_skew),
        transport: check.fleet_transport(&raw.transport),
    };
    let mut streams = Vec::with_capacity(raw.streams.len());
    let mut unbuilt = Vec::new();
    for raw_stream in &raw.streams {
        match check.stream(raw_stream, &globals, &quality, &mut templates) {
            Some(stream) => streams.push(stream),
            None => unbuilt.push(raw_stream),
        }
    }
    check.duplicates(&raw.streams, |s| s.name.given(), "stream name", "name");
    check.duplicates(&raw.streams, |s| s.id.given(), "stream id", "id");
    let mqtt = check.mqtt(&raw.mqtt);
    let pictures = check.pictures(&raw.pictures);
    if mqtt.as_ref().is_some_and(|mqtt| mqtt.state_topics) {
        check.mqtt_topic_clashes(&raw.streams);
    }
    // A stream that could not be built must never vanish silently.
    if check.problems.is_empty() {
        for stream in unbuilt {
            check.push(stream.line, &stream.path(""), "could not be read".to_string());
        }
    }

    if !check.problems.is_empty() {
        return None;
    }
    Some(Config {
        path: path.to_path_buf(),
        heartbeat: heartbeat?,
        timezone_name,
        timezone: timezone?,
        ntp_server,
        ntp_interval: ntp_interval?,
        probe_timeout: probe_timeout?,
        max_concurrent_probes: max_concurrent_probes?,
        database,
        pipelines_dir,
        retention,
        disk_full_buffer,
        quality,
        web,
        metrics: MetricsConfig {
            v1_names: raw.metrics.v1_names.given().is_some_and(|flag| flag.value),
        },
        self_check_url,
        site: raw
            .site
            .given()
            .map(|site| site.value.trim().to_string())
            .filter(|site| !site.is_empty()),
        alerts,
        maintenance,
        mqtt,
        pictures,
        streams,
        notices: check.notices,
    })
}

/// Collects the problems found while checking, and the notices (accepted, but worth saying).
struct Check<'p> {
    problems: &'p mut Vec<Problem>,
    notices: Vec<Problem>,
}

impl Check<'_> {
    fn push(&mut self, line: usize, field: &str, message: String) {
        self.problems.push(Problem {
            line: Some(line),
            field: field.to_string(),
            message,
        });
    }

    /// `self_check_url`: http or https with a host.
    fn self_check_url(&mut self, raw: &Field<String>) -> Option<CameraUrl> {
        let Field::Given(text) = raw else {
            return None;
        };
        let url = CameraUrl::new(text.value.trim());
        let scheme_ok = matches!(url.scheme().as_deref(), Some("http" | "https"));
        let has_host = url.host_port().is_some_and(|(host, _)| !host.is_empty());
        if !scheme_ok || !has_host {
            self.push(
                text.line,
                "self_check_url",
                "must be an http:// or https:// URL with a host".to_string(),
            );
            return None;
        }
        Some(url)
    }

    /// Something accepted that the user should know about; `validate` prints it.
    fn notice(&mut self, line: usize, field: &str, message: String) {
        self.notices.push(Problem {
            line: Some(line),
            field: field.to_string(),
            message,
        });
    }

    /// A whole number of `unit_seconds` that must be above zero.
    fn positive_whole(&mut self, value: &Spanned<i64>, field: &str, unit_seconds: u64) -> Option<Duration> {
        if value.value <= 0 {
            self.push(value.line, field, "must be more than 0".to_string());
            return None;
        }
        let seconds = u64::try_from(value.value)
            .ok()
            .and_then(|v| v.checked_mul(unit_seconds));
        if seconds.is_none() {
            self.push(value.line, field, "is too large".to_string());
        }
        seconds.map(Duration::from_secs)
    }

    /// Seconds, possibly fractional, that must be above zero.
    fn positive_seconds(&mut self, value: &Spanned<f64>, field: &str) -> Option<Duration> {
        self.positive_scaled(value, field, 1.0)
    }

    fn positive_scaled(&mut self, value: &Spanned<f64>, field: &str, unit_seconds: f64) -> Option<Duration> {
        if value.value <= 0.0 {
            self.push(value.line, field, "must be more than 0".to_string());
            return None;
        }
        let duration = Duration::try_from_secs_f64(value.value * unit_seconds).ok();
        if duration.is_none() {
            self.push(value.line, field, "is too large".to_string());
        }
        duration
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
pub(super) fn check_host_port(text: &str, port_required: bool) -> Result<(), String> {
    let text = text.trim();
    let expected = if port_required {
        "host:port"
    } else {
        "a host or host:port"
    };
    if text.is_empty() {
        return Err(format!("is empty; expected {expected}"));
    }
    if text.contains("://") || text.contains(char::is_whitespace) || text.contains(['/', '@']) {
        return Err(format!("expected {expected}, not a URL or path"));
    }
    let (host, port) = if let Some(v6) = text.strip_prefix('[') {
        let Some((host, after)) = v6.split_once(']') else {
            return Err("missing ] after the IPv6 address".to_string());
        };
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(format!("expected {expected}")),
        }
    } else if text.matches(':').count() > 1 {
        // A bare IPv6 address; a port would need brackets.
        (text, None)
    } else {
        match text.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (text, None),
        }
    };
    if host.is_empty() {
        return Err(format!("has no host; expected {expected}"));
    }
    match port {
        Some(port) if port.parse::<u16>().is_ok_and(|p| p > 0) => Ok(()),
        Some(port) => Err(format!("port {port:?} is not a number from 1 to 65535")),
        None if port_required => Err(format!("has no port; expected {expected}")),
        None => Ok(()),
    }
}

/// `; did you mean "Asia/Kolkata"?` for a wrong case, a missing region or a typo.
fn timezone_hint(name: &str) -> String {
    let names: Vec<&'static str> = time_tz::timezones::iter().map(|tz| tz.name()).collect();
    let lower = name.to_lowercase();
    let by_case = names.iter().find(|n| n.to_lowercase() == lower);
    let by_city = names.iter().find(|n| {
        n.rsplit_once('/')
            .is_some_and(|(_, city)| city.to_lowercase() == lower.replace(' ', "_"))
    });
    match by_case.or(by_city) {
        Some(found) => format!("; did you mean {found:?}?"),
        None => suggest::hint(name, names.iter().copied()),
    }
}

/// Seconds for messages: `10`, `2.5`.
pub(super) fn secs(duration: Duration) -> String {
    duration.as_secs_f64().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_forms() {
        assert_eq!(check_host_port("pool.ntp.org", false), Ok(()));
        assert_eq!(check_host_port("10.0.0.1:123", false), Ok(()));
        assert_eq!(check_host_port("[::1]:8000", true), Ok(()));
        assert_eq!(check_host_port("fe80::1", false), Ok(()));
        assert!(check_host_port("pool.ntp.org", true).is_err());
        assert!(check_host_port("host:0", false).is_err());
        assert!(check_host_port("host:99999", false).is_err());
        assert!(check_host_port("ntp://host", false).is_err());
        assert!(check_host_port(":123", false).is_err());
    }

    #[test]
    fn timezone_hints() {
        assert_eq!(timezone_hint("asia/kolkata"), "; did you mean \"Asia/Kolkata\"?");
        assert_eq!(timezone_hint("Kolkata"), "; did you mean \"Asia/Kolkata\"?");
        assert_eq!(timezone_hint("Europe/Berln"), "; did you mean \"Europe/Berlin\"?");
        assert_eq!(timezone_hint("Nowhere/Atall"), "");
    }
}
