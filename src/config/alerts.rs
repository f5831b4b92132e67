//! The typed `alerts:` section: confirmation rules, delivery retries and notification channels.
//! Channel secrets (tokens, SMTP passwords, passwords in URLs, the path of Discord and Slack
//! webhook URLs) live in types whose `Debug`/`Display` mask them.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, Mailboxes};

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

/// One entry of `alerts.channels`: its name and how it delivers.
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelConfig {
    pub name: String,
    pub kind: ChannelKind,
}

/// `type: webhook` or `type: email`.
#[derive(Debug, Clone, PartialEq)]
pub enum ChannelKind {
    Webhook(WebhookChannel),
    Email(EmailChannel),
}

impl ChannelConfig {
    /// Where the channel sends, as logs, pages and the API may show it: no password, and for
    /// Discord and Slack not the path either (their webhook URLs carry the secret in the path).
    pub fn redacted_url(&self) -> String {
        match &self.kind {
            ChannelKind::Webhook(webhook) => webhook.redacted_url(),
            ChannelKind::Email(email) => email.redacted_url(),
        }
    }

    /// The webhook's format, or `email`: what `alert test` and the settings page print.
    pub fn kind_label(&self) -> &'static str {
        match &self.kind {
            ChannelKind::Webhook(webhook) => webhook.format.as_str(),
            ChannelKind::Email(_) => "email",
        }
    }
}

/// A `type: webhook` channel.
#[derive(Clone, PartialEq)]
pub struct WebhookChannel {
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

impl WebhookChannel {
    fn redacted_url(&self) -> String {
        let shown = self.url.redacted();
        let secret_path = matches!(self.format, WebhookFormat::Discord | WebhookFormat::Slack)
            || has_bot_token(self.url.expose());
        if !secret_path {
            return shown;
        }
        match shown.find("://") {
            Some(scheme_end) => {
                let after = scheme_end + 3;
                let host_end = shown[after..]
                    .find('/')
                    .map_or(shown.len(), |slash| after + slash);
                format!("{}/***", &shown[..host_end])
            }
            None => "***".to_string(),
        }
    }
}

/// Whether a URL carries a Telegram bot token in its path (`/bot123456:ABC.../`), as a user may
/// write a bot API URL into a plain webhook: then its path is as secret as a password.
pub fn has_bot_token(url: &str) -> bool {
    url.split('/').any(|segment| {
        segment
            .strip_prefix("bot")
            .and_then(|token| token.split_once(':'))
            .is_some_and(|(id, _)| !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("format", &self.format)
            .field("url", &self.redacted_url())
            .field("token", &self.token)
            .field("chat_id", &self.chat_id)
            .finish_non_exhaustive()
    }
}

/// How an email channel secures its SMTP connection (`tls:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS, which must succeed (port 587).
    Starttls,
    /// TLS from the first byte (port 465, "SMTPS").
    Implicit,
    /// No TLS at all: only for a relay on the same machine or network.
    None,
}

impl SmtpTls {
    pub const ALL: [SmtpTls; 3] = [SmtpTls::Starttls, SmtpTls::Implicit, SmtpTls::None];

    pub fn as_str(self) -> &'static str {
        match self {
            SmtpTls::Starttls => "starttls",
            SmtpTls::Implicit => "tls",
            SmtpTls::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<SmtpTls> {
        SmtpTls::ALL.into_iter().find(|tls| tls.as_str() == text)
    }

    /// The port when `port:` is not given.
    pub fn default_port(self) -> u16 {
        match self {
            SmtpTls::Starttls => 587,
            SmtpTls::Implicit => 465,
            SmtpTls::None => 25,
        }
    }
}

/// A `type: email` channel: one SMTP submission per notification.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailChannel {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub from: Mailbox,
    pub to: Vec<Mailbox>,
    /// Extra trusted CA certificates (PEM), for a relay with a private CA.
    pub ca_file: Option<PathBuf>,
}

impl EmailChannel {
    fn redacted_url(&self) -> String {
        let scheme = match self.tls {
            SmtpTls::Implicit => "smtps",
            SmtpTls::Starttls | SmtpTls::None => "smtp",
        };
        let user = self
            .username
            .as_ref()
            .map(|user| format!("{user}@"))
            .unwrap_or_default();
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("{scheme}://{user}{host}:{}", self.port)
    }
}

/// Email addresses as a user writes them, one list item or several separated by commas:
/// `ops@example.org`, `Pat <pat@example.org>`, `"Doe, Jane" <jane@example.org>, b@example.org`.
pub fn parse_addresses(text: &str) -> Result<Vec<Mailbox>, String> {
    if text.trim().is_empty() {
        return Err("no address".to_string());
    }
    let mailboxes: Mailboxes = text.parse().map_err(|error: lettre::address::AddressError| {
        format!("{text:?} is not an email address ({error})")
    })?;
    Ok(mailboxes.into_iter().collect())
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_bot_token_in_a_webhook_url_is_never_shown() {
        let channel = WebhookChannel {
            format: WebhookFormat::Json,
            url: CameraUrl::new("https://api.telegram.org/bot123:SECRET/sendMessage"),
            token: None,
            chat_id: None,
            template: None,
            content_type: "application/json".to_string(),
        };
        assert_eq!(channel.redacted_url(), "https://api.telegram.org/***");
        assert!(!format!("{channel:?}").contains("SECRET"));
        assert!(!has_bot_token("https://example.org/robots/1:2"));
    }

    #[test]
    fn address_lists_take_names_and_quoted_commas() {
        let parsed = parse_addresses("\"Doe, Jane\" <jane@example.org>, ops@example.org").expect("valid");
        let shown: Vec<String> = parsed.iter().map(ToString::to_string).collect();
        assert_eq!(shown, vec!["\"Doe, Jane\" <jane@example.org>", "ops@example.org"]);
        assert!(parse_addresses("ops").is_err());
        assert!(parse_addresses(" ").is_err());
    }

    proptest! {
        #[test]
        fn any_text_is_an_answer_not_a_panic(text in "\\PC{0,60}") {
            let _ = parse_addresses(&text);
        }

        #[test]
        fn written_addresses_read_back(
            boxes in proptest::collection::vec(("[a-z0-9][a-z0-9_]{0,11}", "[a-z0-9]{1,10}\\.[a-z]{2,5}", proptest::option::of("[A-Za-z ,.]{1,16}")), 1..5)
        ) {
            let written: Vec<String> = boxes
                .iter()
                .map(|(local, domain, name)| match name {
                    Some(name) => format!("\"{name}\" <{local}@{domain}>"),
                    None => format!("{local}@{domain}"),
                })
                .collect();
            let parsed = parse_addresses(&written.join(", ")).expect("valid list");
            let emails: Vec<String> = parsed.iter().map(|m| m.email.to_string()).collect();
            let expected: Vec<String> = boxes.iter().map(|(l, d, _)| format!("{l}@{d}")).collect();
            prop_assert_eq!(emails, expected);
        }
    }
}
