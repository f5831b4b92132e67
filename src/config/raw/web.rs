//! The `web:` section: listener, metrics access, TLS, sessions, trusted proxies, the live view.

use super::super::tree::{Node, Value};
use super::values::Shape;
use super::{join, Field, Spanned, METRICS_KEYS, TLS_KEYS, WEB_KEYS};

/// What `web.tls:` names (`self_signed`, or `{cert: FILE, key: FILE}`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RawTls {
    SelfSigned,
    /// Each file as written, with its line; either may be missing (reported in stage two).
    Files {
        cert: Field<String>,
        key: Field<String>,
    },
}

const TLS_EXPECTED: &str = "`self_signed` or a mapping {cert: FILE, key: FILE} of PEM files";

#[derive(Debug, Default)]
pub(crate) struct RawWeb {
    pub listen: Field<String>,
    pub metrics_public: Field<bool>,
    pub public_status: Field<bool>,
    pub public_pictures: Field<bool>,
    pub behind_tls: Field<bool>,
    pub session_idle_minutes: Field<f64>,
    pub session_max_hours: Field<f64>,
    /// Each address as written, with its line.
    pub trusted_proxies: Field<Vec<Spanned<String>>>,
    pub tls: Field<RawTls>,
    pub max_connections: Field<i64>,
    pub max_connections_per_client: Field<i64>,
    pub header_timeout_seconds: Field<f64>,
    pub live_seconds: Field<i64>,
    pub live_max_cameras: Field<i64>,
    pub live_fps: Field<i64>,
}

/// The `metrics:` section: what `/metrics` (served by the web process) adds.
#[derive(Debug, Default)]
pub(crate) struct RawMetrics {
    pub v1_names: Field<bool>,
}

impl Shape<'_> {
    pub(super) fn metrics(&mut self, node: &Node, line: usize) -> RawMetrics {
        let mut metrics = RawMetrics::default();
        if !self.is_mapping(node, line, "metrics", "a mapping of metrics settings (v1_names:)") {
            return metrics;
        }
        for (key, entry) in self.known_entries(node, "metrics", METRICS_KEYS) {
            if key == "v1_names" {
                metrics.v1_names = self.boolean(&entry.value, entry.key.line, &join("metrics", &key));
            }
        }
        metrics
    }

    pub(super) fn web(&mut self, node: &Node, line: usize) -> RawWeb {
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
                "public_status" => web.public_status = self.boolean(value, line, &field),
                "public_pictures" => web.public_pictures = self.boolean(value, line, &field),
                "behind_tls" => web.behind_tls = self.boolean(value, line, &field),
                "session_idle_minutes" => {
                    web.session_idle_minutes = self.number(value, line, &field, "a number of minutes")
                }
                "session_max_hours" => {
                    web.session_max_hours = self.number(value, line, &field, "a number of hours")
                }
                "trusted_proxies" => {
                    web.trusted_proxies = self.text_list(
                        value,
                        line,
                        &field,
                        "a list of IP addresses such as [127.0.0.1, \"::1\"]",
                        "an IP address",
                    )
                }
                "tls" => web.tls = self.tls(value, line, &field),
                "max_connections" => {
                    web.max_connections = self.whole(value, line, &field, "a whole number of connections")
                }
                "max_connections_per_client" => {
                    web.max_connections_per_client =
                        self.whole(value, line, &field, "a whole number of connections")
                }
                "header_timeout_seconds" => {
                    web.header_timeout_seconds = self.number(value, line, &field, "a number of seconds")
                }
                "live_seconds" => {
                    web.live_seconds = self.whole(value, line, &field, "a whole number of seconds")
                }
                "live_max_cameras" => {
                    web.live_max_cameras = self.whole(value, line, &field, "a whole number of cameras")
                }
                "live_fps" => {
                    web.live_fps = self.whole(value, line, &field, "a whole number of frames a second")
                }
                _ => {}
            }
        }
        web
    }

    fn tls(&mut self, node: &Node, line: usize, field: &str) -> Field<RawTls> {
        let raw = match &node.value {
            Value::Null => return Field::Missing,
            Value::Str(text) if text.trim() == "self_signed" => RawTls::SelfSigned,
            Value::Map(_) => {
                let mut cert = Field::Missing;
                let mut key = Field::Missing;
                for (name, entry) in self.known_entries(node, field, TLS_KEYS) {
                    let entry_line = entry.key.line;
                    let entry_field = join(field, &name);
                    let read = self.text(&entry.value, entry_line, &entry_field, "a PEM file path");
                    if name == "cert" {
                        cert = read;
                    } else {
                        key = read;
                    }
                }
                RawTls::Files { cert, key }
            }
            _ => {
                self.type_problem(node, line, field, TLS_EXPECTED);
                return Field::Invalid;
            }
        };
        Field::Given(Spanned { value: raw, line })
    }
}
