//! `stream_mutes`: which streams are muted, by whom and until when. Written by the web server
//! (through [`crate::store::accounts::Accounts`], its writable connection), read by the store
//! writer in each heartbeat's transaction and by the pages and the API.

use std::collections::HashMap;

use rusqlite::{params, Connection};

use super::{Store, StoreError};
use crate::alert::quiet::Mute;

fn mute_at(row: &rusqlite::Row<'_>) -> rusqlite::Result<Mute> {
    Ok(Mute {
        stream_id: row.get(0)?,
        muted_by: row.get(1)?,
        muted_ms: row.get(2)?,
        until_ms: row.get(3)?,
    })
}

/// Every mute row, ended ones included, by stream id.
pub(super) fn load_mutes(conn: &Connection) -> Result<HashMap<i64, Mute>, StoreError> {
    let mut select =
        conn.prepare_cached("SELECT stream_id, muted_by, muted_ms, until_ms FROM stream_mutes")?;
    let rows = select.query_map([], |row| Ok((row.get(0)?, mute_at(row)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Mutes `stream_id` from `now_ms` until `until_ms` (`None`: until unmuted), replacing any mute
/// it had. Mutes that have ended are deleted on the way: they have done their work (the
/// heartbeats they covered are flagged).
pub(crate) fn mute(
    conn: &Connection,
    stream_id: i64,
    muted_by: &str,
    now_ms: i64,
    until_ms: Option<i64>,
) -> Result<Mute, StoreError> {
    conn.execute(
        "DELETE FROM stream_mutes WHERE until_ms IS NOT NULL AND until_ms <= ?1",
        [now_ms],
    )?;
    conn.execute(
        "INSERT OR REPLACE INTO stream_mutes (stream_id, muted_by, muted_ms, until_ms) VALUES (?1, ?2, ?3, ?4)",
        params![stream_id, muted_by, now_ms, until_ms],
    )?;
    Ok(Mute {
        stream_id,
        muted_by: muted_by.to_string(),
        muted_ms: now_ms,
        until_ms,
    })
}

/// Ends the stream's mute; whether it had one.
pub(crate) fn unmute(conn: &Connection, stream_id: i64) -> Result<bool, StoreError> {
    Ok(conn.execute("DELETE FROM stream_mutes WHERE stream_id = ?1", [stream_id])? > 0)
}

impl Store {
    /// The mutes in force at `now_ms`, by stream id.
    pub fn active_mutes(&self, now_ms: i64) -> Result<HashMap<i64, Mute>, StoreError> {
        let mut mutes = load_mutes(&self.conn)?;
        mutes.retain(|_, mute| mute.until_ms.is_none_or(|until| until > now_ms));
        Ok(mutes)
    }
}
