//! Stage two: meaning. Turns the raw structs into a [`Config`], checking values against each other
//! (timeouts against heartbeats, unique names) and against the world (timezones, templates),
//! collecting every problem.

use super::raw::{Field, RawConfig, RawQuality, RawStream, RawWeb, Spanned};
use super::{
    default_probe_timeout, DEFAULT_DATABASE, DEFAULT_DISK_FULL_BUFFER_MINUTES, DEFAULT_HEARTBEAT_SECONDS,
    DEFAULT_MAX_CONCURRENT_PROBES, DEFAULT_NTP_INTERVAL_SECONDS, DEFAULT_NTP_SERVER, DEFAULT_RETENTION_DAYS,
    DEFAULT_TIMEZONE, MAX_NAME_CHARS, SUPPORTED_SCHEMES,
};
use super::{suggest, Config, Expectation, Problem, QualityConfig, StreamConfig, WebConfig};
use crate::pipeline::{default_template_for_scheme, PipelineError, Template, TemplateLibrary};
use crate::url::CameraUrl;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;
use time_tz::TimeZone;

const SECONDS_PER_DAY: u64 = 24 * 60 * 60;

/// Builds the config; `None` when anything is wrong (every problem is then in `problems`).
pub(crate) fn validate(raw: &RawConfig, path: &Path, problems: &mut Vec<Problem>) -> Option<Config> {
    let mut check = Check { problems };
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

    let web = check.web(&raw.web);
    let quality = check.quality(&QualityConfig::default(), &raw.sample_seconds, &raw.quality, "");

    let library = TemplateLibrary::new(pipelines_dir.as_deref());
    let mut templates = Templates {
        library: &library,
        found: HashMap::new(),
        checked: HashMap::new(),
    };
    let globals = Globals {
        heartbeat,
        raw_timeout: &raw.probe_timeout_seconds,
        explicit_timeout,
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
        streams,
    })
}

/// Top-level values a stream falls back on.
struct Globals<'a> {
    /// `None` when the top-level heartbeat is wrong (already reported).
    heartbeat: Option<Duration>,
    raw_timeout: &'a Field<f64>,
    explicit_timeout: Option<Duration>,
}

/// Template lookups, once per name: a user template is a file read.
struct Templates<'a> {
    library: &'a TemplateLibrary,
    found: HashMap<String, Result<Template, String>>,
    /// `Template::check` per (template, params): it builds a pipeline, too dear for every stream.
    checked: HashMap<(String, BTreeMap<String, String>), Result<(), String>>,
}

impl Templates<'_> {
    /// Elements installed, params present, description parses (once per template and params).
    fn check(&mut self, template: &Template, params: &BTreeMap<String, String>) -> Result<(), String> {
        let key = (template.name.clone(), params.clone());
        self.checked
            .entry(key)
            .or_insert_with(|| template.check(params).map_err(|e| e.to_string()))
            .clone()
    }

    fn find(&mut self, name: &str) -> Result<&Template, &str> {
        let library = self.library;
        let result = self.found.entry(name.to_string()).or_insert_with(|| {
            library.find(name).map_err(|e| match e {
                PipelineError::UnknownTemplate(_) => {
                    let names: Vec<String> = library.list().into_iter().map(|t| t.name).collect();
                    match suggest::closest(name, names.iter().map(String::as_str)) {
                        Some(meant) => format!("unknown pipeline template {name:?}; did you mean {meant:?}?"),
                        None => format!(
                            "unknown pipeline template {name:?}; available: {}",
                            names.join(", ")
                        ),
                    }
                }
                other => other.to_string(),
            })
        });
        result.as_ref().map_err(String::as_str)
    }
}

struct Check<'p> {
    problems: &'p mut Vec<Problem>,
}

impl Check<'_> {
    fn push(&mut self, line: usize, field: &str, message: String) {
        self.problems.push(Problem {
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

    fn web(&mut self, raw: &RawWeb) -> WebConfig {
        let mut web = WebConfig::default();
        if let Field::Given(listen) = &raw.listen {
            match check_host_port(&listen.value, true) {
                Ok(()) => web.listen = listen.value.trim().to_string(),
                Err(why) => self.push(listen.line, "web.listen", why),
            }
        }
        if let Field::Given(flag) = &raw.metrics_public {
            web.metrics_public = flag.value;
        }
        if let Field::Given(flag) = &raw.behind_tls {
            web.behind_tls = flag.value;
        }
        if let Field::Given(minutes) = &raw.session_idle_minutes {
            if let Some(idle) = self.positive_scaled(minutes, "web.session_idle_minutes", 60.0) {
                web.session_idle = idle;
            }
        }
        if let Field::Given(hours) = &raw.session_max_hours {
            if let Some(max) = self.positive_scaled(hours, "web.session_max_hours", 3600.0) {
                web.session_max = max;
            }
        }
        if let Field::Given(proxies) = &raw.trusted_proxies {
            for (index, proxy) in proxies.value.iter().enumerate() {
                match proxy.value.trim().parse::<std::net::IpAddr>() {
                    Ok(address) => web.trusted_proxies.push(address),
                    Err(_) => self.push(
                        proxy.line,
                        &format!("web.trusted_proxies[{index}]"),
                        format!(
                            "{:?} is not an IP address (such as 127.0.0.1 or ::1; host names and ranges are not accepted)",
                            proxy.value
                        ),
                    ),
                }
            }
        }
        web
    }

    fn stream(
        &mut self,
        raw: &RawStream,
        globals: &Globals,
        global_quality: &QualityConfig,
        templates: &mut Templates,
    ) -> Option<StreamConfig> {
        let name = match &raw.name {
            Field::Given(name) => self.label(name, &raw.path("name"), "name"),
            Field::Missing => {
                self.push(
                    raw.line,
                    &raw.path("name"),
                    "every camera needs a name".to_string(),
                );
                None
            }
            Field::Invalid => None,
        };
        let id = match &raw.id {
            Field::Given(id) => self.label(id, &raw.path("id"), "id").map(Some),
            _ => Some(None),
        };
        let url = match &raw.url {
            Field::Given(url) => self.url(url, &raw.path("url")),
            _ => None,
        };

        let pipeline = match &raw.pipeline {
            Field::Given(template) if template.value.trim().is_empty() => {
                self.push(
                    template.line,
                    &raw.path("pipeline"),
                    "is empty; name a template".to_string(),
                );
                None
            }
            Field::Given(template) => Some((template.value.clone(), template.line)),
            Field::Invalid => None,
            Field::Missing => match (&raw.url, &url) {
                (Field::Missing, _) => {
                    self.push(raw.line, &raw.path("url"), "every camera needs a url".to_string());
                    None
                }
                // The URL's own problem is already reported.
                (_, None) => None,
                (_, Some(url)) => url
                    .scheme()
                    .and_then(|scheme| default_template_for_scheme(&scheme))
                    .map(|template| (template.to_string(), raw.line)),
            },
        };
        let pipeline = pipeline.and_then(|(template_name, line)| {
            let template = match templates.find(&template_name) {
                Ok(template) => template.clone(),
                Err(why) => {
                    self.push(line, &raw.path("pipeline"), why.to_string());
                    return None;
                }
            };
            let uses_url = template
                .placeholders()
                .into_iter()
                .find(|(p, _)| p == "url" || p == "location");
            if let (Some((placeholder, _)), Field::Missing) = (uses_url, &raw.url) {
                let message = format!("missing url: template {template_name:?} uses {{{placeholder}}}");
                self.push(raw.line, &raw.path("url"), message);
            }
            if let Err(why) = templates.check(&template, &raw.params) {
                self.push(line, &raw.path("pipeline"), why);
            }
            Some(template_name)
        });

        let (heartbeat, timeout) = self.stream_timing(raw, globals);
        let enabled = raw.enabled.given().is_none_or(|e| e.value);
        let quality = self.quality(
            global_quality,
            &raw.sample_seconds,
            &raw.quality,
            &format!("{}.", raw.path("")),
        );
        let expect = self.expectation(raw);
        if let (Some(timeout), Field::Given(sample)) = (timeout, &raw.sample_seconds) {
            if quality.sample >= timeout {
                self.push(
                    sample.line,
                    &raw.path("sample_seconds"),
                    format!(
                        "the sample window ({} s) must be shorter than the probe timeout ({} s)",
                        secs(quality.sample),
                        secs(timeout)
                    ),
                );
            }
        }
        if raw.url != Field::Missing && url.is_none() {
            return None;
        }
        Some(StreamConfig {
            id: id?,
            name: name?,
            url,
            enabled,
            heartbeat: heartbeat?,
            probe_timeout: timeout?,
            pipeline: pipeline?,
            params: raw.params.clone(),
            quality,
            expect,
        })
    }

    /// Thresholds from `base`, overridden by whatever `raw` gives; `prefix` is `""` at the top
    /// level or `streams[N].` for a stream.
    fn quality(
        &mut self,
        base: &QualityConfig,
        sample_seconds: &Field<f64>,
        raw: &RawQuality,
        prefix: &str,
    ) -> QualityConfig {
        let mut quality = base.clone();
        if let Field::Given(seconds) = sample_seconds {
            if seconds.value < 0.0 || seconds.value > 60.0 {
                self.push(
                    seconds.line,
                    &format!("{prefix}sample_seconds"),
                    "must be between 0 and 60".to_string(),
                );
            } else {
                quality.sample = Duration::from_secs_f64(seconds.value);
            }
        }
        let fields: [(&Field<f64>, &str, &mut f64, f64); 3] = [
            (
                &raw.frozen_max_difference,
                "frozen_max_difference",
                &mut quality.frozen_max_difference,
                255.0,
            ),
            (
                &raw.black_max_luma,
                "black_max_luma",
                &mut quality.black_max_luma,
                255.0,
            ),
            (
                &raw.blank_max_stddev,
                "blank_max_stddev",
                &mut quality.blank_max_stddev,
                128.0,
            ),
        ];
        for (field, key, target, max) in fields {
            if let Field::Given(value) = field {
                if value.value < 0.0 || value.value > max {
                    self.push(
                        value.line,
                        &format!("{prefix}quality.{key}"),
                        format!("must be between 0 and {max}"),
                    );
                } else {
                    *target = value.value;
                }
            }
        }
        quality
    }

    fn expectation(&mut self, raw: &RawStream) -> Expectation {
        let mut expect = Expectation::default();
        for (field, key, target) in [
            (&raw.expect.width, "width", &mut expect.width),
            (&raw.expect.height, "height", &mut expect.height),
        ] {
            if let Field::Given(value) = field {
                match u32::try_from(value.value) {
                    Ok(pixels) if pixels > 0 => *target = Some(pixels),
                    _ => self.push(
                        value.line,
                        &raw.path(&format!("expect.{key}")),
                        "must be a positive number of pixels".to_string(),
                    ),
                }
            }
        }
        if let Field::Given(fps) = &raw.expect.min_fps {
            if fps.value > 0.0 {
                expect.min_fps = Some(fps.value);
            } else {
                self.push(
                    fps.line,
                    &raw.path("expect.min_fps"),
                    "must be above 0".to_string(),
                );
            }
        }
        expect
    }

    /// The stream's effective heartbeat and probe timeout. Their comparison is reported here only
    /// when the stream overrides one of them; otherwise the top-level check already covered it.
    fn stream_timing(&mut self, raw: &RawStream, globals: &Globals) -> (Option<Duration>, Option<Duration>) {
        let heartbeat = match &raw.heartbeat_seconds {
            Field::Given(seconds) => self.positive_whole(seconds, &raw.path("heartbeat_seconds"), 1),
            Field::Missing => globals.heartbeat,
            Field::Invalid => None,
        };
        let timeout = match (&raw.probe_timeout_seconds, globals.raw_timeout) {
            (Field::Given(seconds), _) => self.positive_seconds(seconds, &raw.path("probe_timeout_seconds")),
            (Field::Invalid, _) => None,
            (Field::Missing, Field::Given(_)) => globals.explicit_timeout,
            (Field::Missing, Field::Invalid) => None,
            // No timeout anywhere: derive it from this stream's heartbeat, not the global one.
            (Field::Missing, Field::Missing) => heartbeat.map(default_probe_timeout),
        };
        let (Some(heartbeat_value), Some(timeout_value)) = (heartbeat, timeout) else {
            return (heartbeat, timeout);
        };
        if timeout_value < heartbeat_value {
            return (heartbeat, timeout);
        }
        match (&raw.probe_timeout_seconds, &raw.heartbeat_seconds) {
            (Field::Given(own_timeout), _) => {
                let from = if raw.heartbeat_seconds == Field::Missing {
                    ", the top-level heartbeat_seconds"
                } else {
                    ""
                };
                let message = format!(
                    "probe timeout ({} s) must be shorter than the heartbeat ({} s{from})",
                    secs(timeout_value),
                    secs(heartbeat_value)
                );
                self.push(own_timeout.line, &raw.path("probe_timeout_seconds"), message);
            }
            (_, Field::Given(own_heartbeat)) => {
                let message = format!(
                    "heartbeat ({} s) must be longer than the top-level probe_timeout_seconds ({} s); \
                     give this camera its own probe_timeout_seconds",
                    secs(heartbeat_value),
                    secs(timeout_value)
                );
                self.push(own_heartbeat.line, &raw.path("heartbeat_seconds"), message);
            }
            _ => {}
        }
        (heartbeat, timeout)
    }

    /// A stream name or id: shown on pages and used in URLs, so no control characters.
    fn label(&mut self, value: &Spanned<String>, field: &str, what: &str) -> Option<String> {
        let text = &value.value;
        let problem = if text.trim().is_empty() {
            Some(format!("{what} is empty"))
        } else if text.chars().any(char::is_control) {
            Some(format!(
                "{what} {text:?} contains control characters (tabs, newlines, ...)"
            ))
        } else if text.chars().count() > MAX_NAME_CHARS {
            Some(format!("{what} is longer than {MAX_NAME_CHARS} characters"))
        } else {
            None
        };
        match problem {
            Some(message) => {
                self.push(value.line, field, message);
                None
            }
            None => Some(text.clone()),
        }
    }

    /// Quotes the scheme at most: the rest of a URL may hold a password, and a password with an
    /// unescaped `/` or `@` defeats any redaction.
    fn url(&mut self, value: &Spanned<String>, field: &str) -> Option<CameraUrl> {
        let url = CameraUrl::new(value.value.trim());
        let expected = "expected rtsp://, rtsps://, http:// or https://";
        let problem = if value.value.trim().is_empty() {
            Some("url is empty".to_string())
        } else {
            match url.scheme() {
                None => Some(format!("not a URL: it has no scheme; {expected}")),
                Some(scheme) if !SUPPORTED_SCHEMES.contains(&scheme.as_str()) => {
                    Some(format!("unsupported URL scheme {scheme:?}; {expected}"))
                }
                Some(_) => match url.host_port() {
                    None => Some("the URL's host or port is malformed".to_string()),
                    Some((host, _)) if host.is_empty() => Some("the URL has no host".to_string()),
                    Some(_) => url.credentials_problem().map(str::to_string),
                },
            }
        };
        match problem {
            Some(message) => {
                self.push(value.line, field, message);
                None
            }
            None => Some(url),
        }
    }

    /// Reports every stream whose name (or id) another stream also uses, each naming the others.
    fn duplicates<'r>(
        &mut self,
        streams: &'r [RawStream],
        get: impl Fn(&'r RawStream) -> Option<&'r Spanned<String>>,
        what: &str,
        key: &str,
    ) {
        let mut by_value: BTreeMap<&str, Vec<&RawStream>> = BTreeMap::new();
        for stream in streams {
            if let Some(value) = get(stream) {
                by_value.entry(value.value.as_str()).or_default().push(stream);
            }
        }
        for (value, users) in by_value.into_iter().filter(|(_, users)| users.len() > 1) {
            for stream in &users {
                let others: Vec<String> = users
                    .iter()
                    .filter(|other| other.index != stream.index)
                    .map(|other| {
                        let line = get(other).map_or(other.line, |v| v.line);
                        format!("{} (line {line})", other.path(""))
                    })
                    .collect();
                let line = get(stream).map_or(stream.line, |v| v.line);
                let message = format!("{what} {value:?} is also used by {}", others.join(", "));
                self.push(line, &stream.path(key), message);
            }
        }
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
fn check_host_port(text: &str, port_required: bool) -> Result<(), String> {
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
fn secs(duration: Duration) -> String {
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
