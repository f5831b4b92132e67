//! `stream_learned`: what the monitor's probes learned about each camera (the template an
//! `http(s)://` stream was found to need and why, the RTSP transport, the control-URL form), so a
//! restart keeps it and the web can show it. Written by the store writer when the monitor reports
//! a change (never once per probe), read by the monitor when a stream's task starts and by the
//! stream page and the API. Plain words here: `probe::learned` turns them into its types.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use super::{Store, StoreError};

/// One stream's learned facts, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnedFacts {
    /// The template chosen for an `http(s)://` stream without `pipeline:`, when one was.
    pub template: Option<String>,
    /// What said so: "server said application/vnd.apple.mpegurl", "typefind found video/mpegts".
    pub template_evidence: Option<String>,
    /// `tcp` (UDP media never came; TCP from the start) or `auto` (as the template says).
    pub transport: String,
    /// `appended` (relative controls appended to the URL, as ffmpeg does) or `as_resolved`.
    pub control_form: String,
}

impl LearnedFacts {
    /// Nothing learned: what a camera starts with.
    pub fn default_facts() -> LearnedFacts {
        LearnedFacts {
            template: None,
            template_evidence: None,
            transport: "auto".into(),
            control_form: "as_resolved".into(),
        }
    }

    /// Whether anything differs from a camera nobody has probed.
    pub fn is_default(&self) -> bool {
        *self == LearnedFacts::default_facts()
    }

    /// Each fact in words, for the stream page and the API: "template `hls`, detected (server
    /// said application/vnd.apple.mpegurl)", "RTSP over TCP, learned".
    pub fn notes(&self) -> Vec<String> {
        let mut notes = Vec::new();
        if let Some(template) = &self.template {
            let evidence = self
                .template_evidence
                .as_deref()
                .unwrap_or("from the server's answer");
            notes.push(format!("template {template}, detected ({evidence})"));
        }
        if self.transport == "tcp" {
            notes.push("RTSP over TCP, learned (no UDP media arrived)".to_string());
        }
        if self.control_form == "appended" {
            notes.push("relative RTSP controls appended to the URL, as ffmpeg does, learned".to_string());
        }
        notes
    }
}

/// A stream's facts with the time they last changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LearnedRow {
    pub facts: LearnedFacts,
    pub updated_ms: i64,
}

impl LearnedRow {
    /// What still applies to the stream as configured now: a detected template only while it
    /// has no `pipeline:`, a learned transport only while its `transport:` is `auto`; `None` when
    /// nothing is left.
    pub fn applying(mut self, detects_template: bool, learns_transport: bool) -> Option<LearnedRow> {
        if !detects_template {
            self.facts.template = None;
            self.facts.template_evidence = None;
        }
        if !learns_transport {
            self.facts.transport = LearnedFacts::default_facts().transport;
        }
        (!self.facts.is_default()).then_some(self)
    }
}

fn row_at(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, LearnedRow)> {
    Ok((
        row.get(0)?,
        LearnedRow {
            facts: LearnedFacts {
                template: row.get(1)?,
                template_evidence: row.get(2)?,
                transport: row.get(3)?,
                control_form: row.get(4)?,
            },
            updated_ms: row.get(5)?,
        },
    ))
}

const SELECT: &str =
    "SELECT stream_id, template, template_evidence, transport, control_form, updated_ms FROM stream_learned";

/// Replaces the stream's row.
pub(super) fn save(
    conn: &Connection,
    stream_id: i64,
    facts: &LearnedFacts,
    now_ms: i64,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT OR REPLACE INTO stream_learned (stream_id, template, template_evidence, transport, control_form, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            stream_id,
            facts.template,
            facts.template_evidence,
            facts.transport,
            facts.control_form,
            now_ms
        ],
    )?;
    Ok(())
}

pub(super) fn load(conn: &Connection, stream_id: i64) -> Result<Option<LearnedRow>, StoreError> {
    let mut select = conn.prepare_cached(&format!("{SELECT} WHERE stream_id = ?1"))?;
    Ok(select
        .query_row([stream_id], row_at)
        .optional()?
        .map(|(_, row)| row))
}

impl Store {
    /// What was learned about every stream that has a row, by stream id.
    pub fn learned(&self) -> Result<HashMap<i64, LearnedRow>, StoreError> {
        let mut select = self.conn.prepare_cached(SELECT)?;
        let rows = select.query_map([], row_at)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What was learned about one stream.
    pub fn learned_for(&self, stream_id: i64) -> Result<Option<LearnedRow>, StoreError> {
        load(&self.conn, stream_id)
    }

    /// Saves one stream's facts (the writer does this for the monitor).
    pub fn save_learned(&self, stream_id: i64, facts: &LearnedFacts, now_ms: i64) -> Result<(), StoreError> {
        save(&self.conn, stream_id, facts, now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StreamIdentity;

    #[test]
    fn facts_round_trip_and_replace() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = Store::open(dir.path().join("s.db")).expect("open");
        let ids = store
            .resolve_streams(
                &[StreamIdentity {
                    config_id: None,
                    name: "cam".into(),
                    url_redacted: Some("http://h/".into()),
                    url_fingerprint: Some("f".into()),
                }],
                1,
            )
            .expect("resolve");
        assert_eq!(store.learned_for(ids[0]).expect("read"), None);
        let mut facts = LearnedFacts::default_facts();
        facts.template = Some("hls".into());
        facts.template_evidence = Some("server said application/vnd.apple.mpegurl".into());
        store.save_learned(ids[0], &facts, 5).expect("save");
        facts.transport = "tcp".into();
        store.save_learned(ids[0], &facts, 6).expect("save again");
        let row = store.learned_for(ids[0]).expect("read").expect("row");
        assert_eq!((row.facts, row.updated_ms), (facts, 6));
        assert_eq!(store.learned().expect("all").len(), 1);
        // Once the stream names its own `pipeline:`, the detected template no longer applies.
        let row = store.learned_for(ids[0]).expect("read").expect("row");
        let applying = row.clone().applying(false, true).expect("TCP still applies");
        assert_eq!(applying.facts.template, None);
        assert_eq!(applying.facts.transport, "tcp");
        assert_eq!(row.clone().applying(true, true), Some(row.clone()));
        // A configured `transport:` hides the learned one.
        let imposed = row
            .clone()
            .applying(true, false)
            .expect("the template still applies");
        assert_eq!(imposed.facts.transport, "auto");
        assert_eq!(row.clone().applying(false, false), None);
        let only_template = LearnedRow {
            facts: LearnedFacts {
                template: Some("mjpeg".into()),
                template_evidence: Some("server said multipart/x-mixed-replace".into()),
                ..LearnedFacts::default_facts()
            },
            updated_ms: 1,
        };
        assert_eq!(only_template.applying(false, true), None);
    }
}
