//! Secrets written as plain YAML values rather than inside a URL (`mqtt.password`): the editor
//! shows each as `"***"` and a save puts the file's value back where the text still says `***`.
//! A value typed over the marker is saved as typed. Found from the YAML events, so quoting,
//! comments and flow mappings (`mqtt: {password: x}`) are all handled.
//!
//! When the text is not valid YAML the events cannot say where values are, so every
//! `password:` line is masked instead (and nothing can be restored: the save fails validation
//! anyway).

use yaml_rust2::parser::Event;
use yaml_rust2::scanner::TScalarStyle;

use super::{skip_node, Events};
use crate::config::read_yaml_events;

/// What the editor shows in place of a secret value.
pub const HIDDEN_VALUE: &str = "\"***\"";

/// Key paths whose values are secrets.
const SECRET_KEYS: &[(&str, &str)] = &[("mqtt", "password")];

/// One secret value in a text: its key path, its value, and its source bytes.
#[derive(Debug)]
struct Span {
    path: String,
    value: String,
    start: usize,
    end: usize,
    line: usize,
}

/// Byte index of the `chars`-th character.
fn byte_at(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(byte, _)| byte)
}

/// Where the scalar starting at byte `start` ends in the source.
fn scalar_end(text: &str, start: usize, style: TScalarStyle, value: &str, next: usize) -> usize {
    let rest = &text[start..];
    match style {
        TScalarStyle::Plain if rest.starts_with(value) => start + value.len(),
        TScalarStyle::SingleQuoted => {
            let mut chars = rest.char_indices().skip(1).peekable();
            while let Some((index, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().is_some_and(|(_, next)| *next == '\'') {
                        chars.next();
                    } else {
                        return start + index + 1;
                    }
                }
            }
            text.len()
        }
        TScalarStyle::DoubleQuoted => {
            let mut escaped = false;
            for (index, c) in rest.char_indices().skip(1) {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '"' => return start + index + 1,
                    _ => {}
                }
            }
            text.len()
        }
        // A folded plain value or a block scalar: up to the next token, less trailing space.
        _ => start + text[start..next.max(start)].trim_end().len(),
    }
}

/// Every secret value in `text`, in order; `None` when the text is not valid YAML.
fn spans(text: &str) -> Option<Vec<Span>> {
    let mut events = Events::default();
    read_yaml_events(text, &mut events, false).ok()?;
    let events = events.0;
    let mut found = Vec::new();
    let Some(root) = events
        .iter()
        .position(|(e, _)| matches!(e, Event::MappingStart(..)))
    else {
        return Some(found);
    };
    let entries = |from: usize| {
        let mut pairs = Vec::new();
        let mut i = from;
        while i < events.len() && !matches!(events[i].0, Event::MappingEnd) {
            let value = skip_node(&events, i);
            pairs.push((i, value));
            i = skip_node(&events, value);
        }
        pairs
    };
    for (key, value) in entries(root + 1) {
        let Event::Scalar(section, ..) = &events[key].0 else {
            continue;
        };
        if !matches!(events.get(value), Some((Event::MappingStart(..), _))) {
            continue;
        }
        for (inner_key, inner_value) in entries(value + 1) {
            let (Event::Scalar(name, ..), Some((Event::Scalar(secret, style, ..), mark))) =
                (&events[inner_key].0, events.get(inner_value))
            else {
                continue;
            };
            let is_secret = SECRET_KEYS.iter().any(|(s, k)| s == section && k == name);
            let is_null =
                *style == TScalarStyle::Plain && ["", "~", "null", "Null", "NULL"].contains(&secret.as_str());
            if !is_secret || is_null {
                continue;
            }
            let mut start = byte_at(text, mark.index());
            if matches!(style, TScalarStyle::Literal | TScalarStyle::Folded) {
                // A block scalar's mark is at its content: start at its `|` or `>` instead.
                let key_start = byte_at(text, events[inner_key].1.index());
                if let Some(indicator) = text[key_start..start].find(['|', '>']) {
                    start = key_start + indicator;
                }
            }
            let next = events
                .get(inner_value + 1)
                .map_or(text.len(), |(_, next)| byte_at(text, next.index()));
            found.push(Span {
                path: format!("{section}.{name}"),
                value: secret.clone(),
                start,
                end: scalar_end(text, start, *style, secret, next),
                line: mark.line(),
            });
        }
    }
    Some(found)
}

/// `text` with every secret value shown as [`HIDDEN_VALUE`].
pub fn mask_values(text: &str) -> String {
    let Some(spans) = spans(text) else {
        return mask_password_lines(text);
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for span in spans {
        out.push_str(&text[copied..span.start]);
        out.push_str(HIDDEN_VALUE);
        copied = span.end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Invalid YAML: every `password:` line's value hidden, whatever it belongs to.
fn mask_password_lines(text: &str) -> String {
    text.split_inclusive('\n')
        .map(|line| {
            let trimmed = line.trim_start();
            match trimmed.strip_prefix("password:") {
                Some(value) if !value.trim().is_empty() => {
                    let indent = &line[..line.len() - trimmed.len()];
                    let newline = if line.ends_with('\n') { "\n" } else { "" };
                    format!("{indent}password: {HIDDEN_VALUE}{newline}")
                }
                _ => line.to_string(),
            }
        })
        .collect()
}

/// Puts the file's secret values back where the submitted text still shows `***`.
pub fn unmask_values(original: &str, submitted: &str) -> Result<String, Vec<String>> {
    let Some(shown) = spans(submitted) else {
        // Not YAML: validation refuses it with the line of the syntax error.
        return Ok(submitted.to_string());
    };
    let known = spans(original).unwrap_or_default();
    let mut out = String::with_capacity(submitted.len());
    let mut problems = Vec::new();
    let mut copied = 0;
    for span in shown.iter().filter(|span| span.value == "***") {
        match known.iter().find(|known| known.path == span.path) {
            Some(real) => {
                out.push_str(&submitted[copied..span.start]);
                out.push_str(&original[real.start..real.end]);
                copied = span.end;
            }
            None => problems.push(format!(
                "line {}: {} is hidden (***) but the file has none to restore; type it",
                span.line, span.path
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
    use proptest::prelude::*;

    const FILE: &str = "heartbeat_seconds: 15\nmqtt:\n  enabled: true\n  host: broker\n  username: pulse\n  \
                        password: \"s3cr'et\\\"x\"   # the broker's\n  topic: a/b\nstreams: []\n";

    #[test]
    fn the_mqtt_password_is_hidden_and_restored() {
        let masked = mask_values(FILE);
        assert!(!masked.contains("s3cr"), "{masked}");
        assert!(
            masked.contains("  password: \"***\"   # the broker's\n"),
            "{masked}"
        );
        let edited = masked.replace("host: broker", "host: broker2");
        assert_eq!(
            unmask_values(FILE, &edited),
            Ok(FILE.replace("host: broker", "host: broker2"))
        );
        let typed = masked.replace("\"***\"", "new-one");
        assert_eq!(unmask_values(FILE, &typed), Ok(typed.clone()));
    }

    #[test]
    fn every_quoting_and_flow_style_is_found() {
        for (file, secret) in [
            ("mqtt:\n  password: plain-pw\n", "plain-pw"),
            ("mqtt:\n  password: 'it''s'\n", "it''s"),
            ("mqtt: {host: h, password: flow-pw, qos: 1}\n", "flow-pw"),
            ("mqtt:\n  password: 1234\n", "1234"),
            ("mqtt:\n  password: |\n    block-pw\nstreams: []\n", "block-pw"),
        ] {
            let masked = mask_values(file);
            assert!(!masked.contains(secret), "{masked}");
            assert_eq!(unmask_values(file, &masked).as_deref(), Ok(file), "{masked}");
        }
        assert_eq!(
            mask_values("mqtt:\n  password: null\n"),
            "mqtt:\n  password: null\n"
        );
        assert_eq!(mask_values("web:\n  password: x\n"), "web:\n  password: x\n");
        // Not YAML: every password line hidden all the same.
        assert_eq!(
            mask_values("mqtt:\n  password: [oops\n"),
            "mqtt:\n  password: \"***\"\n"
        );
    }

    #[test]
    fn a_marker_without_a_password_in_the_file_is_refused() {
        let problems = unmask_values("mqtt:\n  host: h\n", "mqtt:\n  host: h\n  password: \"***\"\n")
            .expect_err("nothing to restore");
        assert_eq!(
            problems,
            ["line 3: mqtt.password is hidden (***) but the file has none to restore; type it"]
        );
    }

    proptest! {
        #[test]
        fn any_password_is_hidden_and_comes_back(password in "[ -~]{1,30}") {
            prop_assume!(password != "***");
            let quoted = serde_json::to_string(&password).expect("JSON string");
            let file = format!("mqtt:\n  host: h\n  password: {quoted}\n  qos: 0\n");
            let masked = mask_values(&file);
            prop_assert!(!masked.contains(&quoted));
            prop_assert_eq!(unmask_values(&file, &masked), Ok(file.clone()));
        }
    }
}
