//! Reads for the `status` command, the dashboard and the metrics endpoint.
//!
//! Every query is driven by a primary key (`stream_id` first), so its cost grows with the number
//! of streams and the rows asked for, never with the size of the raw heartbeat table.

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Row};

use super::write::META_PRUNED_BEFORE_MS;
use super::{
    ceil_hour, floor_hour, health_at, optional_health_at, reason_at, u32_from_sql, u64_from_sql, Heartbeat,
    HourlyPoint, LatencySeries, Outage, Store, StoreError, StreamStatus, Uptime, HOUR_MS,
};
use crate::alert::quiet::Quiet;
use crate::heartbeat::ProbeOutcome;

const STATUS_COLUMNS: &str = "s.id, s.name, s.url_redacted, st.health, st.since_ms, st.last_ts_ms,
    st.last_latency_ms, st.reason, coalesce(st.message, ''), st.codec, st.width, st.height, st.last_up_ms,
    coalesce(s.last_seen_config_ms, s.created_ms), a.confirmed_state, a.since_ms, a.pending_state, a.pending_count
    FROM streams AS s LEFT JOIN stream_status AS st ON st.stream_id = s.id
    LEFT JOIN stream_alert_state AS a ON a.stream_id = s.id";

fn status_from_row(row: &Row<'_>) -> rusqlite::Result<StreamStatus> {
    let confirmed = optional_health_at(row, 14)?;
    let pending = optional_health_at(row, 16)?;
    let pending_count: Option<u32> = row.get(17)?;
    Ok(StreamStatus {
        stream_id: row.get(0)?,
        name: row.get(1)?,
        url_redacted: row.get(2)?,
        health: optional_health_at(row, 3)?,
        // The state's start: the confirmed one's when the monitor confirms states.
        since_ms: if confirmed.is_some() {
            row.get(15)?
        } else {
            row.get(4)?
        },
        confirmed,
        pending: pending.zip(pending_count),
        last_ts_ms: row.get(5)?,
        last_latency_ms: row.get::<_, Option<i64>>(6)?.map(u64_from_sql),
        reason: reason_at(row, 7)?,
        message: row.get(8)?,
        codec: row.get(9)?,
        width: row.get::<_, Option<i64>>(10)?.map(u32_from_sql),
        height: row.get::<_, Option<i64>>(11)?.map(u32_from_sql),
        last_up_ms: row.get(12)?,
        monitored_since_ms: row.get(13)?,
    })
}

/// How an uptime range is answered: whole hours `[hour_from, hour_to)` from the rollups, the
/// partial hours at the edges from raw heartbeats.
#[derive(Debug, PartialEq, Eq)]
struct UptimePlan {
    hour_from: i64,
    hour_to: i64,
    raw: [(i64, i64); 2],
}

impl UptimePlan {
    /// Plans `[from_ms, to_ms)`. A partial edge hour whose raw heartbeats have been pruned (it
    /// starts before `pruned_before_ms`) is answered from its whole-hour rollup instead, so old
    /// ranges are counted at hour granularity rather than missing their edges.
    fn new(from_ms: i64, to_ms: i64, pruned_before_ms: i64) -> UptimePlan {
        const NOTHING: (i64, i64) = (0, 0);
        if from_ms >= to_ms {
            return UptimePlan {
                hour_from: 0,
                hour_to: 0,
                raw: [NOTHING, NOTHING],
            };
        }
        let first_whole = ceil_hour(from_ms);
        let last_whole_end = floor_hour(to_ms);
        if first_whole > last_whole_end {
            // The range lies inside one hour.
            if from_ms < pruned_before_ms {
                let hour = floor_hour(from_ms);
                return UptimePlan {
                    hour_from: hour,
                    hour_to: hour + HOUR_MS,
                    raw: [NOTHING, NOTHING],
                };
            }
            return UptimePlan {
                hour_from: 0,
                hour_to: 0,
                raw: [(from_ms, to_ms), NOTHING],
            };
        }
        let mut plan = UptimePlan {
            hour_from: first_whole,
            hour_to: last_whole_end,
            raw: [(from_ms, first_whole), (last_whole_end, to_ms)],
        };
        if from_ms < first_whole && from_ms < pruned_before_ms {
            plan.hour_from = floor_hour(from_ms);
            plan.raw[0] = NOTHING;
        }
        if last_whole_end < to_ms && last_whole_end < pruned_before_ms {
            plan.hour_to = last_whole_end + HOUR_MS;
            plan.raw[1] = NOTHING;
        }
        plan
    }
}

/// The uptime query; `{streams}` selects the streams (all, or one by `?1`).
fn uptime_sql(streams: &str) -> String {
    format!(
        "SELECT stream_id, sum(up), sum(degraded), sum(down), sum(quiet) FROM (
             SELECT r.stream_id AS stream_id, r.up_count AS up, r.degraded_count AS degraded, r.down_count AS down,
                 r.quiet_count AS quiet
             FROM {streams} CROSS JOIN heartbeat_hourly AS r
             WHERE r.stream_id = s.id AND r.hour_ms >= ?2 AND r.hour_ms < ?3
             UNION ALL
             SELECT h.stream_id, h.quiet = 0 AND h.health = 1, h.quiet = 0 AND h.health = 2,
                 h.quiet = 0 AND h.health = 0, h.quiet != 0
             FROM {streams} CROSS JOIN heartbeats AS h
             WHERE h.stream_id = s.id AND h.ts_ms >= ?4 AND h.ts_ms < ?5
             UNION ALL
             SELECT h.stream_id, h.quiet = 0 AND h.health = 1, h.quiet = 0 AND h.health = 2,
                 h.quiet = 0 AND h.health = 0, h.quiet != 0
             FROM {streams} CROSS JOIN heartbeats AS h
             WHERE h.stream_id = s.id AND h.ts_ms >= ?6 AND h.ts_ms < ?7
         ) GROUP BY stream_id"
    )
}

impl Store {
    /// Every stream the store knows (configured or not any more), by name, with its current
    /// status.
    pub fn statuses(&self) -> Result<Vec<StreamStatus>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached(&format!("SELECT {STATUS_COLUMNS} ORDER BY s.name"))?;
        let statuses = select.query_map([], status_from_row)?.collect::<Result<_, _>>()?;
        Ok(statuses)
    }

    /// Time of the newest heartbeat of any stream (from `stream_status`, one row per stream).
    pub fn newest_heartbeat_ms(&self) -> Result<Option<i64>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT max(last_ts_ms) FROM stream_status")?;
        Ok(select.query_row([], |row| row.get(0))?)
    }

    /// The status of the stream called `name`, if there is one.
    pub fn status_by_name(&self, name: &str) -> Result<Option<StreamStatus>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached(&format!("SELECT {STATUS_COLUMNS} WHERE s.name = ?1"))?;
        Ok(select.query_row([name], status_from_row).optional()?)
    }

    pub fn stream_id_by_name(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT id FROM streams WHERE name = ?1")?;
        Ok(select.query_row([name], |row| row.get(0)).optional()?)
    }

    /// Heartbeat counts of one stream in `[from_ms, to_ms)`: whole hours from the rollups,
    /// partial edge hours from raw heartbeats (or, once those are pruned, from the whole hour).
    pub fn uptime(&self, stream_id: i64, from_ms: i64, to_ms: i64) -> Result<Uptime, StoreError> {
        let sql = uptime_sql("(SELECT id FROM streams WHERE id = ?1) AS s");
        let uptimes = self.query_uptime(&sql, Some(stream_id), from_ms, to_ms)?;
        Ok(uptimes.get(&stream_id).copied().unwrap_or_default())
    }

    /// [`Store::uptime`] of every stream in one query. Streams without heartbeats in the range
    /// are absent.
    pub fn uptime_all(&self, from_ms: i64, to_ms: i64) -> Result<HashMap<i64, Uptime>, StoreError> {
        let sql = uptime_sql("streams AS s");
        self.query_uptime(&sql, None, from_ms, to_ms)
    }

    fn query_uptime(
        &self,
        sql: &str,
        stream_id: Option<i64>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<HashMap<i64, Uptime>, StoreError> {
        let plan = UptimePlan::new(from_ms, to_ms, self.pruned_before_ms()?);
        let mut select = self.conn.prepare_cached(sql)?;
        let rows = select.query_map(
            params![
                stream_id,
                plan.hour_from,
                plan.hour_to,
                plan.raw[0].0,
                plan.raw[0].1,
                plan.raw[1].0,
                plan.raw[1].1
            ],
            |row| {
                let uptime = Uptime {
                    up: u64_from_sql(row.get(1)?),
                    degraded: u64_from_sql(row.get(2)?),
                    down: u64_from_sql(row.get(3)?),
                    quiet: u64_from_sql(row.get(4)?),
                };
                Ok((row.get::<_, i64>(0)?, uptime))
            },
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Raw heartbeats older than this have been deleted (`i64::MIN` if never pruned).
    fn pruned_before_ms(&self) -> Result<i64, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT value FROM store_meta WHERE key = ?1")?;
        let value = select
            .query_row([META_PRUNED_BEFORE_MS], |row| row.get(0))
            .optional()?;
        Ok(value.unwrap_or(i64::MIN))
    }

    /// The hourly rollups of one stream for the hours that overlap `[from_ms, to_ms)`, oldest
    /// first. Hours without heartbeats are absent.
    pub fn hourly(&self, stream_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<HourlyPoint>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT hour_ms, up_count, degraded_count, down_count, latency_sum_ms, latency_count, latency_max_ms,
                 quiet_count
             FROM heartbeat_hourly WHERE stream_id = ?1 AND hour_ms >= ?2 AND hour_ms < ?3 ORDER BY hour_ms",
        )?;
        let rows = select.query_map(params![stream_id, floor_hour(from_ms), to_ms], |row| {
            let latency_sum: i64 = row.get(4)?;
            let latency_count: i64 = row.get(5)?;
            Ok(HourlyPoint {
                hour_ms: row.get(0)?,
                up: u64_from_sql(row.get(1)?),
                degraded: u64_from_sql(row.get(2)?),
                down: u64_from_sql(row.get(3)?),
                quiet: u64_from_sql(row.get(7)?),
                latency_avg_ms: (latency_count > 0).then(|| latency_sum as f64 / latency_count as f64),
                latency_max_ms: row.get::<_, Option<i64>>(6)?.map(u64_from_sql),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Raw heartbeats of one stream in `[from_ms, to_ms)`, newest first, at most `limit`.
    pub fn heartbeats(
        &self,
        stream_id: i64,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<Heartbeat>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT stream_id, ts_ms, health, latency_ms, reason, message, codec, width, height, ntp_synced,
                    fps, bitrate_kbps
             FROM heartbeats WHERE stream_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 ORDER BY ts_ms DESC LIMIT ?4",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![stream_id, from_ms, to_ms, limit], |row| {
            let outcome = ProbeOutcome {
                health: health_at(row, 2)?,
                latency_ms: row.get::<_, Option<i64>>(3)?.map(u64_from_sql),
                reason: reason_at(row, 4)?,
                message: row.get(5)?,
                codec: row.get(6)?,
                width: row.get::<_, Option<i64>>(7)?.map(u32_from_sql),
                height: row.get::<_, Option<i64>>(8)?.map(u32_from_sql),
                fps: row.get(10)?,
                bitrate_kbps: row.get::<_, Option<i64>>(11)?.map(u64_from_sql),
                picture: None,
            };
            Ok(Heartbeat::new(row.get(0)?, row.get(1)?, row.get(9)?, outcome))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The quiet heartbeats (muted, maintenance) of one stream in `[from_ms, to_ms)`, newest
    /// first, at most `limit`, for the stream page's timeline.
    pub fn quiet_heartbeats(
        &self,
        stream_id: i64,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<(i64, Quiet)>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT ts_ms, quiet FROM heartbeats WHERE stream_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?3 AND quiet != 0
             ORDER BY ts_ms DESC LIMIT ?4",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select.query_map(params![stream_id, from_ms, to_ms, limit], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut quiet = Vec::new();
        for row in rows {
            let (ts_ms, code) = row?;
            if let Some(why) = Quiet::from_code(code) {
                quiet.push((ts_ms, why));
            }
        }
        Ok(quiet)
    }

    /// For sparklines: the latest `per_stream` heartbeats at or after `since_ms` of every stream,
    /// as `(ts_ms, latency_ms)` oldest first (`None` latency where the stream was down). Streams
    /// without heartbeats in the range are absent. Reads one consistent snapshot, touching only
    /// the rows returned.
    pub fn recent_latencies_all(
        &self,
        since_ms: i64,
        per_stream: usize,
    ) -> Result<HashMap<i64, LatencySeries>, StoreError> {
        let snapshot = self.conn.unchecked_transaction()?;
        let stream_ids = snapshot
            .prepare_cached("SELECT id FROM streams")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        // The limit is written into the SQL, not bound: SQLite re-plans a statement every time
        // a bound LIMIT changes value, which here would mean once per stream.
        let mut select = snapshot.prepare_cached(&format!(
            "SELECT ts_ms, latency_ms FROM heartbeats WHERE stream_id = ?1 AND ts_ms >= ?2
             ORDER BY ts_ms DESC LIMIT {per_stream}"
        ))?;
        let mut latencies = HashMap::new();
        for stream_id in stream_ids {
            let mut points = select
                .query_map(params![stream_id, since_ms], |row| {
                    Ok((row.get(0)?, row.get::<_, Option<i64>>(1)?.map(u64_from_sql)))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            if !points.is_empty() {
                points.reverse();
                latencies.insert(stream_id, points);
            }
        }
        drop(select);
        snapshot.finish()?;
        Ok(latencies)
    }

    /// Outages of one stream that overlap `[from_ms, to_ms)`, newest first; one still going on
    /// has no end.
    pub fn outages(&self, stream_id: i64, from_ms: i64, to_ms: i64) -> Result<Vec<Outage>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT start_ms, end_ms, reason, message FROM outages
             WHERE stream_id = ?1 AND start_ms < ?3 AND (end_ms IS NULL OR end_ms > ?2)
             ORDER BY start_ms DESC",
        )?;
        let rows = select.query_map(params![stream_id, from_ms, to_ms], |row| {
            Ok(Outage {
                start_ms: row.get(0)?,
                end_ms: row.get(1)?,
                reason: reason_at(row, 2)?,
                message: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Cumulative probe counts as `(stream_id, outcome, count)`; outcome is `up`, `degraded` or
    /// the down reason code. For Prometheus counters.
    pub fn probe_counts(&self) -> Result<Vec<(i64, String, u64)>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT stream_id, outcome, count FROM probe_counts ORDER BY stream_id, outcome",
        )?;
        let rows = select.query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, u64_from_sql(row.get(2)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: i64 = HOUR_MS;
    const NONE: (i64, i64) = (0, 0);

    #[test]
    fn uptime_plan_uses_rollups_for_whole_hours_and_raw_rows_for_edges() {
        let plan = UptimePlan::new(H / 2, 3 * H + 10, i64::MIN);
        assert_eq!(
            plan,
            UptimePlan {
                hour_from: H,
                hour_to: 3 * H,
                raw: [(H / 2, H), (3 * H, 3 * H + 10)]
            }
        );
        // Aligned range: rollups only.
        let plan = UptimePlan::new(H, 3 * H, i64::MIN);
        assert_eq!(plan.hour_from, H);
        assert_eq!(plan.hour_to, 3 * H);
        assert!(plan.raw.iter().all(|(from, to)| from == to));
        // Inside one hour: raw only.
        let plan = UptimePlan::new(H + 5, H + 50, i64::MIN);
        assert_eq!(
            plan,
            UptimePlan {
                hour_from: 0,
                hour_to: 0,
                raw: [(H + 5, H + 50), NONE]
            }
        );
        // Across one hour boundary, no whole hour.
        let plan = UptimePlan::new(H / 2, H + H / 2, i64::MIN);
        assert_eq!(
            plan,
            UptimePlan {
                hour_from: H,
                hour_to: H,
                raw: [(H / 2, H), (H, H + H / 2)]
            }
        );
    }

    #[test]
    fn uptime_plan_falls_back_to_whole_hours_where_raw_rows_are_pruned() {
        let plan = UptimePlan::new(H / 2, 3 * H + 10, 2 * H);
        assert_eq!(
            plan,
            UptimePlan {
                hour_from: 0,
                hour_to: 3 * H,
                raw: [NONE, (3 * H, 3 * H + 10)]
            }
        );
        let plan = UptimePlan::new(H / 2, 3 * H + 10, 4 * H);
        assert_eq!(
            plan,
            UptimePlan {
                hour_from: 0,
                hour_to: 4 * H,
                raw: [NONE, NONE]
            }
        );
        let plan = UptimePlan::new(H + 5, H + 50, 4 * H);
        assert_eq!(
            plan,
            UptimePlan {
                hour_from: H,
                hour_to: 2 * H,
                raw: [NONE, NONE]
            }
        );
        assert_eq!(
            UptimePlan::new(5, 5, 0),
            UptimePlan {
                hour_from: 0,
                hour_to: 0,
                raw: [NONE, NONE]
            }
        );
    }
}
