//! The cameras: names and ids (printable, short, unique), URLs (checked without quoting them),
//! templates (found, elements installed, placeholders filled), heartbeat and probe timeout against
//! the top-level ones, picture thresholds and expectations.

use super::super::raw::{Field, RawQuality, RawStream, Spanned};
use super::super::{default_probe_timeout, MAX_NAME_CHARS, SUPPORTED_SCHEMES};
use super::super::{suggest, Expectation, QualityConfig, StreamConfig, StreamTransport};
use super::{secs, Check};
use crate::pipeline::{default_template_for_scheme, PipelineError, Template, TemplateLibrary};
use crate::url::CameraUrl;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Longest `quality.picture_check_minutes`: a day.
const MAX_PICTURE_CHECK_MINUTES: f64 = 1440.0;

/// Top-level values a stream falls back on.
pub(super) struct Globals<'a> {
    /// `None` when the top-level heartbeat is wrong (already reported).
    pub(super) heartbeat: Option<Duration>,
    pub(super) raw_timeout: &'a Field<f64>,
    pub(super) explicit_timeout: Option<Duration>,
    /// `alerts:`'s confirmation rules, which a stream's `alerts:` overrides.
    pub(super) alert_rules: crate::alert::confirm::ConfirmRules,
    /// The top-level `max_clock_skew` (default 60 s).
    pub(super) max_clock_skew: Duration,
    /// The top-level `transport:`, for RTSP streams without their own (default `auto`).
    pub(super) transport: StreamTransport,
}

/// Template lookups, once per name: a user template is a file read.
pub(super) struct Templates<'a> {
    pub(super) library: &'a TemplateLibrary,
    pub(super) found: HashMap<String, Result<Template, String>>,
    /// `Template::check` per (template, params): it builds a pipeline, too dear for every stream.
    pub(super) checked: HashMap<(String, BTreeMap<String, String>), Result<(), String>>,
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

impl Check<'_> {
    pub(super) fn stream(
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

        let (transport, detect_template) = self.transport_and_detection(raw, url.as_ref(), globals.transport);
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
        let tls = self.camera_tls(&raw.tls, &raw.path("tls"), url.as_ref());
        let onvif = self.onvif(raw, url.as_ref(), globals.max_clock_skew);
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
            detect_template,
            transport,
            params: raw.params.clone(),
            quality,
            expect,
            alerts: self.rules(&globals.alert_rules, &raw.alerts, &raw.path("alerts.")),
            maintenance: self.maintenance(&raw.maintenance),
            tls,
            onvif,
        })
    }

    /// Thresholds from `base`, overridden by whatever `raw` gives; `prefix` is `""` at the top
    /// level or `streams[N].` for a stream.
    pub(super) fn quality(
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
        if let Field::Given(minutes) = &raw.picture_check_minutes {
            if minutes.value < 0.0 || minutes.value > MAX_PICTURE_CHECK_MINUTES {
                self.push(
                    minutes.line,
                    &format!("{prefix}quality.picture_check_minutes"),
                    format!("must be between 0 and {MAX_PICTURE_CHECK_MINUTES} (a day)"),
                );
            } else {
                quality.picture_check = Duration::from_secs_f64(minutes.value * 60.0);
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
    pub(super) fn duplicates<'r>(
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

#[cfg(test)]
mod tests {
    use crate::config::{parse, QualityConfig};
    use std::path::Path;
    use std::time::Duration;

    #[test]
    fn picture_check_minutes_defaults_inherits_overrides_and_is_bounded() {
        assert_eq!(QualityConfig::default().picture_check, Duration::from_secs(300));
        let text =
            "quality:\n  picture_check_minutes: 10\nstreams:\n  - name: a\n    url: rtsp://127.0.0.1/a\n  \
                    - name: b\n    url: rtsp://127.0.0.1/b\n    quality:\n      picture_check_minutes: 0\n";
        let config = parse(text, Path::new("config.yaml")).expect("a valid config");
        assert_eq!(config.streams[0].quality.picture_check, Duration::from_secs(600));
        assert_eq!(config.streams[1].quality.picture_check, Duration::ZERO);
        let error = parse(
            "quality:\n  picture_check_minutes: -1\n",
            Path::new("config.yaml"),
        )
        .expect_err("negative minutes");
        assert!(
            error.to_string().contains("quality.picture_check_minutes"),
            "{error}"
        );
    }
}
