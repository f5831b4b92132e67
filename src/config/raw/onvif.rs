//! A stream's `onvif:` (the camera clock check: `true`, or `{host, port, user, password}`) and
//! `max_clock_skew:` (here or at the top level): seconds, or text such as `90s`, `4m`, `1h`,
//! `4m 12s`.

use super::super::tree::{Node, Value};
use super::values::Shape;
use super::{join, Field, Spanned};

pub(crate) const ONVIF_KEYS: &[&str] = &["host", "port", "user", "password"];

/// `onvif:` as written.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) enum RawOnvif {
    /// Absent, or `onvif: false`.
    #[default]
    Off,
    /// `onvif: true`: the stream URL's host on port 80, with the stream's credentials.
    FromUrl { line: usize },
    /// `onvif: {...}`: each key overrides what `true` would take.
    Explicit {
        line: usize,
        host: Field<String>,
        port: Field<i64>,
        user: Field<String>,
        password: Field<String>,
    },
}

/// `90`, `90.5`, `"90s"`, `"4m"`, `"4 min 12 s"`, `"1h"` → seconds; `None` when not a duration.
pub(crate) fn duration_seconds(text: &str) -> Option<f64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(seconds) = text.parse::<f64>() {
        return seconds.is_finite().then_some(seconds);
    }
    let mut total = 0.0;
    let mut rest = text;
    while !rest.is_empty() {
        let number_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..number_end].parse().ok()?;
        rest = rest[number_end..].trim_start();
        let unit_end = rest
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
            "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
            "h" | "hour" | "hours" => 3600.0,
            _ => return None,
        };
        total += number * scale;
        rest = rest[unit_end..].trim_start();
    }
    total.is_finite().then_some(total)
}

impl Shape<'_> {
    /// `max_clock_skew:` as seconds.
    pub(super) fn clock_skew(&mut self, node: &Node, line: usize, field: &str) -> Field<f64> {
        let expected = "a duration such as 60 (seconds), \"90s\" or \"4m\"";
        match &node.value {
            Value::Null => Field::Missing,
            Value::Int(_) | Value::Float(_) => self.number(node, line, field, expected),
            Value::Str(text) => match duration_seconds(text) {
                Some(value) => Field::Given(Spanned { value, line }),
                None => {
                    self.type_problem(node, line, field, expected);
                    Field::Invalid
                }
            },
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    pub(super) fn onvif(&mut self, node: &Node, line: usize, field: &str) -> RawOnvif {
        let expected = "true, or a mapping such as {host: 192.0.2.10, port: 80, user: admin, password: ...}";
        match &node.value {
            Value::Null | Value::Bool(false) => RawOnvif::Off,
            Value::Bool(true) => RawOnvif::FromUrl { line },
            Value::Map(_) => {
                let (mut host, mut port, mut user, mut password) =
                    (Field::Missing, Field::Missing, Field::Missing, Field::Missing);
                for (key, entry) in self.known_entries(node, field, ONVIF_KEYS) {
                    let (line, value, field) = (entry.key.line, &entry.value, join(field, &key));
                    match key.as_str() {
                        "host" => host = self.label(value, line, &field),
                        "port" => port = self.whole(value, line, &field, "a port number"),
                        "user" => user = self.label(value, line, &field),
                        "password" => password = self.label(value, line, &field),
                        _ => {}
                    }
                }
                RawOnvif::Explicit {
                    line,
                    host,
                    port,
                    user,
                    password,
                }
            }
            _ => {
                self.type_problem(node, line, field, expected);
                RawOnvif::Off
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn durations_in_seconds_or_with_units() {
        assert_eq!(duration_seconds("90"), Some(90.0));
        assert_eq!(duration_seconds("90s"), Some(90.0));
        assert_eq!(duration_seconds("4m"), Some(240.0));
        assert_eq!(duration_seconds("4 min 12 s"), Some(252.0));
        assert_eq!(duration_seconds("1h"), Some(3600.0));
        assert_eq!(duration_seconds("4x"), None);
        assert_eq!(duration_seconds("m"), None);
        assert_eq!(duration_seconds(""), None);
    }

    proptest! {
        #[test]
        fn duration_parser_never_panics(text in ".{0,40}") {
            let _ = duration_seconds(&text);
        }

        #[test]
        fn minutes_read_as_sixty_seconds(minutes in 0u32..10_000) {
            prop_assert_eq!(duration_seconds(&format!("{minutes}m")), Some(f64::from(minutes) * 60.0));
        }
    }
}
