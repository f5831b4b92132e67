//! What one connection publishes: a [`Plan`] made once per config (topics, discovery payloads),
//! the rounds that publish the retained topics that changed and v2.2's status JSON, clearing what
//! the config no longer wants, and the [`Session`] memory of what this connection has sent.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rumqttc::{AsyncClient, QoS};
use tokio::time::Instant;

use super::topics::{self, SeenConfig, Topics};
use crate::clock::system_now_ms;
use crate::config::{Config, MqttConfig};
use crate::fleet::{self, StreamSummary, Uptimes};
use crate::store::{Store, StoreError};

/// Queues one publish without waiting; `false` when the queue is full (tried again next round).
pub(super) fn publish(client: &AsyncClient, topic: &str, payload: &str, qos: QoS, retain: bool) -> bool {
    client
        .try_publish(topic, qos, retain, payload.as_bytes().to_vec())
        .is_ok()
}

fn qos_of(level: u8) -> QoS {
    match level {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => QoS::ExactlyOnce,
    }
}

/// The publisher's memory of one connection: what it has published (retained) and what the
/// broker showed of this installation's discovery configs.
#[derive(Default)]
pub(super) struct Session {
    pub connected: bool,
    /// Retained topic → payload, as published on this connection.
    published: HashMap<String, String>,
    /// Discovery configs of this installation seen on the broker: config topic → what it names.
    seen: HashMap<String, SeenConfig>,
    next_status: Option<Instant>,
}

impl Session {
    /// A fresh connection: nothing published on it yet, so everything is published again.
    pub fn connected() -> Session {
        Session {
            connected: true,
            ..Session::default()
        }
    }
}

/// The state and attributes last told per topic, kept across connections: while a stream is
/// quiet (muted or in maintenance) it is what the broker keeps being told, so a camera that dies
/// in its maintenance window tells nothing, like every other notification.
#[derive(Default)]
pub(super) struct Told(HashMap<String, String>);

/// One enabled stream's topics.
struct PlannedStream {
    name: String,
    state: String,
    attributes: String,
}

/// What a config asks to be published, computed once per config (the discovery payloads of a
/// large fleet are not rebuilt every second, nor for every config read back from the broker).
pub(super) struct Plan {
    pub mqtt: MqttConfig,
    streams: Vec<PlannedStream>,
    discovery: Vec<(String, String)>,
    /// Every retained topic of the current streams, published yet or not: what is never cleared.
    keep: HashSet<String>,
}

impl Plan {
    pub fn new(config: &Config, mqtt: &MqttConfig, topics: &Topics) -> Plan {
        let mut plan = Plan {
            mqtt: mqtt.clone(),
            streams: Vec::new(),
            discovery: Vec::new(),
            keep: HashSet::new(),
        };
        if !mqtt.state_topics {
            return plan;
        }
        for stream in config.streams.iter().filter(|stream| stream.enabled) {
            let planned = PlannedStream {
                name: stream.name.clone(),
                state: topics.state(&stream.name),
                attributes: topics.attributes(&stream.name),
            };
            plan.keep.insert(planned.state.clone());
            plan.keep.insert(planned.attributes.clone());
            plan.streams.push(planned);
            if mqtt.discovery {
                for (topic, payload) in topics::discovery(topics, config, stream) {
                    plan.keep.insert(topic.clone());
                    plan.discovery.push((topic, payload));
                }
            }
        }
        plan
    }
}

/// One round: the fleet view from the store, the retained topics that changed, topics of
/// streams gone cleared, and the v2.2 status JSON when due.
pub(super) async fn round(
    client: &AsyncClient,
    plan: &Plan,
    config: &Arc<Config>,
    reader: &FleetReader,
    session: &mut Session,
    told: &mut Told,
) {
    let fleet = match reader.read(config).await {
        Ok(fleet) => Some(fleet),
        Err(error) => {
            tracing::debug!(%error, "MQTT: the fleet view could not be read; trying again");
            None
        }
    };
    let by_name: HashMap<&str, &StreamSummary> = fleet
        .iter()
        .flatten()
        .map(|summary| (summary.name.as_str(), summary))
        .collect();
    let mut values: Vec<(&str, String)> = Vec::new();
    for stream in &plan.streams {
        let Some(summary) = by_name.get(stream.name.as_str()) else {
            continue;
        };
        if summary.mute.is_some() || summary.in_maintenance {
            for topic in [&stream.state, &stream.attributes] {
                if let Some(payload) = told.0.get(topic) {
                    values.push((topic, payload.clone()));
                }
            }
            continue;
        }
        // Only a confirmed state is told: the same rule as every other notification.
        let Some(state) = topics::state_payload(summary) else {
            continue;
        };
        values.push((&stream.state, state.to_string()));
        if let Ok(json) = serde_json::to_string(&topics::attributes(summary, state)) {
            values.push((&stream.attributes, json));
        }
    }
    for (topic, payload) in &values {
        told.0.insert(topic.to_string(), payload.clone());
    }
    told.0.retain(|topic, _| plan.keep.contains(topic));
    let discovery = plan
        .discovery
        .iter()
        .map(|(topic, payload)| (topic.as_str(), payload.clone()));
    for (topic, payload) in discovery.chain(values) {
        if session.published.get(topic) != Some(&payload)
            && publish(client, topic, &payload, QoS::AtLeastOnce, true)
        {
            session.published.insert(topic.to_string(), payload);
        }
    }
    let gone: Vec<String> = session
        .published
        .keys()
        .filter(|topic| !plan.keep.contains(*topic))
        .cloned()
        .collect();
    for topic in gone {
        if publish(client, &topic, "", QoS::AtLeastOnce, true) {
            // Emptied here, so not again below as a config seen on the broker.
            session.seen.remove(&topic);
            session.published.remove(&topic);
        }
    }
    let unwanted: Vec<String> = session
        .seen
        .keys()
        .filter(|topic| !plan.keep.contains(*topic))
        .cloned()
        .collect();
    for topic in unwanted {
        if let Some(seen) = session.seen.remove(&topic) {
            clear_seen(client, plan, &topic, &seen);
        }
    }
    let now = Instant::now();
    if let Some(fleet) = &fleet {
        if session.next_status.is_none_or(|due| now >= due) {
            let status = fleet::v1_status(config, fleet);
            let mqtt = &plan.mqtt;
            if let Ok(json) = serde_json::to_string(&status) {
                if publish(client, &mqtt.status_topic, &json, qos_of(mqtt.qos), mqtt.retain) {
                    session.next_status = Some(now + mqtt.interval);
                }
            }
        }
    }
}

/// A discovery config of this installation on the broker: remembered when the plan wants it,
/// cleared at once when not (a camera removed while the monitor was stopped).
pub(super) fn seen_config(
    client: &AsyncClient,
    plan: &Plan,
    topics: &Topics,
    session: &mut Session,
    topic: String,
    payload: &[u8],
) {
    if !topics.is_own_discovery(&topic) {
        return;
    }
    if payload.is_empty() {
        session.seen.remove(&topic);
        return;
    }
    let Ok(seen) = serde_json::from_slice::<SeenConfig>(payload) else {
        return;
    };
    if plan.keep.contains(&topic) {
        session.seen.insert(topic, seen);
    } else {
        clear_seen(client, plan, &topic, &seen);
    }
}

/// Empties a discovery config (Home Assistant drops the entity) and the topics it reads, unless
/// a current stream uses them.
fn clear_seen(client: &AsyncClient, plan: &Plan, topic: &str, seen: &SeenConfig) {
    tracing::info!(
        topic,
        "MQTT: removing a camera no longer configured from Home Assistant"
    );
    publish(client, topic, "", QoS::AtLeastOnce, true);
    for read in [&seen.state_topic, &seen.json_attributes_topic]
        .into_iter()
        .flatten()
    {
        if !plan.keep.contains(read) {
            publish(client, read, "", QoS::AtLeastOnce, true);
        }
    }
}

/// The topics change (a new `site:` or prefix): everything this connection published is
/// emptied, so neither the broker nor Home Assistant keeps the old names.
pub(super) fn retire(client: &AsyncClient, session: &Session, availability: &str) {
    for topic in session.published.keys() {
        publish(client, topic, "", QoS::AtLeastOnce, true);
    }
    publish(client, availability, "", QoS::AtLeastOnce, true);
}

/// Reads the fleet view (small tables only: no uptimes, no sparklines) on a connection of its
/// own beside the writer, off the async workers.
pub(super) struct FleetReader {
    db_path: PathBuf,
    store: Arc<Mutex<Option<Store>>>,
}

impl FleetReader {
    pub fn new(db_path: &Path) -> FleetReader {
        FleetReader {
            db_path: db_path.to_path_buf(),
            store: Arc::new(Mutex::new(None)),
        }
    }

    async fn read(&self, config: &Arc<Config>) -> Result<Vec<StreamSummary>, StoreError> {
        let (store, db_path, config) = (Arc::clone(&self.store), self.db_path.clone(), Arc::clone(config));
        tokio::task::spawn_blocking(move || {
            let mut slot = store.lock().map_err(|_| StoreError::WriterStopped)?;
            let store = match slot.as_mut() {
                Some(store) => store,
                None => slot.insert(Store::open_beside_writer(&db_path)?),
            };
            fleet::load_with(&config, store, system_now_ms(), false, &Uptimes::default())
        })
        .await
        .map_err(|_| StoreError::WriterStopped)?
    }
}
