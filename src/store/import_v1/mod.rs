//! Reading a StreamPulse v1 (Python) database and importing its heartbeats.
//!
//! v1 kept a `streams(name, url)` table, a `users(user, pass)` table of plaintext passwords and
//! one `log_<name>` table per stream: `(id, ts TEXT, status TEXT, latency_ms, message)`, `ts` an
//! ISO-8601 time with its UTC offset, `status` `ok` or `fail`. It ran SQLite in WAL mode.
//!
//! The v1 file is never opened in place: it and its `-wal` are copied into a temporary folder
//! and SQLite reads the copy, so not even WAL recovery or a checkpoint can change the original.
//! Rows go through [`Store::record`], batch by batch, so status, rollups, outages and counters
//! come out as if the monitor had written them. Importing the same rows again changes nothing
//! (a heartbeat's key is its stream and time), and a file already imported is recognised by its
//! SHA-256 in `store_meta` and skipped.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use super::{Store, StoreError, StreamIdentity};
use crate::heartbeat::Heartbeat;

mod rows;
use rows::heartbeat_from_row;
pub use rows::reason_from_v1_message;

/// Heartbeats per [`Store::record`] transaction: the write lock is held for milliseconds, so a
/// monitor running beside `import-v1` never waits long.
const BATCH_ROWS: usize = 5_000;

/// `store_meta` key prefix: `import_v1:<sha256 of the file>` → when it was imported (UTC ms).
const META_IMPORTED_PREFIX: &str = "import_v1:";

/// Why reading or importing a v1 database failed.
#[derive(Debug, thiserror::Error)]
pub enum ImportV1Error {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the v1 database {}: {source}", path.display())]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{} is not a StreamPulse v1 database (no streams(name, url) table and no log_ tables)", .0.display())]
    NotV1(PathBuf),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A private copy of a v1 database (with its WAL), opened read-only.
pub struct V1Database {
    original: PathBuf,
    /// Holds the copy; removed on drop.
    _copy_dir: tempfile::TempDir,
    conn: Connection,
    fingerprint: String,
}

impl std::fmt::Debug for V1Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Database")
            .field("original", &self.original)
            .finish_non_exhaustive()
    }
}

/// One v1 stream: a `log_` table and what v1's `streams` table says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Stream {
    /// The `log_…` table.
    pub table: String,
    /// The name v1 showed (from its `streams` table), else the table name without `log_`.
    pub name: String,
    /// The camera URL as v1 stored it (with its password): only for matching, never stored.
    pub url: Option<String>,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Rows read from `log_` tables.
    pub rows: u64,
    /// Heartbeats new to the store (0 when the file had been imported before).
    pub imported: u64,
    /// Rows with a time or status that cannot be read.
    pub skipped: u64,
    /// `log_` tables, and how many of them went to streams that are not configured.
    pub tables: usize,
    pub unconfigured_tables: usize,
    /// v1 web users (never imported: v1 stored their passwords in plain text).
    pub v1_users: u64,
    /// The file had been imported before; nothing was done.
    pub already_imported: bool,
}

/// Where an import sends one v1 table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Target {
    pub table: String,
    pub stream_id: i64,
    pub configured: bool,
}

/// v1's `tname()`: a stream name to its log table (letters, digits and `_` kept, the rest `_`,
/// `t_` in front unless it starts with a letter or `_`).
pub fn v1_table_name(name: &str) -> String {
    let safe: String = name
        .trim()
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '_' { c } else { '_' })
        .collect();
    match safe.chars().next() {
        Some(first) if first.is_alphabetic() || first == '_' => format!("log_{safe}"),
        _ => format!("log_t_{safe}"),
    }
}

/// SQLite's `user_version` from a database file's header, without opening it with SQLite;
/// `None` for a missing or empty file or one that is not SQLite.
fn header_user_version(path: &Path) -> Option<u32> {
    let mut header = [0u8; 64];
    let mut file = std::fs::File::open(path).ok()?;
    file.read_exact(&mut header).ok()?;
    if &header[..16] != b"SQLite format 3\0" {
        return None;
    }
    Some(u32::from_be_bytes([
        header[60], header[61], header[62], header[63],
    ]))
}

/// Whether `path` holds a v1 database. Cheap for a StreamPulse database, whose header carries
/// its schema version; only a file at version 0 (v1, or a new file not yet checkpointed) is
/// copied and looked into. Any doubt answers `false`: the caller's ordinary path reports it.
pub fn is_v1_database(path: &Path) -> bool {
    may_be_v1(path) && matches!(V1Database::open(path), Ok(Some(_)))
}

/// A SQLite file at schema version 0 in its header: v1, or a new file not yet checkpointed.
pub fn may_be_v1(path: &Path) -> bool {
    header_user_version(path) == Some(0)
}

impl V1Database {
    /// Copies `path` (and its `-wal`) and opens the copy; `Ok(None)` when it is not v1.
    pub fn open(path: &Path) -> Result<Option<V1Database>, ImportV1Error> {
        let io_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| ImportV1Error::Io { path, source }
        };
        // Beside the original (same filesystem, room for a large file) when writable, else the
        // system's temporary folder (`status` run by someone who may only read).
        let beside = path.parent().filter(|p| !p.as_os_str().is_empty());
        let copy_dir = beside
            .and_then(|dir| {
                tempfile::Builder::new()
                    .prefix(".streampulse-v1-")
                    .tempdir_in(dir)
                    .ok()
            })
            .map_or_else(
                || tempfile::Builder::new().prefix("streampulse-v1-").tempdir(),
                Ok,
            )
            .map_err(io_error(path))?;
        let copy = copy_dir.path().join("v1.db");
        let mut hasher = Sha256::new();
        copy_hashing(path, &copy, &mut hasher).map_err(io_error(path))?;
        let wal = sidecar(path, "-wal");
        if wal.is_file() {
            copy_hashing(&wal, &sidecar(&copy, "-wal"), &mut hasher).map_err(io_error(&wal))?;
        }
        let fingerprint = format!("{:x}", hasher.finalize());
        let sqlite_error = |source| ImportV1Error::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        // Read-write on the copy so SQLite can replay its WAL; the original is never opened.
        let conn = Connection::open_with_flags(
            &copy,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(sqlite_error)?;
        let v1 = V1Database {
            original: path.to_path_buf(),
            _copy_dir: copy_dir,
            conn,
            fingerprint,
        };
        match v1.looks_like_v1() {
            Ok(true) => Ok(Some(v1)),
            // A file SQLite cannot read is no v1 database we could import.
            Ok(false) | Err(_) => Ok(None),
        }
    }

    fn looks_like_v1(&self) -> rusqlite::Result<bool> {
        let has_table = |name: &str| -> rusqlite::Result<bool> {
            self.conn
                .query_row(
                    "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                    [name],
                    |_| Ok(()),
                )
                .optional()
                .map(|found| found.is_some())
        };
        if has_table("heartbeats")? {
            return Ok(false);
        }
        let streams_columns: Vec<String> = self
            .conn
            .prepare("SELECT name FROM pragma_table_info('streams')")?
            .query_map([], |row| row.get(0))?
            .collect::<Result<_, _>>()?;
        let v1_streams = streams_columns.iter().any(|c| c == "name")
            && streams_columns.iter().any(|c| c == "url")
            && !streams_columns.iter().any(|c| c == "id");
        Ok(v1_streams || !self.log_tables()?.is_empty())
    }

    /// The original file.
    pub fn path(&self) -> &Path {
        &self.original
    }

    /// SHA-256 of the file and its WAL as read.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    fn sqlite_error(&self, source: rusqlite::Error) -> ImportV1Error {
        ImportV1Error::Sqlite {
            path: self.original.clone(),
            source,
        }
    }

    fn log_tables(&self) -> rusqlite::Result<Vec<String>> {
        self.conn
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'log\\_%' ESCAPE '\\'
                 ORDER BY name",
            )?
            .query_map([], |row| row.get(0))?
            .collect()
    }

    /// Every `log_` table with the name and URL v1 knew it by.
    pub fn streams(&self) -> Result<Vec<V1Stream>, ImportV1Error> {
        let mut known: HashMap<String, (String, Option<String>)> = HashMap::new();
        let has_streams = self
            .conn
            .query_row(
                "SELECT count(*) FROM pragma_table_info('streams') WHERE name IN ('name', 'url')",
                [],
                |row| row.get::<_, i64>(0),
            )
            .map_err(|e| self.sqlite_error(e))?
            == 2;
        if has_streams {
            let mut select = self
                .conn
                .prepare("SELECT name, url FROM streams ORDER BY rowid")
                .map_err(|e| self.sqlite_error(e))?;
            let rows = select
                .query_map([], |row| {
                    Ok((row.get::<_, String>(0)?, row.get::<_, Option<String>>(1)?))
                })
                .map_err(|e| self.sqlite_error(e))?;
            for row in rows {
                let (name, url) = row.map_err(|e| self.sqlite_error(e))?;
                // Two names can share a table (`Gate Cam` and `Gate_Cam`); the first one wins.
                known.entry(v1_table_name(&name)).or_insert((name, url));
            }
        }
        let tables = self.log_tables().map_err(|e| self.sqlite_error(e))?;
        Ok(tables
            .into_iter()
            .map(|table| {
                let (name, url) = known.remove(&table).unwrap_or_else(|| {
                    let bare = table.strip_prefix("log_").unwrap_or(&table);
                    (bare.strip_prefix("t_").unwrap_or(bare).to_string(), None)
                });
                V1Stream { table, name, url }
            })
            .collect())
    }

    /// How many v1 web users there are (their passwords are never read).
    pub fn user_count(&self) -> u64 {
        self.conn
            .query_row("SELECT count(*) FROM users", [], |row| row.get::<_, i64>(0))
            .map_or(0, |count| u64::try_from(count).unwrap_or(0))
    }
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn copy_hashing(from: &Path, to: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut source = std::fs::File::open(from)?;
    let mut target = std::fs::File::create(to)?;
    let mut buffer = vec![0u8; 256 * 1024];
    loop {
        let read = source.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        std::io::Write::write_all(&mut target, &buffer[..read])?;
    }
    target.sync_all()
}

/// Moves a v1 database and its `-wal`/`-shm` aside, unchanged, to the first free name of
/// `streams.v1.db`, `streams.v1-2.db`, … and returns the new path. The WAL moves first: a WAL
/// left behind alone would be replayed into the new database created at `path`.
pub fn move_aside(path: &Path) -> Result<PathBuf, ImportV1Error> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = path
        .extension()
        .map(|e| format!(".{}", e.to_string_lossy()))
        .unwrap_or_default();
    let target = (1..)
        .map(|n| {
            let suffix = if n == 1 { String::new() } else { format!("-{n}") };
            path.with_file_name(format!("{stem}.v1{suffix}{extension}"))
        })
        .find(|candidate| !candidate.exists())
        .unwrap_or_else(|| path.with_extension("v1"));
    for suffix in ["-wal", "-shm", ""] {
        let from = sidecar(path, suffix);
        if from.exists() {
            std::fs::rename(&from, sidecar(&target, suffix))
                .map_err(|source| ImportV1Error::Io { path: from, source })?;
        }
    }
    Ok(target)
}

impl Store {
    /// Whether the v1 file with this fingerprint has been imported already.
    pub fn v1_imported(&self, fingerprint: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM store_meta WHERE key = ?1",
                [format!("{META_IMPORTED_PREFIX}{fingerprint}")],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// Decides where each v1 table goes: the configured stream (already resolved, `ids` in the
    /// order of `configured`) of the same name, else the one whose URL fingerprint matches v1's
    /// URL (`v1_fingerprints`, by table), else a stream that is not configured, found by name or
    /// created with no `last_seen_config_ms`, so its history is kept and shown.
    pub fn plan_v1_targets(
        &mut self,
        v1_streams: &[V1Stream],
        v1_fingerprints: &HashMap<String, String>,
        configured: &[StreamIdentity],
        ids: &[i64],
        now_ms: i64,
    ) -> Result<Vec<V1Target>, StoreError> {
        let mut targets = Vec::with_capacity(v1_streams.len());
        for stream in v1_streams {
            let by_name = configured.iter().position(|c| c.name == stream.name).or_else(|| {
                configured
                    .iter()
                    .position(|c| v1_table_name(&c.name) == stream.table)
            });
            let by_url = || {
                let fingerprint = v1_fingerprints.get(&stream.table)?;
                let mut matching = configured
                    .iter()
                    .enumerate()
                    .filter(|(_, c)| c.url_fingerprint.as_ref() == Some(fingerprint));
                match (matching.next(), matching.next()) {
                    (Some((index, _)), None) => Some(index),
                    _ => None,
                }
            };
            if let Some(id) = by_name.or_else(by_url).and_then(|index| ids.get(index)) {
                targets.push(V1Target {
                    table: stream.table.clone(),
                    stream_id: *id,
                    configured: true,
                });
                continue;
            }
            let existing: Option<i64> = self
                .conn
                .query_row("SELECT id FROM streams WHERE name = ?1", [&stream.name], |row| {
                    row.get(0)
                })
                .optional()?;
            let stream_id = match existing {
                Some(id) => id,
                None => {
                    self.conn.execute(
                        "INSERT INTO streams (name, url_redacted, url_fingerprint, created_ms, last_seen_config_ms)
                         VALUES (?1, ?2, ?3, ?4, NULL)",
                        params![
                            stream.name,
                            stream.url.as_deref().map(crate::url::redact_url),
                            v1_fingerprints.get(&stream.table),
                            now_ms
                        ],
                    )?;
                    self.conn.last_insert_rowid()
                }
            };
            targets.push(V1Target {
                table: stream.table.clone(),
                stream_id,
                configured: false,
            });
        }
        Ok(targets)
    }

    /// Imports every row of the planned tables, oldest first by v1's row id, and records the
    /// file's fingerprint. Rows already present (same stream and time) are left as they are.
    pub fn import_v1(
        &mut self,
        v1: &V1Database,
        targets: &[V1Target],
        now_ms: i64,
    ) -> Result<ImportReport, ImportV1Error> {
        let mut report = ImportReport {
            tables: targets.len(),
            unconfigured_tables: targets.iter().filter(|t| !t.configured).count(),
            v1_users: v1.user_count(),
            ..ImportReport::default()
        };
        if self.v1_imported(v1.fingerprint())? {
            report.already_imported = true;
            return Ok(report);
        }
        let before = self.heartbeat_count()?;
        for target in targets {
            let table = target.table.replace('"', "\"\"");
            let mut select = v1
                .conn
                .prepare(&format!(
                    "SELECT ts, status, latency_ms, message FROM \"{table}\" ORDER BY rowid"
                ))
                .map_err(|e| v1.sqlite_error(e))?;
            let mut rows = select.query([]).map_err(|e| v1.sqlite_error(e))?;
            let mut batch = Vec::with_capacity(BATCH_ROWS);
            while let Some(row) = rows.next().map_err(|e| v1.sqlite_error(e))? {
                report.rows += 1;
                // A value of the wrong type is a row v1 did not write: skip it, keep the rest.
                let ts: Option<String> = row.get(0).ok();
                let status: Option<String> = row.get(1).ok();
                let latency: Option<i64> = row.get(2).ok().flatten();
                let message: Option<String> = row.get(3).ok().flatten();
                let heartbeat = match (ts, status) {
                    (Some(ts), Some(status)) => {
                        heartbeat_from_row(target.stream_id, &ts, &status, latency, message)
                    }
                    _ => None,
                };
                match heartbeat {
                    Some(heartbeat) => batch.push(heartbeat),
                    None => report.skipped += 1,
                }
                if batch.len() >= BATCH_ROWS {
                    self.record_new_only(&batch)?;
                    batch.clear();
                }
            }
            self.record_new_only(&batch)?;
        }
        report.imported = self.heartbeat_count()?.saturating_sub(before);
        self.conn
            .execute(
                "INSERT OR REPLACE INTO store_meta (key, value) VALUES (?1, ?2)",
                params![format!("{META_IMPORTED_PREFIX}{}", v1.fingerprint()), now_ms],
            )
            .map_err(StoreError::from)?;
        Ok(report)
    }

    /// Records the heartbeats of `batch` the store does not hold yet (an import never replaces
    /// what is there, so importing twice, or a file that grew, adds only the new rows).
    fn record_new_only(&mut self, batch: &[Heartbeat]) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let mut fresh = Vec::with_capacity(batch.len());
        {
            let mut exists = self
                .conn
                .prepare_cached("SELECT 1 FROM heartbeats WHERE stream_id = ?1 AND ts_ms = ?2")?;
            let mut seen = std::collections::HashSet::new();
            for heartbeat in batch {
                // Two v1 rows in the same millisecond: the first is kept, as in the store.
                if seen.insert((heartbeat.stream_id, heartbeat.ts_ms))
                    && !exists.exists(params![heartbeat.stream_id, heartbeat.ts_ms])?
                {
                    fresh.push(heartbeat.clone());
                }
            }
        }
        self.record(&fresh)
    }

    fn heartbeat_count(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn
            .query_row("SELECT count(*) FROM heartbeats", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_follow_v1() {
        assert_eq!(v1_table_name("GateCamera"), "log_GateCamera");
        assert_eq!(v1_table_name(" Gate \"Cam\", 1 "), "log_Gate__Cam___1");
        assert_eq!(v1_table_name("3rd floor"), "log_t_3rd_floor");
        assert_eq!(v1_table_name("Caméra 東"), "log_Caméra_東");
        assert_eq!(v1_table_name(""), "log_t_");
    }

    #[test]
    fn move_aside_finds_a_free_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("streams.db");
        std::fs::write(&db, b"one").expect("write");
        std::fs::write(sidecar(&db, "-wal"), b"wal").expect("write");
        std::fs::write(dir.path().join("streams.v1.db"), b"older").expect("write");
        let moved = move_aside(&db).expect("move");
        assert_eq!(moved, dir.path().join("streams.v1-2.db"));
        assert_eq!(std::fs::read(&moved).expect("read"), b"one");
        assert_eq!(std::fs::read(sidecar(&moved, "-wal")).expect("read"), b"wal");
        assert!(!db.exists() && !sidecar(&db, "-wal").exists());
    }
}
