//! MQTT against Debian's real `mosquitto` on loopback: a camera that dies gives exactly one
//! retained `offline`, Home Assistant discovery payloads (keys and topics), a broker restarted
//! mid-outage still gets the recovery, a camera removed from the config leaves Home Assistant,
//! v2.2's block publishes the fleet status JSON with a password that is never printed, TLS, and
//! a camera quiet in its maintenance window tells nothing.

mod mqtt {
    pub mod broker;
}
mod common;

use std::path::Path;
use std::time::Duration;

use common::{run, RunningChild, TestConfig, TestDir, TestStream};
use mqtt::broker::{Broker, Watcher};
use serde_json::Value;
use streampulse::config::{self, ConfigError, MqttTransport};
use streampulse::demo::{closed_port, RtspTestServer, SntpTestServer};
use streampulse::heartbeat::Health;

const WAIT: Duration = Duration::from_secs(30);

fn monitor_args<'a>(config: &'a Path, db: &'a Path) -> [&'a str; 5] {
    [
        "monitor",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--db",
        db.to_str().expect("UTF-8 path"),
    ]
}

fn discovery_configs(watcher: &Watcher) -> Vec<(String, Value)> {
    let mut latest: std::collections::BTreeMap<String, String> = Default::default();
    for message in watcher.messages() {
        if message.topic.starts_with("homeassistant/") && message.topic.ends_with("/config") {
            latest.insert(message.topic, message.payload);
        }
    }
    latest
        .into_iter()
        .filter(|(_, payload)| !payload.is_empty())
        .map(|(topic, payload)| {
            let json = serde_json::from_str(&payload).unwrap_or_else(|e| panic!("{topic}: {e}: {payload}"));
            (topic, json)
        })
        .collect()
}

fn is_ha_id(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Home Assistant's MQTT discovery rules for what we send: the topic's shape, the keys each
/// component needs, one device per camera, every entity on the monitor's availability.
fn check_discovery(configs: &[(String, Value)], stream: &str, device_name: &str) -> Vec<String> {
    let state = format!("streampulse/lab/{stream}/state");
    let attributes = format!("streampulse/lab/{stream}/attributes");
    let mine: Vec<&(String, Value)> = configs
        .iter()
        .filter(|(_, json)| json["device"]["name"] == device_name)
        .collect();
    assert_eq!(mine.len(), 3, "three entities for {stream}: {configs:#?}");
    let mut components = Vec::new();
    for (topic, json) in &mine {
        let levels: Vec<&str> = topic.split('/').collect();
        assert_eq!(levels.len(), 5, "{topic}");
        assert_eq!(levels[0], "homeassistant");
        assert_eq!(levels[2], "streampulse_lab", "node id");
        assert!(is_ha_id(levels[3]), "object id {topic}");
        assert_eq!(levels[4], "config");
        components.push(levels[1].to_string());
        assert!(json["unique_id"].as_str().is_some_and(is_ha_id), "{json}");
        assert!(json["name"].is_string(), "{json}");
        assert_eq!(json["availability_topic"], "streampulse/lab/availability");
        assert_eq!(json["payload_available"], "online");
        assert_eq!(json["payload_not_available"], "offline");
        assert_eq!(json["device"]["manufacturer"], "StreamPulse");
        assert_eq!(json["device"], mine[0].1["device"], "one device per camera");
        assert!(json["device"]["identifiers"][0].as_str().is_some_and(is_ha_id));
        assert!(json["origin"]["name"].is_string(), "{json}");
        match levels[1] {
            "binary_sensor" => {
                assert_eq!(json["device_class"], "connectivity");
                assert_eq!(json["state_topic"], state.as_str());
                assert_eq!(json["json_attributes_topic"], attributes.as_str());
                assert_eq!(
                    json["value_template"],
                    "{{ 'OFF' if value == 'offline' else 'ON' }}"
                );
                assert_eq!(
                    (json["payload_on"].as_str(), json["payload_off"].as_str()),
                    (Some("ON"), Some("OFF"))
                );
            }
            "sensor" => {
                assert_eq!(json["state_topic"], attributes.as_str());
                assert!(json["value_template"]
                    .as_str()
                    .is_some_and(|t| t.contains("value_json.")));
            }
            other => panic!("unexpected component {other}"),
        }
    }
    let unique: std::collections::HashSet<&str> = mine
        .iter()
        .filter_map(|(_, json)| json["unique_id"].as_str())
        .collect();
    assert_eq!(unique.len(), 3, "unique ids differ");
    components.sort();
    assert_eq!(components, ["binary_sensor", "sensor", "sensor"]);
    let latency = mine
        .iter()
        .find(|(_, json)| json["unit_of_measurement"] == "ms")
        .expect("a latency sensor");
    assert_eq!(latency.1["device_class"], "duration");
    mine.iter().map(|(topic, _)| topic.clone()).collect()
}

#[test]
fn a_dead_camera_is_one_retained_offline_and_home_assistant_follows_across_a_broker_restart() {
    let mut rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let mut broker = Broker::start();
    let watcher = Watcher::connect(broker.port);
    let dir = TestDir::new();
    let base = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Lobby", &rtsp.url("/test")));
    let with_yard = base.clone().stream(TestStream::new(
        "Yard",
        &format!("rtsp://127.0.0.1:{}/x", closed_port()),
    ));
    let mqtt_yaml = format!(
        "site: lab\nalerts:\n  down_after: 2\n  up_after: 1\nmqtt:\n  enabled: true\n  host: 127.0.0.1\n  port: {}\n",
        broker.port
    );
    let config_path = dir.write_config_text(&format!("{}{mqtt_yaml}", with_yard.to_yaml()));
    let db = dir.db_path();
    let args = monitor_args(&config_path, &db);
    let mut monitor = RunningChild::spawn(&args);

    let lobby = "streampulse/lab/Lobby/state";
    let yard = "streampulse/lab/Yard/state";
    assert!(
        watcher.wait_latest(lobby, "online", WAIT),
        "{:#?}",
        watcher.messages()
    );
    assert!(
        watcher.wait_latest(yard, "offline", WAIT),
        "a camera first seen down"
    );
    assert_eq!(
        watcher.latest("streampulse/lab/availability").as_deref(),
        Some("online")
    );
    let attributes: Value = serde_json::from_str(
        &watcher
            .latest("streampulse/lab/Lobby/attributes")
            .expect("attributes"),
    )
    .expect("JSON attributes");
    assert_eq!(attributes["state"], "online");
    assert!(attributes["latency_ms"].is_u64(), "{attributes}");
    assert!(
        attributes["codec"].is_string() && attributes["size"].is_string(),
        "{attributes}"
    );
    assert!(attributes["reason"].is_null(), "{attributes}");

    assert!(watcher.wait(WAIT, |messages| discovery_count(messages) >= 6));
    let configs = discovery_configs(&watcher);
    check_discovery(&configs, "Lobby", "Lobby (lab)");
    let yard_configs = check_discovery(&configs, "Yard", "Yard (lab)");

    // The camera dies: offline once confirmed (two failed probes), then nothing more.
    rtsp.stop();
    assert!(
        watcher.wait_latest(lobby, "offline", WAIT),
        "{:#?}",
        watcher.on(lobby)
    );
    let beats = common::heartbeats(&db, "Lobby");
    let trailing_downs = beats
        .iter()
        .rev()
        .take_while(|beat| beat.outcome.health == Health::Down)
        .count();
    assert!(
        trailing_downs >= 2,
        "confirmed after down_after = 2 probes, not before: {trailing_downs}"
    );
    let seen = beats.len();
    common::wait_for(WAIT, || {
        (common::heartbeats(&db, "Lobby").len() >= seen + 3).then_some(())
    })
    .expect("more failed probes");
    let offline: Vec<_> = watcher
        .on(lobby)
        .into_iter()
        .filter(|m| m.payload == "offline")
        .collect();
    assert_eq!(offline.len(), 1, "{:#?}", watcher.on(lobby));
    let attributes: Value = serde_json::from_str(
        &watcher
            .latest("streampulse/lab/Lobby/attributes")
            .expect("attributes"),
    )
    .expect("JSON attributes");
    assert_eq!(attributes["state"], "offline");
    assert!(attributes["reason"].is_string(), "{attributes}");
    let late = Watcher::connect(broker.port);
    assert!(late.wait(WAIT, |messages| messages
        .iter()
        .any(|m| m.topic == lobby && m.retain && m.payload == "offline")));
    drop(late);

    // The broker restarts mid-outage (forgetting everything); the camera comes back.
    drop(watcher);
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart();
    rtsp.restart().expect("RTSP restart");
    let after = Watcher::connect(broker.port);
    assert!(after.wait_latest(lobby, "online", WAIT), "{:#?}", after.on(lobby));
    assert_eq!(
        after.latest("streampulse/lab/availability").as_deref(),
        Some("online")
    );
    assert!(after.wait(WAIT, |messages| discovery_count(messages) >= 6));

    // Yard leaves the config: its entities leave Home Assistant (empty retained configs).
    dir.write_config_text(&format!("{}{mqtt_yaml}", base.to_yaml()));
    assert!(
        after.wait(WAIT, |_| yard_configs
            .iter()
            .all(|topic| after.latest(topic).as_deref() == Some(""))),
        "{:#?}",
        after.messages()
    );
    assert!(after.wait_latest(yard, "", WAIT), "Yard's state cleared");
    let fresh = Watcher::connect(broker.port);
    assert!(fresh.wait(WAIT, |messages| discovery_count(messages) >= 3));
    std::thread::sleep(Duration::from_millis(500));
    let remaining = discovery_configs(&fresh);
    assert_eq!(remaining.len(), 3, "{remaining:#?}");
    check_discovery(&remaining, "Lobby", "Lobby (lab)");

    // A new site: the old topics are emptied (Home Assistant drops the old devices), the new
    // ones appear.
    let old_topics: Vec<String> = remaining.iter().map(|(topic, _)| topic.clone()).collect();
    dir.write_config_text(&format!(
        "{}{}",
        base.to_yaml(),
        mqtt_yaml.replace("site: lab", "site: depot")
    ));
    assert!(fresh.wait_latest("streampulse/depot/Lobby/state", "online", WAIT));
    if !fresh.wait_latest(lobby, "", WAIT) {
        monitor.signal(libc::SIGTERM);
        monitor.wait_timeout(Duration::from_secs(20));
        let (_, stderr) = monitor.output();
        panic!(
            "the old state topic was not emptied: {:#?}\n{stderr}",
            fresh.on(lobby)
        );
    }
    assert!(fresh.wait_latest("streampulse/lab/availability", "", WAIT));
    assert!(
        fresh.wait(WAIT, |_| old_topics
            .iter()
            .all(|topic| fresh.latest(topic).as_deref() == Some(""))),
        "{:#?}",
        fresh.messages()
    );
    assert!(fresh.wait(WAIT, |messages| messages.iter().any(|m| m
        .topic
        .starts_with("homeassistant/binary_sensor/streampulse_depot/"))));

    // A clean stop says the monitor is gone (the last will covers a crash).
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
    assert!(fresh.wait_latest("streampulse/depot/availability", "offline", WAIT));
}

fn discovery_count(messages: &[mqtt::broker::Message]) -> usize {
    let mut topics = std::collections::HashSet::new();
    for message in messages {
        if message.topic.starts_with("homeassistant/") && !message.payload.is_empty() {
            topics.insert(message.topic.as_str());
        }
    }
    topics.len()
}

/// v2.2's block as v2.2 shipped it, pointed at the test broker.
fn v2_2_block(port: u16, password: &str, interval: u64) -> String {
    format!(
        "mqtt:\n\
         \x20 enabled: true                 # toggle: when true, service will start publishing\n\
         \x20 host: \"127.0.0.1\"\n\
         \x20 port: {port}                     # TCP port\n\
         \x20 ws_port: 8000                  # Websocket port (non-TLS)\n\
         \x20 tls_port: 8883                 # TLS TCP port\n\
         \x20 tls_ws_port: 8884              # TLS Websocket port\n\
         \x20 use_tls: false                 # true -> connect with TLS\n\
         \x20 use_websocket: false           # true -> connect via websockets\n\
         \x20 username: \"pulse\"              # optional; set if using auth-enabled broker\n\
         \x20 password: \"{password}\"            # optional\n\
         \x20 client_id: null                # optional mqtt client id\n\
         \x20 topic: \"stream_monitor/status\" # default topic (can be changed by user)\n\
         \x20 qos: 0\n\
         \x20 retain: false\n\
         \x20 interval_seconds: {interval}           # how often to request the API (min 5)\n\
         \x20 api_status_url: \"http://localhost:7000/api/status\"  # change to 6969 if your monitor uses that port\n"
    )
}

#[test]
fn a_v2_2_block_publishes_the_fleet_status_json_and_never_prints_its_password() {
    const PASSWORD: &str = "Pa55-w0rd-never-shown";
    let rtsp = RtspTestServer::start().expect("RTSP server");
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let broker = Broker::with_password("pulse", PASSWORD);
    let watcher = Watcher::connect_as(broker.port, Some(("pulse", PASSWORD)));
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new("Lobby", &rtsp.url("/test")));
    let config_path = dir.write_config_text(&format!(
        "{}{}",
        config.to_yaml(),
        v2_2_block(broker.port, PASSWORD, 5)
    ));
    let path = config_path.to_str().expect("UTF-8 path");

    let validate = run(&["validate", "--config", path], WAIT);
    assert_eq!(validate.code(), Some(0), "{validate:#?}");
    assert!(
        validate
            .stdout
            .contains("mqtt.api_status_url: notice: accepted and ignored"),
        "{validate:#?}"
    );

    let db = dir.db_path();
    let mut monitor = RunningChild::spawn(&monitor_args(&config_path, &db));
    let topic = "stream_monitor/status";
    assert!(
        watcher.wait(Duration::from_secs(40), |messages| messages
            .iter()
            .filter(|m| m.topic == topic && m.payload.contains("\"ok\""))
            .count()
            >= 2),
        "{:#?}",
        watcher.messages()
    );
    let statuses = watcher.on(topic);
    let last: Value = serde_json::from_str(&statuses.last().expect("a status").payload).expect("JSON");
    let lobby = &last["Lobby"];
    assert_eq!(lobby["status"], "ok", "{last}");
    assert!(lobby["latency"].is_u64(), "{last}");
    assert!(
        lobby["ts"]
            .as_str()
            .is_some_and(|ts| ts.ends_with("+00:00") || ts.ends_with('Z')),
        "{last}"
    );
    assert!(lobby["message"].is_string(), "{last}");
    // Not retained (v2.2's `retain: false`), one every interval_seconds, not every second.
    assert!(statuses.iter().all(|m| !m.retain));
    assert!(statuses.len() <= 4, "{} status messages", statuses.len());
    // The state topics and discovery are on with a plain v2.2 block too.
    assert!(watcher.wait_latest("streampulse/Lobby/state", "online", WAIT));

    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
    let (stdout, stderr) = monitor.output();
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stderr}"
    );
    assert!(stderr.contains("MQTT connected"), "{stderr}");
}

#[test]
fn tls_with_tls_insecure_reaches_a_broker_with_a_self_signed_certificate() {
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let tls_port = closed_port();
    let dir = TestDir::new();
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("certificate");
    let (cert_path, key_path) = (dir.path().join("broker.crt"), dir.path().join("broker.key"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key.serialize_pem()).expect("write key");
    let broker = Broker::with_conf(&format!(
        "allow_anonymous true\nlistener {tls_port} 127.0.0.1\ncertfile {}\nkeyfile {}\n",
        cert_path.display(),
        key_path.display()
    ));
    let watcher = Watcher::connect(broker.port);
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new(
        "Dead",
        &format!("rtsp://127.0.0.1:{}/x", closed_port()),
    ));
    let config_path = dir.write_config_text(&format!(
        "{}mqtt:\n  enabled: true\n  host: 127.0.0.1\n  use_tls: true\n  tls_port: {tls_port}\n  tls_insecure: true\n  \
         discovery: false\n  interval_seconds: 5\n",
        config.to_yaml()
    ));
    let validate = run(
        &["validate", "--config", config_path.to_str().expect("UTF-8")],
        WAIT,
    );
    assert!(
        validate.stdout.contains("mqtt.tls_insecure: notice:"),
        "{validate:#?}"
    );
    let db = dir.db_path();
    let mut monitor = RunningChild::spawn(&monitor_args(&config_path, &db));
    assert!(
        watcher.wait_latest("streampulse/Dead/state", "offline", WAIT),
        "{:#?}",
        watcher.messages()
    );
    assert!(watcher.wait(WAIT, |messages| messages
        .iter()
        .any(|m| m.topic == "stream_monitor/status")));
    assert_eq!(discovery_count(&watcher.messages()), 0, "discovery: false");
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}

fn parse(text: &str) -> Result<config::Config, Vec<(Option<usize>, String, String)>> {
    config::parse(text, Path::new("/tmp/mqtt-test.yaml")).map_err(|error| match error {
        ConfigError::Invalid { problems, .. } => problems
            .into_iter()
            .map(|p| (p.line, p.field, p.message))
            .collect(),
        other => panic!("{other}"),
    })
}

#[test]
fn the_mqtt_block_is_accepted_as_v2_2_wrote_it_and_its_mistakes_are_named() {
    // v2.2's shipped default: disabled, every key present.
    let disabled = v2_2_block(1883, "x", 10).replace("enabled: true ", "enabled: false");
    let config = parse(&format!("{disabled}streams: []\n")).unwrap_or_else(|e| panic!("{e:?}"));
    assert!(config.mqtt.is_none());

    let config =
        parse(&format!("site: lab\n{}", v2_2_block(1883, "1234", 3))).unwrap_or_else(|e| panic!("{e:?}"));
    let mqtt = config.mqtt.as_ref().expect("enabled");
    assert_eq!(
        (mqtt.host.as_str(), mqtt.port, mqtt.transport),
        ("127.0.0.1", 1883, MqttTransport::Tcp)
    );
    assert_eq!(mqtt.interval, Duration::from_secs(5), "raised to v2.2's minimum");
    assert_eq!(mqtt.password.as_ref().map(|p| p.expose()), Some("1234"));
    assert!(mqtt.state_topics && mqtt.discovery);
    let debug = format!("{config:?}");
    assert!(!debug.contains("1234"), "the password never prints: {debug}");
    let fields: Vec<&str> = config.notices.iter().map(|n| n.field.as_str()).collect();
    assert_eq!(fields, ["mqtt.interval_seconds", "mqtt.api_status_url"]);

    let tls_ws = parse("mqtt:\n  enabled: true\n  host: b.example\n  use_tls: true\n  use_websocket: true\n")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let mqtt = tls_ws.mqtt.expect("enabled");
    assert_eq!((mqtt.port, mqtt.transport), (8884, MqttTransport::TlsWebsocket));
    assert_eq!(mqtt.broker_label(), "wss://b.example:8884");

    let problems = parse(
        "mqtt:\n  enabled: true\n  qos: 3\n  password: p\n  port: 70000\n  topic: a/#\n  state_topics: false\n  \
         interval_seconds: 0\n  hots: x\nalerts:\n  channels:\n    - {name: m, type: mqtt, url: \"http://127.0.0.1/\"}\n",
    )
    .expect_err("problems");
    let found: Vec<(Option<usize>, &str)> = problems
        .iter()
        .map(|(line, field, _)| (*line, field.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (Some(1), "mqtt"),
            (Some(3), "mqtt.qos"),
            (Some(4), "mqtt.password"),
            (Some(5), "mqtt.port"),
            (Some(6), "mqtt.topic"),
            (Some(7), "mqtt.state_topics"),
            (Some(8), "mqtt.interval_seconds"),
            (Some(9), "mqtt.hots"),
            (Some(12), "alerts.channels[0].type"),
        ],
        "{problems:#?}"
    );
    let message = |field: &str| {
        problems
            .iter()
            .find(|(_, f, _)| f == field)
            .map(|(_, _, m)| m.as_str())
            .unwrap_or_default()
    };
    assert!(message("mqtt").contains("needs `host:`"));
    assert!(
        message("mqtt.hots").contains("did you mean \"host\""),
        "{}",
        message("mqtt.hots")
    );
    assert!(message("alerts.channels[0].type").contains("top-level `mqtt:` section"));

    // Stream names that give the same topic level are named.
    let clash = parse(
        "mqtt: {enabled: true, host: h}\nstreams:\n  - {name: a/b, url: \"rtsp://h/1\"}\n  - {name: a_b, url: \"rtsp://h/2\"}\n",
    )
    .expect_err("a clash");
    assert_eq!(clash[0].1, "streams[1].name", "{clash:#?}");
}

#[test]
fn a_camera_that_dies_in_its_maintenance_window_tells_mqtt_nothing_until_the_window_ends() {
    let sntp = SntpTestServer::start(0).expect("SNTP server");
    let broker = Broker::start();
    let watcher = Watcher::connect(broker.port);
    let dir = TestDir::new();
    let config = TestConfig::new(1, 0.8, sntp.port()).stream(TestStream::new(
        "Dead",
        &format!("rtsp://127.0.0.1:{}/x", closed_port()),
    ));
    let mqtt_yaml = format!(
        "mqtt: {{enabled: true, host: 127.0.0.1, port: {}, discovery: false}}\n",
        broker.port
    );
    // All day, every day: the camera is quiet from the start.
    let quiet = config.to_yaml().replace(
        "    url: ",
        "    maintenance: [{from: \"00:00\", to: \"24:00\"}]\n    url: ",
    );
    let config_path = dir.write_config_text(&format!("{quiet}{mqtt_yaml}"));
    let db = dir.db_path();
    let mut monitor = RunningChild::spawn(&monitor_args(&config_path, &db));
    let state = "streampulse/Dead/state";
    common::wait_for(WAIT, || {
        (common::heartbeats(&db, "Dead").len() >= 4).then_some(())
    })
    .expect("failed probes");
    // Published to the broker, but nothing about the quiet camera.
    assert!(watcher.wait(WAIT, |messages| messages
        .iter()
        .any(|m| m.topic == "stream_monitor/status")));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(watcher.on(state), vec![], "quiet: nothing told");

    // The window is gone: the state it is in now is told, once.
    dir.write_config_text(&format!("{}{mqtt_yaml}", config.to_yaml()));
    assert!(
        watcher.wait_latest(state, "offline", WAIT),
        "{:#?}",
        watcher.messages()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(watcher.on(state).len(), 1, "{:#?}", watcher.on(state));
    monitor.signal(libc::SIGTERM);
    monitor.wait_timeout(Duration::from_secs(20)).expect("stopped");
}
