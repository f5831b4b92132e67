//! Muting from the web: the web server's writes to `stream_mutes` go through its writable
//! connection, like its users and sessions.

use rusqlite::OptionalExtension;

use super::{AccountError, Accounts};
use crate::alert::quiet::Mute;

impl Accounts {
    fn stream_id(&self, stream: &str) -> Result<i64, AccountError> {
        self.conn
            .query_row("SELECT id FROM streams WHERE name = ?1", [stream], |row| {
                row.get(0)
            })
            .optional()?
            .ok_or_else(|| AccountError::NoSuchStream(stream.to_string()))
    }

    /// Mutes `stream` from `now_ms` until `until_ms` (`None`: until unmuted), as `muted_by`.
    pub fn mute(
        &self,
        stream: &str,
        muted_by: &str,
        now_ms: i64,
        until_ms: Option<i64>,
    ) -> Result<Mute, AccountError> {
        let id = self.stream_id(stream)?;
        Ok(crate::store::mutes::mute(
            &self.conn, id, muted_by, now_ms, until_ms,
        )?)
    }

    /// Ends `stream`'s mute; whether it was muted.
    pub fn unmute(&self, stream: &str) -> Result<bool, AccountError> {
        let id = self.stream_id(stream)?;
        Ok(crate::store::mutes::unmute(&self.conn, id)?)
    }
}
