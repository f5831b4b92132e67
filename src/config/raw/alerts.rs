//! The `alerts:` section (confirmation counts, flapping, delivery retries, channels) and the
//! same confirmation keys inside a stream (`streams[N].alerts:`).

use super::super::tree::{Node, Value};
use super::values::Shape;
use super::{join, Field, Spanned};

pub(crate) const RULE_KEYS: &[&str] = &[
    "down_after",
    "up_after",
    "degraded_after",
    "flap_changes",
    "flap_minutes",
];

pub(crate) const ALERTS_KEYS: &[&str] = &[
    "down_after",
    "up_after",
    "degraded_after",
    "flap_changes",
    "flap_minutes",
    "retry_attempts",
    "retry_first_seconds",
    "retry_max_seconds",
    "timeout_seconds",
    "public_url",
    "channels",
];

pub(crate) const CHANNEL_KEYS: &[&str] = &[
    "name",
    "type",
    "url",
    "format",
    "token",
    "chat_id",
    "template",
    "content_type",
    "host",
    "port",
    "tls",
    "username",
    "password",
    "from",
    "to",
    "ca_file",
];

/// Confirmation counts and flapping; every key optional.
#[derive(Debug, Default)]
pub(crate) struct RawRules {
    pub down_after: Field<i64>,
    pub up_after: Field<i64>,
    pub degraded_after: Field<i64>,
    pub flap_changes: Field<i64>,
    pub flap_minutes: Field<f64>,
}

#[derive(Debug, Default)]
pub(crate) struct RawAlerts {
    pub rules: RawRules,
    pub retry_attempts: Field<i64>,
    pub retry_first_seconds: Field<f64>,
    pub retry_max_seconds: Field<f64>,
    pub timeout_seconds: Field<f64>,
    pub public_url: Field<String>,
    pub channels: Vec<RawChannel>,
}

#[derive(Debug, Default)]
pub(crate) struct RawChannel {
    pub index: usize,
    pub line: usize,
    pub name: Field<String>,
    pub kind: Field<String>,
    pub url: Field<String>,
    pub format: Field<String>,
    pub token: Field<String>,
    pub chat_id: Field<String>,
    pub template: Field<String>,
    pub content_type: Field<String>,
    // type: email
    pub host: Field<String>,
    pub port: Field<i64>,
    pub tls: Field<String>,
    pub username: Field<String>,
    pub password: Field<String>,
    pub from: Field<String>,
    pub to: Field<Vec<Spanned<String>>>,
    pub ca_file: Field<String>,
}

impl RawChannel {
    /// `alerts.channels[2]`, or `alerts.channels[2].url` with a key.
    pub fn path(&self, key: &str) -> String {
        let base = format!("alerts.channels[{}]", self.index);
        if key.is_empty() {
            base
        } else {
            join(&base, key)
        }
    }
}

impl Shape<'_> {
    pub(super) fn alerts(&mut self, node: &Node, line: usize) -> RawAlerts {
        let mut alerts = RawAlerts::default();
        if !self.is_mapping(
            node,
            line,
            "alerts",
            "a mapping of alert settings (down_after:, channels:, ...)",
        ) {
            return alerts;
        }
        for (key, entry) in self.known_entries(node, "alerts", ALERTS_KEYS) {
            let line = entry.key.line;
            let value = &entry.value;
            let field = join("alerts", &key);
            match key.as_str() {
                "retry_attempts" => alerts.retry_attempts = self.whole(value, line, &field, "a whole number"),
                "retry_first_seconds" => {
                    alerts.retry_first_seconds = self.number(value, line, &field, "a number of seconds")
                }
                "retry_max_seconds" => {
                    alerts.retry_max_seconds = self.number(value, line, &field, "a number of seconds")
                }
                "timeout_seconds" => {
                    alerts.timeout_seconds = self.number(value, line, &field, "a number of seconds")
                }
                "public_url" => {
                    alerts.public_url = self.text(
                        value,
                        line,
                        &field,
                        "the dashboard's address, such as https://cams.example.org",
                    )
                }
                "channels" => alerts.channels = self.channels(value, line),
                _ => self.rule(&mut alerts.rules, &key, value, line, &field),
            }
        }
        alerts
    }

    /// `streams[N].alerts:` — the confirmation keys only.
    pub(super) fn stream_alert_rules(&mut self, node: &Node, line: usize, parent: &str) -> RawRules {
        let mut rules = RawRules::default();
        if !self.is_mapping(node, line, parent, "a mapping such as {down_after: 3}") {
            return rules;
        }
        for (key, entry) in self.known_entries(node, parent, RULE_KEYS) {
            let field = join(parent, &key);
            self.rule(&mut rules, &key, &entry.value, entry.key.line, &field);
        }
        rules
    }

    fn rule(&mut self, rules: &mut RawRules, key: &str, value: &Node, line: usize, field: &str) {
        match key {
            "down_after" => rules.down_after = self.whole(value, line, field, "a whole number of probes"),
            "up_after" => rules.up_after = self.whole(value, line, field, "a whole number of probes"),
            "degraded_after" => {
                rules.degraded_after = self.whole(value, line, field, "a whole number of probes")
            }
            "flap_changes" => {
                rules.flap_changes = self.whole(value, line, field, "a whole number of changes")
            }
            "flap_minutes" => rules.flap_minutes = self.number(value, line, field, "a number of minutes"),
            _ => {}
        }
    }

    fn channels(&mut self, node: &Node, line: usize) -> Vec<RawChannel> {
        let items = match &node.value {
            Value::Null => return Vec::new(),
            Value::Seq(items) => items,
            _ => {
                self.type_problem(
                    node,
                    line,
                    "alerts.channels",
                    "a list of channels, each starting with `- name:`",
                );
                return Vec::new();
            }
        };
        let mut channels = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let mut channel = RawChannel {
                index,
                line: item.line,
                ..RawChannel::default()
            };
            let parent = channel.path("");
            if !matches!(item.value, Value::Map(_)) {
                self.type_problem(
                    item,
                    item.line,
                    &parent,
                    "a channel (`name:`, `type:`, `url:` lines)",
                );
                continue;
            }
            for (key, entry) in self.known_entries(item, &parent, CHANNEL_KEYS) {
                let line = entry.key.line;
                let value = &entry.value;
                let field = channel.path(&key);
                match key.as_str() {
                    "port" => {
                        channel.port = self.whole(value, line, &field, "a port number such as 587");
                        continue;
                    }
                    "to" => {
                        channel.to = self.text_list(
                            value,
                            line,
                            &field,
                            "a list of addresses such as [ops@example.org, \"Pat <pat@example.org>\"]",
                            "an email address",
                        );
                        continue;
                    }
                    _ => {}
                }
                // Numbers are read as written: a chat id, or a password of digits.
                let read = if matches!(key.as_str(), "chat_id" | "password" | "username" | "token") {
                    self.label(value, line, &field)
                } else {
                    self.text(value, line, &field, "a text")
                };
                match key.as_str() {
                    "name" => channel.name = read,
                    "type" => channel.kind = read,
                    "url" => channel.url = read,
                    "format" => channel.format = read,
                    "token" => channel.token = read,
                    "chat_id" => channel.chat_id = read,
                    "template" => channel.template = read,
                    "content_type" => channel.content_type = read,
                    "host" => channel.host = read,
                    "tls" => channel.tls = read,
                    "username" => channel.username = read,
                    "password" => channel.password = read,
                    "from" => channel.from = read,
                    "ca_file" => channel.ca_file = read,
                    _ => {}
                }
            }
            channels.push(channel);
        }
        channels
    }
}
