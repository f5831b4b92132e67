//! The `alerts:` section and `streams[N].alerts`: confirmation counts, flapping, retries and the
//! channels (each must be complete for its format; a template must compile).

use std::collections::HashSet;
use std::time::Duration;

use super::super::alerts::{AlertsConfig, ChannelConfig, ChannelKind, Secret, WebhookChannel, WebhookFormat};
use super::super::raw::{Field, RawAlerts, RawChannel, RawRules, Spanned};
use super::Check;

mod email;
use crate::alert::confirm::ConfirmRules;
use crate::url::CameraUrl;
use email::{ChannelType, EMAIL_ONLY};

/// Telegram's bot API, when a telegram channel gives no `url:`.
pub const TELEGRAM_API: &str = "https://api.telegram.org";
/// Most probes a confirmation may wait for.
const MAX_AFTER: i64 = 1_000;

impl Check<'_> {
    pub(super) fn alerts(&mut self, raw: &RawAlerts) -> AlertsConfig {
        let mut alerts = AlertsConfig {
            rules: self.rules(&ConfirmRules::default(), &raw.rules, "alerts."),
            ..AlertsConfig::default()
        };
        if let Field::Given(attempts) = &raw.retry_attempts {
            match u32::try_from(attempts.value) {
                Ok(count @ 1..=1_000) => alerts.retry_attempts = count,
                _ => self.push(
                    attempts.line,
                    "alerts.retry_attempts",
                    "must be between 1 and 1000".to_string(),
                ),
            }
        }
        let seconds = |check: &mut Self, field: &Field<f64>, name: &str, into: &mut Duration| {
            if let Field::Given(value) = field {
                if let Some(duration) = check.positive_seconds(value, name) {
                    *into = duration;
                }
            }
        };
        seconds(
            self,
            &raw.retry_first_seconds,
            "alerts.retry_first_seconds",
            &mut alerts.retry_first,
        );
        seconds(
            self,
            &raw.retry_max_seconds,
            "alerts.retry_max_seconds",
            &mut alerts.retry_max,
        );
        seconds(
            self,
            &raw.timeout_seconds,
            "alerts.timeout_seconds",
            &mut alerts.timeout,
        );
        if let Field::Given(url) = &raw.public_url {
            let text = url.value.trim();
            if text.starts_with("http://") || text.starts_with("https://") {
                alerts.public_url = Some(text.to_string());
            } else {
                self.push(
                    url.line,
                    "alerts.public_url",
                    "must start with http:// or https://".to_string(),
                );
            }
        }
        let mut names = HashSet::new();
        for channel in &raw.channels {
            if let Some(built) = self.channel(channel) {
                if !names.insert(built.name.clone()) {
                    self.push(
                        channel.line,
                        &channel.path("name"),
                        format!("channel name {:?} is used twice", built.name),
                    );
                }
                alerts.channels.push(built);
            }
        }
        alerts
    }

    /// `base` overridden by what `raw` gives; `prefix` is `alerts.` or `streams[N].alerts.`.
    pub(super) fn rules(&mut self, base: &ConfirmRules, raw: &RawRules, prefix: &str) -> ConfirmRules {
        let mut rules = *base;
        let count = |check: &mut Self, field: &Field<i64>, name: &str, into: &mut u32| {
            if let Field::Given(value) = field {
                match u32::try_from(value.value) {
                    Ok(n) if (1..=MAX_AFTER).contains(&value.value) => *into = n,
                    _ => check.push(
                        value.line,
                        &format!("{prefix}{name}"),
                        format!("must be between 1 and {MAX_AFTER}"),
                    ),
                }
            }
        };
        count(self, &raw.down_after, "down_after", &mut rules.down_after);
        count(self, &raw.up_after, "up_after", &mut rules.up_after);
        count(
            self,
            &raw.degraded_after,
            "degraded_after",
            &mut rules.degraded_after,
        );
        count(self, &raw.flap_changes, "flap_changes", &mut rules.flap_changes);
        if let Field::Given(minutes) = &raw.flap_minutes {
            if let Some(window) = self.positive_scaled(minutes, &format!("{prefix}flap_minutes"), 60.0) {
                rules.flap_window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
            }
        }
        rules
    }

    fn channel(&mut self, raw: &RawChannel) -> Option<ChannelConfig> {
        let name = match &raw.name {
            Field::Given(name) if !name.value.trim().is_empty() => Some(name.value.trim().to_string()),
            Field::Given(name) => {
                self.push(name.line, &raw.path("name"), "is empty".to_string());
                None
            }
            Field::Missing => {
                self.push(raw.line, &raw.path(""), "needs `name:`".to_string());
                None
            }
            Field::Invalid => None,
        };
        let kind = match &raw.kind {
            Field::Given(kind) => match kind.value.trim() {
                "webhook" => ChannelType::Webhook,
                "email" => ChannelType::Email,
                // One broker connection carries retained state, which is what MQTT consumers
                // read; an event channel beside it would be a second, weaker copy.
                "mqtt" => {
                    self.push(
                        kind.line,
                        &raw.path("type"),
                        "MQTT is set up in the top-level `mqtt:` section (a retained state topic per \
                         stream and Home Assistant discovery), not as a channel"
                            .to_string(),
                    );
                    return None;
                }
                other => {
                    self.push(
                        kind.line,
                        &raw.path("type"),
                        format!("unknown channel type {other:?}; one of webhook, email"),
                    );
                    return None;
                }
            },
            Field::Missing => ChannelType::Webhook,
            Field::Invalid => return None,
        };
        if kind == ChannelType::Email {
            let email = self.email_channel(raw);
            return Some(ChannelConfig {
                name: name?,
                kind: ChannelKind::Email(email?),
            });
        }
        self.misplaced(raw, EMAIL_ONLY, "email");
        let format = match &raw.format {
            Field::Given(format) => match WebhookFormat::parse(format.value.trim()) {
                Some(parsed) => Some(parsed),
                None => {
                    let known: Vec<&str> = WebhookFormat::ALL.iter().map(|f| f.as_str()).collect();
                    self.push(
                        format.line,
                        &raw.path("format"),
                        format!("unknown format {:?}; one of {}", format.value, known.join(", ")),
                    );
                    None
                }
            },
            Field::Missing => Some(WebhookFormat::Json),
            Field::Invalid => None,
        }?;
        let needs =
            |check: &mut Self, field: &Field<String>, key: &str, why: &str| check.needs(raw, field, key, why);
        let url_text = match (&raw.url, format) {
            (Field::Missing, WebhookFormat::Telegram) => Some(TELEGRAM_API.to_string()),
            _ => needs(self, &raw.url, "url", "the receiver's http:// or https:// URL").map(|url| {
                let scheme = CameraUrl::new(url.value.trim()).scheme();
                if !matches!(scheme.as_deref(), Some("http" | "https")) {
                    self.push(
                        url.line,
                        &raw.path("url"),
                        "must start with http:// or https://".to_string(),
                    );
                }
                url.value.trim().to_string()
            }),
        };
        let token = match format {
            WebhookFormat::Gotify => needs(self, &raw.token, "token", "the application token"),
            WebhookFormat::Telegram => needs(self, &raw.token, "token", "the bot token"),
            _ => raw.token.given().cloned(),
        };
        let chat_id = match format {
            WebhookFormat::Telegram => {
                needs(self, &raw.chat_id, "chat_id", "the chat to write to").map(|c| c.value)
            }
            _ => raw.chat_id.given().map(|c| c.value.clone()),
        };
        let template = match format {
            WebhookFormat::Template => needs(
                self,
                &raw.template,
                "template",
                "the body as a handlebars template",
            )
            .and_then(|template| {
                match handlebars::Handlebars::new().register_template_string("check", &template.value) {
                    Ok(()) => Some(template.value),
                    Err(error) => {
                        self.push(
                            template.line,
                            &raw.path("template"),
                            format!("is not a valid template: {error}"),
                        );
                        None
                    }
                }
            }),
            _ => None,
        };
        if format == WebhookFormat::Telegram && token.is_none()
            || format == WebhookFormat::Gotify && token.is_none()
        {
            return None;
        }
        if format == WebhookFormat::Template && template.is_none() {
            return None;
        }
        Some(ChannelConfig {
            name: name?,
            kind: ChannelKind::Webhook(WebhookChannel {
                format,
                url: CameraUrl::new(url_text?),
                token: token.map(|token| Secret::new(token.value)),
                chat_id,
                template,
                content_type: raw
                    .content_type
                    .given()
                    .map_or_else(|| "application/json".to_string(), |c| c.value.clone()),
            }),
        })
    }

    /// `field`, which the channel needs: reported (missing or empty) when it is not there.
    fn needs(
        &mut self,
        raw: &RawChannel,
        field: &Field<String>,
        key: &str,
        why: &str,
    ) -> Option<Spanned<String>> {
        match field {
            Field::Given(value) if !value.value.trim().is_empty() => Some(value.clone()),
            Field::Given(value) => {
                self.push(value.line, &raw.path(key), format!("is empty; {why}"));
                None
            }
            Field::Missing => {
                self.push(raw.line, &raw.path(""), format!("needs `{key}:` ({why})"));
                None
            }
            Field::Invalid => None,
        }
    }
}
