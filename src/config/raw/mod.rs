//! Stage one: the shape of the file. Walks the marked YAML tree into raw structs whose fields have
//! the right types but unchecked meaning. Every unknown key and wrong type becomes a [`Problem`];
//! a field that is wrong is left [`Field::Invalid`] so stage two neither reports it again as
//! missing nor derives further problems from a guess.
//!
//! This file: the keys, the top-level (global) settings and what an unknown key was meant to be.
//! [`values`] reads typed values and mappings, [`streams`] the cameras (with their picture
//! thresholds, expectations and template parameters), [`web`] the `web:` section.

mod alerts;
mod camera_tls;
mod maintenance;
mod mqtt;
mod onvif;
mod pictures;
mod streams;
mod values;
mod web;

pub(crate) use alerts::{RawAlerts, RawChannel, RawRules};
pub(crate) use camera_tls::RawCameraTls;
pub(crate) use maintenance::RawWindow;
pub(crate) use mqtt::RawMqtt;
pub(crate) use onvif::RawOnvif;
pub(crate) use pictures::RawPictures;

pub(crate) use streams::{RawQuality, RawStream};
pub(crate) use web::{RawMetrics, RawTls, RawWeb};

use super::suggest;
use super::tree::{Node, Value};
use super::Problem;
use values::Shape;

pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "heartbeat_seconds",
    "timezone",
    "ntp_server",
    "ntp_interval_seconds",
    "probe_timeout_seconds",
    "max_concurrent_probes",
    "database",
    "pipelines_dir",
    "retention_days",
    "disk_full_buffer_minutes",
    "sample_seconds",
    "transport",
    "quality",
    "web",
    "metrics",
    "self_check_url",
    "site",
    "alerts",
    "maintenance",
    "mqtt",
    "pictures",
    "max_clock_skew",
    "streams",
];

pub(crate) const STREAM_KEYS: &[&str] = &[
    "name",
    "url",
    "id",
    "enabled",
    "heartbeat_seconds",
    "probe_timeout_seconds",
    "pipeline",
    "transport",
    "params",
    "sample_seconds",
    "quality",
    "expect",
    "alerts",
    "maintenance",
    "tls",
    "onvif",
    "max_clock_skew",
];

pub(crate) const QUALITY_KEYS: &[&str] = &[
    "frozen_max_difference",
    "black_max_luma",
    "blank_max_stddev",
    "picture_check_minutes",
];

pub(crate) const EXPECT_KEYS: &[&str] = &["width", "height", "min_fps"];

pub(crate) const WEB_KEYS: &[&str] = &[
    "listen",
    "metrics_public",
    "public_status",
    "public_pictures",
    "behind_tls",
    "session_idle_minutes",
    "session_max_hours",
    "trusted_proxies",
    "tls",
    "max_connections",
    "max_connections_per_client",
    "header_timeout_seconds",
    "live_seconds",
    "live_max_cameras",
    "live_fps",
];

pub(crate) const METRICS_KEYS: &[&str] = &["v1_names"];

pub(crate) const TLS_KEYS: &[&str] = &["cert", "key"];

/// A value and the line of its key.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Spanned<T> {
    pub value: T,
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum Field<T> {
    /// Absent, or written with no value (`key:`), which YAML reads as null.
    #[default]
    Missing,
    /// Present but of the wrong type; already reported.
    Invalid,
    Given(Spanned<T>),
}

impl<T> Field<T> {
    pub fn given(&self) -> Option<&Spanned<T>> {
        match self {
            Field::Given(spanned) => Some(spanned),
            Field::Missing | Field::Invalid => None,
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct RawConfig {
    pub heartbeat_seconds: Field<i64>,
    pub timezone: Field<String>,
    pub ntp_server: Field<String>,
    pub ntp_interval_seconds: Field<i64>,
    pub probe_timeout_seconds: Field<f64>,
    pub max_concurrent_probes: Field<i64>,
    pub database: Field<String>,
    pub pipelines_dir: Field<String>,
    pub retention_days: Field<i64>,
    pub disk_full_buffer_minutes: Field<i64>,
    pub sample_seconds: Field<f64>,
    /// The fleet's default `transport:` for RTSP streams without their own.
    pub transport: Field<String>,
    pub quality: RawQuality,
    pub web: RawWeb,
    pub metrics: RawMetrics,
    pub self_check_url: Field<String>,
    pub site: Field<String>,
    pub alerts: RawAlerts,
    pub maintenance: Vec<RawWindow>,
    pub mqtt: RawMqtt,
    pub pictures: RawPictures,
    /// Seconds.
    pub max_clock_skew: Field<f64>,
    pub streams: Vec<RawStream>,
}

/// Checks the shape of a parsed document. `None` (an empty file) and a non-mapping document give
/// a single problem and an empty config.
pub(crate) fn check(root: Option<&Node>, problems: &mut Vec<Problem>) -> RawConfig {
    let mut shape = Shape { problems };
    let mut raw = RawConfig::default();
    let Some(root) = root else {
        shape.push(
            Some(1),
            "",
            "the file is empty; expected settings such as `heartbeat_seconds:` and a `streams:` list"
                .to_string(),
        );
        return raw;
    };
    if !matches!(root.value, Value::Map(_)) {
        shape.push(
            Some(root.line),
            "",
            format!(
                "expected settings (`key: value` lines such as `streams:`) at the top level, found {}",
                root.describe()
            ),
        );
        return raw;
    }
    for (key, entry) in shape.known_entries(root, "", TOP_LEVEL_KEYS) {
        let line = entry.key.line;
        let value = &entry.value;
        match key.as_str() {
            "heartbeat_seconds" => {
                raw.heartbeat_seconds = shape.whole(value, line, &key, "a whole number of seconds")
            }
            "timezone" => {
                raw.timezone = shape.text(value, line, &key, "a timezone name such as Europe/Berlin")
            }
            "ntp_server" => raw.ntp_server = shape.text(value, line, &key, "a host name or host:port"),
            "ntp_interval_seconds" => {
                raw.ntp_interval_seconds = shape.whole(value, line, &key, "a whole number of seconds")
            }
            "probe_timeout_seconds" => {
                raw.probe_timeout_seconds = shape.number(value, line, &key, "a number of seconds")
            }
            "max_concurrent_probes" => {
                raw.max_concurrent_probes = shape.whole(value, line, &key, "a whole number")
            }
            "database" => raw.database = shape.text(value, line, &key, "a file path"),
            "pipelines_dir" => raw.pipelines_dir = shape.text(value, line, &key, "a directory path"),
            "retention_days" => raw.retention_days = shape.whole(value, line, &key, "a whole number of days"),
            "disk_full_buffer_minutes" => {
                raw.disk_full_buffer_minutes = shape.whole(value, line, &key, "a whole number of minutes")
            }
            "sample_seconds" => raw.sample_seconds = shape.number(value, line, &key, "a number of seconds"),
            "transport" => raw.transport = shape.text(value, line, &key, "udp, tcp or auto"),
            "quality" => raw.quality = shape.quality(value, line, "quality"),
            "web" => raw.web = shape.web(value, line),
            "metrics" => raw.metrics = shape.metrics(value, line),
            "self_check_url" => {
                raw.self_check_url = shape.text(value, line, &key, "an http:// or https:// URL")
            }
            "site" => raw.site = shape.label(value, line, &key),
            "alerts" => raw.alerts = shape.alerts(value, line),
            "maintenance" => raw.maintenance = shape.maintenance(value, line, "maintenance"),
            "mqtt" => raw.mqtt = shape.mqtt(value, line),
            "pictures" => raw.pictures = shape.pictures(value, line),
            "max_clock_skew" => raw.max_clock_skew = shape.clock_skew(value, line, &key),
            "streams" => raw.streams = shape.streams(value, line),
            _ => {}
        }
    }
    raw
}

pub(super) fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

/// Names the key and, when it can, where it belongs or what it was meant to be.
fn unknown_key_message(key: &str, parent: &str, known: &[&str]) -> String {
    let at_top = parent.is_empty();
    let in_stream = parent.starts_with("streams[");
    let place = if at_top {
        "at the top level".to_string()
    } else {
        format!("in {parent}")
    };
    if key == "<<" {
        return "YAML merge keys (<<) are not supported; write the settings out".to_string();
    }
    if at_top && STREAM_KEYS.contains(&key) && !TOP_LEVEL_KEYS.contains(&key) {
        return format!("unknown key \"{key}\" {place}; it belongs to a camera, in an item under `streams:`");
    }
    if at_top && WEB_KEYS.contains(&key) {
        return format!("unknown key \"{key}\" {place}; it belongs under `web:`");
    }
    if in_stream && TOP_LEVEL_KEYS.contains(&key) {
        return format!("unknown key \"{key}\" {place}; it is a top-level setting, not a per-camera one");
    }
    match suggest::closest(key, known.iter().copied()) {
        Some(meant) => format!("unknown key \"{key}\" {place}; did you mean \"{meant}\"?"),
        None => format!("unknown key \"{key}\" {place}; known keys: {}", known.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tree;
    use super::*;

    pub(super) fn shape_of(text: &str) -> (RawConfig, Vec<Problem>) {
        let root = tree::parse(text).unwrap();
        let mut problems = Vec::new();
        let raw = check(root.as_ref(), &mut problems);
        (raw, problems)
    }

    pub(super) fn summary(problems: &[Problem]) -> Vec<(Option<usize>, &str)> {
        problems.iter().map(|p| (p.line, p.field.as_str())).collect()
    }

    #[test]
    fn reads_typed_fields_with_their_lines() {
        let (raw, problems) = shape_of("heartbeat_seconds: 20\nprobe_timeout_seconds: 2.5\nstreams:\n  - name: 101\n    enabled: false\n    params: {fps: 10.50}\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            raw.heartbeat_seconds,
            Field::Given(Spanned { value: 20, line: 1 })
        );
        assert_eq!(
            raw.probe_timeout_seconds,
            Field::Given(Spanned { value: 2.5, line: 2 })
        );
        let stream = &raw.streams[0];
        assert_eq!((stream.index, stream.line), (0, 4));
        assert_eq!(
            stream.name,
            Field::Given(Spanned {
                value: "101".into(),
                line: 4
            })
        );
        assert_eq!(
            stream.enabled,
            Field::Given(Spanned {
                value: false,
                line: 5
            })
        );
        assert_eq!(stream.params.get("fps").map(String::as_str), Some("10.50"));
    }

    #[test]
    fn reports_every_wrong_type_not_just_the_first() {
        let (raw, problems) = shape_of(
            "heartbeat_seconds: abc\nmax_concurrent_probes: 2.5\nstreams:\n  - name: [a]\n    enabled: yes\n",
        );
        assert_eq!(
            summary(&problems),
            vec![
                (Some(1), "heartbeat_seconds"),
                (Some(2), "max_concurrent_probes"),
                (Some(4), "streams[0].name"),
                (Some(5), "streams[0].enabled"),
            ]
        );
        assert_eq!(
            problems[0].message,
            "expected a whole number of seconds, found the text \"abc\""
        );
        assert_eq!(
            problems[3].message,
            "expected true or false, found the text \"yes\" (write true or false)"
        );
        assert_eq!(raw.heartbeat_seconds, Field::Invalid);
        assert_eq!(raw.streams[0].name, Field::Invalid);
    }

    #[test]
    fn quoted_numbers_get_a_hint() {
        let (_, problems) = shape_of("heartbeat_seconds: \"15\"\n");
        assert_eq!(
            problems[0].message,
            "expected a whole number of seconds, found the text \"15\" (write numbers without quotes)"
        );
    }

    #[test]
    fn unknown_keys_say_what_was_meant() {
        let (_, problems) =
            shape_of("hearbeat_seconds: 1\nurl: x\nlisten: y\nstreams:\n  - name: a\n    urll: z\n    timezone: UTC\nweb:\n  listn: q\n");
        let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
        assert_eq!(
            messages,
            vec![
                "unknown key \"hearbeat_seconds\" at the top level; did you mean \"heartbeat_seconds\"?",
                "unknown key \"url\" at the top level; it belongs to a camera, in an item under `streams:`",
                "unknown key \"listen\" at the top level; it belongs under `web:`",
                "unknown key \"urll\" in streams[0]; did you mean \"url\"?",
                "unknown key \"timezone\" in streams[0]; it is a top-level setting, not a per-camera one",
                "unknown key \"listn\" in web; did you mean \"listen\"?",
            ]
        );
        assert_eq!(problems[3].field, "streams[0].urll");
        assert_eq!(problems[5].field, "web.listn");
    }

    #[test]
    fn duplicate_keys_are_reported_with_the_first_line() {
        let (raw, problems) = shape_of("heartbeat_seconds: 10\nheartbeat_seconds: 20\n");
        assert_eq!(
            problems[0].message,
            "duplicate key \"heartbeat_seconds\" (first given on line 1)"
        );
        assert_eq!(problems[0].line, Some(2));
        assert_eq!(raw.heartbeat_seconds.given().map(|s| s.value), Some(10));
    }

    #[test]
    fn empty_and_null_sections_mean_defaults() {
        let (raw, problems) = shape_of("streams:\nweb:\nheartbeat_seconds:\n");
        assert!(problems.is_empty(), "{problems:?}");
        assert!(raw.streams.is_empty());
        assert_eq!(raw.heartbeat_seconds, Field::Missing);
    }

    #[test]
    fn empty_file_and_scalar_document_are_one_problem() {
        let (_, problems) = shape_of("");
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("the file is empty"));
        let (_, problems) = shape_of("just text\n");
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].message.contains("found the text \"just text\""),
            "{}",
            problems[0].message
        );
    }
}
