//! The `streams:` list: each camera's keys, its picture thresholds (`quality:`, also read at the
//! top level), its expectations (`expect:`) and its template parameters (`params:`).

use super::super::tree::{Node, Value};
use super::values::Shape;
use super::{join, Field, EXPECT_KEYS, QUALITY_KEYS, STREAM_KEYS};
use std::collections::BTreeMap;

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
    pub transport: Field<String>,
    pub params: BTreeMap<String, String>,
    pub sample_seconds: Field<f64>,
    pub quality: RawQuality,
    pub expect: RawExpect,
    pub alerts: super::RawRules,
    pub maintenance: Vec<super::RawWindow>,
    pub tls: super::RawCameraTls,
    pub onvif: super::RawOnvif,
    /// Seconds.
    pub max_clock_skew: Field<f64>,
}

/// Picture-check thresholds (top level, or per stream overriding it).
#[derive(Debug, Default)]
pub(crate) struct RawQuality {
    pub frozen_max_difference: Field<f64>,
    pub black_max_luma: Field<f64>,
    pub blank_max_stddev: Field<f64>,
    pub picture_check_minutes: Field<f64>,
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

impl Shape<'_> {
    pub(super) fn quality(&mut self, node: &Node, line: usize, parent: &str) -> RawQuality {
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
                "picture_check_minutes" => quality.picture_check_minutes = number,
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

    pub(super) fn streams(&mut self, node: &Node, line: usize) -> Vec<RawStream> {
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
                    "transport" => stream.transport = self.text(value, line, &field, "udp, tcp or auto"),
                    "params" => stream.params = self.params(value, line, &field),
                    "sample_seconds" => {
                        stream.sample_seconds = self.number(value, line, &field, "a number of seconds")
                    }
                    "quality" => stream.quality = self.quality(value, line, &field),
                    "expect" => stream.expect = self.expect(value, line, &field),
                    "alerts" => stream.alerts = self.stream_alert_rules(value, line, &field),
                    "maintenance" => stream.maintenance = self.maintenance(value, line, &field),
                    "tls" => stream.tls = self.camera_tls(value, line, &field),
                    "onvif" => stream.onvif = self.onvif(value, line, &field),
                    "max_clock_skew" => stream.max_clock_skew = self.clock_skew(value, line, &field),
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

#[cfg(test)]
mod tests {
    use super::super::tests::{shape_of, summary};

    #[test]
    fn streams_must_be_a_list_of_mappings() {
        let (_, problems) = shape_of("streams:\n  cam: rtsp://h/\n");
        assert_eq!(summary(&problems), vec![(Some(1), "streams")]);
        let (_, problems) = shape_of("streams:\n  - rtsp://u:secret@h/\n");
        assert_eq!(summary(&problems), vec![(Some(2), "streams[0]")]);
        assert!(!problems[0].message.contains("secret"), "{}", problems[0].message);
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
