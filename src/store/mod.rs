//! The SQLite store: stream identities, raw heartbeats, the current status of every stream,
//! hourly rollups, outages and probe counters.
//!
//! One process writes (the monitor, through [`spawn_writer`]); any number of readers (the
//! `status` command, the web server) open the file with [`Store::open_read_only`]. The database
//! runs in WAL mode, so readers see the last committed state and never block the writer.
//!
//! Every write of a heartbeat batch is one transaction that also maintains `stream_status`,
//! `heartbeat_hourly`, `outages` and `probe_counts`, so pages answer from those small tables and
//! never scan raw heartbeats over long ranges. All times are UTC milliseconds since the epoch.

pub mod accounts;
mod alerts;
mod camera_clock;
mod export;
pub mod import_v1;
pub mod learned;
mod monitor_status;
mod mutes;
mod queries;
mod schema;
mod write;
mod writer;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, Row};
use serde::Serialize;

use crate::clock::HOUR_MS;
use crate::heartbeat::{Health, Heartbeat, Reason};

pub use alerts::OutboxItem;
pub use camera_clock::CameraClock;
pub use export::EXPORT_PAGE_ROWS;
pub use monitor_status::{
    filesystem_free_bytes, read_monitor_status, status_file_path, MonitorStatus, STATUS_FILE_BYTES,
    STATUS_REFRESH_WHILE_FULL_MS,
};
pub use schema::SCHEMA_VERSION;
pub use writer::{
    spawn_writer, WriterHandle, WriterOptions, DEFAULT_DISK_FULL_BUFFER, DISK_FULL_BUFFER_MAX_HEARTBEATS,
};

/// How long a connection waits for a lock held by another connection before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read-only open waits for an empty (version 0) file to be migrated by its creator.
const NEW_FILE_GRACE: Duration = Duration::from_secs(2);

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {} does not exist (has the monitor run yet?)", path.display())]
    NotFound { path: PathBuf },
    #[error("cannot open database {}: {source}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "database {} has schema version {found}, expected {expected}; start the monitor once so it can migrate the database",
        path.display()
    )]
    SchemaTooOld {
        path: PathBuf,
        found: i64,
        expected: i64,
    },
    #[error("database schema version {found} is newer than this build of streampulse understands ({supported}); upgrade streampulse")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("migrating the database to schema version {version} failed: {source}")]
    Migration {
        version: i64,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "{} is a StreamPulse v1 database: start `streampulse monitor` once (it moves the file aside, unchanged, and imports its history into a new database), or import it elsewhere with `streampulse import-v1 {} --db NEW.db`",
        path.display(),
        path.display()
    )]
    V1Database { path: PathBuf },
    #[error("database journal mode is {0:?}, not WAL")]
    NotWal(String),
    #[error("stream name {0:?} appears more than once in the configuration")]
    DuplicateName(String),
    #[error("stream id {0:?} appears more than once in the configuration")]
    DuplicateConfigId(String),
    #[error("the store writer thread has stopped")]
    WriterStopped,
    #[error("cannot start the store writer thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("cannot create database {}: {source}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot encode a notification: {0}")]
    Payload(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl StoreError {
    /// SQLite could not write because the database or its filesystem is full (`SQLITE_FULL`,
    /// which SQLite reports for `ENOSPC` and for `max_page_count`).
    pub fn is_disk_full(&self) -> bool {
        self.sqlite_code() == Some(rusqlite::ErrorCode::DiskFull)
    }

    /// SQLite reported an I/O error (`SQLITE_IOERR_*`): with no space left on the filesystem,
    /// some of them (growing the WAL index) mean a full disk too.
    pub fn is_io_error(&self) -> bool {
        self.sqlite_code() == Some(rusqlite::ErrorCode::SystemIoFailure)
    }

    fn sqlite_code(&self) -> Option<rusqlite::ErrorCode> {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(error, _))
            | StoreError::Open {
                source: rusqlite::Error::SqliteFailure(error, _),
                ..
            }
            | StoreError::Migration {
                source: rusqlite::Error::SqliteFailure(error, _),
                ..
            } => Some(error.code),
            _ => None,
        }
    }
}

/// A configured stream as the store needs to know it to find (or create) its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamIdentity {
    /// The explicit, stable `id:` from the configuration, when the user gave one.
    pub config_id: Option<String>,
    pub name: String,
    /// The camera URL with its password removed, for display.
    pub url_redacted: Option<String>,
    /// A hash of the full URL, used to recognise a renamed stream.
    pub url_fingerprint: Option<String>,
}

/// The current state of one stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StreamStatus {
    pub stream_id: i64,
    pub name: String,
    pub url_redacted: Option<String>,
    /// `None` when the stream has never been probed.
    pub health: Option<Health>,
    /// When the current state began: the confirmed state's start when there is one, else the
    /// latest probe's health's.
    pub since_ms: Option<i64>,
    /// The confirmed state (`alerts.down_after` ...), once the monitor has confirmed one.
    pub confirmed: Option<Health>,
    /// A health the latest probes show but not yet confirmed, and in how many probes in a row.
    pub pending: Option<(Health, u32)>,
    /// Time of the latest heartbeat.
    pub last_ts_ms: Option<i64>,
    /// Latency of the latest heartbeat (`None` when it was down).
    pub last_latency_ms: Option<u64>,
    /// Reason of the latest heartbeat.
    pub reason: Option<Reason>,
    /// Message of the latest heartbeat (empty when never probed).
    pub message: String,
    /// Codec, width and height as last reported (kept while the stream is down).
    pub codec: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Time of the latest up or degraded heartbeat.
    pub last_up_ms: Option<i64>,
    /// When a monitor last took this stream on (started, or reloaded a config naming it): from
    /// then on it owes the stream a heartbeat every interval.
    pub monitored_since_ms: Option<i64>,
}

/// Heartbeat counts by health over a time range.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Uptime {
    pub up: u64,
    pub degraded: u64,
    pub down: u64,
    /// Heartbeats while muted or in maintenance: in none of the three above, so every ratio
    /// leaves them out; reported on their own.
    pub quiet: u64,
}

impl Uptime {
    pub fn total(&self) -> u64 {
        self.up + self.degraded + self.down
    }

    /// Share of heartbeats that were plainly up; `None` without heartbeats.
    pub fn healthy_ratio(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.up as f64 / total as f64)
    }

    /// Share of all heartbeats, quiet ones included, that were quiet; `None` without any.
    pub fn quiet_ratio(&self) -> Option<f64> {
        let all = self.total() + self.quiet;
        (all > 0).then(|| self.quiet as f64 / all as f64)
    }

    /// Share of heartbeats that delivered video (up or degraded); `None` without heartbeats.
    pub fn reachable_ratio(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| (self.up + self.degraded) as f64 / total as f64)
    }
}

/// `(ts_ms, latency_ms)` points of one stream, oldest first; `None` where it was down.
pub type LatencySeries = Vec<(i64, Option<u64>)>;

/// A period during which a stream was down.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Outage {
    pub start_ms: i64,
    /// `None` while the stream is still down.
    pub end_ms: Option<i64>,
    /// The reason of the heartbeat that opened the outage.
    pub reason: Option<Reason>,
    pub message: String,
}

/// One hour of one stream's rollup.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HourlyPoint {
    /// Start of the hour (UTC).
    pub hour_ms: i64,
    pub up: u64,
    pub degraded: u64,
    pub down: u64,
    /// Heartbeats while muted or in maintenance (not in up/degraded/down).
    pub quiet: u64,
    pub latency_avg_ms: Option<f64>,
    pub latency_max_ms: Option<u64>,
}

/// A connection to the StreamPulse database.
///
/// Reads take `&self`; writes take `&mut self`. Only one `Store` per database should write (see
/// [`spawn_writer`]); readers open their own with [`Store::open_read_only`].
pub struct Store {
    conn: Connection,
    path: PathBuf,
    /// Set on the monitor's writer: heartbeats then move the confirmed state on and fill the
    /// outbox ([`Store::set_alert_plan`]).
    alert_plan: Option<std::sync::Arc<crate::alert::AlertPlan>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// Permissions of a database this process creates: it holds session and token hashes and camera
/// names, so not world-readable. SQLite gives the `-wal` and `-shm` files the database's mode.
const DATABASE_MODE: u32 = 0o640;

/// Creates the database file with [`DATABASE_MODE`] when it does not exist yet (whatever the
/// umask says; an existing file keeps its mode).
/// Refuses a StreamPulse v1 database, looking at each file at most once per process.
///
/// The look reads the file's header outside SQLite, and closing any descriptor of a file drops
/// every POSIX lock the process holds on it: SQLite's connections included. A web process opening
/// its accounts beside its open readers would silently lose their shared lock; another process
/// closing its last connection would then take the file for its own, checkpoint and delete the
/// WAL still in use here, and later commits made here would be lost. So the header is read only
/// while this process has no connection to the file yet: the first time the path is opened.
fn refuse_v1_database(path: &Path) -> Result<(), StoreError> {
    static CHECKED: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<PathBuf>>> =
        std::sync::OnceLock::new();
    // The same file under another spelling must not be read again: the folder's real path.
    let key = match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            parent
                .canonicalize()
                .map_or_else(|_| path.to_path_buf(), |dir| dir.join(name))
        }
        _ => path.to_path_buf(),
    };
    let checked = CHECKED.get_or_init(Default::default);
    // Held across the look, so no other thread opens a connection while it runs.
    let mut checked = checked.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if checked.contains(&key) {
        return Ok(());
    }
    if import_v1::is_v1_database(path) {
        return Err(StoreError::V1Database {
            path: path.to_path_buf(),
        });
    }
    checked.insert(key);
    Ok(())
}

fn create_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DATABASE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(StoreError::Create {
            path: path.to_path_buf(),
            source,
        }),
    }
}

impl Store {
    /// From now on, every heartbeat recorded also moves its stream's confirmed state on and
    /// queues the notifications that causes.
    pub fn set_alert_plan(&mut self, plan: std::sync::Arc<crate::alert::AlertPlan>) {
        self.alert_plan = Some(plan);
    }

    /// A second read-write connection to a database this process already holds open and has
    /// migrated (the monitor's notification delivery beside its writer). Unlike [`Store::open`]
    /// it never touches the file outside SQLite: closing any other descriptor of the file drops
    /// every POSIX lock the process holds on it, and another process could then checkpoint and
    /// delete the WAL the writer is still appending to.
    pub fn open_beside_writer(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        Ok(Store {
            conn,
            path,
            alert_plan: None,
        })
    }

    /// Opens the database for writing, creating the file if needed, and applies pending
    /// migrations.
    pub fn open(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        // Before SQLite opens it read-write: closing that connection would checkpoint v1's WAL
        // into the file the upgrade must leave byte-identical.
        refuse_v1_database(&path)?;
        create_private(&path)?;
        let mut conn = Connection::open(&path).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        // Switching a new file to WAL needs an exclusive lock, and SQLite answers "busy" at once,
        // without its busy handler, when that could deadlock: when the monitor and the web
        // service create the file together, one of them sees that. Wait and try again.
        let journal_mode: String =
            retry_while_busy(|| conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)))
                .map_err(open_error)?;
        if !journal_mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::NotWal(journal_mode));
        }
        // NORMAL is durable across application crashes in WAL mode; a power loss may lose the
        // last transactions, which for heartbeats is acceptable.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(open_error)?;
        conn.pragma_update(None, "foreign_keys", true)
            .map_err(open_error)?;
        schema::migrate(&mut conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn,
            path,
            alert_plan: None,
        })
    }

    /// Opens an existing database for reading only. Works while another process writes.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Store, StoreError> {
        let path = path.as_ref().to_path_buf();
        if !path.is_file() {
            return Err(StoreError::NotFound { path });
        }
        refuse_v1_database(&path)?;
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&path, flags).map_err(open_error)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_error)?;
        let mut found = schema::user_version(&conn).map_err(open_error)?;
        // Version 0 is an empty file: most likely the monitor has just created it and is about
        // to migrate it (a `status` or the web server started alongside). Migrations take
        // milliseconds, so give them a moment before calling the file too old.
        let deadline = std::time::Instant::now() + NEW_FILE_GRACE;
        while found == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            found = schema::user_version(&conn).map_err(open_error)?;
        }
        if found < SCHEMA_VERSION {
            return Err(StoreError::SchemaTooOld {
                path,
                found,
                expected: SCHEMA_VERSION,
            });
        }
        if found > SCHEMA_VERSION {
            return Err(StoreError::SchemaTooNew {
                found,
                supported: SCHEMA_VERSION,
            });
        }
        conn.set_prepared_statement_cache_capacity(64);
        Ok(Store {
            conn,
            path,
            alert_plan: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Runs `step` again while SQLite reports the database busy or locked, for up to
/// [`BUSY_TIMEOUT`]: for the few operations SQLite's own busy handler does not wait for.
fn retry_while_busy<T>(mut step: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(2);
    loop {
        match step() {
            Err(rusqlite::Error::SqliteFailure(error, _))
                if matches!(
                    error.code,
                    rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
                ) && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            result => return result,
        }
    }
}

/// The start of the hour containing `ts_ms`.
pub fn floor_hour(ts_ms: i64) -> i64 {
    ts_ms - ts_ms.rem_euclid(HOUR_MS)
}

/// The start of the first hour that begins at or after `ts_ms`.
fn ceil_hour(ts_ms: i64) -> i64 {
    let floor = floor_hour(ts_ms);
    if floor == ts_ms {
        floor
    } else {
        floor.saturating_add(HOUR_MS)
    }
}

// Conversions between Rust values and their SQLite columns. Out-of-range values saturate instead
// of failing: a latency of more than 292 million years is not worth an error path.

fn u64_to_sql(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn u64_from_sql(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn u32_from_sql(value: i64) -> u32 {
    u32::try_from(value.max(0)).unwrap_or(u32::MAX)
}

/// An integer in the database that does not name any `Health`.
#[derive(Debug, thiserror::Error)]
#[error("unknown health code {0}")]
struct UnknownHealth(i64);

fn health_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Health> {
    let code: i64 = row.get(index)?;
    Health::from_code(code).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(index, Type::Integer, Box::new(UnknownHealth(code)))
    })
}

fn optional_health_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Health>> {
    match row.get::<_, Option<i64>>(index)? {
        None => Ok(None),
        Some(_) => health_at(row, index).map(Some),
    }
}

/// A reason code written by a newer build that this one does not know reads as `Other`.
fn reason_at(row: &Row<'_>, index: usize) -> rusqlite::Result<Option<Reason>> {
    let code: Option<String> = row.get(index)?;
    Ok(code.map(|code| Reason::from_code(&code).unwrap_or(Reason::Other)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hours_round_towards_the_right_edges() {
        assert_eq!(floor_hour(0), 0);
        assert_eq!(floor_hour(HOUR_MS - 1), 0);
        assert_eq!(floor_hour(HOUR_MS), HOUR_MS);
        assert_eq!(floor_hour(-1), -HOUR_MS);
        assert_eq!(ceil_hour(1), HOUR_MS);
        assert_eq!(ceil_hour(HOUR_MS), HOUR_MS);
        assert_eq!(ceil_hour(0), 0);
    }

    #[test]
    fn ratios_are_none_without_heartbeats() {
        assert_eq!(Uptime::default().healthy_ratio(), None);
        let uptime = Uptime {
            up: 2,
            degraded: 1,
            down: 1,
            quiet: 0,
        };
        assert_eq!(uptime.healthy_ratio(), Some(0.5));
        assert_eq!(uptime.reachable_ratio(), Some(0.75));
    }

    #[test]
    fn open_read_only_names_a_missing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("missing.db");
        let error = Store::open_read_only(&path).expect_err("missing file must fail");
        assert!(matches!(error, StoreError::NotFound { .. }));
        assert!(error.to_string().contains("missing.db"), "{error}");
        assert!(!path.exists(), "a reader must not create the database");
    }

    #[test]
    fn migrations_are_recorded_in_user_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        let store = Store::open(&path).expect("open");
        assert_eq!(
            schema::user_version(&store.conn).expect("version"),
            SCHEMA_VERSION
        );
        drop(store);
        let store = Store::open(&path).expect("reopen");
        assert_eq!(
            schema::user_version(&store.conn).expect("version"),
            SCHEMA_VERSION
        );
    }
}
