//! `maintenance:` lists, at the top level (every stream) and in a stream: each item a mapping
//! `{days:, from:, to:}`; the times are read as written and checked in `validate`.

use super::super::tree::{Node, Value};
use super::values::Shape;
use super::{join, Field, Spanned};

pub(crate) const MAINTENANCE_KEYS: &[&str] = &["days", "from", "to"];

/// One window as written.
#[derive(Debug, Default)]
pub(crate) struct RawWindow {
    /// `maintenance[0]` or `streams[2].maintenance[0]`, for problems.
    pub path: String,
    pub line: usize,
    pub from: Field<String>,
    pub to: Field<String>,
    pub days: Field<Vec<Spanned<String>>>,
}

impl Shape<'_> {
    /// `parent` is `maintenance` or `streams[N].maintenance`.
    pub(super) fn maintenance(&mut self, node: &Node, line: usize, parent: &str) -> Vec<RawWindow> {
        let items = match &node.value {
            Value::Null => return Vec::new(),
            Value::Seq(items) => items,
            _ => {
                self.type_problem(
                    node,
                    line,
                    parent,
                    "a list of windows such as - {from: \"03:00\", to: \"03:15\"}",
                );
                return Vec::new();
            }
        };
        let mut windows = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let mut window = RawWindow {
                path: format!("{parent}[{index}]"),
                line: item.line,
                ..RawWindow::default()
            };
            if !matches!(item.value, Value::Map(_)) {
                self.type_problem(
                    item,
                    item.line,
                    &window.path,
                    "a window (`from:`, `to:` and optionally `days:`)",
                );
                continue;
            }
            let path = window.path.clone();
            for (key, entry) in self.known_entries(item, &path, MAINTENANCE_KEYS) {
                let line = entry.key.line;
                let field = join(&path, &key);
                match key.as_str() {
                    "from" => window.from = self.label(&entry.value, line, &field),
                    "to" => window.to = self.label(&entry.value, line, &field),
                    "days" => window.days = self.days(&entry.value, line, &field),
                    _ => {}
                }
            }
            windows.push(window);
        }
        windows
    }

    /// `days: mon`, `days: [mon, wed-fri]` or one item per line.
    fn days(&mut self, node: &Node, line: usize, field: &str) -> Field<Vec<Spanned<String>>> {
        self.text_list(
            node,
            line,
            field,
            "a list of days such as [mon, tue] or [mon-fri]",
            "a day such as mon",
        )
    }
}
