//! The confirmed state of each stream (`stream_alert_state`) and the notification outbox
//! (`alert_outbox`): written by the heartbeat's transaction, read by the fleet view, delivered
//! and marked by the monitor's delivery task. Also decides whether a heartbeat is quiet (muted in
//! `stream_mutes`, or in a `maintenance:` window of the [`AlertPlan`]).

use std::collections::HashMap;

use rusqlite::{params, OptionalExtension, Transaction};

use super::{optional_health_at, Heartbeat, Store, StoreError};
use crate::alert::confirm::AlertState;
use crate::alert::quiet::{Mute, Quiet};
use crate::alert::{AlertPlan, Notification, Subject};
use crate::heartbeat::{Health, Reason};

/// One stream's state while a batch is applied.
struct Loaded {
    state: AlertState,
    name: String,
    url_redacted: Option<String>,
    changed: bool,
}

/// The confirmed states touched by one batch, saved at its end.
#[derive(Default)]
pub(crate) struct AlertBatch {
    streams: HashMap<i64, Loaded>,
    /// `stream_mutes`, read once per batch (a handful of rows).
    mutes: Option<HashMap<i64, Mute>>,
}

impl AlertBatch {
    /// Whether the heartbeat was quiet: in a maintenance window (which wins: it is planned) or
    /// muted at its time.
    pub(crate) fn quiet(
        &mut self,
        tx: &Transaction<'_>,
        plan: Option<&AlertPlan>,
        heartbeat: &Heartbeat,
    ) -> Result<Option<Quiet>, StoreError> {
        if let Some(plan) = plan.filter(|plan| !plan.maintenance_by_stream.is_empty()) {
            let loaded = self.loaded(tx, heartbeat.stream_id)?;
            if plan.in_maintenance(&loaded.name, heartbeat.ts_ms) {
                return Ok(Some(Quiet::Maintenance));
            }
        }
        let mutes = match &mut self.mutes {
            Some(mutes) => mutes,
            none => none.insert(super::mutes::load_mutes(tx)?),
        };
        let muted = mutes
            .get(&heartbeat.stream_id)
            .is_some_and(|mute| mute.covers(heartbeat.ts_ms));
        Ok(muted.then_some(Quiet::Muted))
    }

    fn loaded(&mut self, tx: &Transaction<'_>, stream_id: i64) -> Result<&mut Loaded, StoreError> {
        Ok(match self.streams.entry(stream_id) {
            std::collections::hash_map::Entry::Occupied(entry) => entry.into_mut(),
            std::collections::hash_map::Entry::Vacant(entry) => entry.insert(load(tx, stream_id)?),
        })
    }

    /// Moves the stream's confirmed state on by one heartbeat and queues what it causes, one
    /// outbox row per channel.
    pub(crate) fn apply(
        &mut self,
        tx: &Transaction<'_>,
        plan: &AlertPlan,
        heartbeat: &Heartbeat,
        quiet: bool,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let loaded = self.loaded(tx, heartbeat.stream_id)?;
        // The state told last: after quiet time, the one before it began.
        let old = if loaded.state.quiet {
            loaded.state.quiet_baseline
        } else {
            loaded.state.confirmed
        };
        let rules = plan.rules_for(&loaded.name);
        let notice = loaded
            .state
            .apply(rules, heartbeat.outcome.health, heartbeat.ts_ms, quiet);
        loaded.changed = true;
        let Some(notice) = notice else {
            return Ok(());
        };
        let outcome = &heartbeat.outcome;
        let subject = Subject {
            stream: &loaded.name,
            url_redacted: loaded.url_redacted.as_deref(),
            reason: outcome.reason.map(Reason::code),
            message: &outcome.message,
        };
        let notification = Notification::of(plan, &subject, notice, old.map(Health::as_str));
        let payload =
            serde_json::to_string(&notification).map_err(|error| StoreError::Payload(error.to_string()))?;
        let mut insert = tx.prepare_cached(
            "INSERT INTO alert_outbox (channel, stream_id, event, payload, created_ms, next_attempt_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )?;
        for channel in &plan.channels {
            insert.execute(params![
                channel,
                heartbeat.stream_id,
                notification.event.as_str(),
                payload,
                now_ms
            ])?;
        }
        Ok(())
    }

    pub(crate) fn save(self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        let mut save = tx.prepare_cached(
            "INSERT OR REPLACE INTO stream_alert_state (stream_id, confirmed_state, since_ms, pending_state,
                 pending_count, pending_since_ms, last_ts_ms, flapping, recent_changes, quiet, quiet_baseline)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?;
        for (stream_id, loaded) in self.streams.iter().filter(|(_, loaded)| loaded.changed) {
            let state = &loaded.state;
            let changes: Vec<String> = state.recent_changes_ms.iter().map(i64::to_string).collect();
            save.execute(params![
                stream_id,
                state.confirmed.map(Health::code),
                state.since_ms,
                state.pending.map(Health::code),
                state.pending_count,
                state.pending_since_ms,
                state.last_ts_ms,
                state.flapping,
                changes.join(","),
                state.quiet,
                state.quiet_baseline.map(Health::code),
            ])?;
        }
        Ok(())
    }
}

fn load(tx: &Transaction<'_>, stream_id: i64) -> Result<Loaded, StoreError> {
    let (name, url_redacted) = tx
        .prepare_cached("SELECT name, url_redacted FROM streams WHERE id = ?1")?
        .query_row([stream_id], |row| Ok((row.get(0)?, row.get(1)?)))?;
    let state = tx
        .prepare_cached(
            "SELECT confirmed_state, since_ms, pending_state, pending_count, pending_since_ms, last_ts_ms, flapping,
                 recent_changes, quiet, quiet_baseline
             FROM stream_alert_state WHERE stream_id = ?1",
        )?
        .query_row([stream_id], state_at)
        .optional()?
        .unwrap_or_default();
    Ok(Loaded {
        state,
        name,
        url_redacted,
        changed: false,
    })
}

fn state_at(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertState> {
    let changes: String = row.get(7)?;
    Ok(AlertState {
        confirmed: optional_health_at(row, 0)?,
        since_ms: row.get(1)?,
        pending: optional_health_at(row, 2)?,
        pending_count: row.get(3)?,
        pending_since_ms: row.get(4)?,
        last_ts_ms: row.get(5)?,
        flapping: row.get(6)?,
        recent_changes_ms: changes.split(',').filter_map(|t| t.parse().ok()).collect(),
        quiet: row.get(8)?,
        quiet_baseline: optional_health_at(row, 9)?,
    })
}

/// A notification waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxItem {
    pub id: i64,
    pub channel: String,
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt_ms: i64,
}

impl Store {
    /// Every stream's confirmed state, by stream id.
    pub fn alert_states(&self) -> Result<HashMap<i64, AlertState>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT confirmed_state, since_ms, pending_state, pending_count, pending_since_ms, last_ts_ms, flapping,
                 recent_changes, quiet, quiet_baseline, stream_id
             FROM stream_alert_state",
        )?;
        let rows = select.query_map([], |row| Ok((row.get::<_, i64>(10)?, state_at(row)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The oldest pending notification of each channel: a channel delivers in order, so a
    /// recovery never overtakes the outage it ends.
    pub fn outbox_heads(&self) -> Result<Vec<OutboxItem>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT id, channel, payload, attempts, next_attempt_ms FROM alert_outbox
             WHERE id IN (SELECT min(id) FROM alert_outbox WHERE status = 'pending' GROUP BY channel)",
        )?;
        let rows = select.query_map([], |row| {
            Ok(OutboxItem {
                id: row.get(0)?,
                channel: row.get(1)?,
                payload: row.get(2)?,
                attempts: row.get(3)?,
                next_attempt_ms: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A receiver took the notification (2xx).
    pub fn outbox_delivered(&self, id: i64, attempts: u32, now_ms: i64) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE alert_outbox SET status = 'delivered', attempts = ?2, done_ms = ?3, last_error = NULL WHERE id = ?1",
            params![id, attempts, now_ms],
        )?;
        Ok(())
    }

    /// An attempt failed: try again at `next_attempt_ms`, or (`None`) give up and mark it failed.
    pub fn outbox_attempt_failed(
        &self,
        id: i64,
        attempts: u32,
        next_attempt_ms: Option<i64>,
        error: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        match next_attempt_ms {
            Some(next) => self.conn.execute(
                "UPDATE alert_outbox SET attempts = ?2, next_attempt_ms = ?3, last_error = ?4 WHERE id = ?1",
                params![id, attempts, next, error],
            )?,
            None => self.conn.execute(
                "UPDATE alert_outbox SET status = 'failed', attempts = ?2, last_error = ?3, done_ms = ?4 WHERE id = ?1",
                params![id, attempts, error, now_ms],
            )?,
        };
        Ok(())
    }

    /// Notifications by status (`pending`, `delivered`, `failed`), for `/metrics`.
    pub fn outbox_counts(&self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut select = self
            .conn
            .prepare_cached("SELECT status, count(*) FROM alert_outbox GROUP BY status ORDER BY status")?;
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
