//! The embedded schema migrations and the code that applies them.
//!
//! Each migration is a SQL batch applied in its own transaction; `PRAGMA user_version` records how
//! many have been applied. Never edit a migration that has shipped: append a new one.

use rusqlite::{Connection, TransactionBehavior};

use super::StoreError;

/// Schema version 1.
///
/// Streams are rows keyed by a stable integer id, never tables: renaming a stream updates one
/// row and keeps its history (v1 of StreamPulse used a table per stream and lost history on
/// rename). Times are UTC milliseconds since the Unix epoch.
const V1: &str = r#"
CREATE TABLE streams (
    id INTEGER PRIMARY KEY,
    config_id TEXT UNIQUE,
    name TEXT NOT NULL UNIQUE,
    url_redacted TEXT,
    url_fingerprint TEXT,
    created_ms INTEGER NOT NULL,
    last_seen_config_ms INTEGER
);
CREATE INDEX streams_url_fingerprint ON streams (url_fingerprint);

-- Raw probe results, pruned after the retention period.
CREATE TABLE heartbeats (
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    ts_ms INTEGER NOT NULL,
    health INTEGER NOT NULL,
    latency_ms INTEGER,
    reason TEXT,
    message TEXT NOT NULL DEFAULT '',
    codec TEXT,
    width INTEGER,
    height INTEGER,
    ntp_synced INTEGER NOT NULL,
    PRIMARY KEY (stream_id, ts_ms)
) WITHOUT ROWID;

-- The current state of each stream, maintained on every write.
CREATE TABLE stream_status (
    stream_id INTEGER PRIMARY KEY REFERENCES streams (id),
    health INTEGER NOT NULL,
    since_ms INTEGER NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    last_latency_ms INTEGER,
    reason TEXT,
    message TEXT NOT NULL DEFAULT '',
    codec TEXT,
    width INTEGER,
    height INTEGER,
    last_up_ms INTEGER
);

-- Hourly rollups of heartbeats, kept forever; dashboards read these, not raw rows.
CREATE TABLE heartbeat_hourly (
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    hour_ms INTEGER NOT NULL,
    up_count INTEGER NOT NULL DEFAULT 0,
    degraded_count INTEGER NOT NULL DEFAULT 0,
    down_count INTEGER NOT NULL DEFAULT 0,
    latency_sum_ms INTEGER NOT NULL DEFAULT 0,
    latency_count INTEGER NOT NULL DEFAULT 0,
    latency_max_ms INTEGER,
    PRIMARY KEY (stream_id, hour_ms)
) WITHOUT ROWID;

-- Periods during which a stream was down; end_ms is NULL while it still is.
CREATE TABLE outages (
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    reason TEXT,
    message TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (stream_id, start_ms)
) WITHOUT ROWID;
CREATE INDEX outages_open ON outages (stream_id) WHERE end_ms IS NULL;

-- Cumulative probe counts by outcome ("up", "degraded" or the down reason code).
CREATE TABLE probe_counts (
    stream_id INTEGER NOT NULL REFERENCES streams (id),
    outcome TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (stream_id, outcome)
) WITHOUT ROWID;

-- Small facts about the store itself, e.g. how far raw heartbeats have been pruned.
CREATE TABLE store_meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Schema version 2: the web server's accounts.
///
/// Sessions and API tokens are stored as SHA-256 hashes of the secret the client holds, so a copy
/// of the database cannot be replayed as a login. Sessions live here rather than in memory so a
/// restart of `streampulse web` does not log everyone out.
const V2: &str = r#"
CREATE TABLE web_users (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    password_changed_ms INTEGER NOT NULL
);

CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES web_users (id) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX web_sessions_user ON web_sessions (user_id);

CREATE TABLE web_api_tokens (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    token_hash TEXT NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    last_used_ms INTEGER
);
"#;

/// Schema version 3: what a sample window measured (issue: picture verdicts), NULL without one.
const V3: &str = r#"
ALTER TABLE heartbeats ADD COLUMN fps REAL;
ALTER TABLE heartbeats ADD COLUMN bitrate_kbps INTEGER;
"#;

/// Schema version 4: API token scopes and the reveal confirmation (issue 12, item 4).
///
/// Tokens made before scopes existed become `read`, not `admin`: until now every token could read
/// every camera password and rewrite the config, and nothing says a Prometheus or dashboard token
/// was ever meant to. A script that changes the config must be given a new token made with
/// `streampulse token create NAME --scope admin` (the README says so); failing closed beats
/// leaving every old token an administrator.
///
/// `confirmed_ms` is when the session's user last re-entered their password; camera passwords
/// are shown for a few minutes after it. It lives on the session row so it ends with the session
/// (logout, expiry, password change) and needs no expiry of its own.
const V4: &str = r#"
ALTER TABLE web_api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT 'read'
    CHECK (scope IN ('read', 'admin'));
ALTER TABLE web_sessions ADD COLUMN confirmed_ms INTEGER;
"#;

/// Schema version 5: web roles and the time display choice (issue 15, section 4).
///
/// Every user who existed before roles becomes an `admin`: until now every login could do
/// everything, and demoting someone silently would lock out the only administrator.
/// `time_display` is where pages show times: `server` (the config's timezone) or `browser`.
const V5: &str = r#"
ALTER TABLE web_users ADD COLUMN role TEXT NOT NULL DEFAULT 'admin'
    CHECK (role IN ('admin', 'viewer'));
ALTER TABLE web_users ADD COLUMN time_display TEXT NOT NULL DEFAULT 'server'
    CHECK (time_display IN ('server', 'browser'));
"#;

/// Schema version 6: confirmed state and the notification outbox (issue 11).
///
/// `stream_alert_state` is the confirmed state beside the raw heartbeats, kept in SQLite so a
/// restarted monitor neither forgets an outage nor announces it twice. `alert_outbox` holds one
/// row per notification and channel, written in the heartbeat's transaction and delivered
/// afterwards: a row is `pending` until a receiver answers 2xx (`delivered`) or the attempts run
/// out (`failed`). `recent_changes` lists the confirmed changes' times within the flap window.
const V6: &str = r#"
CREATE TABLE stream_alert_state (
    stream_id INTEGER PRIMARY KEY REFERENCES streams (id),
    confirmed_state INTEGER,
    since_ms INTEGER NOT NULL,
    pending_state INTEGER,
    pending_count INTEGER NOT NULL DEFAULT 0,
    pending_since_ms INTEGER NOT NULL DEFAULT 0,
    last_ts_ms INTEGER NOT NULL,
    flapping INTEGER NOT NULL DEFAULT 0,
    recent_changes TEXT NOT NULL DEFAULT ''
);

CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    channel TEXT NOT NULL,
    stream_id INTEGER REFERENCES streams (id),
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    done_ms INTEGER
);
CREATE INDEX alert_outbox_pending ON alert_outbox (channel, id) WHERE status = 'pending';
"#;

/// Schema version 7: mutes and quiet time (issue 11, "Maintenance and mute").
///
/// `stream_mutes` holds one row per muted stream: who muted it, when, and until when (`NULL`:
/// until someone unmutes; unmuting deletes the row). Maintenance windows live in the config, not
/// here. The writer decides per heartbeat whether it was *quiet* (`heartbeats.quiet`: 0 no,
/// 1 maintenance, 2 muted) in the heartbeat's transaction, so the flag never changes afterwards.
/// A quiet heartbeat counts in `heartbeat_hourly.quiet_count` instead of up/degraded/down:
/// uptime (built from those three) leaves it out with no change to its queries, and the quiet
/// share is reported beside it. `stream_alert_state.quiet`/`quiet_baseline`: the confirmed state
/// is in quiet time, and the state last told before it began (`alert::confirm`).
const V7: &str = r#"
CREATE TABLE stream_mutes (
    stream_id INTEGER PRIMARY KEY REFERENCES streams (id),
    muted_by TEXT NOT NULL,
    muted_ms INTEGER NOT NULL,
    until_ms INTEGER
);
ALTER TABLE heartbeats ADD COLUMN quiet INTEGER NOT NULL DEFAULT 0;
ALTER TABLE heartbeat_hourly ADD COLUMN quiet_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stream_alert_state ADD COLUMN quiet INTEGER NOT NULL DEFAULT 0;
ALTER TABLE stream_alert_state ADD COLUMN quiet_baseline INTEGER;
"#;

/// Schema version 8: what the monitor learned per camera (issue 14, "The right pipeline without
/// being told" and "Transport learning"): the template detected for an `http(s)://` stream and
/// what said so, the RTSP transport and control-URL form that worked. One row per stream, replaced
/// when something changes (`store::learned`).
const V8: &str = r#"
CREATE TABLE stream_learned (
    stream_id INTEGER PRIMARY KEY REFERENCES streams (id),
    template TEXT,
    template_evidence TEXT,
    transport TEXT NOT NULL DEFAULT 'auto',
    control_form TEXT NOT NULL DEFAULT 'as_resolved',
    updated_ms INTEGER NOT NULL
);
"#;

/// Schema version 9: the camera clock check (`onvif:` streams).
///
/// `camera_clock` holds the latest reading per stream, written by the monitor on its own
/// connection beside the writer (a reading is not a heartbeat): when it was taken, the camera's
/// offset from StreamPulse's NTP-corrected time (`NULL` when the clock could not be read) and
/// why not (`error`). The web reads it for the stream page, the API and `/metrics`.
const V9: &str = r#"
CREATE TABLE camera_clock (
    stream_id INTEGER PRIMARY KEY REFERENCES streams (id),
    checked_at_ms INTEGER NOT NULL,
    offset_ms INTEGER,
    error TEXT
);
"#;

/// Every migration, in order. `MIGRATIONS[i]` takes the schema from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Applies the pending migrations in one immediate transaction: two processes opening the same
/// new file cannot both apply a migration, and a reader never sees a half-migrated schema (an
/// empty file, version 0, is the only state it can catch before the current one).
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let found = user_version(conn)?;
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let start = user_version(&tx)?;
    for (index, sql) in MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(start).unwrap_or(0))
    {
        let version = index as i64 + 1;
        tx.execute_batch(sql)
            .map_err(|source| StoreError::Migration { version, source })?;
        tracing::info!(version, "applied store schema migration");
    }
    if start < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}
