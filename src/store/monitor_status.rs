//! The monitor's status file: what the monitor's writer knows and cannot put in SQLite, for the
//! web server (which never talks to the monitor) to show.
//!
//! While the disk is full nothing new can be written to the database, so the writer reports
//! there that it holds heartbeats in memory, how many, and how many it had to drop. The file
//! lives next to the database (`<db>.monitor-status`), is written once at full size when the
//! writer starts and afterwards only overwritten in place at offset 0 (`pwrite`), so an update
//! never needs a new block of the full filesystem. The content is one JSON object padded with
//! spaces to [`STATUS_FILE_BYTES`]; readers treat a missing or garbled file as "unknown".

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Size of the status file. The JSON is far smaller; the rest is spaces.
pub const STATUS_FILE_BYTES: usize = 1024;
/// The error text kept in the file, in characters (SQLite's messages are short).
const MAX_ERROR_CHARS: usize = 300;

/// What the monitor's writer last reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MonitorStatus {
    /// Process id of the monitor that wrote it.
    pub pid: u32,
    /// When it was written (UTC ms, the monitor's system clock). Refreshed at least every
    /// [`STATUS_REFRESH_WHILE_FULL_MS`] while the disk is full, otherwise on changes only.
    pub updated_ms: i64,
    /// When writes started failing for lack of space; `None` while heartbeats are written.
    pub disk_full_since_ms: Option<i64>,
    /// Heartbeats held in memory, waiting for space.
    pub buffered: u64,
    /// Heartbeats dropped since the disk became full (the oldest, beyond the buffer's limit).
    pub dropped_while_full: u64,
    /// Heartbeats dropped for lack of space since the monitor started.
    pub dropped_total: u64,
    /// Held heartbeats written once space returned, since the monitor started.
    pub written_back_total: u64,
    /// Why the latest write failed, while the disk is full.
    pub last_error: Option<String>,
}

/// While the disk is full the writer rewrites the status at least this often, so a reader can
/// tell a current report from one a stopped monitor left behind.
pub const STATUS_REFRESH_WHILE_FULL_MS: i64 = 15_000;

impl MonitorStatus {
    pub fn disk_full(&self) -> bool {
        self.disk_full_since_ms.is_some()
    }
}

/// `<db>.monitor-status`, next to the database.
pub fn status_file_path(db_path: &Path) -> PathBuf {
    let mut name = db_path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".monitor-status");
    db_path.with_file_name(name)
}

/// The status the monitor of the database at `db_path` last wrote; `None` when there is no
/// readable, well-formed file (no monitor yet, an older build, a torn read).
pub fn read_monitor_status(db_path: &Path) -> Option<MonitorStatus> {
    let file = File::open(status_file_path(db_path)).ok()?;
    let mut bytes = Vec::with_capacity(STATUS_FILE_BYTES);
    // Bounded, in case something else wrote a large file there.
    file.take(4 * STATUS_FILE_BYTES as u64)
        .read_to_end(&mut bytes)
        .ok()?;
    serde_json::from_slice(bytes.trim_ascii()).ok()
}

/// Bytes available to unprivileged users on the filesystem holding `path` (a file or folder);
/// `None` when it cannot be asked.
pub fn filesystem_free_bytes(path: &Path) -> Option<u64> {
    let folder = if path.is_dir() {
        path
    } else {
        match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        }
    };
    let stats = rustix::fs::statvfs(folder).ok()?;
    Some(stats.f_bavail.saturating_mul(stats.f_frsize))
}

/// The writer's side: keeps the file open and overwrites it in place.
pub(crate) struct StatusFile {
    path: PathBuf,
    file: Option<File>,
    /// A failure to write was logged; the next is not, until a write succeeds again.
    failure_logged: bool,
}

impl StatusFile {
    /// Opens (creating) the status file of the database at `db_path` and writes `status` to it
    /// at full size, so later updates need no new blocks. Failing here is logged, not fatal:
    /// the file is tried again on the next update.
    pub(crate) fn create(db_path: &Path, status: &MonitorStatus) -> StatusFile {
        let mut file = StatusFile {
            path: status_file_path(db_path),
            file: None,
            failure_logged: false,
        };
        file.write(status);
        file
    }

    /// Overwrites the status in place.
    pub(crate) fn write(&mut self, status: &MonitorStatus) {
        match self.try_write(status) {
            Ok(()) => self.failure_logged = false,
            Err(error) => {
                // Reopen next time: the file may have been deleted or replaced.
                self.file = None;
                if !self.failure_logged {
                    self.failure_logged = true;
                    tracing::warn!(%error, path = %self.path.display(), "cannot write the monitor status file; the web server cannot show the store's state");
                }
            }
        }
    }

    fn try_write(&mut self, status: &MonitorStatus) -> std::io::Result<()> {
        let bytes = encode(status);
        if self.file.is_none() {
            // No truncation: an existing file keeps its blocks, so it can be rewritten when full.
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&self.path)?;
            if file.metadata()?.len() > STATUS_FILE_BYTES as u64 {
                file.set_len(STATUS_FILE_BYTES as u64)?;
            }
            self.file = Some(file);
        }
        match &self.file {
            Some(file) => file.write_all_at(&bytes, 0),
            None => Ok(()),
        }
    }
}

/// The JSON padded with spaces to exactly [`STATUS_FILE_BYTES`], ending in a newline.
fn encode(status: &MonitorStatus) -> Vec<u8> {
    let mut status = status.clone();
    status.last_error = status
        .last_error
        .map(|error| error.chars().take(MAX_ERROR_CHARS).collect());
    let mut bytes = serde_json::to_vec(&status).unwrap_or_default();
    if bytes.len() >= STATUS_FILE_BYTES {
        // Only a very long error can get here: drop it rather than the numbers.
        status.last_error = None;
        bytes = serde_json::to_vec(&status).unwrap_or_default();
    }
    bytes.resize(STATUS_FILE_BYTES - 1, b' ');
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_status() -> MonitorStatus {
        MonitorStatus {
            pid: 4242,
            updated_ms: 1_704_067_200_000,
            disk_full_since_ms: Some(1_704_067_100_000),
            buffered: 1234,
            dropped_while_full: 5,
            dropped_total: 7,
            written_back_total: 99,
            last_error: Some("database or disk is full".to_owned()),
        }
    }

    #[test]
    fn the_path_is_next_to_the_database() {
        assert_eq!(
            status_file_path(Path::new("/var/lib/streampulse/streams.db")),
            PathBuf::from("/var/lib/streampulse/streams.db.monitor-status")
        );
    }

    #[test]
    fn a_status_round_trips_at_a_fixed_size() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("s.db");
        let mut file = StatusFile::create(&db, &full_status());
        assert_eq!(read_monitor_status(&db), Some(full_status()));
        let recovered = MonitorStatus {
            disk_full_since_ms: None,
            last_error: None,
            buffered: 0,
            ..full_status()
        };
        file.write(&recovered);
        assert_eq!(read_monitor_status(&db), Some(recovered));
        let len = std::fs::metadata(status_file_path(&db)).expect("metadata").len();
        assert_eq!(len, STATUS_FILE_BYTES as u64);
    }

    #[test]
    fn a_long_error_is_cut_and_the_size_kept() {
        let status = MonitorStatus {
            last_error: Some("x".repeat(5000)),
            ..full_status()
        };
        let bytes = encode(&status);
        assert_eq!(bytes.len(), STATUS_FILE_BYTES);
        let decoded: MonitorStatus = serde_json::from_slice(bytes.trim_ascii()).expect("json");
        assert_eq!(decoded.last_error.map(|e| e.len()), Some(MAX_ERROR_CHARS));
    }

    #[test]
    fn missing_or_garbled_files_read_as_unknown() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("s.db");
        assert_eq!(read_monitor_status(&db), None);
        std::fs::write(status_file_path(&db), b"{\"pid\": 1, \"upda").expect("write");
        assert_eq!(read_monitor_status(&db), None);
    }

    #[test]
    fn free_space_is_known_for_a_file_that_does_not_exist_yet() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(filesystem_free_bytes(&dir.path().join("new.db")).is_some());
        assert!(filesystem_free_bytes(Path::new("streams.db")).is_some());
    }
}
