//! The `mqtt:` section. A v2.2 block is accepted as it was written; what v2 does differently is
//! said in notices (`api_status_url` is ignored, a short interval is raised), not refused.

use std::collections::HashMap;
use std::time::Duration;

use super::super::alerts::Secret;
use super::super::mqtt::{
    MqttConfig, MqttTransport, DEFAULT_DISCOVERY_PREFIX, DEFAULT_MQTT_INTERVAL_SECONDS, DEFAULT_MQTT_PORT,
    DEFAULT_MQTT_PREFIX, DEFAULT_MQTT_STATUS_TOPIC, DEFAULT_MQTT_TLS_PORT, DEFAULT_MQTT_TLS_WS_PORT,
    DEFAULT_MQTT_WS_PORT, MIN_MQTT_INTERVAL_SECONDS,
};
use super::super::raw::{Field, RawMqtt, RawStream, Spanned};
use super::Check;
use crate::alert::mqtt::topics::{stream_segment, topic_problem};

impl Check<'_> {
    /// The section, `None` when it is absent or `enabled` is not true. Its values are checked
    /// either way, so enabling it later brings no surprise.
    pub(super) fn mqtt(&mut self, raw: &RawMqtt) -> Option<MqttConfig> {
        let section_line = raw.line?;
        let enabled = raw.enabled.given().is_some_and(|flag| flag.value);
        let port = |check: &mut Self, field: &Field<i64>, name: &str, default: u16| match field {
            Field::Given(port) => match u16::try_from(port.value) {
                Ok(valid @ 1..) => valid,
                _ => {
                    check.push(
                        port.line,
                        &format!("mqtt.{name}"),
                        "must be a port from 1 to 65535".into(),
                    );
                    default
                }
            },
            _ => default,
        };
        let tcp_port = port(self, &raw.port, "port", DEFAULT_MQTT_PORT);
        let ws_port = port(self, &raw.ws_port, "ws_port", DEFAULT_MQTT_WS_PORT);
        let tls_port = port(self, &raw.tls_port, "tls_port", DEFAULT_MQTT_TLS_PORT);
        let tls_ws_port = port(self, &raw.tls_ws_port, "tls_ws_port", DEFAULT_MQTT_TLS_WS_PORT);
        let flag = |field: &Field<bool>| field.given().is_some_and(|flag| flag.value);
        let (transport, port) = match (flag(&raw.use_tls), flag(&raw.use_websocket)) {
            (false, false) => (MqttTransport::Tcp, tcp_port),
            (true, false) => (MqttTransport::Tls, tls_port),
            (false, true) => (MqttTransport::Websocket, ws_port),
            (true, true) => (MqttTransport::TlsWebsocket, tls_ws_port),
        };
        let host = match &raw.host {
            Field::Given(host) => {
                let text = host.value.trim().trim_start_matches('[').trim_end_matches(']');
                if text.is_empty()
                    || text.contains("://")
                    || text.contains(['/', '@', '?', '#'])
                    || text.contains(char::is_whitespace)
                {
                    self.push(
                        host.line,
                        "mqtt.host",
                        "expected the broker's host name or address alone (ports go in port:, tls_port:, ...)"
                            .into(),
                    );
                }
                Some(text.to_string())
            }
            Field::Missing if enabled => {
                self.push(
                    section_line,
                    "mqtt",
                    "needs `host:`, the broker's address (v2 has no public default broker)".into(),
                );
                None
            }
            _ => None,
        };
        let username = raw.username.given().map(|user| user.value.clone());
        let password = raw
            .password
            .given()
            .map(|password| Secret::new(password.value.clone()));
        if let (None, Some(password)) = (&username, raw.password.given()) {
            self.push(
                password.line,
                "mqtt.password",
                "needs `username:` too (MQTT sends no password without a user name)".into(),
            );
        }
        let client_id = match &raw.client_id {
            Field::Given(id) if id.value.trim().is_empty() => {
                self.push(
                    id.line,
                    "mqtt.client_id",
                    "is empty; leave it out for a generated one".into(),
                );
                None
            }
            Field::Given(id) => Some(id.value.trim().to_string()),
            _ => None,
        };
        let topic = |check: &mut Self, field: &Field<String>, name: &str, default: &str| match field {
            Field::Given(topic) => {
                let text = topic.value.trim();
                if let Some(why) = topic_problem(text) {
                    check.push(topic.line, &format!("mqtt.{name}"), why);
                }
                text.to_string()
            }
            _ => default.to_string(),
        };
        let status_topic = topic(self, &raw.topic, "topic", DEFAULT_MQTT_STATUS_TOPIC);
        let prefix = topic(self, &raw.prefix, "prefix", DEFAULT_MQTT_PREFIX);
        let discovery_prefix = topic(
            self,
            &raw.discovery_prefix,
            "discovery_prefix",
            DEFAULT_DISCOVERY_PREFIX,
        );
        let qos = match &raw.qos {
            Field::Given(qos) => match u8::try_from(qos.value) {
                Ok(valid @ 0..=2) => valid,
                _ => {
                    self.push(qos.line, "mqtt.qos", "must be 0, 1 or 2".into());
                    0
                }
            },
            _ => 0,
        };
        let interval = match &raw.interval_seconds {
            Field::Given(seconds) if seconds.value <= 0 => {
                self.push(
                    seconds.line,
                    "mqtt.interval_seconds",
                    "must be more than 0".into(),
                );
                DEFAULT_MQTT_INTERVAL_SECONDS
            }
            Field::Given(seconds) => match u64::try_from(seconds.value) {
                Ok(value) if value < MIN_MQTT_INTERVAL_SECONDS => {
                    self.notice(
                        seconds.line,
                        "mqtt.interval_seconds",
                        format!("raised to {MIN_MQTT_INTERVAL_SECONDS} s, the shortest period (as in v2.2)"),
                    );
                    MIN_MQTT_INTERVAL_SECONDS
                }
                Ok(value) => value,
                Err(_) => DEFAULT_MQTT_INTERVAL_SECONDS,
            },
            _ => DEFAULT_MQTT_INTERVAL_SECONDS,
        };
        if let Field::Given(url) = &raw.api_status_url {
            self.notice(
                url.line,
                "mqtt.api_status_url",
                "accepted and ignored: the monitor publishes the fleet status itself".into(),
            );
        }
        if flag(&raw.tls_insecure) && flag(&raw.use_tls) {
            let line = raw.tls_insecure.given().map_or(section_line, |flag| flag.line);
            self.notice(
                line,
                "mqtt.tls_insecure",
                "the broker's certificate is not checked at all: anyone on the path can read the password"
                    .into(),
            );
        }
        let state_topics = raw.state_topics.given().is_none_or(|flag| flag.value);
        let discovery = raw.discovery.given().is_none_or(|flag| flag.value);
        if discovery && !state_topics {
            if let Some(off) = raw.state_topics.given() {
                self.push(
                    off.line,
                    "mqtt.state_topics",
                    "Home Assistant discovery reads the state topics: also set `discovery: false`, or leave state topics on"
                        .into(),
                );
            }
        }
        if !enabled {
            return None;
        }
        Some(MqttConfig {
            host: host?,
            port,
            transport,
            tls_insecure: flag(&raw.tls_insecure),
            username,
            password,
            client_id,
            status_topic,
            qos,
            retain: flag(&raw.retain),
            interval: Duration::from_secs(interval),
            state_topics,
            prefix,
            discovery,
            discovery_prefix,
        })
    }

    /// Two stream names that give the same state topic (`a/b` and `a_b`) would share it.
    pub(super) fn mqtt_topic_clashes(&mut self, streams: &[RawStream]) {
        let mut seen: HashMap<String, &Spanned<String>> = HashMap::new();
        for stream in streams {
            let Some(name) = stream.name.given() else {
                continue;
            };
            let segment = stream_segment(name.value.trim());
            match seen.get(&segment) {
                Some(first) if first.value.trim() != name.value.trim() => self.push(
                    name.line,
                    &stream.path("name"),
                    format!(
                        "its MQTT topic level {segment:?} is the same as that of {:?} (line {}); rename one",
                        first.value, first.line
                    ),
                ),
                Some(_) => {}
                None => {
                    seen.insert(segment, name);
                }
            }
        }
    }
}
