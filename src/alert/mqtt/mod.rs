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
mod publish;
pub mod topics;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::config::{Config, MqttConfig};
use publish::{publish, FleetReader, Plan, Session, Told};
use topics::{Topics, AVAILABLE, NOT_AVAILABLE};

/// How often the fleet view is read for changed states.
const ROUND_INTERVAL: Duration = Duration::from_secs(1);
/// Reconnection backoff: first wait, doubled after each failure, at most this.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// At shutdown, the `offline` availability and the disconnect get this long to leave.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How the publisher is asked to end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Run,
    /// Say `offline` and disconnect; what is retained stays for the next start.
    Shutdown,
    /// The topics change: empty everything published, then disconnect.
    Retire,
}

/// The running publisher.
pub struct MqttPublisher {
    broker: MqttConfig,
    topics: Topics,
    config: watch::Sender<Arc<Config>>,
    stop: watch::Sender<Stop>,
    task: JoinHandle<()>,
}

/// Settings that need a new connection (the topics aside): the rest applies to the running one.
fn same_connection(a: &MqttConfig, b: &MqttConfig) -> bool {
    (
        &a.host,
        a.port,
        a.transport,
        a.tls_insecure,
        &a.username,
        &a.password,
        &a.client_id,
    ) == (
        &b.host,
        b.port,
        b.transport,
        b.tls_insecure,
        &b.username,
        &b.password,
        &b.client_id,
    )
}

impl MqttPublisher {
    /// Starts publishing for `config` (which has `mqtt` enabled) from the database at `db_path`.
    pub fn start(db_path: PathBuf, config: &Config, broker: MqttConfig) -> MqttPublisher {
        let topics = Topics::new(&broker, config.site.as_deref());
        let (config_tx, config_rx) = watch::channel(Arc::new(config.clone()));
        let (stop, stop_rx) = watch::channel(Stop::Run);
        tracing::info!(broker = %broker.broker_label(), "publishing the fleet over MQTT");
        let task = tokio::spawn(run(db_path, broker.clone(), topics.clone(), config_rx, stop_rx));
        MqttPublisher {
            broker,
            topics,
            config: config_tx,
            stop,
            task,
        }
    }

    /// A reloaded config: the running publisher takes it when the connection and the topics
    /// stay; otherwise a new one starts (the old one first empties its topics when they change);
    /// none when MQTT is now off.
    pub async fn reconcile(
        running: Option<MqttPublisher>,
        db_path: PathBuf,
        config: &Config,
    ) -> Option<MqttPublisher> {
        let Some(mqtt) = &config.mqtt else {
            if let Some(running) = running {
                running.end(Stop::Shutdown).await;
            }
            return None;
        };
        let topics = Topics::new(mqtt, config.site.as_deref());
        match running {
            Some(running) if running.topics == topics && same_connection(&running.broker, mqtt) => {
                running.config.send_replace(Arc::new(config.clone()));
                Some(running)
            }
            Some(running) => {
                let how = if running.topics == topics {
                    Stop::Shutdown
                } else {
                    Stop::Retire
                };
                running.end(how).await;
                Some(MqttPublisher::start(db_path, config, mqtt.clone()))
            }
            None => Some(MqttPublisher::start(db_path, config, mqtt.clone())),
        }
    }

    /// Publishes `offline` on the availability topic and disconnects (a clean disconnect does
    /// not fire the last will).
    pub async fn stop(self) {
        self.end(Stop::Shutdown).await;
    }

    async fn end(self, how: Stop) {
        let _ = self.stop.send(how);
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
///
/// After our DISCONNECT it keeps reading until the broker closes the connection: dropping the
/// socket with the broker's acknowledgements unread would reset it, and a reset can discard
/// what the broker has not read yet (the last publishes, the goodbye).
async fn drive(mut eventloop: EventLoop, links: mpsc::Sender<Link>) {
    let mut backoff = FIRST_BACKOFF;
    let mut closing = false;
    loop {
        let link = match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = FIRST_BACKOFF;
                Link::Connected
            }
            Ok(Event::Incoming(Packet::Publish(publish))) if !closing => Link::Message {
                topic: publish.topic,
                payload: publish.payload.to_vec(),
            },
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => {
                closing = true;
                continue;
            }
            Ok(_) => continue,
            Err(_) if closing => {
                let _ = links.send(Link::Disconnected).await;
                return;
            }
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

async fn run(
    db_path: PathBuf,
    broker: MqttConfig,
    topics: Topics,
    mut config: watch::Receiver<Arc<Config>>,
    mut stop: watch::Receiver<Stop>,
) {
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
    let reader = FleetReader::new(&db_path);
    let mut current = Arc::clone(&config.borrow());
    let mut plan = Plan::new(&current, current.mqtt.as_ref().unwrap_or(&broker), &topics);
    let mut session = Session::default();
    let mut told = Told::default();
    let mut rounds = tokio::time::interval(ROUND_INTERVAL);
    rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut failures = 0u32;
    loop {
        tokio::select! {
            link = links.recv() => match link {
                Some(Link::Connected) => {
                    tracing::info!(broker = %broker.broker_label(), "MQTT connected");
                    failures = 0;
                    session = Session::connected();
                    publish(&client, &topics.availability(), AVAILABLE, QoS::AtLeastOnce, true);
                    // Read back this installation's discovery configs (retained), to clear
                    // those of streams no longer configured (all of them with discovery off).
                    let _ = client.try_subscribe(topics.discovery_filter(), QoS::AtLeastOnce);
                    publish::round(&client, &plan, &current, &reader, &mut session, &mut told).await;
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
                    publish::seen_config(&client, &plan, &topics, &mut session, topic, &payload);
                }
                Some(Link::Disconnected) | None => break,
            },
            _ = rounds.tick() => {
                if session.connected {
                    publish::round(&client, &plan, &current, &reader, &mut session, &mut told).await;
                }
            }
            changed = config.changed() => {
                if changed.is_err() { break; }
                current = Arc::clone(&config.borrow());
                plan = Plan::new(&current, current.mqtt.as_ref().unwrap_or(&broker), &topics);
            }
            changed = stop.changed() => {
                let how = *stop.borrow();
                if changed.is_err() || how != Stop::Run {
                    if session.connected {
                        if how == Stop::Retire {
                            publish::retire(&client, &session, &topics.availability());
                        } else {
                            publish(&client, &topics.availability(), NOT_AVAILABLE, QoS::AtLeastOnce, true);
                        }
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
