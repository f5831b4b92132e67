//! A YAML document as a tree in which every node knows its 1-based line, built from yaml-rust2's
//! marked events.
//!
//! serde stops at the first mistake and forgets where later fields were; with this tree the shape
//! check can report every mistake with its line.

use super::Problem;
use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Nodes a document may expand to. Aliases copy their anchor's subtree, so without a cap a few
/// lines of nested aliases (the "billion laughs") would exhaust memory in the web editor.
const MAX_NODES: usize = 100_000;
/// Deepest nesting of lists and mappings a document may have; a StreamPulse config needs four.
/// yaml-rust2's `Parser::load` recurses once per level, and so would anything walking the tree,
/// so a few KB of `- - - …` would overflow the stack: the limit is enforced while the events are
/// read, before anything recursive sees them.
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    pub line: usize,
    pub value: Value,
    /// A scalar as written (`10.50` stays `10.50`); empty for collections.
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in file order, duplicates kept so the shape check can report them.
    Map(Vec<Entry>),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: Node,
    pub value: Node,
}

impl Node {
    /// The scalar as text, for fields that take a number as a string (`name: 101`).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(_) | Value::Int(_) | Value::Float(_) | Value::Bool(_) => Some(self.text.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }

    /// "a list", "the text \"abc\"", ... for type-mismatch messages.
    pub fn describe(&self) -> String {
        match &self.value {
            Value::Null => "nothing".to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => f.to_string(),
            // Never quote what may be a misplaced URL: redaction cannot be trusted on a password
            // with an unescaped `/` or `@`.
            Value::Str(s) if s.contains("://") => "a URL".to_string(),
            Value::Str(s) if s.contains(['@', '\n']) || s.chars().count() > 40 => "text".to_string(),
            Value::Str(s) => format!("the text {s:?}"),
            Value::Seq(_) => "a list".to_string(),
            Value::Map(_) => "a mapping".to_string(),
        }
    }
}

/// Parses one YAML document. `Ok(None)` for a file with no content (empty or only comments).
pub(crate) fn parse(text: &str) -> Result<Option<Node>, Problem> {
    if let Some((index, c)) = text
        .char_indices()
        .find(|(_, c)| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\u{85}'))
    {
        // yaml-rust2 stops reading at some of them (a NUL ends the document silently), which
        // would then be reported as missing fields further on.
        return Err(Problem {
            line: Some(text[..index].matches('\n').count() + 1),
            field: String::new(),
            message: format!(
                "the file contains a control character (U+{:04X}) that YAML does not allow",
                u32::from(c)
            ),
        });
    }
    let mut builder = Builder::default();
    read_events(text, &mut builder, true)?;
    if let Some(problem) = builder.error {
        return Err(problem);
    }
    if let Some(&line) = builder.document_lines.get(1) {
        return Err(Problem {
            line: Some(line),
            field: String::new(),
            message: "the file holds more than one YAML document (a second `---`); only one is read"
                .to_string(),
        });
    }
    Ok(builder.documents.pop())
}

/// Feeds `receiver` the events of `text` without recursing (unlike `Parser::load`), refusing
/// nesting deeper than [`MAX_DEPTH`] with the line where it goes too deep. `multi`: read every
/// document, else stop after the first.
pub(crate) fn read_events(
    text: &str,
    receiver: &mut impl MarkedEventReceiver,
    multi: bool,
) -> Result<(), Problem> {
    let mut parser = Parser::new_from_str(text);
    let mut depth = 0usize;
    loop {
        let (event, mark) = parser.next_token().map_err(|e| Problem {
            line: Some(e.marker().line()),
            field: String::new(),
            message: format!("YAML syntax error: {}", e.info()),
        })?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(Problem {
                        line: Some(mark.line()),
                        field: String::new(),
                        message: format!(
                            "lists and mappings nested more than {MAX_DEPTH} deep; a StreamPulse \
                             config needs four levels at most"
                        ),
                    });
                }
            }
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        let last = matches!(event, Event::StreamEnd) || (!multi && matches!(event, Event::DocumentEnd));
        receiver.on_event(event, mark);
        if last {
            return Ok(());
        }
    }
}

enum Frame {
    Seq {
        line: usize,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        line: usize,
        anchor: usize,
        entries: Vec<Entry>,
        key: Option<Node>,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    documents: Vec<Node>,
    document_lines: Vec<usize>,
    /// Anchored subtree and its node count.
    anchors: HashMap<usize, (Node, usize)>,
    node_count: usize,
    /// Nodes copied in by aliases, to tell an alias bomb from a file that is merely huge.
    alias_nodes: usize,
    error: Option<Problem>,
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.error.is_some() {
            return;
        }
        let line = mark.line();
        match event {
            Event::DocumentStart => self.document_lines.push(line),
            Event::Scalar(text, style, anchor, tag) => {
                let value = resolve_scalar(&text, style, tag.as_ref());
                let node = Node { line, value, text };
                self.finish(node, anchor, 1);
            }
            Event::Alias(anchor) => {
                // The parser rejects unknown anchors, so a miss would be a parser bug: treat as null.
                let size = self.anchors.get(&anchor).map_or(1, |(_, size)| *size);
                self.alias_nodes = self.alias_nodes.saturating_add(size);
                if self.over_budget(size, line) {
                    return;
                }
                let mut node = self.anchors.get(&anchor).map_or(
                    Node {
                        line,
                        value: Value::Null,
                        text: String::new(),
                    },
                    |(n, _)| n.clone(),
                );
                node.line = line;
                self.finish(node, 0, 0); // counted above, before the copy
            }
            Event::SequenceStart(anchor, _) => self.stack.push(Frame::Seq {
                line,
                anchor,
                items: Vec::new(),
            }),
            Event::MappingStart(anchor, _) => self.stack.push(Frame::Map {
                line,
                anchor,
                entries: Vec::new(),
                key: None,
            }),
            Event::SequenceEnd | Event::MappingEnd => match self.stack.pop() {
                Some(Frame::Seq { line, anchor, items }) => self.finish(
                    Node {
                        line,
                        value: Value::Seq(items),
                        text: String::new(),
                    },
                    anchor,
                    1,
                ),
                Some(Frame::Map {
                    line,
                    anchor,
                    entries,
                    ..
                }) => {
                    // A block mapping's start marker sits after its first key; its first key's
                    // line is where a reader sees it begin.
                    let line = entries.first().map_or(line, |e| e.key.line);
                    self.finish(
                        Node {
                            line,
                            value: Value::Map(entries),
                            text: String::new(),
                        },
                        anchor,
                        1,
                    )
                }
                None => {}
            },
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
        }
    }
}

impl Builder {
    /// Attaches a completed node to its parent (or makes it the document).
    fn finish(&mut self, node: Node, anchor: usize, size: usize) {
        if self.over_budget(size, node.line) {
            return;
        }
        if anchor > 0 {
            self.anchors.insert(anchor, (node.clone(), subtree_size(&node)));
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { entries, key, .. }) => match key.take() {
                None => *key = Some(node),
                Some(key) => entries.push(Entry { key, value: node }),
            },
        }
    }
}

impl Builder {
    /// Counts `size` more nodes; records the error and returns true once past [`MAX_NODES`].
    fn over_budget(&mut self, size: usize, line: usize) -> bool {
        self.node_count = self.node_count.saturating_add(size);
        if self.node_count <= MAX_NODES {
            return false;
        }
        self.error = Some(Problem {
            line: Some(line),
            field: String::new(),
            message: if self.alias_nodes > self.node_count / 2 {
                format!(
                    "the document expands to more than {MAX_NODES} values through its aliases \
                     (`*name` copies of `&name`): too many aliases"
                )
            } else {
                format!(
                    "the document holds more than {MAX_NODES} values; a StreamPulse config needs \
                     a few per camera"
                )
            },
        });
        true
    }
}

fn subtree_size(node: &Node) -> usize {
    match &node.value {
        Value::Seq(items) => items.iter().map(subtree_size).fold(1, usize::saturating_add),
        Value::Map(entries) => entries
            .iter()
            .map(|e| subtree_size(&e.key).saturating_add(subtree_size(&e.value)))
            .fold(1, usize::saturating_add),
        _ => 1,
    }
}

/// YAML 1.2 core schema: quoted scalars and `!!str` are text; plain ones may be null, a boolean
/// or a number.
fn resolve_scalar(text: &str, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    let is_str_tag = tag.is_some_and(|t| t.handle == "tag:yaml.org,2002:" && t.suffix == "str");
    if style != TScalarStyle::Plain || is_str_tag {
        return Value::Str(text.to_string());
    }
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Value::Float(f64::INFINITY),
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    // `parse::<i64>` takes a sign itself; the radix forms need it stripped.
    let unsigned = text.strip_prefix('+').unwrap_or(text);
    if let Some(hex) = unsigned.strip_prefix("0x") {
        if let Ok(i) = i64::from_str_radix(hex, 16) {
            return Value::Int(i);
        }
    } else if let Some(octal) = unsigned.strip_prefix("0o") {
        if let Ok(i) = i64::from_str_radix(octal, 8) {
            return Value::Int(i);
        }
    }
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    // Rust also parses "inf" and "NaN", which YAML treats as text: require a digit.
    if text.bytes().any(|b| b.is_ascii_digit()) {
        if let Ok(f) = text.parse::<f64>() {
            return Value::Float(f);
        }
    }
    Value::Str(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_limited_while_reading_with_the_line_where_it_goes_too_deep() {
        let nested = |levels: usize| format!("a:\n{}x\n", "- ".repeat(levels));
        // The top mapping is one level, each `- ` another.
        assert!(parse(&nested(MAX_DEPTH - 1)).is_ok());
        let problem = parse(&nested(MAX_DEPTH)).expect_err("one level too deep");
        assert_eq!(problem.line, Some(2), "{problem}");
        assert!(problem.message.contains("nested more than 64 deep"), "{problem}");
        // Far beyond: refused, not a stack overflow (the recursive loader crashed at ~5,000).
        assert!(parse(&nested(200_000)).is_err());
        let flow = format!("a: {}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&flow).is_err());
    }

    fn map_keys(node: &Node) -> Vec<(String, usize)> {
        match &node.value {
            Value::Map(entries) => entries
                .iter()
                .map(|e| (e.key.scalar_text().unwrap_or_default(), e.key.line))
                .collect(),
            other => panic!("not a map: {other:?}"),
        }
    }

    #[test]
    fn nodes_carry_their_lines() {
        let text =
            "# comment\nheartbeat_seconds: 15\nstreams:\n  - name: A\n    url: rtsp://h/\n  -\n    name: B\n";
        let root = parse(text).unwrap().unwrap();
        assert_eq!(
            map_keys(&root),
            vec![("heartbeat_seconds".into(), 2), ("streams".into(), 3)]
        );
        let Value::Map(entries) = &root.value else {
            panic!()
        };
        let Value::Seq(items) = &entries[1].value.value else {
            panic!()
        };
        assert_eq!(items.iter().map(|n| n.line).collect::<Vec<_>>(), vec![4, 7]);
        assert_eq!(map_keys(&items[0]), vec![("name".into(), 4), ("url".into(), 5)]);
    }

    #[test]
    fn resolves_scalars_like_yaml_1_2() {
        let text = "a: 15\nb: 1.5\nc: \"15\"\nd: true\ne: yes\nf: ~\ng: !!str 12\nh: 0x10\ni: inf\nj:\n";
        let root = parse(text).unwrap().unwrap();
        let Value::Map(entries) = root.value else { panic!() };
        let values: Vec<Value> = entries.into_iter().map(|e| e.value.value).collect();
        assert_eq!(
            values,
            vec![
                Value::Int(15),
                Value::Float(1.5),
                Value::Str("15".into()),
                Value::Bool(true),
                Value::Str("yes".into()),
                Value::Null,
                Value::Str("12".into()),
                Value::Int(16),
                Value::Str("inf".into()),
                Value::Null,
            ]
        );
    }

    #[test]
    fn syntax_errors_have_a_line() {
        let problem = parse("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert_eq!(problem.line, Some(3));
        assert!(
            problem.message.starts_with("YAML syntax error: "),
            "{}",
            problem.message
        );
    }

    #[test]
    fn empty_and_comment_only_files_have_no_document() {
        assert_eq!(parse("").unwrap(), None);
        assert_eq!(parse("# nothing yet\n\n").unwrap(), None);
    }

    #[test]
    fn aliases_copy_the_anchor_and_take_the_alias_line() {
        let root = parse("a: &x {k: 1}\nb: *x\n").unwrap().unwrap();
        let Value::Map(entries) = root.value else { panic!() };
        assert_eq!(entries[1].value.line, 2);
        assert_eq!(map_keys(&entries[1].value), vec![("k".into(), 1)]);
    }

    #[test]
    fn alias_bombs_are_refused() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..8 {
            let prev = format!("*a{}", i - 1);
            text.push_str(&format!("a{i}: &a{i} [{}]\n", [prev.as_str(); 10].join(", ")));
        }
        let problem = parse(&text).unwrap_err();
        assert!(
            problem.message.contains("too many aliases"),
            "{}",
            problem.message
        );
    }

    #[test]
    fn control_characters_are_refused_with_their_line() {
        let problem = parse("a: 1\nb: x\u{0}y\nc: 2\n").unwrap_err();
        assert_eq!(problem.line, Some(2));
        assert!(problem.message.contains("U+0000"), "{}", problem.message);
        assert!(parse("a: \"tab\there\"\r\nb: 2\n").is_ok());
    }

    /// Deepest nesting of a parsed tree (a scalar is depth 0).
    fn depth(node: &Node) -> usize {
        match &node.value {
            Value::Seq(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
            Value::Map(entries) => 1 + entries.iter().map(|e| depth(&e.value)).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// Nodes of a parsed tree, aliases expanded.
    fn size(node: &Node) -> usize {
        match &node.value {
            Value::Seq(items) => 1 + items.iter().map(size).sum::<usize>(),
            Value::Map(entries) => 1 + entries.iter().map(|e| 1 + size(&e.value)).sum::<usize>(),
            _ => 1,
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// No text, however broken, panics the reader or escapes its limits.
        #[test]
        fn any_text_is_parsed_or_refused(text in "\\PC{0,200}|[-\\[\\]{}:&*!|>'\" \n\t#a-z0-9]{0,300}") {
            if let Ok(Some(root)) = parse(&text) {
                proptest::prop_assert!(depth(&root) <= MAX_DEPTH);
                proptest::prop_assert!(size(&root) <= 2 * MAX_NODES);
            }
        }

        /// Nesting of any mix of block lists, flow lists and flow maps is accepted up to the
        /// limit and refused beyond it, with a line, whatever the depth.
        #[test]
        fn nesting_is_accepted_up_to_the_limit_and_refused_beyond(
            styles in proptest::collection::vec(0u8..3, 1..400),
        ) {
            // Block `- ` levels first (one per line indent), then flow levels closed in order.
            let block = styles.iter().take_while(|s| **s == 0).count();
            let flow = &styles[block..];
            // Flow right after `a:` stays on its line: on the next one it would be a new key.
            let mut text = if block == 0 { String::from("a: ") } else { format!("a:\n{}", "- ".repeat(block)) };
            let mut closing = String::new();
            for style in flow {
                if *style == 1 {
                    text.push('[');
                    closing.insert(0, ']');
                } else {
                    text.push_str("{k: ");
                    closing.insert(0, '}');
                }
            }
            text.push('x');
            text.push_str(&closing);
            text.push('\n');
            let levels = 1 + styles.len();
            match parse(&text) {
                Ok(Some(root)) => {
                    proptest::prop_assert!(levels <= MAX_DEPTH, "{levels} levels accepted");
                    proptest::prop_assert_eq!(depth(&root), levels);
                }
                Ok(None) => proptest::prop_assert!(false, "a document was written"),
                Err(problem) => {
                    proptest::prop_assert!(levels > MAX_DEPTH, "{levels} levels refused: {problem}");
                    proptest::prop_assert!(problem.line.is_some(), "{problem}");
                }
            }
        }

        /// Alias chains (each anchor a list of `width` copies of the one before) are expanded
        /// while small and refused, naming aliases, once they would pass the node cap.
        #[test]
        fn alias_chains_are_expanded_or_refused_by_their_size(width in 1usize..12, levels in 1usize..9) {
            let mut text = String::from("a0: &a0 x\n");
            for i in 1..=levels {
                let previous = format!("*a{}", i - 1);
                text.push_str(&format!("a{i}: &a{i} [{}]\n", vec![previous.as_str(); width].join(", ")));
            }
            // Level i holds width^i scalars (and lists above them): the whole document's size.
            let expanded: usize = (0..=levels).map(|i| (0..=i).map(|j| width.pow(j as u32)).sum::<usize>()).sum();
            match parse(&text) {
                Ok(Some(root)) => proptest::prop_assert!(size(&root) <= MAX_NODES * 2, "{expanded}"),
                Ok(None) => proptest::prop_assert!(false, "a document was written"),
                Err(problem) => {
                    proptest::prop_assert!(expanded > MAX_NODES, "{expanded} nodes refused: {problem}");
                    proptest::prop_assert!(problem.message.contains("alias"), "{problem}");
                }
            }
        }
    }

    #[test]
    fn a_huge_file_without_aliases_is_not_called_an_alias_bomb() {
        let text = format!("a: [{}]\n", vec!["x"; MAX_NODES + 10].join(", "));
        let problem = parse(&text).unwrap_err();
        assert!(problem.message.contains("holds more than"), "{}", problem.message);
        assert!(!problem.message.contains("alias"), "{}", problem.message);
    }

    #[test]
    fn a_second_document_is_refused() {
        let problem = parse("a: 1\n---\nb: 2\n").unwrap_err();
        assert_eq!(problem.line, Some(2));
    }
}
