//! `camera_clock`: the latest camera clock reading per stream (schema v8). Written by the
//! monitor on its own connection beside the writer; read by the web for the stream page, the
//! API and `/metrics`.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension};

use super::{Store, StoreError};

/// The latest clock reading of one stream's camera.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraClock {
    pub checked_at_ms: i64,
    /// Camera minus StreamPulse's NTP-corrected time; `None` when the clock was not readable.
    pub offset_ms: Option<i64>,
    /// Why the clock was not readable (redacted).
    pub error: Option<String>,
}

fn clock_at(row: &rusqlite::Row<'_>) -> rusqlite::Result<CameraClock> {
    Ok(CameraClock {
        checked_at_ms: row.get(0)?,
        offset_ms: row.get(1)?,
        error: row.get(2)?,
    })
}

impl Store {
    /// Replaces the stream's reading.
    pub fn record_camera_clock(&mut self, stream_id: i64, clock: &CameraClock) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO camera_clock (stream_id, checked_at_ms, offset_ms, error) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (stream_id) DO UPDATE SET checked_at_ms = excluded.checked_at_ms,
                 offset_ms = excluded.offset_ms, error = excluded.error",
            )?
            .execute(params![stream_id, clock.checked_at_ms, clock.offset_ms, clock.error])?;
        Ok(())
    }

    /// Every stream's reading, by stream id.
    pub fn camera_clocks(&self) -> Result<HashMap<i64, CameraClock>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT checked_at_ms, offset_ms, error, stream_id FROM camera_clock")?;
        let rows = select.query_map([], |row| Ok((row.get(3)?, clock_at(row)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One stream's reading.
    pub fn camera_clock(&self, stream_id: i64) -> Result<Option<CameraClock>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT checked_at_ms, offset_ms, error FROM camera_clock WHERE stream_id = ?1")?
            .query_row([stream_id], clock_at)
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StreamIdentity;

    #[test]
    fn latest_reading_replaces_the_last() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("s.db")).unwrap();
        let ids = store
            .resolve_streams(
                &[StreamIdentity {
                    config_id: None,
                    name: "cam".into(),
                    url_redacted: None,
                    url_fingerprint: None,
                }],
                1,
            )
            .unwrap();
        let good = CameraClock {
            checked_at_ms: 10,
            offset_ms: Some(300_000),
            error: None,
        };
        store.record_camera_clock(ids[0], &good).unwrap();
        assert_eq!(store.camera_clock(ids[0]).unwrap(), Some(good));
        let bad = CameraClock {
            checked_at_ms: 20,
            offset_ms: None,
            error: Some("refused".into()),
        };
        store.record_camera_clock(ids[0], &bad).unwrap();
        assert_eq!(store.camera_clocks().unwrap().get(&ids[0]), Some(&bad));
    }
}
