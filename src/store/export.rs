//! Reads for exports (`/api/v1/heartbeats.csv` and friends): heartbeats and outages of any range,
//! page by page in primary-key order. Each page is its own short read, so an export of a year of
//! a thousand cameras holds one page in memory and never keeps a read transaction open long
//! enough to stop the monitor's WAL from being checkpointed.

use rusqlite::params;

use super::{health_at, reason_at, u32_from_sql, u64_from_sql, Heartbeat, Outage, Store, StoreError};
use crate::heartbeat::ProbeOutcome;

/// Rows per page: a few hundred kilobytes of text.
pub const EXPORT_PAGE_ROWS: usize = 2_000;

impl Store {
    /// `(id, name)` of every stream the store knows (configured or kept for its history), by
    /// name; only the one called `only` when given.
    pub fn export_streams(&self, only: Option<&str>) -> Result<Vec<(i64, String)>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT id, name FROM streams WHERE ?1 IS NULL OR name = ?1 ORDER BY name, id")?;
        let rows = select.query_map([only], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Heartbeats of one stream in `[from_ms, to_ms)`, oldest first, at most `limit`. The next
    /// page starts at the last one's `ts_ms + 1`.
    pub fn heartbeats_page(
        &self,
        stream_id: i64,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<Heartbeat>, StoreError> {
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT ts_ms, health, latency_ms, reason, message, codec, width, height, ntp_synced, fps,
                    bitrate_kbps
             FROM heartbeats WHERE stream_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms LIMIT {limit}"
        ))?;
        let rows = select.query_map(params![stream_id, from_ms, to_ms], |row| {
            let outcome = ProbeOutcome {
                health: health_at(row, 1)?,
                latency_ms: row.get::<_, Option<i64>>(2)?.map(u64_from_sql),
                reason: reason_at(row, 3)?,
                message: row.get(4)?,
                codec: row.get(5)?,
                width: row.get::<_, Option<i64>>(6)?.map(u32_from_sql),
                height: row.get::<_, Option<i64>>(7)?.map(u32_from_sql),
                fps: row.get(9)?,
                bitrate_kbps: row.get::<_, Option<i64>>(10)?.map(u64_from_sql),
                picture: None,
            };
            Ok(Heartbeat::new(stream_id, row.get(0)?, row.get(8)?, outcome))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Outages of one stream overlapping `[from_ms, to_ms)` that started at or after
    /// `start_from_ms`, oldest first, at most `limit`.
    pub fn outages_page(
        &self,
        stream_id: i64,
        from_ms: i64,
        to_ms: i64,
        start_from_ms: i64,
        limit: usize,
    ) -> Result<Vec<Outage>, StoreError> {
        let mut select = self.conn.prepare_cached(&format!(
            "SELECT start_ms, end_ms, reason, message FROM outages
             WHERE stream_id = ?1 AND start_ms >= ?4 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)
             ORDER BY start_ms LIMIT {limit}"
        ))?;
        let rows = select.query_map(params![stream_id, from_ms, to_ms, start_from_ms], |row| {
            Ok(Outage {
                start_ms: row.get(0)?,
                end_ms: row.get(1)?,
                reason: reason_at(row, 2)?,
                message: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
