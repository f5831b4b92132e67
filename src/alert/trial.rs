//! One test notification through every channel, or the one named: what `streampulse alert test`
//! prints and what the settings page's "Send a test" button shows, from the same code. Channels
//! are tried at the same time, so one that times out does not hold the others' answers.

use super::outbox::{self, Delivered};
use super::{AlertPlan, Notification};
use crate::clock::system_now_ms;
use crate::config::Config;

/// What one channel did with the test notification.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelTest {
    pub channel: String,
    /// The webhook format, or `email`.
    pub kind: &'static str,
    /// Where it sends, secrets masked.
    pub target: String,
    /// What the receiver answered, or exactly what failed.
    pub result: Result<Delivered, String>,
}

impl ChannelTest {
    pub fn delivered(&self) -> bool {
        self.result.is_ok()
    }

    /// `delivered (answered 200)`, or the error.
    pub fn outcome(&self) -> String {
        match &self.result {
            Ok(delivered) => format!("delivered ({delivered})"),
            Err(error) => error.clone(),
        }
    }
}

/// Why nothing was sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoChannel {
    #[error("no channel named {name:?} under alerts.channels (configured: {known})")]
    Unknown { name: String, known: String },
    #[error("no channels configured under alerts.channels")]
    NoneConfigured,
}

/// Sends the test notification through the channels of `config` (only `only` when given).
pub async fn send_tests(config: &Config, only: Option<&str>) -> Result<Vec<ChannelTest>, NoChannel> {
    let channels: Vec<_> = config
        .alerts
        .channels
        .iter()
        .filter(|candidate| only.is_none_or(|name| candidate.name == name))
        .collect();
    if channels.is_empty() {
        return Err(match only {
            Some(name) => NoChannel::Unknown {
                name: name.to_string(),
                known: config
                    .alerts
                    .channels
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            },
            None => NoChannel::NoneConfigured,
        });
    }
    let notification = Notification::test(&AlertPlan::from_config(config), system_now_ms());
    let timeout = config.alerts.timeout;
    let attempts = channels.iter().map(|channel| {
        let notification = &notification;
        async move {
            let result = outbox::send(channel, notification, timeout)
                .await
                .map_err(|error| error.to_string());
            ChannelTest {
                channel: channel.name.clone(),
                kind: channel.kind_label(),
                target: channel.redacted_url(),
                result,
            }
        }
    });
    Ok(futures::future::join_all(attempts).await)
}
