//! The store's health as the web shows it: whether the monitor reports a full disk, with how many
//! heartbeats it holds in memory and how many it lost, and the free space of the database's
//! filesystem. Used by `/healthz`, `/metrics` and the banner on every page.
//!
//! The web never talks to the monitor, and while the disk is full nothing new reaches SQLite, so
//! the monitor's report comes from its status file next to the database
//! ([`crate::store::MonitorStatus`]). A missing or garbled file means "unknown", never an error.

use std::fmt::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::clock::format_local;
use crate::store::{filesystem_free_bytes, read_monitor_status, MonitorStatus, STATUS_REFRESH_WHILE_FULL_MS};

/// A report of a full disk older than this is not trusted: the monitor refreshes it every
/// [`STATUS_REFRESH_WHILE_FULL_MS`] while the disk is full, so it has probably stopped.
pub const FULL_REPORT_STALE_AFTER_MS: i64 = 8 * STATUS_REFRESH_WHILE_FULL_MS;

/// What the web knows about the store right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreHealth {
    /// The monitor's report; `None` when there is no readable status file.
    pub monitor: Option<MonitorStatus>,
    /// The report is current: it says the disk is fine, or it says full and was refreshed within
    /// [`FULL_REPORT_STALE_AFTER_MS`].
    pub current: bool,
    /// Bytes free for the service user on the database's filesystem.
    pub free_bytes: Option<u64>,
}

/// The `store` object of `/healthz` (documented in `docs/api.md`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthzStore {
    /// `true`/`false` from a current report, `null` when unknown (no report, or a stale one).
    pub disk_full: Option<bool>,
    pub disk_full_since: Option<String>,
    pub disk_full_since_ms: Option<i64>,
    pub buffered_heartbeats: Option<u64>,
    pub dropped_heartbeats: Option<u64>,
    pub monitor_status_updated_ms: Option<i64>,
    pub free_bytes: Option<u64>,
    pub error: Option<String>,
}

impl StoreHealth {
    /// Reads the status file of the database at `db_path` and its filesystem's free space.
    pub fn read(db_path: &Path, now_ms: i64) -> StoreHealth {
        let monitor = read_monitor_status(db_path);
        let current = monitor.as_ref().is_some_and(|status| {
            !status.disk_full() || now_ms.saturating_sub(status.updated_ms) <= FULL_REPORT_STALE_AFTER_MS
        });
        StoreHealth {
            monitor,
            current,
            free_bytes: filesystem_free_bytes(db_path),
        }
    }

    /// The monitor currently reports that it cannot write for lack of space.
    pub fn disk_full(&self) -> bool {
        self.current && self.monitor.as_ref().is_some_and(MonitorStatus::disk_full)
    }

    /// The `store` object of `/healthz`.
    pub fn healthz(&self) -> HealthzStore {
        let current = self.monitor.as_ref().filter(|_| self.current);
        let full = current.filter(|status| status.disk_full());
        let since_ms = full.and_then(|status| status.disk_full_since_ms);
        HealthzStore {
            disk_full: current.map(MonitorStatus::disk_full),
            disk_full_since: since_ms.map(crate::clock::iso_utc),
            disk_full_since_ms: since_ms,
            buffered_heartbeats: full.map(|status| status.buffered),
            dropped_heartbeats: full.map(|status| status.dropped_while_full),
            monitor_status_updated_ms: self.monitor.as_ref().map(|status| status.updated_ms),
            free_bytes: self.free_bytes,
            error: full.and_then(|status| status.last_error.clone()),
        }
    }

    /// The `streampulse_store_*` series for `/metrics`. The monitor's figures appear only with a
    /// current report, so a stopped monitor's last word does not alert forever.
    pub fn metrics(&self) -> String {
        let mut out = String::new();
        let mut series = |name: &str, kind: &str, help: &str, value: u64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {value}");
        };
        if let Some(status) = self.monitor.as_ref().filter(|_| self.current) {
            series(
                "streampulse_store_disk_full",
                "gauge",
                "1 while the monitor cannot write heartbeats for lack of disk space (it holds them in memory), else 0.",
                u64::from(status.disk_full()),
            );
            series(
                "streampulse_store_buffered_heartbeats",
                "gauge",
                "Heartbeats the monitor holds in memory until disk space returns.",
                status.buffered,
            );
            series(
                "streampulse_store_dropped_heartbeats_total",
                "counter",
                "Heartbeats lost for lack of disk space (beyond the in-memory buffer) since the monitor started.",
                status.dropped_total,
            );
        }
        if let Some(free) = self.free_bytes {
            series(
                "streampulse_store_free_bytes",
                "gauge",
                "Bytes free on the filesystem of the database.",
                free,
            );
        }
        out
    }

    /// The sentence for the banner on every page, when there is something to say.
    pub fn banner(&self, tz: &time_tz::Tz) -> Option<String> {
        let status = self.monitor.as_ref().filter(|status| status.disk_full())?;
        let since = status
            .disk_full_since_ms
            .map(|ms| format_local(ms, tz))
            .unwrap_or_default();
        if !self.current {
            return Some(format!(
                "The monitor reported a full disk (since {since}) but has not updated its report since {}; \
                 it may have stopped.",
                format_local(status.updated_ms, tz)
            ));
        }
        Some(format!(
            "Disk full since {since}: {} held in memory, {} lost. They are written to the database when \
             space is freed.",
            count(status.buffered, "heartbeat", "heartbeats"),
            status.dropped_while_full
        ))
    }
}

fn count(value: u64, one: &str, many: &str) -> String {
    if value == 1 {
        format!("1 {one}")
    } else {
        format!("{value} {many}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_704_067_200_000;

    fn full(updated_ms: i64) -> MonitorStatus {
        MonitorStatus {
            pid: 7,
            updated_ms,
            disk_full_since_ms: Some(NOW - 5 * 60_000),
            buffered: 1200,
            dropped_while_full: 3,
            dropped_total: 9,
            written_back_total: 0,
            last_error: Some("database or disk is full".to_owned()),
        }
    }

    fn health(monitor: Option<MonitorStatus>, current: bool) -> StoreHealth {
        StoreHealth {
            monitor,
            current,
            free_bytes: Some(0),
        }
    }

    #[test]
    fn a_current_full_report_shows_everywhere() {
        let health = health(Some(full(NOW)), true);
        assert!(health.disk_full());
        let tz = time_tz::timezones::get_by_name("UTC").expect("UTC");
        assert_eq!(
            health.banner(tz).as_deref(),
            Some(
                "Disk full since 2023-12-31 23:55:00 UTC: 1200 heartbeats held in memory, 3 lost. \
                 They are written to the database when space is freed."
            )
        );
        let text = health.metrics();
        assert!(text.contains("\nstreampulse_store_disk_full 1\n"), "{text}");
        assert!(
            text.contains("\nstreampulse_store_buffered_heartbeats 1200\n"),
            "{text}"
        );
        assert!(
            text.contains("\nstreampulse_store_dropped_heartbeats_total 9\n"),
            "{text}"
        );
        assert!(text.contains("\nstreampulse_store_free_bytes 0\n"), "{text}");
        let store = health.healthz();
        assert_eq!(store.disk_full, Some(true));
        assert_eq!(store.buffered_heartbeats, Some(1200));
        assert_eq!(store.dropped_heartbeats, Some(3));
    }

    #[test]
    fn a_stale_full_report_is_not_trusted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("s.db");
        let stale = full(NOW - FULL_REPORT_STALE_AFTER_MS - 1);
        std::fs::write(
            crate::store::status_file_path(&db),
            serde_json::to_vec(&stale).expect("json"),
        )
        .expect("write");
        let health = StoreHealth::read(&db, NOW);
        assert_eq!(health.monitor, Some(stale));
        assert!(!health.current && !health.disk_full());
        assert_eq!(health.healthz().disk_full, None);
        assert!(!health.metrics().contains("streampulse_store_disk_full"));
        let tz = time_tz::timezones::get_by_name("UTC").expect("UTC");
        assert!(health
            .banner(tz)
            .is_some_and(|text| text.contains("may have stopped")));
    }

    #[test]
    fn no_report_is_unknown_and_quiet() {
        let dir = tempfile::tempdir().expect("tempdir");
        let health = StoreHealth::read(&dir.path().join("s.db"), NOW);
        assert_eq!(health.monitor, None);
        assert!(!health.disk_full());
        let tz = time_tz::timezones::get_by_name("UTC").expect("UTC");
        assert_eq!(health.banner(tz), None);
        let text = health.metrics();
        assert!(
            !text.contains("disk_full") && text.contains("streampulse_store_free_bytes"),
            "{text}"
        );
    }
}
