//! Stage one: the shape of the file. Walks the marked YAML tree into raw structs whose fields have
//! the right types but unchecked meaning. Every unknown key and wrong type becomes a [`Problem`];
//! a field that is wrong is left [`Field::Invalid`] so stage two neither reports it again as
//! missing nor derives further problems from a guess.

use super::suggest;
use super::tree::{Entry, Node, Value};
use super::Problem;
use std::collections::BTreeMap;

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
    "quality",
    "web",
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
    "params",
    "sample_seconds",
    "quality",
    "expect",
];

pub(crate) const QUALITY_KEYS: &[&str] = &["frozen_max_difference", "black_max_luma", "blank_max_stddev"];

pub(crate) const EXPECT_KEYS: &[&str] = &["width", "height", "min_fps"];

pub(crate) const WEB_KEYS: &[&str] = &[
    "listen",
    "metrics_public",
    "behind_tls",
    "session_idle_minutes",
    "session_max_hours",
    "trusted_proxies",
];

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
    pub quality: RawQuality,
    pub web: RawWeb,
    pub streams: Vec<RawStream>,
}

#[derive(Debug, Default)]
pub(crate) struct RawWeb {
    pub listen: Field<String>,
    pub metrics_public: Field<bool>,
    pub behind_tls: Field<bool>,
    pub session_idle_minutes: Field<f64>,
    pub session_max_hours: Field<f64>,
    /// Each address as written, with its line.
    pub trusted_proxies: Field<Vec<Spanned<String>>>,
}

#[derive(Debug, Default)]
pub(crate) struct RawStream {
    /// Position in `streams`, for field paths.
    pub index: usize,
    /// Line where the item starts, for problems about missing keys.
    pub line: usize,
    pub name: Field<String>,
    pub url: Field<String>,
    pub id: Field<String>,
    pub enabled: Field<bool>,
    pub heartbeat_seconds: Field<i64>,
    pub probe_timeout_seconds: Field<f64>,
    pub pipeline: Field<String>,
    pub params: BTreeMap<String, String>,
    pub sample_seconds: Field<f64>,
    pub quality: RawQuality,
    pub expect: RawExpect,
}

/// Picture-check thresholds (top level, or per stream overriding it).
#[derive(Debug, Default)]
pub(crate) struct RawQuality {
    pub frozen_max_difference: Field<f64>,
    pub black_max_luma: Field<f64>,
    pub blank_max_stddev: Field<f64>,
}

/// What a stream should deliver.
#[derive(Debug, Default)]
pub(crate) struct RawExpect {
    pub width: Field<i64>,
    pub height: Field<i64>,
    pub min_fps: Field<f64>,
}

impl RawStream {
    /// `streams[2]`, or `streams[2].url` with a key.
    pub fn path(&self, key: &str) -> String {
        if key.is_empty() {
            format!("streams[{}]", self.index)
        } else {
            format!("streams[{}].{key}", self.index)
        }
    }
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
            "quality" => raw.quality = shape.quality(value, line, "quality"),
            "web" => raw.web = shape.web(value, line),
            "streams" => raw.streams = shape.streams(value, line),
            _ => {}
        }
    }
    raw
}

struct Shape<'p> {
    problems: &'p mut Vec<Problem>,
}

impl Shape<'_> {
    fn push(&mut self, line: Option<usize>, field: &str, message: String) {
        self.problems.push(Problem {
            line,
            field: field.to_string(),
            message,
        });
    }

    fn type_problem(&mut self, node: &Node, line: usize, field: &str, expected: &str) {
        let mut message = format!("expected {expected}, found {}", node.describe());
        if let Value::Str(text) = &node.value {
            if text.trim().parse::<f64>().is_ok() && expected.contains("number") {
                message.push_str(" (write numbers without quotes)");
            }
            if ["yes", "no", "on", "off"].contains(&text.to_lowercase().as_str()) && expected.contains("true")
            {
                message.push_str(" (write true or false)");
            }
        }
        self.push(Some(line), field, message);
    }

    /// The entries of a mapping whose keys are known, first occurrence only. Reports non-text
    /// keys, duplicates and unknown keys (with a hint) on the way.
    fn known_entries<'n>(&mut self, map: &'n Node, parent: &str, known: &[&str]) -> Vec<(String, &'n Entry)> {
        let Value::Map(entries) = &map.value else {
            return Vec::new();
        };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = Vec::new();
        for entry in entries {
            let line = entry.key.line;
            let Some(key) = entry.key.scalar_text() else {
                self.push(
                    Some(line),
                    parent,
                    format!("keys must be plain words, found {}", entry.key.describe()),
                );
                continue;
            };
            let field = join(parent, &key);
            if let Some(first) = seen.get(&key) {
                self.push(
                    Some(line),
                    &field,
                    format!("duplicate key \"{key}\" (first given on line {first})"),
                );
                continue;
            }
            seen.insert(key.clone(), line);
            if known.contains(&key.as_str()) {
                out.push((key, entry));
            } else {
                let message = unknown_key_message(&key, parent, known);
                self.push(Some(line), &field, message);
            }
        }
        out
    }

    fn text(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> Field<String> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Str(text) => Field::Given(Spanned {
                value: text.clone(),
                line,
            }),
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    /// Text, or a number taken as written: names and ids such as `101`.
    fn label(&mut self, node: &Node, line: usize, field: &str) -> Field<String> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Str(_) | Value::Int(_) | Value::Float(_) => Field::Given(Spanned {
                value: node.text.clone(),
                line,
            }),
            _ => {
                self.type_problem(node, line, field, "a text");
                Field::Invalid
            }
        }
    }

    /// A list of texts (`[a, b]` or one item per line); a single text is a list of one.
    fn text_list(&mut self, node: &Node, line: usize, field: &str) -> Field<Vec<Spanned<String>>> {
        const EXPECTED: &str = "a list of IP addresses such as [127.0.0.1, \"::1\"]";
        match &node.value {
            Value::Null => Field::Missing,
            Value::Str(text) => Field::Given(Spanned {
                value: vec![Spanned {
                    value: text.clone(),
                    line,
                }],
                line,
            }),
            Value::Seq(items) => {
                let mut texts = Vec::new();
                let mut valid = true;
                for (index, item) in items.iter().enumerate() {
                    match &item.value {
                        Value::Str(text) => texts.push(Spanned {
                            value: text.clone(),
                            line: item.line,
                        }),
                        _ => {
                            self.type_problem(item, item.line, &format!("{field}[{index}]"), "an IP address");
                            valid = false;
                        }
                    }
                }
                if valid {
                    Field::Given(Spanned { value: texts, line })
                } else {
                    Field::Invalid
                }
            }
            _ => {
                self.type_problem(node, line, field, EXPECTED);
                Field::Invalid
            }
        }
    }

    fn boolean(&mut self, node: &Node, line: usize, field: &str) -> Field<bool> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Bool(value) => Field::Given(Spanned { value: *value, line }),
            _ => {
                self.type_problem(node, line, field, "true or false");
                Field::Invalid
            }
        }
    }

    fn whole(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> Field<i64> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Int(value) => Field::Given(Spanned { value: *value, line }),
            // `15.0` means 15; the cast is exact because the value is integral and in range.
            Value::Float(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Field::Given(Spanned {
                value: *value as i64,
                line,
            }),
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    fn number(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> Field<f64> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Int(value) => Field::Given(Spanned {
                value: *value as f64,
                line,
            }),
            Value::Float(value) if value.is_finite() => Field::Given(Spanned { value: *value, line }),
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    /// Whether `node` is a mapping to read keys from. Null (the section left empty) is not, and
    /// needs no report; any other type is reported as a problem.
    fn is_mapping(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> bool {
        match &node.value {
            Value::Map(_) => true,
            Value::Null => false,
            _ => {
                self.type_problem(node, line, field, expected);
                false
            }
        }
    }

    fn web(&mut self, node: &Node, line: usize) -> RawWeb {
        let mut web = RawWeb::default();
        if !self.is_mapping(node, line, "web", "a mapping of web settings (listen:, ...)") {
            return web;
        }
        for (key, entry) in self.known_entries(node, "web", WEB_KEYS) {
            let line = entry.key.line;
            let value = &entry.value;
            let field = join("web", &key);
            match key.as_str() {
                "listen" => web.listen = self.text(value, line, &field, "an address such as 127.0.0.1:8000"),
                "metrics_public" => web.metrics_public = self.boolean(value, line, &field),
                "behind_tls" => web.behind_tls = self.boolean(value, line, &field),
                "session_idle_minutes" => {
                    web.session_idle_minutes = self.number(value, line, &field, "a number of minutes")
                }
                "session_max_hours" => {
                    web.session_max_hours = self.number(value, line, &field, "a number of hours")
                }
                "trusted_proxies" => web.trusted_proxies = self.text_list(value, line, &field),
                _ => {}
            }
        }
        web
    }

    fn quality(&mut self, node: &Node, line: usize, parent: &str) -> RawQuality {
        let mut quality = RawQuality::default();
        let expected = "a mapping of picture thresholds (frozen_max_difference:, ...)";
        if !self.is_mapping(node, line, parent, expected) {
            return quality;
        }
        for (key, entry) in self.known_entries(node, parent, QUALITY_KEYS) {
            let (line, value, field) = (entry.key.line, &entry.value, join(parent, &key));
            let number = self.number(value, line, &field, "a number");
            match key.as_str() {
                "frozen_max_difference" => quality.frozen_max_difference = number,
                "black_max_luma" => quality.black_max_luma = number,
                "blank_max_stddev" => quality.blank_max_stddev = number,
                _ => {}
            }
        }
        quality
    }

    fn expect(&mut self, node: &Node, line: usize, parent: &str) -> RawExpect {
        let mut expect = RawExpect::default();
        let expected = "a mapping such as {width: 1920, height: 1080, min_fps: 10}";
        if !self.is_mapping(node, line, parent, expected) {
            return expect;
        }
        for (key, entry) in self.known_entries(node, parent, EXPECT_KEYS) {
            let (line, value, field) = (entry.key.line, &entry.value, join(parent, &key));
            match key.as_str() {
                "width" => expect.width = self.whole(value, line, &field, "a whole number of pixels"),
                "height" => expect.height = self.whole(value, line, &field, "a whole number of pixels"),
                "min_fps" => {
                    expect.min_fps = self.number(value, line, &field, "a number of frames per second")
                }
                _ => {}
            }
        }
        expect
    }

    fn streams(&mut self, node: &Node, line: usize) -> Vec<RawStream> {
        let items = match &node.value {
            // `streams:` with every camera commented out.
            Value::Null => return Vec::new(),
            Value::Seq(items) => items,
            _ => {
                self.type_problem(
                    node,
                    line,
                    "streams",
                    "a list of cameras, each item starting with `- name:`",
                );
                return Vec::new();
            }
        };
        let mut streams = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let mut stream = RawStream {
                index,
                line: item.line,
                ..RawStream::default()
            };
            if !matches!(item.value, Value::Map(_)) {
                let field = stream.path("");
                self.type_problem(item, item.line, &field, "a camera (`name:` and `url:` lines)");
                continue;
            }
            let parent = stream.path("");
            for (key, entry) in self.known_entries(item, &parent, STREAM_KEYS) {
                let line = entry.key.line;
                let value = &entry.value;
                let field = stream.path(&key);
                match key.as_str() {
                    "name" => stream.name = self.label(value, line, &field),
                    "url" => stream.url = self.text(value, line, &field, "a URL such as rtsp://host/path"),
                    "id" => stream.id = self.label(value, line, &field),
                    "enabled" => stream.enabled = self.boolean(value, line, &field),
                    "heartbeat_seconds" => {
                        stream.heartbeat_seconds =
                            self.whole(value, line, &field, "a whole number of seconds")
                    }
                    "probe_timeout_seconds" => {
                        stream.probe_timeout_seconds = self.number(value, line, &field, "a number of seconds")
                    }
                    "pipeline" => stream.pipeline = self.text(value, line, &field, "a template name"),
                    "params" => stream.params = self.params(value, line, &field),
                    "sample_seconds" => {
                        stream.sample_seconds = self.number(value, line, &field, "a number of seconds")
                    }
                    "quality" => stream.quality = self.quality(value, line, &field),
                    "expect" => stream.expect = self.expect(value, line, &field),
                    _ => {}
                }
            }
            streams.push(stream);
        }
        streams
    }

    /// Template parameters: names to scalars, each kept as written.
    fn params(&mut self, node: &Node, line: usize, field: &str) -> BTreeMap<String, String> {
        let mut params = BTreeMap::new();
        let Value::Map(entries) = &node.value else {
            if node.value != Value::Null {
                self.type_problem(node, line, field, "a mapping of template parameters");
            }
            return params;
        };
        for entry in entries {
            let line = entry.key.line;
            let Some(name) = entry.key.scalar_text() else {
                self.push(
                    Some(line),
                    field,
                    format!("keys must be plain words, found {}", entry.key.describe()),
                );
                continue;
            };
            let param_field = join(field, &name);
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                self.push(
                    Some(line),
                    &param_field,
                    "parameter names use only letters, digits and _ (they fill {name} in the template)"
                        .to_string(),
                );
                continue;
            }
            if params.contains_key(&name) {
                self.push(
                    Some(line),
                    &param_field,
                    format!("duplicate parameter \"{name}\""),
                );
                continue;
            }
            match entry.value.scalar_text() {
                Some(value) => {
                    params.insert(name, value);
                }
                None => self.type_problem(&entry.value, line, &param_field, "a text or number"),
            }
        }
        params
    }
}

fn join(parent: &str, key: &str) -> String {
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

    fn shape_of(text: &str) -> (RawConfig, Vec<Problem>) {
        let root = tree::parse(text).unwrap();
        let mut problems = Vec::new();
        let raw = check(root.as_ref(), &mut problems);
        (raw, problems)
    }

    fn summary(problems: &[Problem]) -> Vec<(Option<usize>, &str)> {
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
    fn streams_must_be_a_list_of_mappings() {
        let (_, problems) = shape_of("streams:\n  cam: rtsp://h/\n");
        assert_eq!(summary(&problems), vec![(Some(1), "streams")]);
        let (_, problems) = shape_of("streams:\n  - rtsp://u:secret@h/\n");
        assert_eq!(summary(&problems), vec![(Some(2), "streams[0]")]);
        assert!(!problems[0].message.contains("secret"), "{}", problems[0].message);
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

    #[test]
    fn params_take_scalars_only() {
        let (raw, problems) = shape_of("streams:\n  - name: a\n    params:\n      device: /dev/video0\n      bad key: 1\n      nested: [1]\n      empty:\n");
        assert_eq!(
            summary(&problems),
            vec![
                (Some(5), "streams[0].params.bad key"),
                (Some(6), "streams[0].params.nested"),
                (Some(7), "streams[0].params.empty"),
            ]
        );
        assert_eq!(raw.streams[0].params.len(), 1);
    }
}
