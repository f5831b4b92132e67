//! `type: email` channels: the SMTP relay (host, port, TLS), its login, the sender and the
//! recipients; and which keys belong to which channel type.

use std::path::PathBuf;

use super::super::super::alerts::{parse_addresses, EmailChannel, Secret, SmtpTls};
use super::super::super::raw::{Field, RawChannel};
use super::super::Check;

/// The keys only an email channel has.
pub(super) const EMAIL_ONLY: &[&str] = &[
    "host", "port", "tls", "username", "password", "from", "to", "ca_file",
];
/// The keys only a webhook channel has.
const WEBHOOK_ONLY: &[&str] = &["url", "format", "token", "chat_id", "template", "content_type"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChannelType {
    Webhook,
    Email,
}

/// The line of `key` when the channel gives it.
fn given_line(raw: &RawChannel, key: &str) -> Option<usize> {
    fn line<T>(field: &Field<T>) -> Option<usize> {
        field.given().map(|given| given.line)
    }
    match key {
        "url" => line(&raw.url),
        "format" => line(&raw.format),
        "token" => line(&raw.token),
        "chat_id" => line(&raw.chat_id),
        "template" => line(&raw.template),
        "content_type" => line(&raw.content_type),
        "host" => line(&raw.host),
        "port" => line(&raw.port),
        "tls" => line(&raw.tls),
        "username" => line(&raw.username),
        "password" => line(&raw.password),
        "from" => line(&raw.from),
        "to" => line(&raw.to),
        "ca_file" => line(&raw.ca_file),
        _ => None,
    }
}

impl Check<'_> {
    /// Reports each of `keys` the channel gives: they belong to `kind` channels only.
    pub(super) fn misplaced(&mut self, raw: &RawChannel, keys: &[&str], kind: &str) {
        for key in keys {
            if let Some(line) = given_line(raw, key) {
                self.push(
                    line,
                    &raw.path(key),
                    format!("is a setting of `type: {kind}` channels"),
                );
            }
        }
    }

    pub(super) fn email_channel(&mut self, raw: &RawChannel) -> Option<EmailChannel> {
        self.misplaced(raw, WEBHOOK_ONLY, "webhook");
        let host = self.needs(
            raw,
            &raw.host,
            "host",
            "the SMTP server, such as smtp.example.org",
        );
        let tls = match &raw.tls {
            Field::Given(tls) => match SmtpTls::parse(tls.value.trim()) {
                Some(parsed) => Some(parsed),
                None => {
                    self.push(
                        tls.line,
                        &raw.path("tls"),
                        format!(
                            "unknown value {:?}; one of starttls (port 587), tls (port 465), none",
                            tls.value
                        ),
                    );
                    None
                }
            },
            Field::Missing => Some(SmtpTls::Starttls),
            Field::Invalid => None,
        };
        let port = match &raw.port {
            Field::Given(port) => match u16::try_from(port.value) {
                Ok(port @ 1..) => Some(Some(port)),
                _ => {
                    self.push(
                        port.line,
                        &raw.path("port"),
                        "must be between 1 and 65535".to_string(),
                    );
                    None
                }
            },
            Field::Missing => Some(None),
            Field::Invalid => None,
        };
        let username = raw.username.given().map(|user| user.value.trim().to_string());
        let password = raw
            .password
            .given()
            .map(|password| Secret::new(password.value.clone()));
        match (&username, &raw.password) {
            (Some(_), Field::Missing) => self.push(
                raw.line,
                &raw.path(""),
                "has `username:` but no `password:`".to_string(),
            ),
            (None, Field::Given(given)) => self.push(
                given.line,
                &raw.path("password"),
                "is given without `username:`".to_string(),
            ),
            _ => {}
        }
        let from = self
            .needs(
                raw,
                &raw.from,
                "from",
                "the sender, such as StreamPulse <cams@example.org>",
            )
            .and_then(|from| match parse_addresses(&from.value) {
                Ok(mut boxes) if boxes.len() == 1 => boxes.pop(),
                Ok(_) => {
                    self.push(from.line, &raw.path("from"), "must be one address".to_string());
                    None
                }
                Err(error) => {
                    self.push(from.line, &raw.path("from"), error);
                    None
                }
            });
        let to = match &raw.to {
            Field::Given(list) => {
                let mut all = Vec::new();
                let mut valid = true;
                for (index, item) in list.value.iter().enumerate() {
                    match parse_addresses(&item.value) {
                        Ok(boxes) => all.extend(boxes),
                        Err(error) => {
                            self.push(item.line, &format!("{}[{index}]", raw.path("to")), error);
                            valid = false;
                        }
                    }
                }
                if valid && all.is_empty() {
                    self.push(list.line, &raw.path("to"), "lists no address".to_string());
                }
                (valid && !all.is_empty()).then_some(all)
            }
            Field::Missing => {
                self.push(
                    raw.line,
                    &raw.path(""),
                    "needs `to:` (the recipients, such as [ops@example.org])".to_string(),
                );
                None
            }
            Field::Invalid => None,
        };
        let ca_file = raw.ca_file.given().and_then(|file| {
            let path = PathBuf::from(file.value.trim());
            match std::fs::read(&path) {
                Ok(pem) if lettre::transport::smtp::client::Certificate::from_pem(&pem).is_ok() => Some(path),
                Ok(_) => {
                    self.push(
                        file.line,
                        &raw.path("ca_file"),
                        format!("{} holds no PEM certificate", path.display()),
                    );
                    None
                }
                Err(error) => {
                    self.push(
                        file.line,
                        &raw.path("ca_file"),
                        format!("cannot read {}: {error}", path.display()),
                    );
                    None
                }
            }
        });
        if raw.ca_file.given().is_some() && ca_file.is_none() {
            return None;
        }
        let tls = tls?;
        Some(EmailChannel {
            host: host?.value.trim().to_string(),
            port: port?.unwrap_or_else(|| tls.default_port()),
            tls,
            username,
            password,
            from: from?,
            to: to?,
            ca_file,
        })
    }
}
