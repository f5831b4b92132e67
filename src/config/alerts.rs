//! The typed `alerts:` section: confirmation rules, delivery retries and notification channels.
//! Channel secrets (tokens, passwords in URLs, the path of Discord and Slack webhook URLs) live
//! in types whose `Debug`/`Display` mask them.

use std::fmt;
use std::time::Duration;

use crate::alert::confirm::ConfirmRules;
use crate::url::CameraUrl;

pub const DEFAULT_RETRY_ATTEMPTS: u32 = 12;
pub const DEFAULT_RETRY_FIRST_SECONDS: f64 = 5.0;
pub const DEFAULT_RETRY_MAX_SECONDS: f64 = 600.0;
pub const DEFAULT_ALERT_TIMEOUT_SECONDS: f64 = 10.0;

/// `alerts:`; every stream's own rules are in [`super::StreamConfig::alerts`].
#[derive(Debug, Clone, PartialEq)]
pub struct AlertsConfig {
    /// The defaults every stream starts from.
    pub rules: ConfirmRules,
    /// Attempts per notification before it is marked failed.
    pub retry_attempts: u32,
    /// The wait after the first failed attempt; doubled after each, up to `retry_max`.
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// One attempt (connect, send, answer) gets this long.
    pub timeout: Duration,
    /// The dashboard's public address (`alerts.public_url`), for links to a stream's page.
    pub public_url: Option<String>,
    pub channels: Vec<ChannelConfig>,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            rules: ConfirmRules::default(),
            retry_attempts: DEFAULT_RETRY_ATTEMPTS,
            retry_first: Duration::from_secs_f64(DEFAULT_RETRY_FIRST_SECONDS),
            retry_max: Duration::from_secs_f64(DEFAULT_RETRY_MAX_SECONDS),
            timeout: Duration::from_secs_f64(DEFAULT_ALERT_TIMEOUT_SECONDS),
            public_url: None,
            channels: Vec::new(),
        }
    }
}

/// One entry of `alerts.channels`. Only `type: webhook` exists so far.
#[derive(Clone, PartialEq)]
pub struct ChannelConfig {
    pub name: String,
    pub format: WebhookFormat,
    /// The receiver (ntfy: server and topic; gotify and telegram: the server's base URL).
    pub url: CameraUrl,
    /// Bearer token (ntfy), application token (gotify), bot token (telegram).
    pub token: Option<Secret>,
    /// Telegram's chat.
    pub chat_id: Option<String>,
    /// Handlebars template of the body, `format: template` only.
    pub template: Option<String>,
    /// The body's `Content-Type` for `format: template`.
    pub content_type: String,
}

impl ChannelConfig {
    /// The URL as logs, pages and the API may show it: password masked, and for Discord and
    /// Slack the path too (their webhook URLs carry the secret in the path).
    pub fn redacted_url(&self) -> String {
        let shown = self.url.redacted();
        match self.format {
            WebhookFormat::Discord | WebhookFormat::Slack => match shown.find("://") {
                Some(scheme_end) => {
                    let after = scheme_end + 3;
                    let host_end = shown[after..]
                        .find('/')
                        .map_or(shown.len(), |slash| after + slash);
                    format!("{}/***", &shown[..host_end])
                }
                None => "***".to_string(),
            },
            _ => shown,
        }
    }
}

impl fmt::Debug for ChannelConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChannelConfig")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("url", &self.redacted_url())
            .field("token", &self.token)
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

/// The body a webhook channel sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Json,
    Ntfy,
    Gotify,
    Discord,
    Slack,
    Telegram,
    Template,
}

impl WebhookFormat {
    pub const ALL: [WebhookFormat; 7] = [
        WebhookFormat::Json,
        WebhookFormat::Ntfy,
        WebhookFormat::Gotify,
        WebhookFormat::Discord,
        WebhookFormat::Slack,
        WebhookFormat::Telegram,
        WebhookFormat::Template,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Ntfy => "ntfy",
            WebhookFormat::Gotify => "gotify",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Telegram => "telegram",
            WebhookFormat::Template => "template",
        }
    }

    pub fn parse(text: &str) -> Option<WebhookFormat> {
        WebhookFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == text)
    }
}

/// A channel secret: never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the request that needs it and nothing else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}
