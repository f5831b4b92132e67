//! What the monitor publishes, as pure functions of the config and the fleet view: topic names,
//! the retained state and attributes of each stream, and Home Assistant's discovery configs.
//! Unit-tested without a broker.
//!
//! Topics: `<prefix>[/<site>]/<stream>/state` (`online` / `offline` / `degraded`),
//! `<prefix>[/<site>]/<stream>/attributes` (JSON), `<prefix>[/<site>]/availability` (the monitor,
//! its last will `offline`), and `<discovery_prefix>/<component>/<node>/<object>/config`.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::clock::iso_utc;
use crate::config::{Config, MqttConfig, StreamConfig};
use crate::fleet::StreamSummary;
use crate::heartbeat::Health;

/// The monitor's availability payloads (also Home Assistant's defaults).
pub const AVAILABLE: &str = "online";
pub const NOT_AVAILABLE: &str = "offline";

/// Why `topic` cannot be published to, if it cannot: empty, wildcards, NUL, or a leading or
/// trailing `/` (an empty level nobody means).
pub fn topic_problem(topic: &str) -> Option<String> {
    if topic.is_empty() {
        return Some("is empty; give a topic such as stream_monitor/status".to_string());
    }
    if topic.contains(['+', '#']) {
        return Some("must not contain the wildcards + or # (they are for subscribing)".to_string());
    }
    if topic.contains('\0') {
        return Some("must not contain a NUL character".to_string());
    }
    if topic.starts_with('/') || topic.ends_with('/') || topic.contains("//") {
        return Some("has an empty level (a leading, trailing or doubled /)".to_string());
    }
    if topic.len() > 1024 {
        return Some("is too long".to_string());
    }
    None
}

/// A stream name as one topic level: `/`, `+`, `#` and control characters become `_` (a name
/// may contain them; a topic level may not).
pub fn stream_segment(name: &str) -> String {
    let segment: String = name
        .chars()
        .map(|c| {
            if matches!(c, '/' | '+' | '#') || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    if segment.is_empty() {
        "_".to_string()
    } else {
        segment
    }
}

/// `[a-z0-9_]` only, as Home Assistant's node and object ids must be.
fn slug(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}

/// The topics and ids of one installation.
#[derive(Debug, Clone, PartialEq)]
pub struct Topics {
    /// `<prefix>` or `<prefix>/<site>`.
    base: String,
    discovery_prefix: String,
    /// Home Assistant's node id: `streampulse` or `streampulse_<site>`.
    node: String,
}

impl Topics {
    pub fn new(mqtt: &MqttConfig, site: Option<&str>) -> Topics {
        let (base, node) = match site {
            Some(site) => (
                format!("{}/{}", mqtt.prefix, stream_segment(site)),
                match slug(site).as_str() {
                    "" => "streampulse".to_string(),
                    site => format!("streampulse_{site}"),
                },
            ),
            None => (mqtt.prefix.clone(), "streampulse".to_string()),
        };
        Topics {
            base,
            discovery_prefix: mqtt.discovery_prefix.clone(),
            node,
        }
    }

    pub fn availability(&self) -> String {
        format!("{}/availability", self.base)
    }

    pub fn state(&self, stream: &str) -> String {
        format!("{}/{}/state", self.base, stream_segment(stream))
    }

    pub fn attributes(&self, stream: &str) -> String {
        format!("{}/{}/attributes", self.base, stream_segment(stream))
    }

    /// Every discovery config of this installation, whatever the component and object.
    pub fn discovery_filter(&self) -> String {
        format!("{}/+/{}/+/config", self.discovery_prefix, self.node)
    }

    /// Whether `topic` is one of this installation's discovery configs.
    pub fn is_own_discovery(&self, topic: &str) -> bool {
        let levels: Vec<&str> = topic.split('/').collect();
        let prefix_levels = self.discovery_prefix.split('/').count();
        levels.len() == prefix_levels + 4
            && topic.starts_with(&format!("{}/", self.discovery_prefix))
            && levels[prefix_levels + 1] == self.node
            && levels[prefix_levels + 3] == "config"
    }

    /// The device id of a stream: its slug and a hash of its `id:` (else its name), so names
    /// that slug alike stay apart and a renamed stream with an `id:` stays the same device.
    fn device_id(&self, stream: &StreamConfig) -> String {
        let key = stream.id.as_deref().unwrap_or(&stream.name);
        let digest = Sha256::digest(key.as_bytes());
        let hash: String = digest.iter().take(4).map(|byte| format!("{byte:02x}")).collect();
        match slug(key).as_str() {
            "" => format!("camera_{hash}"),
            slugged => format!("{slugged}_{hash}"),
        }
    }
}

/// The retained state of a stream from its confirmed state; `None` until one is confirmed.
pub fn state_payload(summary: &StreamSummary) -> Option<&'static str> {
    Some(match summary.status.as_ref()?.confirmed? {
        Health::Up => "online",
        Health::Degraded => "degraded",
        Health::Down => "offline",
    })
}

/// The attributes topic's JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attributes {
    pub state: String,
    /// The latest probe's reason code (`refused`, `timeout`, `frozen`, ...), `null` when fine.
    pub reason: Option<String>,
    pub message: String,
    pub latency_ms: Option<u64>,
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// `640x360`, when known.
    pub size: Option<String>,
    /// When the confirmed state began, and the latest probe (RFC 3339 UTC).
    pub since: Option<String>,
    pub last_probe: Option<String>,
}

pub fn attributes(summary: &StreamSummary, state: &str) -> Attributes {
    let status = summary.status.as_ref();
    let width = status.and_then(|s| s.width);
    let height = status.and_then(|s| s.height);
    Attributes {
        state: state.to_string(),
        reason: status
            .and_then(|s| s.reason)
            .map(|reason| reason.code().to_string()),
        message: summary.message.clone(),
        latency_ms: status.and_then(|s| s.last_latency_ms),
        codec: status.and_then(|s| s.codec.clone()),
        width,
        height,
        size: width.zip(height).map(|(w, h)| format!("{w}x{h}")),
        since: status.and_then(|s| s.since_ms).map(iso_utc),
        last_probe: status.and_then(|s| s.last_ts_ms).map(iso_utc),
    }
}

/// The fields of a discovery config read back from the broker, to clear what it points to.
#[derive(Debug, Deserialize)]
pub struct SeenConfig {
    pub state_topic: Option<String>,
    pub json_attributes_topic: Option<String>,
}

/// One stream's three Home Assistant entities: (config topic, config JSON) for a connectivity
/// `binary_sensor` and the latency and reason `sensor`s, grouped as one device.
pub fn discovery(topics: &Topics, config: &Config, stream: &StreamConfig) -> Vec<(String, String)> {
    let device_id = topics.device_id(stream);
    let unique = |entity: &str| format!("{}_{device_id}_{entity}", topics.node);
    let config_topic = |component: &str, entity: &str| {
        format!(
            "{}/{component}/{}/{device_id}_{entity}/config",
            topics.discovery_prefix, topics.node
        )
    };
    let device_name = match &config.site {
        Some(site) => format!("{} ({site})", stream.name),
        None => stream.name.clone(),
    };
    let mut device = json!({
        "identifiers": [format!("{}_{device_id}", topics.node)],
        "name": device_name,
        "manufacturer": "StreamPulse",
        "model": format!("Camera ({})", stream.pipeline),
    });
    if let Some(base) = &config.alerts.public_url {
        device["configuration_url"] = Value::String(format!(
            "{}{}",
            base.trim_end_matches('/'),
            crate::web::links::stream_href(&stream.name)
        ));
    }
    let common = |name: &str, entity: &str| {
        json!({
            "name": name,
            "unique_id": unique(entity),
            "availability_topic": topics.availability(),
            "payload_available": AVAILABLE,
            "payload_not_available": NOT_AVAILABLE,
            "device": device.clone(),
            "origin": {
                "name": "StreamPulse",
                "sw_version": env!("CARGO_PKG_VERSION"),
            },
        })
    };
    let mut connectivity = common("Video", "connectivity");
    connectivity["device_class"] = json!("connectivity");
    connectivity["state_topic"] = json!(topics.state(&stream.name));
    // Degraded still delivers video: connected, with the reason saying what is wrong.
    connectivity["value_template"] = json!("{{ 'OFF' if value == 'offline' else 'ON' }}");
    connectivity["payload_on"] = json!("ON");
    connectivity["payload_off"] = json!("OFF");
    connectivity["json_attributes_topic"] = json!(topics.attributes(&stream.name));
    let mut latency = common("Latency", "latency");
    latency["device_class"] = json!("duration");
    latency["unit_of_measurement"] = json!("ms");
    latency["state_class"] = json!("measurement");
    latency["state_topic"] = json!(topics.attributes(&stream.name));
    // `None` (a down probe has no latency) makes the sensor unknown.
    latency["value_template"] = json!("{{ value_json.latency_ms }}");
    let mut reason = common("Reason", "reason");
    reason["icon"] = json!("mdi:video-off-outline");
    reason["state_topic"] = json!(topics.attributes(&stream.name));
    reason["value_template"] = json!("{{ value_json.reason or 'ok' }}");
    vec![
        (
            config_topic("binary_sensor", "connectivity"),
            connectivity.to_string(),
        ),
        (config_topic("sensor", "latency"), latency.to_string()),
        (config_topic("sensor", "reason"), reason.to_string()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topic_levels_and_slugs() {
        assert_eq!(stream_segment("Gate/Front #2"), "Gate_Front _2");
        assert_eq!(stream_segment(""), "_");
        assert_eq!(slug("Lab, Building 2"), "lab_building_2");
        assert_eq!(topic_problem("stream_monitor/status"), None);
        assert!(topic_problem("a/+/b").is_some());
        assert!(topic_problem("/a").is_some());
        assert!(topic_problem("a//b").is_some());
        assert!(topic_problem("").is_some());
    }

    proptest! {
        #[test]
        fn a_stream_segment_is_always_one_publishable_level(name in "\\PC{0,40}") {
            let segment = stream_segment(&name);
            prop_assert!(!segment.is_empty());
            prop_assert!(!segment.contains(['/', '+', '#', '\0']));
            prop_assert_eq!(topic_problem(&format!("p/{segment}/state")), None);
        }

        #[test]
        fn topic_problem_never_panics_and_refuses_wildcards(topic in "\\PC{0,60}") {
            let problem = topic_problem(&topic);
            if topic.contains(['+', '#']) || topic.is_empty() {
                prop_assert!(problem.is_some());
            }
        }

        #[test]
        fn slugs_are_home_assistant_ids(text in "\\PC{0,40}") {
            let slugged = slug(&text);
            prop_assert!(slugged.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'));
        }
    }
}
