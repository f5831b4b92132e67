//! Reading typed values: text, labels, lists, booleans, whole and decimal numbers, mappings with
//! known keys. Each reader reports a wrong type as a [`Problem`] and hands back [`Field::Invalid`].

use super::super::tree::{Entry, Node, Value};
use super::super::Problem;
use super::{join, unknown_key_message, Field, Spanned};
use std::collections::BTreeMap;

/// Collects the problems found while reading.
pub(super) struct Shape<'p> {
    pub(super) problems: &'p mut Vec<Problem>,
}

impl Shape<'_> {
    pub(super) fn push(&mut self, line: Option<usize>, field: &str, message: String) {
        self.problems.push(Problem {
            line,
            field: field.to_string(),
            message,
        });
    }

    pub(super) fn type_problem(&mut self, node: &Node, line: usize, field: &str, expected: &str) {
        let mut message = format!("expected {expected}, found {}", node.describe());
        if let Value::Str(text) = &node.value {
            if text.trim().parse::<f64>().is_ok() && expected.contains("number") {
                message.push_str(" (write numbers without quotes)");
            }
            if ["yes", "no", "on", "off"].contains(&text.to_lowercase().as_str()) && expected.contains("true")
            {
                message.push_str(" (write true or false)");
            }
        }
        self.push(Some(line), field, message);
    }

    /// The entries of a mapping whose keys are known, first occurrence only. Reports non-text
    /// keys, duplicates and unknown keys (with a hint) on the way.
    pub(super) fn known_entries<'n>(
        &mut self,
        map: &'n Node,
        parent: &str,
        known: &[&str],
    ) -> Vec<(String, &'n Entry)> {
        let Value::Map(entries) = &map.value else {
            return Vec::new();
        };
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut out = Vec::new();
        for entry in entries {
            let line = entry.key.line;
            let Some(key) = entry.key.scalar_text() else {
                self.push(
                    Some(line),
                    parent,
                    format!("keys must be plain words, found {}", entry.key.describe()),
                );
                continue;
            };
            let field = join(parent, &key);
            if let Some(first) = seen.get(&key) {
                self.push(
                    Some(line),
                    &field,
                    format!("duplicate key \"{key}\" (first given on line {first})"),
                );
                continue;
            }
            seen.insert(key.clone(), line);
            if known.contains(&key.as_str()) {
                out.push((key, entry));
            } else {
                let message = unknown_key_message(&key, parent, known);
                self.push(Some(line), &field, message);
            }
        }
        out
    }

    pub(super) fn text(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> Field<String> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Str(text) => Field::Given(Spanned {
                value: text.clone(),
                line,
            }),
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    /// Text, or a number taken as written: names and ids such as `101`.
    pub(super) fn label(&mut self, node: &Node, line: usize, field: &str) -> Field<String> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Str(_) | Value::Int(_) | Value::Float(_) => Field::Given(Spanned {
                value: node.text.clone(),
                line,
            }),
            _ => {
                self.type_problem(node, line, field, "a text");
                Field::Invalid
            }
        }
    }

    /// A list of texts (`[a, b]` or one item per line); a single text is a list of one.
    /// `expected` describes the list, `expected_item` one item, for the type problems.
    pub(super) fn text_list(
        &mut self,
        node: &Node,
        line: usize,
        field: &str,
        expected: &str,
        expected_item: &str,
    ) -> Field<Vec<Spanned<String>>> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Str(text) => Field::Given(Spanned {
                value: vec![Spanned {
                    value: text.clone(),
                    line,
                }],
                line,
            }),
            Value::Seq(items) => {
                let mut texts = Vec::new();
                let mut valid = true;
                for (index, item) in items.iter().enumerate() {
                    match &item.value {
                        Value::Str(text) => texts.push(Spanned {
                            value: text.clone(),
                            line: item.line,
                        }),
                        _ => {
                            self.type_problem(item, item.line, &format!("{field}[{index}]"), expected_item);
                            valid = false;
                        }
                    }
                }
                if valid {
                    Field::Given(Spanned { value: texts, line })
                } else {
                    Field::Invalid
                }
            }
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    pub(super) fn boolean(&mut self, node: &Node, line: usize, field: &str) -> Field<bool> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Bool(value) => Field::Given(Spanned { value: *value, line }),
            _ => {
                self.type_problem(node, line, field, "true or false");
                Field::Invalid
            }
        }
    }

    pub(super) fn whole(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> Field<i64> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Int(value) => Field::Given(Spanned { value: *value, line }),
            // `15.0` means 15; the cast is exact because the value is integral and in range.
            Value::Float(value) if value.fract() == 0.0 && value.abs() < 9.0e15 => Field::Given(Spanned {
                value: *value as i64,
                line,
            }),
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    pub(super) fn number(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> Field<f64> {
        match &node.value {
            Value::Null => Field::Missing,
            Value::Int(value) => Field::Given(Spanned {
                value: *value as f64,
                line,
            }),
            Value::Float(value) if value.is_finite() => Field::Given(Spanned { value: *value, line }),
            _ => {
                self.type_problem(node, line, field, expected);
                Field::Invalid
            }
        }
    }

    /// Whether `node` is a mapping to read keys from. Null (the section left empty) is not, and
    /// needs no report; any other type is reported as a problem.
    pub(super) fn is_mapping(&mut self, node: &Node, line: usize, field: &str, expected: &str) -> bool {
        match &node.value {
            Value::Map(_) => true,
            Value::Null => false,
            _ => {
                self.type_problem(node, line, field, expected);
                false
            }
        }
    }
}
