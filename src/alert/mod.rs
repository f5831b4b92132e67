//! Telling people: the confirmed state of each stream ([`confirm`]), the notifications it causes,
//! their delivery from the SQLite outbox ([`outbox`]), the webhook channel ([`webhook`], with
//! the bodies of each format in [`format`]), the email channel ([`email`], SMTP), and MQTT with
//! Home Assistant discovery ([`mqtt`], which publishes retained state rather than outbox rows).
//!
//! The store writer runs [`confirm`] in the heartbeat's transaction and writes one outbox row
//! per notification and channel there too ([`crate::store`]'s `alerts`), so a change is never
//! lost nor announced twice by a restart. The monitor's delivery task sends the rows afterwards,
//! off the probe path and never holding the writer.

pub mod confirm;
pub mod email;
pub mod format;
pub mod mqtt;
pub mod outbox;
pub mod quiet;
pub mod transport;
pub mod trial;
pub mod webhook;

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::clock::iso_utc;
use crate::config::maintenance::MaintenanceWindow;
use crate::config::Config;
use confirm::{ConfirmRules, Notice};

/// Why a notification is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// A confirmed state change.
    Change,
    /// Too many changes in the flap window; quiet until stable.
    Flapping,
    /// Stable again after flapping.
    Stable,
    /// `streampulse alert test`.
    Test,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Change => "change",
            Event::Flapping => "flapping",
            Event::Stable => "stable",
            Event::Test => "test",
        }
    }
}

/// One notification, as stored in the outbox and as the `json` format sends it. Secrets never
/// get here: the URL is the redacted one and the message has passed [`crate::url::redact_text`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    pub event: Event,
    pub stream: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// `up`, `degraded`, `down`, or `unknown` before the first confirmed state.
    pub old_state: String,
    pub new_state: String,
    /// The down reason's code (`refused`, `timeout`, ...), when there is one.
    pub reason: Option<String>,
    pub message: String,
    /// When the new state began (its first probe), RFC 3339 UTC and milliseconds.
    pub since: String,
    pub since_ms: i64,
    /// The camera URL with its password masked.
    pub url: Option<String>,
    /// The stream's page, when `alerts.public_url` is set.
    pub link: Option<String>,
    /// One line for a title, and the whole message as text.
    pub title: String,
    pub text: String,
}

/// What a heartbeat needs to know about the stream it belongs to, for the wording.
pub struct Subject<'a> {
    pub stream: &'a str,
    pub url_redacted: Option<&'a str>,
    pub reason: Option<&'a str>,
    pub message: &'a str,
}

impl Notification {
    /// The notification of `notice` for `subject`.
    pub fn of(plan: &AlertPlan, subject: &Subject<'_>, notice: Notice, old: Option<&str>) -> Notification {
        let (event, new_state, since_ms) = match notice {
            Notice::Changed { to, since_ms, .. } => (Event::Change, to.as_str(), since_ms),
            Notice::Flapping { to, since_ms } => (Event::Flapping, to.as_str(), since_ms),
            Notice::Stable { to, since_ms } => (Event::Stable, to.as_str(), since_ms),
        };
        let old_state = old.unwrap_or("unknown").to_string();
        let place = match &plan.site {
            Some(site) => format!("{} ({site})", subject.stream),
            None => subject.stream.to_string(),
        };
        let title = match event {
            Event::Change => format!("{place} is {new_state}"),
            Event::Flapping => format!("{place} is flapping"),
            Event::Stable => format!("{place} is stable again ({new_state})"),
            Event::Test => format!("{place}: test notification"),
        };
        let mut text = match event {
            Event::Change => format!("{place}: {old_state} → {new_state} since {}", iso_utc(since_ms)),
            Event::Flapping => format!(
                "{place} changed state too often; now {new_state}. No more notices until it is stable."
            ),
            Event::Stable => format!("{place} is stable again: {new_state} since {}", iso_utc(since_ms)),
            Event::Test => format!("{place}: a test notification from StreamPulse"),
        };
        let message = crate::url::redact_text(subject.message);
        if new_state != "up" && !message.is_empty() {
            text.push_str(&format!(" ({message})"));
        }
        Notification {
            event,
            stream: subject.stream.to_string(),
            site: plan.site.clone(),
            old_state,
            new_state: new_state.to_string(),
            reason: subject.reason.map(str::to_string),
            message,
            since: iso_utc(since_ms),
            since_ms,
            url: subject.url_redacted.map(str::to_string),
            link: plan.link(subject.stream),
            title,
            text,
        }
    }

    /// The notification `streampulse alert test` sends.
    pub fn test(plan: &AlertPlan, now_ms: i64) -> Notification {
        let subject = Subject {
            stream: "test",
            url_redacted: None,
            reason: None,
            message: "",
        };
        let mut notification = Notification::of(
            plan,
            &subject,
            Notice::Changed {
                from: None,
                to: crate::heartbeat::Health::Up,
                since_ms: now_ms,
            },
            Some("up"),
        );
        notification.event = Event::Test;
        notification.title = "StreamPulse test notification".to_string();
        notification.text = "A test notification from StreamPulse: this channel works.".to_string();
        notification
    }
}

/// What the store writer needs of the config to confirm states and fill the outbox: the rules
/// of each stream, the channels' names and the wording's labels. Sent to the writer at start
/// and on every reload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertPlan {
    pub default_rules: ConfirmRules,
    pub rules_by_stream: HashMap<String, ConfirmRules>,
    pub channels: Vec<String>,
    pub site: Option<String>,
    pub public_url: Option<String>,
    /// Where maintenance windows are read (`timezone:`); UTC when `None`.
    pub timezone: Option<&'static time_tz::Tz>,
    /// Each stream's `maintenance:` windows, the top-level ones included.
    pub maintenance_by_stream: HashMap<String, Vec<MaintenanceWindow>>,
}

impl AlertPlan {
    pub fn from_config(config: &Config) -> AlertPlan {
        AlertPlan {
            default_rules: config.alerts.rules,
            rules_by_stream: config
                .streams
                .iter()
                .map(|stream| (stream.name.clone(), stream.alerts))
                .collect(),
            channels: config
                .alerts
                .channels
                .iter()
                .map(|channel| channel.name.clone())
                .collect(),
            site: config.site.clone(),
            public_url: config.alerts.public_url.clone(),
            timezone: Some(config.timezone),
            maintenance_by_stream: config
                .streams
                .iter()
                .map(|stream| {
                    let windows = config.maintenance.iter().chain(&stream.maintenance).copied();
                    (stream.name.clone(), windows.collect())
                })
                .filter(|(_, windows): &(String, Vec<MaintenanceWindow>)| !windows.is_empty())
                .collect(),
        }
    }

    /// Whether `stream` is inside one of its maintenance windows at `ts_ms`.
    pub fn in_maintenance(&self, stream: &str, ts_ms: i64) -> bool {
        let Some(windows) = self.maintenance_by_stream.get(stream) else {
            return false;
        };
        let tz = self.timezone.unwrap_or(time_tz::timezones::db::UTC);
        windows.iter().any(|window| window.covers(ts_ms, tz))
    }

    pub fn rules_for(&self, stream: &str) -> &ConfirmRules {
        self.rules_by_stream.get(stream).unwrap_or(&self.default_rules)
    }

    /// The stream's page under `alerts.public_url`.
    pub fn link(&self, stream: &str) -> Option<String> {
        self.public_url.as_ref().map(|base| {
            format!(
                "{}{}",
                base.trim_end_matches('/'),
                crate::web::links::stream_href(stream)
            )
        })
    }
}
