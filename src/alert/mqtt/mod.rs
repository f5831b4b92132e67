//! MQTT in the monitor: v2.2's fleet status JSON on `mqtt.topic` every `interval_seconds`, a
//! retained state and attributes topic per stream from its **confirmed** state, the monitor's
//! availability (last will `offline`), and Home Assistant discovery (one device per camera).
//!
//! One task reads the fleet view from the store on its own connection once a second and
//! publishes what changed; a second task drives the connection (reconnecting with backoff) and
//! hands its events over a channel. Neither is on the probe path, and neither holds the writer:
//! a dead broker costs a log line, never a heartbeat.
//!
//! State lives in the broker (retained topics), not in SQLite. After every (re)connection
//! everything retained is published again, since a broker restarted without persistence has
//! forgotten it. Discovery configs of this installation are read back by subscribing to them:
//! one for a stream no longer configured (also from before a restart) is cleared with an empty
//! retained message, which removes the device from Home Assistant.

pub mod connect;
pub mod topics;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::clock::system_now_ms;
use crate::config::{Config, MqttConfig};
use crate::fleet::{self, StreamSummary, Uptimes};
use crate::store::{Store, StoreError};
use topics::{SeenConfig, Topics, AVAILABLE, NOT_AVAILABLE};

/// How often the fleet view is read for changed states.
const ROUND_INTERVAL: Duration = Duration::from_secs(1);
/// Reconnection backoff: first wait, doubled after each failure, at most this.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At shutdown, the `offline` availability and the disconnect get this long to leave.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The running publisher.
pub struct MqttPublisher {
    broker: MqttConfig,
    config: watch::Sender<Arc<Config>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MqttPublisher {
    /// Starts publishing for `config` (which has `mqtt` enabled) from the database at `db_path`.
    pub fn start(db_path: PathBuf, config: &Config, broker: MqttConfig) -> MqttPublisher {
        let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
        let (stop, stop_rx) = watch::channel(false);
        tracing::info!(broker = %broker.broker_label(), "publishing the fleet over MQTT");
        let task = tokio::spawn(run(db_path, broker.clone(), config_rx, stop_rx));
        MqttPublisher {
            broker,
            config: config_tx,
            stop,
            task,
        }
    }

    /// A reloaded config: the same publisher when the broker settings are unchanged, a new one
    /// (after the old one said goodbye) when they changed, none when MQTT is now off.
    pub async fn reconcile(
        running: Option<MqttPublisher>,
        db_path: PathBuf,
        config: &Config,
    ) -> Option<MqttPublisher> {
        match (running, &config.mqtt) {
            (Some(running), Some(mqtt)) if running.broker == *mqtt => {
                running.config.send_replace(Arc::new(config.clone()));
                Some(running)
            }
            (running, mqtt) => {
                if let Some(running) = running {
                    running.stop().await;
                }
                mqtt.clone()
                    .map(|mqtt| MqttPublisher::start(db_path, config, mqtt))
            }
        }
    }

    /// Publishes `offline` on the availability topic and disconnects (a clean disconnect does
    /// not fire the last will).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let mut task = self.task;
        if tokio::time::timeout(SHUTDOWN_GRACE * 2, &mut task).await.is_err() {
            task.abort();
        }
    }
}

/// What the connection task reports.
enum Link {
    Connected,
    Lost(String),
    /// A message on a subscribed topic (discovery configs of this installation).
    Message {
        topic: String,
        payload: Vec<u8>,
    },
    Disconnected,
}

/// Drives the connection: every event, and on an error a wait that doubles up to
/// [`MAX_BACKOFF`] before the next attempt (the next `poll` reconnects).
async fn drive(mut eventloop: EventLoop, links: mpsc::Sender<Link>) {
    let mut backoff = FIRST_BACKOFF;
    loop {
        let link = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = FIRST_BACKOFF;
                Link::Connected
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => Link::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
            },
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => Link::Disconnected,
            Ok(_) => continue,
            Err(error) => {
                if links.send(Link::Lost(error.to_string())).await.is_err() {
                    return;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        if links.send(link).await.is_err() {
            return;
        }
    }
}

/// The publisher's memory of one connection: what it has published (retained) and what the
/// broker showed of this installation's discovery configs.
#[derive(Default)]
struct Session {
    connected: bool,
    /// Retained topic → payload, as published on this connection.
    published: HashMap<String, String>,
    /// Discovery configs of this installation seen on the broker: config topic → what it names.
    seen: HashMap<String, SeenConfig>,
    next_status: Option<Instant>,
}

async fn run(
    db_path: PathBuf,
    broker: MqttConfig,
    mut config: watch::Receiver<Arc<Config>>,
    mut stop: watch::Receiver<bool>,
) {
    let topics = Topics::new(&broker, config.borrow().site.as_deref());
    let options = match connect::options(&broker, &topics.availability()) {
        Ok(options) => options,
        Err(error) => {
            tracing::error!(%error, "MQTT is off: the connection cannot be set up");
            return;
        }
    };
    let (client, eventloop) = AsyncClient::new(options, connect::REQUEST_CAPACITY);
    let (links_tx, mut links) = mpsc::channel(256);
    let driver = tokio::spawn(drive(eventloop, links_tx));
    let store: Arc<Mutex<Option<Store>>> = Arc::new(Mutex::new(None));
    let mut session = Session::default();
    let mut rounds = tokio::time::interval(ROUND_INTERVAL);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            link = links.recv() => match link {
                Some(Link::Connected) => {
                    tracing::info!(broker = %broker.broker_label(), "MQTT connected");
                    failures = 0;
                    session = Session { connected: true, ..Session::default() };
                    publish(&client, &topics.availability(), AVAILABLE, QoS::AtLeastOnce, true);
                    // Read back this installation's discovery configs (retained), to clear
                    // those of streams no longer configured (all of them with discovery off).
                    let _ = client.try_subscribe(topics.discovery_filter(), QoS::AtLeastOnce);
                    let config = Arc::clone(&config.borrow());
                    round(&client, &broker, &topics, &config, &db_path, &store, &mut session).await;
                }
                Some(Link::Lost(error)) => {
                    session.connected = false;
                    failures = failures.saturating_add(1);
                    // The first failure says why; a broker down for hours is not a log flood.
                    if failures == 1 || failures.is_power_of_two() {
                        tracing::warn!(broker = %broker.broker_label(), %error, failures, "MQTT connection failed; retrying with backoff");
                    }
                }
                Some(Link::Message { topic, payload }) => {
                    let config = Arc::clone(&config.borrow());
                    seen_config(&client, &broker, &topics, &config, &mut session, topic, &payload);
                }
                Some(Link::Disconnected) | None => break,
            },
            _ = rounds.tick() => {
                if session.connected {
                    let config = Arc::clone(&config.borrow());
                    round(&client, &broker, &topics, &config, &db_path, &store, &mut session).await;
                }
            }
            changed = config.changed() => {
                if changed.is_err() { break; }
            }
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    if session.connected {
                        publish(&client, &topics.availability(), NOT_AVAILABLE, QoS::AtLeastOnce, true);
                        let _ = client.try_disconnect();
                        // Until the driver reports the disconnect sent, or the grace is over.
                        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
                            while let Some(link) = links.recv().await {
                                if matches!(link, Link::Disconnected) { break; }
                            }
                        }).await;
                    }
                    break;
                }
            }
        }
    }
    driver.abort();
}

/// Queues one publish without waiting; `false` when the queue is full (tried again next round).
fn publish(client: &AsyncClient, topic: &str, payload: &str, qos: QoS, retain: bool) -> bool {
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

/// What should be retained now: topic → payload for streams with a confirmed state, and every
/// topic this installation keeps (values or not) so nothing of a current stream is cleared.
struct Wanted {
    values: Vec<(String, String)>,
    keep: HashSet<String>,
}

fn wanted(broker: &MqttConfig, topics: &Topics, config: &Config, fleet: Option<&[StreamSummary]>) -> Wanted {
    let mut wanted = Wanted {
        values: Vec::new(),
        keep: HashSet::new(),
    };
    if !broker.state_topics {
        return wanted;
    }
    for stream in config.streams.iter().filter(|stream| stream.enabled) {
        let (state_topic, attributes_topic) = (topics.state(&stream.name), topics.attributes(&stream.name));
        let summary = fleet.and_then(|fleet| fleet.iter().find(|summary| summary.name == stream.name));
        if let Some((summary, state)) =
            summary.and_then(|summary| Some((summary, topics::state_payload(summary)?)))
        {
            wanted.values.push((state_topic.clone(), state.to_string()));
            let attributes = topics::attributes(summary, state);
            if let Ok(json) = serde_json::to_string(&attributes) {
                wanted.values.push((attributes_topic.clone(), json));
            }
        }
        wanted.keep.insert(state_topic);
        wanted.keep.insert(attributes_topic);
        if broker.discovery {
            for (topic, payload) in topics::discovery(topics, config, stream) {
                wanted.keep.insert(topic.clone());
                wanted.values.push((topic, payload));
            }
        }
    }
    wanted
}

/// One round: the fleet view from the store, the retained topics that changed, topics of
/// streams gone cleared, and the v2.2 status JSON when due.
async fn round(
    client: &AsyncClient,
    broker: &MqttConfig,
    topics: &Topics,
    config: &Arc<Config>,
    db_path: &std::path::Path,
    store: &Arc<Mutex<Option<Store>>>,
    session: &mut Session,
) {
    let fleet = match read_fleet(store, db_path, config).await {
        Ok(fleet) => Some(fleet),
        Err(error) => {
            tracing::debug!(%error, "MQTT: the fleet view could not be read; trying again");
            None
        }
    };
    let wanted = wanted(broker, topics, config, fleet.as_deref());
    for (topic, payload) in &wanted.values {
        if session.published.get(topic) != Some(payload)
            && publish(client, topic, payload, QoS::AtLeastOnce, true)
        {
            session.published.insert(topic.clone(), payload.clone());
        }
    }
    let gone: Vec<String> = session
        .published
        .keys()
        .filter(|topic| !wanted.keep.contains(*topic))
        .cloned()
        .collect();
    for topic in gone {
        if publish(client, &topic, "", QoS::AtLeastOnce, true) {
            session.published.remove(&topic);
        }
    }
    let seen: Vec<String> = session
        .seen
        .keys()
        .filter(|topic| !wanted.keep.contains(*topic))
        .cloned()
        .collect();
    for topic in seen {
        if let Some(gone) = session.seen.remove(&topic) {
            clear_seen(client, &wanted, &topic, &gone);
        }
    }
    let now = Instant::now();
    if let Some(fleet) = &fleet {
        if session.next_status.is_none_or(|due| now >= due) {
            let status = fleet::v1_status(config, fleet);
            if let Ok(json) = serde_json::to_string(&status) {
                if publish(
                    client,
                    &broker.status_topic,
                    &json,
                    qos_of(broker.qos),
                    broker.retain,
                ) {
                    session.next_status = Some(now + broker.interval);
                }
            }
        }
    }
}

/// A discovery config of this installation on the broker: remembered, and cleared at once when
/// it is not one the config wants.
fn seen_config(
    client: &AsyncClient,
    broker: &MqttConfig,
    topics: &Topics,
    config: &Config,
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
    let wanted = wanted(broker, topics, config, None);
    if wanted.keep.contains(&topic) {
        session.seen.insert(topic, seen);
    } else {
        clear_seen(client, &wanted, &topic, &seen);
    }
}

/// Empties a discovery config (Home Assistant drops the entity) and the topics it reads, unless
/// a current stream uses them.
fn clear_seen(client: &AsyncClient, wanted: &Wanted, topic: &str, seen: &SeenConfig) {
    tracing::info!(
        topic,
        "MQTT: removing a camera no longer configured from Home Assistant"
    );
    publish(client, topic, "", QoS::AtLeastOnce, true);
    for read in [&seen.state_topic, &seen.json_attributes_topic]
        .into_iter()
        .flatten()
    {
        if !wanted.keep.contains(read) {
            publish(client, read, "", QoS::AtLeastOnce, true);
        }
    }
}

/// The fleet view without uptimes or sparklines (small tables only), off the async workers.
async fn read_fleet(
    store: &Arc<Mutex<Option<Store>>>,
    db_path: &std::path::Path,
    config: &Arc<Config>,
) -> Result<Vec<StreamSummary>, StoreError> {
    let (store, db_path, config) = (Arc::clone(store), db_path.to_path_buf(), Arc::clone(config));
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
