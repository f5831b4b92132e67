//! Writes: resolving configured streams to rows, recording heartbeat batches (with every derived
//! table), and pruning old raw heartbeats.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use rusqlite::{params, OptionalExtension, Transaction, TransactionBehavior};

use super::{
    floor_hour, health_at, reason_at, u32_from_sql, u64_from_sql, u64_to_sql, Heartbeat, Store, StoreError,
    StreamIdentity,
};
use crate::alert::quiet::Quiet;
use crate::heartbeat::{Health, Reason};

/// Rows deleted per prune statement: small enough that the write lock is held for milliseconds.
pub(crate) const PRUNE_CHUNK_ROWS: usize = 2_000;

/// `store_meta` key: raw heartbeats older than this have been (or are being) deleted.
pub(crate) const META_PRUNED_BEFORE_MS: &str = "pruned_before_ms";

/// An existing `streams` row, as far as matching needs it.
struct StreamRow {
    id: i64,
    config_id: Option<String>,
    name: String,
    url_fingerprint: Option<String>,
    last_seen_config_ms: Option<i64>,
}

/// Two explicit config ids that differ mean two different streams, whatever else they share.
fn ids_compatible(row: &StreamRow, stream: &StreamIdentity) -> bool {
    match (&row.config_id, &stream.config_id) {
        (Some(row_id), Some(config_id)) => row_id == config_id,
        _ => true,
    }
}

/// The current state of one stream while a batch is applied.
struct CurrentStatus {
    health: Health,
    since_ms: i64,
    last_ts_ms: i64,
    last_latency_ms: Option<u64>,
    reason: Option<Reason>,
    message: String,
    codec: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    last_up_ms: Option<i64>,
    changed: bool,
}

/// What one batch adds to one hour of one stream.
#[derive(Default)]
struct RollupDelta {
    up: i64,
    degraded: i64,
    down: i64,
    /// Heartbeats while muted or in maintenance: counted here instead of by health, so uptime
    /// leaves them out.
    quiet: i64,
    latency_sum_ms: i64,
    latency_count: i64,
    latency_max_ms: Option<i64>,
}

impl RollupDelta {
    fn add(&mut self, health: Health, quiet: bool, latency_ms: Option<i64>) {
        self.count(health, quiet, 1);
        if let Some(latency) = latency_ms {
            self.latency_sum_ms = self.latency_sum_ms.saturating_add(latency);
            self.latency_count += 1;
            self.latency_max_ms = Some(self.latency_max_ms.map_or(latency, |max| max.max(latency)));
        }
    }

    /// Takes back a heartbeat that is being replaced. The maximum cannot be taken back; it may
    /// overstate until the hour ends, which only happens when a heartbeat is re-recorded.
    fn remove(&mut self, health: Health, quiet: bool, latency_ms: Option<i64>) {
        self.count(health, quiet, -1);
        if let Some(latency) = latency_ms {
            self.latency_sum_ms = self.latency_sum_ms.saturating_sub(latency);
            self.latency_count -= 1;
        }
    }

    fn count(&mut self, health: Health, quiet: bool, by: i64) {
        if quiet {
            self.quiet += by;
            return;
        }
        match health {
            Health::Up => self.up += by,
            Health::Degraded => self.degraded += by,
            Health::Down => self.down += by,
        }
    }
}

/// The `probe_counts.outcome` label of a heartbeat.
fn outcome_label(heartbeat: &Heartbeat) -> &'static str {
    match heartbeat.outcome.health {
        Health::Up => "up",
        Health::Degraded => "degraded",
        Health::Down => heartbeat.outcome.reason.unwrap_or(Reason::Other).code(),
    }
}

/// Where a chunked prune has got to.
#[derive(Debug)]
pub(crate) struct PruneProgress {
    older_than_ms: i64,
    stream_ids: Vec<i64>,
    next_stream: usize,
    pub(crate) deleted: usize,
}

impl PruneProgress {
    pub(crate) fn is_done(&self) -> bool {
        self.next_stream >= self.stream_ids.len()
    }
}

impl Store {
    /// Finds the row of every configured stream, creating or renaming rows as needed, and returns
    /// their ids in the order given. One transaction.
    ///
    /// A stream matches, in this order: the row with its explicit `config_id`; the row with its
    /// name; a row with its URL fingerprint whose name is no longer configured (a rename: the row
    /// takes the new name and keeps its history); otherwise a new row is inserted. A row that is
    /// no longer configured but holds a name a configured stream needs is renamed to
    /// `"NAME (old #ID)"`, so its history stays apart. Rows are never deleted.
    pub fn resolve_streams(
        &mut self,
        streams: &[StreamIdentity],
        now_ms: i64,
    ) -> Result<Vec<i64>, StoreError> {
        let mut configured_names = HashSet::new();
        let mut configured_ids = HashSet::new();
        for stream in streams {
            if !configured_names.insert(stream.name.as_str()) {
                return Err(StoreError::DuplicateName(stream.name.clone()));
            }
            if let Some(config_id) = &stream.config_id {
                if !configured_ids.insert(config_id.as_str()) {
                    return Err(StoreError::DuplicateConfigId(config_id.clone()));
                }
            }
        }

        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let rows: Vec<StreamRow> = {
            let mut select =
                tx.prepare("SELECT id, config_id, name, url_fingerprint, last_seen_config_ms FROM streams")?;
            let rows = select.query_map([], |row| {
                Ok(StreamRow {
                    id: row.get(0)?,
                    config_id: row.get(1)?,
                    name: row.get(2)?,
                    url_fingerprint: row.get(3)?,
                    last_seen_config_ms: row.get(4)?,
                })
            })?;
            rows.collect::<Result<_, _>>()?
        };
        let row_by_config_id: HashMap<&str, usize> = rows
            .iter()
            .enumerate()
            .filter_map(|(index, row)| row.config_id.as_deref().map(|id| (id, index)))
            .collect();
        let row_by_name: HashMap<&str, usize> = rows
            .iter()
            .enumerate()
            .map(|(index, row)| (row.name.as_str(), index))
            .collect();

        // Matching runs pass by pass over all streams, so the result does not depend on their order.
        let mut matched: Vec<Option<usize>> = vec![None; streams.len()];
        let mut claimed = vec![false; rows.len()];
        for (stream, slot) in streams.iter().zip(matched.iter_mut()) {
            let found = stream
                .config_id
                .as_deref()
                .and_then(|id| row_by_config_id.get(id).copied());
            if let Some(index) = found {
                claimed[index] = true;
                *slot = Some(index);
            }
        }
        for (stream, slot) in streams.iter().zip(matched.iter_mut()) {
            if slot.is_some() {
                continue;
            }
            if let Some(&index) = row_by_name.get(stream.name.as_str()) {
                if !claimed[index] && ids_compatible(&rows[index], stream) {
                    claimed[index] = true;
                    *slot = Some(index);
                }
            }
        }
        for (stream, slot) in streams.iter().zip(matched.iter_mut()) {
            let Some(fingerprint) = stream.url_fingerprint.as_deref().filter(|_| slot.is_none()) else {
                continue;
            };
            let renamed_from = rows
                .iter()
                .enumerate()
                .filter(|(index, row)| {
                    !claimed[*index]
                        && row.url_fingerprint.as_deref() == Some(fingerprint)
                        && !configured_names.contains(row.name.as_str())
                        && ids_compatible(row, stream)
                })
                .max_by_key(|(_, row)| (row.last_seen_config_ms, row.id))
                .map(|(index, _)| index);
            if let Some(index) = renamed_from {
                claimed[index] = true;
                *slot = Some(index);
            }
        }

        // Names that unconfigured rows hold but configured streams need: move those rows aside.
        let mut taken_names: HashSet<String> = rows.iter().map(|row| row.name.clone()).collect();
        for stream in streams {
            let Some(&index) = row_by_name.get(stream.name.as_str()) else {
                continue;
            };
            if claimed[index] {
                continue;
            }
            let row = &rows[index];
            let mut aside = format!("{} (old #{})", row.name, row.id);
            let mut attempt = 2;
            while taken_names.contains(&aside) || configured_names.contains(aside.as_str()) {
                aside = format!("{} (old #{}, {attempt})", row.name, row.id);
                attempt += 1;
            }
            tx.execute(
                "UPDATE streams SET name = ?2 WHERE id = ?1",
                params![row.id, aside],
            )?;
            tracing::info!(
                stream_id = row.id,
                old_name = %row.name,
                new_name = %aside,
                "a configured stream needs this name; the unconfigured stream keeps its history under a new name"
            );
            taken_names.insert(aside);
        }

        // Matched rows that change name first take a placeholder, so names can swap.
        for (stream, slot) in streams.iter().zip(&matched) {
            if let Some(row) = slot.map(|index| &rows[index]) {
                if row.name != stream.name {
                    let placeholder = format!("\u{1}renaming #{}", row.id);
                    tx.execute(
                        "UPDATE streams SET name = ?2 WHERE id = ?1",
                        params![row.id, placeholder],
                    )?;
                }
            }
        }

        let mut ids = Vec::with_capacity(streams.len());
        for (stream, slot) in streams.iter().zip(&matched) {
            let id = match slot.map(|index| &rows[index]) {
                Some(row) => {
                    if row.name != stream.name {
                        tracing::info!(
                            stream_id = row.id,
                            old_name = %row.name,
                            new_name = %stream.name,
                            "stream renamed; its history is kept"
                        );
                    }
                    tx.execute(
                        "UPDATE streams SET name = ?2, config_id = ?3, url_redacted = ?4, url_fingerprint = ?5,
                             last_seen_config_ms = ?6
                         WHERE id = ?1",
                        params![
                            row.id,
                            stream.name,
                            stream.config_id,
                            stream.url_redacted,
                            stream.url_fingerprint,
                            now_ms
                        ],
                    )?;
                    row.id
                }
                None => {
                    tx.execute(
                        "INSERT INTO streams (config_id, name, url_redacted, url_fingerprint, created_ms,
                             last_seen_config_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
                        params![
                            stream.config_id,
                            stream.name,
                            stream.url_redacted,
                            stream.url_fingerprint,
                            now_ms
                        ],
                    )?;
                    let id = tx.last_insert_rowid();
                    tracing::info!(stream_id = id, name = %stream.name, "new stream");
                    id
                }
            };
            ids.push(id);
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Records a batch of heartbeats in one transaction, maintaining the current status, the
    /// hourly rollups, outages and probe counters with them.
    ///
    /// A heartbeat with the same stream and time as a stored one replaces it (the rollup is
    /// corrected; the probe counter is not counted twice). A heartbeat older than the stream's
    /// latest one is stored and counted but does not change the current status or outages,
    /// which follow the newest heartbeat. Fails (and writes nothing) if a stream id is unknown.
    pub fn record(&mut self, batch: &[Heartbeat]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let alert_plan = self.alert_plan.clone();
        let mut alert_batch = super::alerts::AlertBatch::default();
        let now_ms = crate::clock::system_now_ms();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut statuses: HashMap<i64, Option<CurrentStatus>> = HashMap::new();
        let mut rollups: HashMap<(i64, i64), RollupDelta> = HashMap::new();
        let mut counts: HashMap<(i64, &'static str), i64> = HashMap::new();
        {
            let mut insert = tx.prepare_cached(
                "INSERT INTO heartbeats (stream_id, ts_ms, health, latency_ms, reason, message, codec, width,
                     height, ntp_synced, fps, bitrate_kbps, quiet)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)
                 ON CONFLICT (stream_id, ts_ms) DO NOTHING",
            )?;
            for heartbeat in batch {
                let outcome = &heartbeat.outcome;
                let quiet = alert_batch.quiet(&tx, alert_plan.as_deref(), heartbeat)?;
                let latency_ms = outcome.latency_ms.map(u64_to_sql);
                let values = params![
                    heartbeat.stream_id,
                    heartbeat.ts_ms,
                    outcome.health.code(),
                    latency_ms,
                    outcome.reason.map(Reason::code),
                    outcome.message,
                    outcome.codec,
                    outcome.width,
                    outcome.height,
                    heartbeat.ntp_synced,
                    outcome.fps,
                    outcome.bitrate_kbps.map(u64_to_sql),
                    quiet.map_or(0, Quiet::code),
                ];
                let rollup = rollups
                    .entry((heartbeat.stream_id, floor_hour(heartbeat.ts_ms)))
                    .or_default();
                if insert.execute(values)? == 1 {
                    *counts
                        .entry((heartbeat.stream_id, outcome_label(heartbeat)))
                        .or_default() += 1;
                } else {
                    let (old_health, old_latency, old_quiet) = tx
                        .prepare_cached(
                            "SELECT health, latency_ms, quiet FROM heartbeats WHERE stream_id = ?1 AND ts_ms = ?2",
                        )?
                        .query_row(params![heartbeat.stream_id, heartbeat.ts_ms], |row| {
                            Ok((
                                health_at(row, 0)?,
                                row.get::<_, Option<i64>>(1)?,
                                row.get::<_, i64>(2)? != 0,
                            ))
                        })?;
                    rollup.remove(old_health, old_quiet, old_latency);
                    tx.prepare_cached(
                        "UPDATE heartbeats SET health = ?3, latency_ms = ?4, reason = ?5, message = ?6, codec = ?7,
                             width = ?8, height = ?9, ntp_synced = ?10, fps = ?11, bitrate_kbps = ?12,
                             quiet = ?13
                         WHERE stream_id = ?1 AND ts_ms = ?2",
                    )?
                    .execute(values)?;
                }
                rollup.add(outcome.health, quiet.is_some(), latency_ms);

                let status = match statuses.entry(heartbeat.stream_id) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => entry.insert(load_status(&tx, heartbeat.stream_id)?),
                };
                apply_to_status(&tx, status, heartbeat)?;
                if let Some(plan) = &alert_plan {
                    alert_batch.apply(&tx, plan, heartbeat, quiet.is_some(), now_ms)?;
                }
            }
        }
        alert_batch.save(&tx)?;

        let mut save_status = tx.prepare_cached(
            "INSERT OR REPLACE INTO stream_status (stream_id, health, since_ms, last_ts_ms, last_latency_ms, reason,
                 message, codec, width, height, last_up_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (stream_id, status) in &statuses {
            let Some(status) = status.as_ref().filter(|status| status.changed) else {
                continue;
            };
            save_status.execute(params![
                stream_id,
                status.health.code(),
                status.since_ms,
                status.last_ts_ms,
                status.last_latency_ms.map(u64_to_sql),
                status.reason.map(Reason::code),
                status.message,
                status.codec,
                status.width,
                status.height,
                status.last_up_ms,
            ])?;
        }
        drop(save_status);

        let mut save_rollup = tx.prepare_cached(
            "INSERT INTO heartbeat_hourly (stream_id, hour_ms, up_count, degraded_count, down_count, latency_sum_ms,
                 latency_count, latency_max_ms, quiet_count)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (stream_id, hour_ms) DO UPDATE SET
                 up_count = up_count + excluded.up_count,
                 degraded_count = degraded_count + excluded.degraded_count,
                 down_count = down_count + excluded.down_count,
                 quiet_count = quiet_count + excluded.quiet_count,
                 latency_sum_ms = latency_sum_ms + excluded.latency_sum_ms,
                 latency_count = latency_count + excluded.latency_count,
                 latency_max_ms = CASE
                     WHEN excluded.latency_max_ms IS NULL THEN latency_max_ms
                     WHEN latency_max_ms IS NULL THEN excluded.latency_max_ms
                     ELSE max(latency_max_ms, excluded.latency_max_ms)
                 END",
        )?;
        for ((stream_id, hour_ms), delta) in &rollups {
            save_rollup.execute(params![
                stream_id,
                hour_ms,
                delta.up,
                delta.degraded,
                delta.down,
                delta.latency_sum_ms,
                delta.latency_count,
                delta.latency_max_ms,
                delta.quiet,
            ])?;
        }
        drop(save_rollup);

        let mut save_count = tx.prepare_cached(
            "INSERT INTO probe_counts (stream_id, outcome, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (stream_id, outcome) DO UPDATE SET count = count + excluded.count",
        )?;
        for ((stream_id, outcome), count) in &counts {
            save_count.execute(params![stream_id, outcome, count])?;
        }
        drop(save_count);

        tx.commit()?;
        Ok(())
    }

    /// Deletes raw heartbeats older than `older_than_ms` and returns how many. Rollups, outages,
    /// statuses and counters are kept. Deletes in small chunks, each its own transaction, so the
    /// write lock is never held for long.
    pub fn prune(&mut self, older_than_ms: i64) -> Result<usize, StoreError> {
        let mut progress = self.start_prune(older_than_ms)?;
        while !progress.is_done() {
            self.prune_step(&mut progress, PRUNE_CHUNK_ROWS)?;
        }
        Ok(progress.deleted)
    }

    /// Records the prune watermark (before anything is deleted, so uptime queries never trust a
    /// half-pruned hour of raw rows) and lists the streams to prune.
    pub(crate) fn start_prune(&mut self, older_than_ms: i64) -> Result<PruneProgress, StoreError> {
        self.conn.execute(
            "INSERT INTO store_meta (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            params![META_PRUNED_BEFORE_MS, older_than_ms],
        )?;
        let stream_ids = self
            .conn
            .prepare("SELECT id FROM streams ORDER BY id")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<Vec<i64>, _>>()?;
        Ok(PruneProgress {
            older_than_ms,
            stream_ids,
            next_stream: 0,
            deleted: 0,
        })
    }

    /// Deletes at most `max_rows` old heartbeats of the current stream in one short transaction.
    pub(crate) fn prune_step(
        &mut self,
        progress: &mut PruneProgress,
        max_rows: usize,
    ) -> Result<(), StoreError> {
        let Some(&stream_id) = progress.stream_ids.get(progress.next_stream) else {
            return Ok(());
        };
        let deleted = self
            .conn
            .prepare_cached(
                "DELETE FROM heartbeats WHERE stream_id = ?1 AND ts_ms IN (
                     SELECT ts_ms FROM heartbeats WHERE stream_id = ?1 AND ts_ms < ?2 ORDER BY ts_ms LIMIT ?3)",
            )?
            .execute(params![stream_id, progress.older_than_ms, u64_to_sql(max_rows as u64)])?;
        progress.deleted += deleted;
        if deleted < max_rows {
            progress.next_stream += 1;
        }
        Ok(())
    }
}

fn load_status(tx: &Transaction<'_>, stream_id: i64) -> Result<Option<CurrentStatus>, StoreError> {
    let status = tx
        .prepare_cached(
            "SELECT health, since_ms, last_ts_ms, last_latency_ms, reason, message, codec, width, height, last_up_ms
             FROM stream_status WHERE stream_id = ?1",
        )?
        .query_row([stream_id], |row| {
            Ok(CurrentStatus {
                health: health_at(row, 0)?,
                since_ms: row.get(1)?,
                last_ts_ms: row.get(2)?,
                last_latency_ms: row.get::<_, Option<i64>>(3)?.map(u64_from_sql),
                reason: reason_at(row, 4)?,
                message: row.get(5)?,
                codec: row.get(6)?,
                width: row.get::<_, Option<i64>>(7)?.map(u32_from_sql),
                height: row.get::<_, Option<i64>>(8)?.map(u32_from_sql),
                last_up_ms: row.get(9)?,
                changed: false,
            })
        })
        .optional()?;
    Ok(status)
}

/// Moves a stream's current status forward by one heartbeat, opening an outage when it goes down
/// and closing it at the first heartbeat with video.
fn apply_to_status(
    tx: &Transaction<'_>,
    status: &mut Option<CurrentStatus>,
    heartbeat: &Heartbeat,
) -> Result<(), StoreError> {
    let previous_health = match status {
        Some(current) if heartbeat.ts_ms < current.last_ts_ms => return Ok(()),
        Some(current) => Some(current.health),
        None => None,
    };
    let outcome = &heartbeat.outcome;
    let has_video = outcome.health != Health::Down;
    if outcome.health == Health::Down && previous_health != Some(Health::Down) {
        tx.prepare_cached(
            "INSERT INTO outages (stream_id, start_ms, end_ms, reason, message) VALUES (?1, ?2, NULL, ?3, ?4)
             ON CONFLICT (stream_id, start_ms) DO UPDATE SET
                 end_ms = NULL, reason = excluded.reason, message = excluded.message",
        )?
        .execute(params![
            heartbeat.stream_id,
            heartbeat.ts_ms,
            outcome.reason.map(Reason::code),
            outcome.message
        ])?;
    } else if has_video && previous_health == Some(Health::Down) {
        // The partial index finds the open outage without walking the stream's whole outage history.
        tx.prepare_cached(
            "UPDATE outages INDEXED BY outages_open SET end_ms = ?2 WHERE stream_id = ?1 AND end_ms IS NULL",
        )?
        .execute(params![heartbeat.stream_id, heartbeat.ts_ms])?;
    }

    let since_ms = match status {
        Some(current) if current.health == outcome.health => current.since_ms,
        _ => heartbeat.ts_ms,
    };
    let (mut codec, mut width, mut height, previous_last_up_ms) = match status.take() {
        Some(current) => (current.codec, current.width, current.height, current.last_up_ms),
        None => (None, None, None, None),
    };
    // A down heartbeat reports no video format; keep the last one known, taken as a whole.
    if outcome.codec.is_some() || outcome.width.is_some() || outcome.height.is_some() {
        (codec, width, height) = (outcome.codec.clone(), outcome.width, outcome.height);
    }
    *status = Some(CurrentStatus {
        health: outcome.health,
        since_ms,
        last_ts_ms: heartbeat.ts_ms,
        last_latency_ms: outcome.latency_ms,
        reason: outcome.reason,
        message: outcome.message.clone(),
        codec,
        width,
        height,
        last_up_ms: if has_video {
            Some(heartbeat.ts_ms)
        } else {
            previous_last_up_ms
        },
        changed: true,
    });
    Ok(())
}
