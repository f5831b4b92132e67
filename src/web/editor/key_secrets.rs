//! Secrets that are whole values, not URL passwords: any `password`, `token` or `secret` key
//! (`*_password`, `*_token` too) anywhere in the file (an email channel's SMTP password, a bot
//! token, `mqtt.password`), `self_check_url` (its path is the key), and the `url:` of a Discord
//! or Slack channel or one that carries a Telegram bot token in its path (`/bot123:ABC`). The editor shows each as a quoted numbered
//! marker (`password: "***3"`), numbered after the URL passwords of [`super::mask`].
//!
//! Found with the YAML parser, so a key in a flow mapping (`{password: x}`) or a quoted value is
//! found as well as a block one. A marker is put back only under the same key, in a mapping at
//! the same place (list positions aside) with the same `host`, `port` and `url`: a
//! secret moved to another server is refused, naming the line.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::HIDDEN;
use crate::config::has_bot_token;
use crate::url::CameraUrl;

/// Siblings that say where a secret is sent (a new user name on the same server is no risk).
const DESTINATION_KEYS: [&str; 3] = ["host", "port", "url"];

/// One secret value in a text.
#[derive(Debug, Clone)]
pub(super) struct KeySecret {
    /// Byte range of the value as written, quotes included.
    pub start: usize,
    pub end: usize,
    /// The value as YAML reads it.
    pub value: String,
    /// Where it may be restored: key, place and destination.
    pub owner: String,
}

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    matches!(key.as_str(), "password" | "token" | "secret")
        || key.ends_with("_password")
        || key.ends_with("_token")
        || key.ends_with("_secret")
}

/// Keys whose whole URL is a secret: a push-monitoring URL's path is its key.
fn is_secret_url_key(key: &str) -> bool {
    key == "self_check_url"
}

/// Whether a channel's `url` is itself the secret.
fn url_is_secret(url: &str, format: Option<&str>) -> bool {
    if matches!(format, Some("discord" | "slack")) {
        return true;
    }
    has_bot_token(url)
}

struct Value {
    key: String,
    start: usize,
    style: TScalarStyle,
    text: String,
}

enum Frame {
    Map {
        path: String,
        key: Option<String>,
        values: Vec<Value>,
    },
    Seq {
        path: String,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    /// Char index → byte index is done later; these are char indices.
    found: Vec<(usize, TScalarStyle, String, String)>,
}

impl Walker {
    /// The path of a new child of the top frame (the key consumed).
    fn child_path(&mut self) -> String {
        match self.stack.last_mut() {
            Some(Frame::Map { path, key, .. }) => format!("{path}.{}", key.take().unwrap_or_default()),
            Some(Frame::Seq { path }) => format!("{path}[]"),
            None => String::new(),
        }
    }

    fn close_map(&mut self, path: String, values: Vec<Value>) {
        let sibling = |name: &str| {
            values
                .iter()
                .find(|value| value.key == name)
                .map(|value| value.text.as_str())
        };
        let mut destination = String::new();
        for name in DESTINATION_KEYS {
            let shown = match sibling(name) {
                Some(url) if name == "url" => CameraUrl::new(url).without_credentials(),
                Some(other) => other.to_string(),
                None => continue,
            };
            destination.push_str(&format!(" {name}={shown}"));
        }
        let format = sibling("format");
        for value in &values {
            let secret = is_secret_key(&value.key)
                || is_secret_url_key(&value.key)
                || (value.key == "url" && url_is_secret(&value.text, format));
            if !secret || matches!(value.style, TScalarStyle::Literal | TScalarStyle::Folded) {
                continue;
            }
            // A secret URL restores only into itself: the URL is the destination.
            let owner = if value.key == "url" || is_secret_url_key(&value.key) {
                format!("{path}.{}", value.key)
            } else {
                format!("{path}.{}{destination}", value.key)
            };
            self.found
                .push((value.start, value.style, value.text.clone(), owner));
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, event: Event, mark: Marker) {
        match event {
            Event::MappingStart(..) => {
                let path = self.child_path();
                self.stack.push(Frame::Map {
                    path,
                    key: None,
                    values: Vec::new(),
                });
            }
            Event::SequenceStart(..) => {
                let path = self.child_path();
                self.stack.push(Frame::Seq { path });
            }
            Event::MappingEnd => {
                if let Some(Frame::Map { path, values, .. }) = self.stack.pop() {
                    self.close_map(path, values);
                }
            }
            Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(text, style, ..) => {
                if let Some(Frame::Map { key, values, .. }) = self.stack.last_mut() {
                    match key.take() {
                        None => *key = Some(text),
                        Some(name) => values.push(Value {
                            key: name,
                            start: mark.index(),
                            style,
                            text,
                        }),
                    }
                }
            }
            Event::Alias(_) => {
                let _ = self.child_path();
            }
            _ => {}
        }
    }
}

/// Where a scalar written at byte `start` ends.
fn scalar_end(text: &str, start: usize, style: TScalarStyle, in_flow: bool) -> usize {
    let rest = &text[start..];
    match style {
        TScalarStyle::DoubleQuoted => {
            let mut escaped = false;
            for (offset, c) in rest.char_indices().skip(1) {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => return start + offset + 1,
                    _ => escaped = false,
                }
            }
            text.len()
        }
        TScalarStyle::SingleQuoted => {
            let bytes = rest.as_bytes();
            let mut index = 1;
            while index < bytes.len() {
                if bytes[index] == b'\'' {
                    if bytes.get(index + 1) == Some(&b'\'') {
                        index += 2;
                        continue;
                    }
                    return start + index + 1;
                }
                index += 1;
            }
            text.len()
        }
        _ => {
            let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
            let line = &rest[..line_end];
            let mut end = line.find(" #").unwrap_or(line.len());
            if in_flow {
                end = end.min(line.find([',', '}', ']']).unwrap_or(line.len()));
            }
            start + line[..end].trim_end().len()
        }
    }
}

/// Every secret value of `text`, in file order; `None` when it is not YAML.
fn parsed_secrets(text: &str) -> Option<Vec<KeySecret>> {
    let mut walker = Walker::default();
    crate::config::read_yaml_events(text, &mut walker, false).ok()?;
    let byte_of: HashMap<usize, usize> = walker
        .found
        .iter()
        .map(|(char_index, ..)| *char_index)
        .map(|char_index| {
            (
                char_index,
                text.char_indices()
                    .nth(char_index)
                    .map_or(text.len(), |(byte, _)| byte),
            )
        })
        .collect();
    let mut found: Vec<KeySecret> = walker
        .found
        .into_iter()
        .map(|(char_index, style, value, owner)| {
            let start = byte_of.get(&char_index).copied().unwrap_or(text.len());
            // A plain value inside `{...}` or `[...]` ends at the next `,`, `}` or `]`.
            let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
            let in_flow = text[line_start..start].contains(['{', '[']);
            KeySecret {
                start,
                end: scalar_end(text, start, style, in_flow),
                value,
                owner,
            }
        })
        .collect();
    found.sort_by_key(|secret| secret.start);
    Some(found)
}

/// Every secret value of `text`, in file order; none when it is not YAML.
pub(super) fn key_secrets(text: &str) -> Vec<KeySecret> {
    parsed_secrets(text).unwrap_or_default()
}

/// Text that is not YAML (a file broken by hand): where values are is unknown, so the rest of
/// every line holding a secret key (`password:`, `token:`, ...) is hidden, and nothing can be
/// restored from it (the save fails validation anyway).
fn mask_secret_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let mut cut = None;
            for (at, _) in line.match_indices(':') {
                let before = &line[..at];
                let key_start = before
                    .char_indices()
                    .rev()
                    .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
                    .map_or(0, |(i, c)| i + c.len_utf8());
                let key = &before[key_start..];
                if is_secret_key(key) || is_secret_url_key(key) {
                    cut = Some(at + 1);
                    break;
                }
            }
            match cut {
                Some(at) => {
                    let newline = if line.ends_with('\n') { "\n" } else { "" };
                    format!("{} \"{HIDDEN}\"{newline}", &line[..at])
                }
                None => line.to_string(),
            }
        })
        .collect()
}

/// `text` with each secret value replaced by `"***n"`, numbered from `first`.
pub(super) fn mask_values(text: &str, first: usize) -> String {
    if parsed_secrets(text).is_none() {
        return mask_secret_lines(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (index, secret) in key_secrets(text).iter().enumerate() {
        out.push_str(&text[copied..secret.start]);
        out.push_str(&format!("\"{HIDDEN}{}\"", first + index));
        copied = secret.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Puts back the values `original` had where `submitted` holds markers (`***n` numbered from
/// `first`, or a bare `***` when exactly one secret of the file has the same owner).
pub(super) fn unmask_values(original: &str, submitted: &str, first: usize) -> Result<String, Vec<String>> {
    let known = key_secrets(original);
    let mut out = String::with_capacity(submitted.len());
    let mut problems = Vec::new();
    let mut copied = 0;
    for secret in key_secrets(submitted) {
        let Some(marker) = secret.value.strip_prefix(HIDDEN) else {
            continue;
        };
        let line = submitted[..secret.start].matches('\n').count() + 1;
        let from = if marker.is_empty() {
            let mut same = known.iter().filter(|k| k.owner == secret.owner);
            match (same.next(), same.next()) {
                (Some(only), None) => Some(only),
                _ => {
                    problems.push(format!(
                        "line {line}: this hidden value ({HIDDEN}) cannot be matched to one of the \
                         file; type it, or show passwords first"
                    ));
                    continue;
                }
            }
        } else {
            marker
                .parse::<usize>()
                .ok()
                .and_then(|number| number.checked_sub(first))
                .and_then(|index| known.get(index))
        };
        match from {
            Some(from) if from.owner == secret.owner => {
                out.push_str(&submitted[copied..secret.start]);
                out.push_str(&original[from.start..from.end]);
                copied = secret.end;
            }
            Some(_) => problems.push(format!(
                "line {line}: the hidden value {} belongs to another setting or server, so it \
                 cannot be restored here; type it, or show passwords first",
                secret.value
            )),
            None => problems.push(format!(
                "line {line}: there is no hidden value {} in the file, so it cannot be restored; \
                 type it, or show passwords first",
                secret.value
            )),
        }
    }
    out.push_str(&submitted[copied..]);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "alerts:\n  channels:\n    - name: mail\n      type: email\n      host: smtp.example.org\n      \
                        username: cams\n      password: 'pa''ss # not a comment'\n      from: a@example.org\n      to: [b@example.org]\n    \
                        - {name: bot, format: telegram, token: \"123:ABC\", chat_id: 5}\n    \
                        - {name: chat, format: discord, url: https://discord.com/api/webhooks/1/SECRETPATH}\n\
                        mqtt:\n  host: broker\n  password: mq-pw # the broker's\nself_check_url: https://hc-ping.com/uuid-secret\nstreams: []\n";

    #[test]
    fn every_secret_value_is_found_whole() {
        let values: Vec<String> = key_secrets(FILE).into_iter().map(|s| s.value).collect();
        assert_eq!(
            values,
            vec![
                "pa'ss # not a comment",
                "123:ABC",
                "https://discord.com/api/webhooks/1/SECRETPATH",
                "mq-pw",
                "https://hc-ping.com/uuid-secret"
            ]
        );
        let masked = mask_values(FILE, 1);
        for secret in ["pa'ss", "123:ABC", "SECRETPATH", "mq-pw", "uuid-secret"] {
            assert!(!masked.contains(secret), "{secret} in {masked}");
        }
        assert!(masked.contains("password: \"***1\"\n"), "{masked}");
        assert!(masked.contains("token: \"***2\", chat_id"), "{masked}");
        assert!(masked.contains("password: \"***4\" # the broker's"), "{masked}");
        assert_eq!(unmask_values(FILE, &masked, 1).as_deref(), Ok(FILE));
    }

    #[test]
    fn a_marker_moved_to_another_server_is_refused() {
        let masked = mask_values(FILE, 1).replace("host: broker", "host: evil.example");
        let problems = unmask_values(FILE, &masked, 1).expect_err("refused");
        assert!(
            problems[0].starts_with("line 14: the hidden value ***4 belongs to another"),
            "{problems:?}"
        );
        let typed = mask_values(FILE, 1).replace("\"***4\"", "new-pw");
        assert!(unmask_values(FILE, &typed, 1)
            .expect("typed")
            .contains("password: new-pw"));
    }

    #[test]
    fn a_file_that_is_not_yaml_still_hides_every_secret_line() {
        let broken =
            "mqtt:\n  password: mq-pw\n  host: [unclosed\nalerts: {channels: [{name: m, token: tk-1}\n";
        let masked = mask_values(broken, 1);
        assert!(!masked.contains("mq-pw") && !masked.contains("tk-1"), "{masked}");
        assert!(
            masked.starts_with("mqtt:\n  password: \"***\"\n  host: [unclosed\n"),
            "{masked}"
        );
    }

    #[test]
    fn a_telegram_token_in_a_url_path_is_a_secret() {
        assert!(url_is_secret(
            "https://api.telegram.org/bot123:ABC/sendMessage",
            Some("json")
        ));
        assert!(!url_is_secret("https://example.org/robots/1:2", None));
    }
}
