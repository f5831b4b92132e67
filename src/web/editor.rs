//! The config editor's file work: masking camera passwords and secret values (SMTP and MQTT
//! passwords, tokens) for display and restoring them on save ([`mask`], [`unmask`]), the add / remove /
//! rename stream edits (made on the text, so comments and layout survive), and the atomic write
//! with a backup.
//!
//! Nothing here decides whether a config is acceptable: every edit goes through
//! [`crate::config::parse`], the same validation `streampulse validate` runs, before a byte is
//! written.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use yaml_rust2::parser::{Event, MarkedEventReceiver};
use yaml_rust2::scanner::Marker;

use crate::store::accounts::{hex, random_hex};

mod key_secrets;
mod mask;

// Camera passwords and secret values (SMTP and MQTT passwords, tokens) as numbered markers.
pub use mask::{hides_a_password, mask, unmask, HIDDEN};

/// A version stamp of the file's text, so a save can tell the file changed under the editor.
pub fn version(text: &str) -> String {
    hex(&Sha256::digest(text.as_bytes()))
}

/// Writes `text` to `path` so that readers see the old file or the new one, never a mix: a temp
/// file in the same folder, flushed, then renamed over the original. The previous version is
/// kept as `<name>.bak`. The new file keeps the old one's permissions (it holds passwords).
pub fn save(path: &Path, text: &str) -> std::io::Result<PathBuf> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "config.yaml".into());
    let backup = dir.join(format!("{file_name}.bak"));
    let permissions = fs::metadata(path).ok().map(|meta| meta.permissions());

    let temp = dir.join(format!(".{file_name}.{}.tmp", random_hex(6)));
    let written = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).open(&temp)?;
        if let Some(permissions) = &permissions {
            file.set_permissions(permissions.clone())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    if path.exists() {
        // The backup is replaced atomically too, so a crash never leaves half a backup.
        let backup_temp = dir.join(format!(".{file_name}.{}.bak.tmp", random_hex(6)));
        let copied = fs::copy(path, &backup_temp).and_then(|_| fs::rename(&backup_temp, &backup));
        if let Err(error) = copied {
            let _ = fs::remove_file(&backup_temp);
            let _ = fs::remove_file(&temp);
            return Err(error);
        }
    }
    if let Err(error) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(error);
    }
    // Make the rename itself durable.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(backup)
}

/// Events with their positions.
#[derive(Default)]
struct Events(Vec<(Event, Marker)>);

impl MarkedEventReceiver for Events {
    fn on_event(&mut self, event: Event, mark: Marker) {
        self.0.push((event, mark));
    }
}

/// Where the `streams:` list is in the text.
#[derive(Debug, PartialEq)]
enum StreamsLayout {
    /// No `streams:` key.
    Missing,
    /// `streams:` with nothing (or `[]`) after it, on this line.
    Empty { key_line: usize },
    /// A block list (`- name: …` items).
    Block { items: Vec<Item> },
    /// A flow list (`[ … ]`) with items: too unusual to edit by form.
    Flow,
}

#[derive(Debug, PartialEq)]
struct Item {
    /// 1-based lines.
    first_line: usize,
    last_line: usize,
    name: Option<String>,
    /// The line of the `name:` key.
    name_line: Option<usize>,
}

/// Index just past the node starting at `index`.
fn skip_node(events: &[(Event, Marker)], index: usize) -> usize {
    let mut depth = 0usize;
    let mut i = index;
    while i < events.len() {
        match events[i].0 {
            Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
        if depth == 0 {
            break;
        }
    }
    i
}

fn char_at(text: &str, char_index: usize) -> Option<char> {
    text.chars().nth(char_index)
}

fn layout(text: &str) -> Result<StreamsLayout, String> {
    let mut events = Events::default();
    crate::config::read_yaml_events(text, &mut events, false)
        .map_err(|e| format!("the file is not valid YAML ({e}); fix it in the editor first"))?;
    let events = events.0;
    let Some(root) = events
        .iter()
        .position(|(e, _)| matches!(e, Event::MappingStart(..)))
    else {
        return Ok(StreamsLayout::Missing);
    };
    let mut i = root + 1;
    while i < events.len() && !matches!(events[i].0, Event::MappingEnd) {
        let key = &events[i];
        let value_index = skip_node(&events, i);
        let is_streams = matches!(&key.0, Event::Scalar(k, ..) if k == "streams");
        if !is_streams {
            i = skip_node(&events, value_index);
            continue;
        }
        let key_line = key.1.line();
        let Some((value, mark)) = events.get(value_index) else {
            return Ok(StreamsLayout::Empty { key_line });
        };
        return match value {
            Event::Scalar(..) => Ok(StreamsLayout::Empty { key_line }),
            Event::SequenceStart(..) => {
                let end = skip_node(&events, value_index) - 1;
                if char_at(text, mark.index()) == Some('[') {
                    return Ok(if end == value_index + 1 {
                        StreamsLayout::Empty { key_line }
                    } else {
                        StreamsLayout::Flow
                    });
                }
                let mut items = Vec::new();
                let mut j = value_index + 1;
                while j < end {
                    let next = skip_node(&events, j);
                    let mut item = Item {
                        first_line: events[j].1.line(),
                        // End events are marked where the next token starts, possibly lines
                        // further down past comments, so only starts and scalars count.
                        last_line: events[j..next]
                            .iter()
                            .filter(|(e, _)| !matches!(e, Event::MappingEnd | Event::SequenceEnd))
                            .map(|(_, m)| m.line())
                            .max()
                            .unwrap_or(0),
                        name: None,
                        name_line: None,
                    };
                    if matches!(events[j].0, Event::MappingStart(..)) {
                        let mut k = j + 1;
                        while k + 1 < next {
                            let value_at = skip_node(&events, k);
                            if let (Event::Scalar(key, ..), Some((Event::Scalar(value, ..), _))) =
                                (&events[k].0, events.get(value_at))
                            {
                                if key == "name" {
                                    item.name = Some(value.clone());
                                    item.name_line = Some(events[k].1.line());
                                }
                            }
                            k = skip_node(&events, value_at);
                        }
                    }
                    items.push(item);
                    j = next;
                }
                Ok(StreamsLayout::Block { items })
            }
            _ => Err("`streams:` is not a list".into()),
        };
    }
    Ok(StreamsLayout::Missing)
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".into())
}

fn lines_of(text: &str) -> Vec<&str> {
    text.split_inclusive('\n').collect()
}

fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The last line (1-based) that belongs to the item starting on `item.first_line`: its own
/// events, plus continuation lines of a multi-line value.
fn item_end(lines: &[&str], item: &Item, next_first_line: Option<usize>) -> usize {
    let dash_indent = lines.get(item.first_line - 1).map_or(0, |l| indent_of(l));
    let limit = next_first_line.map_or(lines.len(), |next| next - 1);
    let mut end = item.last_line.min(limit).max(item.first_line);
    while end < limit {
        let line = lines[end];
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || indent_of(line) <= dash_indent {
            break;
        }
        end += 1;
    }
    end
}

fn find_item<'a>(items: &'a [Item], name: &str) -> Result<(usize, &'a Item), String> {
    items
        .iter()
        .enumerate()
        .find(|(_, item)| item.name.as_deref() == Some(name))
        .ok_or_else(|| format!("there is no stream named {name:?} in the file"))
}

fn block_items(text: &str) -> Result<Vec<Item>, String> {
    match layout(text)? {
        StreamsLayout::Block { items } => Ok(items),
        StreamsLayout::Flow => Err(
            "the streams are written as a [flow] list, which the form cannot edit; edit the YAML directly"
                .into(),
        ),
        StreamsLayout::Missing | StreamsLayout::Empty { .. } => Err("the file has no streams".into()),
    }
}

/// Appends a stream at the end of the `streams:` list (creating the list when needed).
pub fn add_stream(text: &str, name: &str, url: &str, pipeline: Option<&str>) -> Result<String, String> {
    let entry = |dash_indent: usize, key_indent: usize| {
        let mut entry = format!("{}- name: {}\n", " ".repeat(dash_indent), quoted(name));
        if !url.is_empty() {
            entry.push_str(&format!("{}url: {}\n", " ".repeat(key_indent), quoted(url)));
        }
        if let Some(pipeline) = pipeline.filter(|p| !p.is_empty()) {
            entry.push_str(&format!(
                "{}pipeline: {}\n",
                " ".repeat(key_indent),
                quoted(pipeline)
            ));
        }
        entry
    };
    let mut lines: Vec<String> = lines_of(text).into_iter().map(str::to_string).collect();
    if let Some(last) = lines.last_mut() {
        if !last.ends_with('\n') {
            last.push('\n');
        }
    }
    match layout(text)? {
        StreamsLayout::Missing => {
            lines.push(format!("streams:\n{}", entry(2, 4)));
        }
        StreamsLayout::Empty { key_line } => {
            // `streams:`, `streams: []` or `streams: ~`: the key line becomes a plain `streams:`.
            let line = &lines[key_line - 1];
            let indent = indent_of(line);
            let comment = line
                .find(" #")
                .map(|at| line[at..].trim_end().to_string())
                .unwrap_or_default();
            lines[key_line - 1] = format!("{}streams:{comment}\n", " ".repeat(indent));
            lines.insert(key_line, entry(indent + 2, indent + 4));
        }
        StreamsLayout::Block { items } => {
            let borrowed = lines_of(text);
            let last = items.last().ok_or("the streams list is empty")?;
            let end = item_end(&borrowed, last, None);
            let first_line = borrowed.get(last.first_line - 1).copied().unwrap_or("");
            let dash_indent = indent_of(first_line);
            // The key indent of the existing items: the text after "- ".
            let after_dash = first_line.trim_start().strip_prefix('-').unwrap_or("");
            let key_indent = dash_indent + 1 + (after_dash.len() - after_dash.trim_start().len());
            lines.insert(end, entry(dash_indent, key_indent));
        }
        StreamsLayout::Flow => return Err(
            "the streams are written as a [flow] list, which the form cannot edit; edit the YAML directly"
                .into(),
        ),
    }
    Ok(lines.concat())
}

/// Removes the named stream's lines.
pub fn remove_stream(text: &str, name: &str) -> Result<String, String> {
    let items = block_items(text)?;
    let (index, item) = find_item(&items, name)?;
    let lines = lines_of(text);
    let end = item_end(&lines, item, items.get(index + 1).map(|next| next.first_line));
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    out.extend_from_slice(&lines[..item.first_line - 1]);
    out.extend_from_slice(&lines[end..]);
    let out = out.concat();
    if items.len() == 1 {
        // The list is now empty: say so explicitly, a bare `streams:` reads as "no value".
        return Ok(out.replacen("streams:", "streams: []", 1));
    }
    Ok(out)
}

/// Renames a stream: rewrites the value of its `name:` key.
pub fn rename_stream(text: &str, old: &str, new: &str) -> Result<String, String> {
    let items = block_items(text)?;
    let (_, item) = find_item(&items, old)?;
    let line_number = item.name_line.ok_or("that stream's name could not be located")?;
    let mut lines: Vec<String> = lines_of(text).into_iter().map(str::to_string).collect();
    let line = &lines[line_number - 1];
    let key_at = line
        .find("name:")
        .ok_or("that stream's name is not written as `name: …` on one line; edit the YAML directly")?;
    let newline = if line.ends_with('\n') { "\n" } else { "" };
    lines[line_number - 1] = format!("{}name: {}{newline}", &line[..key_at], quoted(new));
    Ok(lines.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str =
        "# cameras at the depot\nheartbeat_seconds: 15\nstreams:\n  - name: Gate  # front\n    \
                        url: rtsp://admin:hunter2@10.0.0.5/stream1\n  # the yard one\n  - name: Yard\n    \
                        url: http://cam:pa55word@10.0.0.6:8080/video\n    params:\n      x: y\nweb:\n  \
                        listen: 127.0.0.1:8000\n";

    #[test]
    fn adds_after_the_last_stream_keeping_comments() {
        let out = add_stream(FILE, "Dock \"2\"", "rtsp://10.0.0.9/s", None).expect("add");
        assert!(
            out.contains("      x: y\n  - name: \"Dock \\\"2\\\"\"\n    url: \"rtsp://10.0.0.9/s\"\nweb:"),
            "{out}"
        );
        assert!(out.starts_with("# cameras at the depot\n"));
        let out = add_stream("heartbeat_seconds: 15\n", "A", "rtsp://h/", Some("rtsp")).expect("add");
        assert_eq!(out, "heartbeat_seconds: 15\nstreams:\n  - name: \"A\"\n    url: \"rtsp://h/\"\n    pipeline: \"rtsp\"\n");
        let out = add_stream("streams: []\n", "A", "rtsp://h/", None).expect("add");
        assert_eq!(out, "streams:\n  - name: \"A\"\n    url: \"rtsp://h/\"\n");
    }

    #[test]
    fn removes_and_renames_by_name() {
        let out = remove_stream(FILE, "Gate").expect("remove");
        assert!(!out.contains("Gate") && !out.contains("hunter2"), "{out}");
        assert!(out.contains("  # the yard one\n  - name: Yard\n"), "{out}");
        let out = remove_stream(FILE, "Yard").expect("remove");
        assert!(
            out.ends_with("10.0.0.5/stream1\n  # the yard one\nweb:\n  listen: 127.0.0.1:8000\n"),
            "{out}"
        );
        let out = rename_stream(FILE, "Gate", "Front gate").expect("rename");
        assert!(
            out.contains("  - name: \"Front gate\"\n    url: rtsp://admin:hunter2@"),
            "{out}"
        );
        assert!(remove_stream(FILE, "Nope").is_err());
        let only = remove_stream("streams:\n  - name: A\n    url: rtsp://h/\n", "A").expect("remove");
        assert_eq!(only, "streams: []\n");
    }

    #[test]
    fn saves_atomically_with_a_backup() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.yaml");
        fs::write(&path, "old\n").expect("write");
        let backup = save(&path, "new\n").expect("save");
        assert_eq!(fs::read_to_string(&path).expect("read"), "new\n");
        assert_eq!(fs::read_to_string(backup).expect("read"), "old\n");
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .expect("list")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
