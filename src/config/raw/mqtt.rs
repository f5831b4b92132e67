//! The `mqtt:` section: v2.2's keys exactly as v2.2 wrote them, plus the state topic and Home
//! Assistant discovery switches v2 adds.

use super::super::tree::Node;
use super::values::Shape;
use super::{join, Field};

pub(crate) const MQTT_KEYS: &[&str] = &[
    "enabled",
    "host",
    "port",
    "ws_port",
    "tls_port",
    "tls_ws_port",
    "use_tls",
    "use_websocket",
    "username",
    "password",
    "client_id",
    "topic",
    "qos",
    "retain",
    "interval_seconds",
    "api_status_url",
    "tls_insecure",
    "state_topics",
    "prefix",
    "discovery",
    "discovery_prefix",
];

#[derive(Debug, Default)]
pub(crate) struct RawMqtt {
    /// The line of `mqtt:` itself, when the section is there.
    pub line: Option<usize>,
    pub enabled: Field<bool>,
    pub host: Field<String>,
    pub port: Field<i64>,
    pub ws_port: Field<i64>,
    pub tls_port: Field<i64>,
    pub tls_ws_port: Field<i64>,
    pub use_tls: Field<bool>,
    pub use_websocket: Field<bool>,
    pub username: Field<String>,
    pub password: Field<String>,
    pub client_id: Field<String>,
    pub topic: Field<String>,
    pub qos: Field<i64>,
    pub retain: Field<bool>,
    pub interval_seconds: Field<i64>,
    pub api_status_url: Field<String>,
    pub tls_insecure: Field<bool>,
    pub state_topics: Field<bool>,
    pub prefix: Field<String>,
    pub discovery: Field<bool>,
    pub discovery_prefix: Field<String>,
}

impl Shape<'_> {
    pub(super) fn mqtt(&mut self, node: &Node, line: usize) -> RawMqtt {
        let mut mqtt = RawMqtt {
            line: Some(line),
            ..RawMqtt::default()
        };
        if !self.is_mapping(
            node,
            line,
            "mqtt",
            "a mapping of MQTT settings (enabled:, host:, ...)",
        ) {
            return mqtt;
        }
        for (key, entry) in self.known_entries(node, "mqtt", MQTT_KEYS) {
            let line = entry.key.line;
            let value = &entry.value;
            let field = join("mqtt", &key);
            let port = |shape: &mut Self| shape.whole(value, line, &field, "a port number");
            match key.as_str() {
                "enabled" => mqtt.enabled = self.boolean(value, line, &field),
                "host" => mqtt.host = self.text(value, line, &field, "the broker's host name or address"),
                "port" => mqtt.port = port(self),
                "ws_port" => mqtt.ws_port = port(self),
                "tls_port" => mqtt.tls_port = port(self),
                "tls_ws_port" => mqtt.tls_ws_port = port(self),
                "use_tls" => mqtt.use_tls = self.boolean(value, line, &field),
                "use_websocket" => mqtt.use_websocket = self.boolean(value, line, &field),
                // Numbers are taken as written: a password may well be `1234`.
                "username" => mqtt.username = self.label(value, line, &field),
                "password" => mqtt.password = self.label(value, line, &field),
                "client_id" => mqtt.client_id = self.label(value, line, &field),
                "topic" => mqtt.topic = self.text(value, line, &field, "an MQTT topic"),
                "qos" => mqtt.qos = self.whole(value, line, &field, "0, 1 or 2"),
                "retain" => mqtt.retain = self.boolean(value, line, &field),
                "interval_seconds" => {
                    mqtt.interval_seconds = self.whole(value, line, &field, "a whole number of seconds")
                }
                "api_status_url" => mqtt.api_status_url = self.text(value, line, &field, "a URL"),
                "tls_insecure" => mqtt.tls_insecure = self.boolean(value, line, &field),
                "state_topics" => mqtt.state_topics = self.boolean(value, line, &field),
                "prefix" => mqtt.prefix = self.text(value, line, &field, "an MQTT topic prefix"),
                "discovery" => mqtt.discovery = self.boolean(value, line, &field),
                "discovery_prefix" => {
                    mqtt.discovery_prefix = self.text(value, line, &field, "an MQTT topic prefix")
                }
                _ => {}
            }
        }
        mqtt
    }
}
