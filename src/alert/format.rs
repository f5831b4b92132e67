//! The body and headers of each webhook format, as the real service expects them:
//! `json` (the [`Notification`] itself), ntfy (JSON publish to the server's root, topic from the
//! URL's last segment), Gotify (`POST /message` with `X-Gotify-Key`), Discord (`content`),
//! Slack (`text`), Telegram (`POST /bot<token>/sendMessage`) and `template` (a user handlebars
//! template over the notification's fields).

use serde_json::json;

use super::webhook::Post;
use super::{Event, Notification};
use crate::config::{WebhookChannel, WebhookFormat};

/// Discord refuses `content` longer than this.
const DISCORD_MAX_CHARS: usize = 2000;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("the channel has no {0}")]
    Missing(&'static str),
    #[error("the template failed: {0}")]
    Template(String),
    #[error("cannot encode the body: {0}")]
    Json(#[from] serde_json::Error),
}

/// The request `channel` sends for `notification`.
pub fn build(channel: &WebhookChannel, notification: &Notification) -> Result<Post, FormatError> {
    let url = channel.url.expose().trim_end_matches('/').to_string();
    let json_post = |url: String, body: serde_json::Value| -> Result<Post, FormatError> {
        Ok(Post {
            url,
            headers: vec![("content-type", "application/json".to_string())],
            body: serde_json::to_vec(&body)?,
        })
    };
    let text = text_with_link(notification);
    match channel.format {
        WebhookFormat::Json => Ok(Post {
            url: channel.url.expose().to_string(),
            headers: vec![("content-type", "application/json".to_string())],
            body: serde_json::to_vec(notification)?,
        }),
        WebhookFormat::Ntfy => {
            let (base, topic) = url
                .rsplit_once('/')
                .ok_or(FormatError::Missing("topic in its URL"))?;
            let mut body = json!({
                "topic": topic,
                "title": notification.title,
                "message": notification.text,
                "priority": if urgent(notification) { 4 } else { 3 },
                "tags": [tag(notification)],
            });
            if let Some(link) = &notification.link {
                body["click"] = json!(link);
            }
            let mut post = json_post(format!("{base}/"), body)?;
            if let Some(token) = &channel.token {
                post.headers
                    .push(("authorization", format!("Bearer {}", token.expose())));
            }
            Ok(post)
        }
        WebhookFormat::Gotify => {
            let token = channel.token.as_ref().ok_or(FormatError::Missing("token"))?;
            let mut body = json!({
                "title": notification.title,
                "message": notification.text,
                "priority": if urgent(notification) { 8 } else { 4 },
            });
            if let Some(link) = &notification.link {
                body["extras"] = json!({"client::notification": {"click": {"url": link}}});
            }
            let mut post = json_post(format!("{url}/message"), body)?;
            post.headers.push(("x-gotify-key", token.expose().to_string()));
            Ok(post)
        }
        WebhookFormat::Discord => {
            let content: String = text.chars().take(DISCORD_MAX_CHARS).collect();
            json_post(
                channel.url.expose().to_string(),
                json!({"username": "StreamPulse", "content": content}),
            )
        }
        WebhookFormat::Slack => json_post(channel.url.expose().to_string(), json!({"text": text})),
        WebhookFormat::Telegram => {
            let token = channel.token.as_ref().ok_or(FormatError::Missing("token"))?;
            let chat_id = channel.chat_id.as_ref().ok_or(FormatError::Missing("chat_id"))?;
            json_post(
                format!("{url}/bot{}/sendMessage", token.expose()),
                json!({"chat_id": chat_id, "text": text, "disable_web_page_preview": true}),
            )
        }
        WebhookFormat::Template => {
            let template = channel
                .template
                .as_ref()
                .ok_or(FormatError::Missing("template"))?;
            let mut handlebars = handlebars::Handlebars::new();
            // Values land inside the user's body: JSON-escaped in a JSON body, as they are otherwise.
            if channel.content_type.contains("json") {
                handlebars.register_escape_fn(json_escape);
            } else {
                handlebars.register_escape_fn(handlebars::no_escape);
            }
            let body = handlebars
                .render_template(template, notification)
                .map_err(|error| FormatError::Template(error.to_string()))?;
            Ok(Post {
                url: channel.url.expose().to_string(),
                headers: vec![("content-type", channel.content_type.clone())],
                body: body.into_bytes(),
            })
        }
    }
}

/// The text, and the stream's page when known (chat services show it as a link).
fn text_with_link(notification: &Notification) -> String {
    match &notification.link {
        Some(link) => format!("{}\n{link}", notification.text),
        None => notification.text.clone(),
    }
}

/// Down and flapping wake people; recoveries and tests do not.
fn urgent(notification: &Notification) -> bool {
    match notification.event {
        Event::Flapping => true,
        Event::Change => notification.new_state == "down",
        Event::Stable | Event::Test => false,
    }
}

/// ntfy's emoji tag.
fn tag(notification: &Notification) -> &'static str {
    match (notification.event, notification.new_state.as_str()) {
        (Event::Flapping, _) => "warning",
        (Event::Test, _) => "test_tube",
        (_, "down") => "rotating_light",
        (_, "degraded") => "warning",
        _ => "white_check_mark",
    }
}

/// A string's JSON escaping without the quotes around it.
fn json_escape(text: &str) -> String {
    let quoted = serde_json::to_string(text).unwrap_or_default();
    quoted
        .strip_prefix('"')
        .and_then(|inner| inner.strip_suffix('"'))
        .unwrap_or_default()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_escape_keeps_a_template_body_valid() {
        assert_eq!(json_escape("a \"b\"\n"), "a \\\"b\\\"\\n");
    }
}
