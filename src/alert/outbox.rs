//! Delivery of the outbox: a task in the monitor that sends each channel's oldest pending
//! notification when it is due (webhook or email), marks it delivered after a 2xx or the mail
//! server's acceptance, or schedules the next attempt
//! with exponential backoff until `alerts.retry_attempts` (then marks it failed).
//!
//! It runs on its own SQLite connection and in its own task, so a slow or dead receiver never
//! delays a probe nor holds the writer. Each channel delivers in order (a recovery never
//! overtakes its outage); channels do not wait for each other.
//!
//! **At least once.** A row is marked delivered only after the receiver's 2xx. If the process
//! dies between that answer and the mark, the notification is sent again after the restart:
//! a duplicate is possible in that one window, a loss is not.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::email::{self, EmailError};
use super::webhook::{self, SendError};
use super::{format, Notification};
use crate::clock::system_now_ms;
use crate::config::{AlertsConfig, ChannelConfig, ChannelKind};
use crate::store::{OutboxItem, Store, StoreError};

/// How often the outbox is looked at when nothing was due.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// The wait before attempt `attempts + 1`: `first`, doubled after each failure, at most `max`.
pub fn backoff(first: Duration, max: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(30));
    first.saturating_mul(factor).min(max)
}

/// The running delivery task.
pub struct Delivery {
    alerts: watch::Sender<Arc<AlertsConfig>>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Delivery {
    /// Starts delivering from the database at `db_path`, with the channels of `alerts`.
    pub fn start(db_path: PathBuf, alerts: &AlertsConfig) -> Delivery {
        let (alerts, alerts_rx) = watch::channel(Arc::new(alerts.clone()));
        let (stop, stop_rx) = watch::channel(false);
        let task = spawn(db_path, alerts_rx, stop_rx);
        Delivery { alerts, stop, task }
    }

    /// A reloaded config: its channels from the next round on (a notification for a channel no
    /// longer configured is marked failed).
    pub fn update(&self, alerts: &AlertsConfig) {
        self.alerts.send_replace(Arc::new(alerts.clone()));
    }

    /// Stops between rounds; an attempt in flight is cut off (it is retried after a restart).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if tokio::time::timeout(Duration::from_secs(1), &mut { self.task })
            .await
            .is_err()
        {
            tracing::info!("stopped notification delivery mid-attempt; it is retried at the next start");
        }
    }
}

fn spawn(
    db_path: PathBuf,
    alerts: watch::Receiver<Arc<AlertsConfig>>,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let store = match tokio::task::spawn_blocking(move || Store::open_beside_writer(db_path)).await {
            Ok(Ok(store)) => Arc::new(Mutex::new(store)),
            Ok(Err(error)) => {
                tracing::error!(%error, "notifications cannot be delivered: the database did not open");
                return;
            }
            Err(_) => return,
        };
        loop {
            let config = Arc::clone(&alerts.borrow());
            let delivered_any = match deliver_due(&store, &config).await {
                Ok(any) => any,
                Err(error) => {
                    tracing::warn!(%error, "reading the notification outbox failed; trying again");
                    false
                }
            };
            if delivered_any {
                continue;
            }
            tokio::select! {
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() { break; }
                }
                _ = tokio::time::sleep(POLL_INTERVAL) => {}
            }
        }
    })
}

/// One round: each channel's oldest pending notification, if due, is attempted (channels at the
/// same time). Returns whether any was delivered (then the next may be due at once).
async fn deliver_due(store: &Arc<Mutex<Store>>, config: &AlertsConfig) -> Result<bool, StoreError> {
    let heads = with_store(store, |store| store.outbox_heads()).await?;
    let now_ms = system_now_ms();
    let attempts = heads
        .into_iter()
        .filter(|head| head.next_attempt_ms <= now_ms)
        .map(|head| attempt(store, config, head));
    let results = futures::future::join_all(attempts).await;
    let mut any = false;
    for result in results {
        any |= result?;
    }
    Ok(any)
}

async fn attempt(
    store: &Arc<Mutex<Store>>,
    config: &AlertsConfig,
    head: OutboxItem,
) -> Result<bool, StoreError> {
    let attempts = head.attempts.saturating_add(1);
    let outcome = match config
        .channels
        .iter()
        .find(|channel| channel.name == head.channel)
    {
        Some(channel) => send_payload(channel, &head.payload, config.timeout)
            .await
            .map(|_| ()),
        None => Err(AttemptError::Gone),
    };
    let now_ms = system_now_ms();
    let id = head.id;
    match outcome {
        Ok(()) => {
            tracing::info!(channel = %head.channel, id, attempts, "notification delivered");
            with_store(store, move |store| store.outbox_delivered(id, attempts, now_ms)).await?;
            Ok(true)
        }
        Err(error) => {
            let permanent = error.is_permanent();
            let next = (!permanent && attempts < config.retry_attempts).then(|| {
                let wait = backoff(config.retry_first, config.retry_max, attempts);
                now_ms.saturating_add(i64::try_from(wait.as_millis()).unwrap_or(i64::MAX))
            });
            let text = error.to_string();
            match next {
                Some(_) => {
                    tracing::warn!(channel = %head.channel, id, attempts, error = %text, "notification not delivered; will retry")
                }
                None => {
                    tracing::error!(channel = %head.channel, id, attempts, error = %text, "notification failed; giving up")
                }
            }
            with_store(store, move |store| {
                store.outbox_attempt_failed(id, attempts, next, &text, now_ms)
            })
            .await?;
            Ok(false)
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("the channel is no longer configured")]
    Gone,
    #[error("the stored notification is unreadable: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Format(#[from] format::FormatError),
    #[error(transparent)]
    Send(#[from] SendError),
    #[error(transparent)]
    Email(#[from] EmailError),
}

impl AttemptError {
    fn is_permanent(&self) -> bool {
        match self {
            AttemptError::Send(error) => error.is_permanent(),
            AttemptError::Email(error) => error.is_permanent(),
            AttemptError::Gone | AttemptError::Payload(_) | AttemptError::Format(_) => true,
        }
    }
}

async fn send_payload(
    channel: &ChannelConfig,
    payload: &str,
    timeout: Duration,
) -> Result<Delivered, AttemptError> {
    let notification: Notification = serde_json::from_str(payload)?;
    send(channel, &notification, timeout).await
}

/// What a receiver answered to a delivered notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivered {
    /// A webhook's 2xx status.
    Http(u16),
    /// The SMTP server accepted the message.
    Mail,
}

impl std::fmt::Display for Delivered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivered::Http(status) => write!(f, "answered {status}"),
            Delivered::Mail => f.write_str("accepted by the mail server"),
        }
    }
}

/// Sends `notification` through `channel` once (the delivery task and `streampulse alert test`).
pub async fn send(
    channel: &ChannelConfig,
    notification: &Notification,
    timeout: Duration,
) -> Result<Delivered, AttemptError> {
    match &channel.kind {
        ChannelKind::Webhook(webhook) => {
            let post = format::build(webhook, notification)?;
            Ok(Delivered::Http(webhook::send(&post, timeout).await?))
        }
        ChannelKind::Email(mail) => {
            email::send(mail, notification, timeout).await?;
            Ok(Delivered::Mail)
        }
    }
}

async fn with_store<T, F>(store: &Arc<Mutex<Store>>, work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> Result<T, StoreError> + Send + 'static,
{
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || {
        let store = store.lock().map_err(|_| StoreError::WriterStopped)?;
        work(&store)
    })
    .await
    .map_err(|_| StoreError::WriterStopped)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let first = Duration::from_secs(5);
        let max = Duration::from_secs(60);
        let waits: Vec<u64> = (1..=6).map(|n| backoff(first, max, n).as_secs()).collect();
        assert_eq!(waits, vec![5, 10, 20, 40, 60, 60]);
        assert_eq!(backoff(first, max, u32::MAX), max);
    }
}
