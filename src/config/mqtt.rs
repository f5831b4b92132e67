//! The typed `mqtt:` section: v2.2's block (broker, ports, transport, credentials, the fleet
//! status topic) plus the per-stream state topics and Home Assistant discovery that v2 adds. The
//! password lives in a [`Secret`], so `Debug` never shows it.

use std::time::Duration;

use super::alerts::Secret;

/// v2.2's defaults, kept so a v2.2 block means what it meant.
pub const DEFAULT_MQTT_PORT: u16 = 1883;
pub const DEFAULT_MQTT_WS_PORT: u16 = 8000;
pub const DEFAULT_MQTT_TLS_PORT: u16 = 8883;
pub const DEFAULT_MQTT_TLS_WS_PORT: u16 = 8884;
pub const DEFAULT_MQTT_STATUS_TOPIC: &str = "stream_monitor/status";
pub const DEFAULT_MQTT_INTERVAL_SECONDS: u64 = 10;
/// v2.2 never published more often than this; a smaller `interval_seconds` is raised to it.
pub const MIN_MQTT_INTERVAL_SECONDS: u64 = 5;
/// The first level of every state topic (`<prefix>/<site>/<stream>/state`).
pub const DEFAULT_MQTT_PREFIX: &str = "streampulse";
/// Where Home Assistant listens for discovery configs (its own default).
pub const DEFAULT_DISCOVERY_PREFIX: &str = "homeassistant";

/// How the client reaches the broker (v2.2's `use_tls` and `use_websocket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttTransport {
    Tcp,
    Tls,
    Websocket,
    TlsWebsocket,
}

/// The `mqtt:` section, present only when `enabled: true`.
#[derive(Debug, Clone, PartialEq)]
pub struct MqttConfig {
    pub host: String,
    /// The port of the chosen transport (`port`, `tls_port`, `ws_port` or `tls_ws_port`).
    pub port: u16,
    pub transport: MqttTransport,
    /// Accept any broker certificate (v2.2's `tls_insecure`).
    pub tls_insecure: bool,
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// `None`: a fresh `streampulse-…` id per connection.
    pub client_id: Option<String>,
    /// v2.2's fleet status JSON: its topic, QoS, retain flag and period.
    pub status_topic: String,
    pub qos: u8,
    pub retain: bool,
    pub interval: Duration,
    /// Per-stream retained state and attributes topics, and the monitor's availability topic.
    pub state_topics: bool,
    pub prefix: String,
    /// Home Assistant MQTT discovery (needs the state topics).
    pub discovery: bool,
    pub discovery_prefix: String,
}

impl MqttConfig {
    /// A URL for logs: scheme, host and port; never the credentials.
    pub fn broker_label(&self) -> String {
        let scheme = match self.transport {
            MqttTransport::Tcp => "mqtt",
            MqttTransport::Tls => "mqtts",
            MqttTransport::Websocket => "ws",
            MqttTransport::TlsWebsocket => "wss",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{host}:{}", self.port)
    }
}
