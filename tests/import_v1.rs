//! The in-place upgrade from StreamPulse v1: a v1 `streams.db` made the way v1 makes it (WAL
//! mode, one `log_` table per stream, ISO-8601 times with mixed UTC offsets, rows still in the
//! WAL), the real `streampulse monitor` started in that folder, and the history then seen by
//! `status`, the API and the stream page, the v1 file byte-identical, nothing added twice.

mod common;
mod web_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{run, wait_for, RunningChild};
use rusqlite::Connection;
use sha2::{Digest, Sha256};
use streampulse::demo::closed_port;
use streampulse::store::import_v1::v1_table_name;

/// v1 names with a space, quotes and a comma, Unicode, and one no longer configured.
const GATE: &str = "Gate \"North\", 1";
const SOUTH: &str = "Caméra Süd 東";
const LAB: &str = "lab cam";
const RETIRED: &str = "Retired cam";
const ROWS_PER_STREAM: i64 = 900;
/// Rows 0..WAL_FROM are checkpointed into the file; the rest stay in the WAL.
const WAL_FROM: i64 = 700;

fn hash(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).expect("read")))
}

fn sidecar(path: &Path, suffix: &str) -> PathBuf {
    PathBuf::from(format!("{}{suffix}", path.display()))
}

/// `ts` as v1 wrote it: `datetime.astimezone(tz).isoformat()`, offsets varying by row.
fn v1_time(ts_ms: i64, row: i64) -> String {
    let offsets = [(5 * 60 + 30) * 60, -8 * 3600, 0, 3600];
    let offset = time::UtcOffset::from_whole_seconds(offsets[(row % 4) as usize]).expect("offset");
    let utc = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ts_ms) * 1_000_000).expect("time");
    let local = utc.to_offset(offset);
    let (h, m, _) = offset.as_hms();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute(),
        local.second(),
        if offset.is_negative() { '-' } else { '+' },
        h.unsigned_abs(),
        m.unsigned_abs()
    )
}

/// Builds a v1 database at `target` (with a live WAL) and returns the first row's time of each
/// stream and how many `fail` rows each has.
fn make_v1_database(target: &Path, now_ms: i64) -> i64 {
    let build = tempfile::tempdir().expect("tempdir");
    let path = build.path().join("streams.db");
    let conn = Connection::open(&path).expect("open");
    conn.pragma_update(None, "journal_mode", "WAL").expect("wal");
    conn.pragma_update(None, "wal_autocheckpoint", 0)
        .expect("no autocheckpoint");
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS streams(name TEXT PRIMARY KEY, url TEXT NOT NULL);
         CREATE TABLE IF NOT EXISTS users(user TEXT PRIMARY KEY, pass TEXT NOT NULL);
         INSERT INTO users VALUES('admin','admin123');",
    )
    .expect("v1 tables");
    let first_ms = now_ms - ROWS_PER_STREAM * 60_000;
    for (index, name) in [GATE, SOUTH, LAB, RETIRED].iter().enumerate() {
        let table = v1_table_name(name);
        conn.execute(
            "INSERT OR REPLACE INTO streams(name,url) VALUES(?1,?2)",
            (
                name,
                format!("rtsp://admin:v1secret@192.0.2.{}:554/s", 10 + index),
            ),
        )
        .expect("stream");
        conn.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS {table}(id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL,
                 status TEXT NOT NULL, latency_ms INTEGER, message TEXT);
             CREATE INDEX IF NOT EXISTS idx_{table}_ts ON {table}(ts);"
        ))
        .expect("log table");
    }
    for row in 0..ROWS_PER_STREAM {
        if row == WAL_FROM {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .expect("checkpoint");
        }
        for name in [GATE, SOUTH, LAB, RETIRED] {
            let ts_ms = first_ms + row * 60_000;
            // One outage of 30 rows in the middle of every stream.
            let (status, message) = match row {
                400..=409 => ("fail", "timeout"),
                410..=419 => (
                    "fail",
                    "error:[Errno 111] Connect call failed ('192.0.2.10', 554)",
                ),
                420..=429 => ("fail", "HTTP 404"),
                _ => ("ok", "RTSP 200"),
            };
            conn.execute(
                &format!(
                    "INSERT INTO {}(ts,status,latency_ms,message) VALUES(?1,?2,?3,?4)",
                    v1_table_name(name)
                ),
                (v1_time(ts_ms, row), status, 40 + row % 7, message),
            )
            .expect("row");
        }
    }
    let wal = sidecar(&path, "-wal");
    assert!(
        std::fs::metadata(&wal).expect("wal").len() > 0,
        "rows must be left in the WAL"
    );
    // Copied while v1's connection is still open, as a v1 that was stopped or crashed leaves it.
    std::fs::copy(&path, target).expect("copy db");
    std::fs::copy(&wal, sidecar(target, "-wal")).expect("copy wal");
    drop(conn);
    first_ms
}

fn config_text(database: &str) -> String {
    let url = |n: u16| format!("rtsp://127.0.0.1:{}/s{n}", closed_port());
    format!(
        "heartbeat_seconds: 600\nprobe_timeout_seconds: 1\ntimezone: Asia/Kolkata\nntp_server: \"127.0.0.1:{}\"\n\
         database: {database}\nretention_days: 0\nstreams:\n  - name: 'Gate \"North\", 1'\n    url: {}\n  \
         - name: \"Caméra Süd 東\"\n    url: {}\n  - name: lab cam\n    url: {}\n",
        closed_port(),
        url(1),
        url(2),
        url(3)
    )
}

fn heartbeat_count(db: &Path, name: &str) -> i64 {
    try_heartbeat_count(db, name).expect("count")
}

/// `None` while the new database is still being created.
fn try_heartbeat_count(db: &Path, name: &str) -> Option<i64> {
    let conn = Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row(
        "SELECT count(*) FROM heartbeats JOIN streams ON streams.id = stream_id WHERE streams.name = ?1",
        [name],
        |row| row.get(0),
    )
    .ok()
}

#[test]
fn monitor_upgrades_a_v1_folder_in_place() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("streams.db");
    let now_ms = common::system_now_ms();
    let first_ms = make_v1_database(&db, now_ms);
    let (db_hash, wal_hash) = (hash(&db), hash(&sidecar(&db, "-wal")));
    let config = dir.path().join("config.yaml");
    std::fs::write(&config, config_text("streams.db")).expect("config");
    let config_arg = config.to_str().expect("utf-8 path");

    // Readers refuse a v1 file with a clear message and leave it alone.
    let status = run(&["status", "--config", config_arg], Duration::from_secs(30));
    assert_ne!(status.code(), Some(0));
    assert!(
        status.stderr.contains("StreamPulse v1 database"),
        "{}",
        status.all_output()
    );
    assert!(status.stderr.contains("streampulse monitor"), "{}", status.stderr);
    assert_eq!(hash(&db), db_hash);

    let mut monitor = RunningChild::spawn(&["monitor", "--config", config_arg]);
    let moved = dir.path().join("streams.v1.db");
    let imported = wait_for(Duration::from_secs(60), || {
        let count = moved.exists().then(|| try_heartbeat_count(&db, LAB))??;
        (count >= ROWS_PER_STREAM).then_some(count)
    });
    assert!(imported.is_some(), "the v1 history was not imported in time");
    monitor.signal(libc::SIGTERM);
    monitor
        .wait_timeout(Duration::from_secs(30))
        .expect("monitor stops");
    let (_, log) = monitor.output();
    assert!(log.contains("upgraded a StreamPulse v1 database"), "{log}");
    assert!(log.contains(&moved.display().to_string()), "{log}");
    assert!(log.contains("streampulse user add"), "{log}");
    assert!(!log.contains("v1secret") && !log.contains("admin123"), "{log}");

    // The v1 file moved with its WAL, byte for byte.
    assert_eq!(hash(&moved), db_hash, "the v1 file changed");
    assert_eq!(hash(&sidecar(&moved, "-wal")), wal_hash, "the v1 WAL changed");

    // Every row, the WAL's included; the retired camera kept in the history.
    for name in [GATE, SOUTH, LAB, RETIRED] {
        let count = heartbeat_count(&db, name);
        assert!(
            (ROWS_PER_STREAM..=ROWS_PER_STREAM + 3).contains(&count),
            "{name}: {count} heartbeats"
        );
    }
    let conn = Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let (oldest, outages): (i64, i64) = conn
        .query_row(
            "SELECT min(ts_ms), (SELECT count(*) FROM outages o WHERE o.stream_id = s.id AND o.start_ms < ?2)
             FROM heartbeats h JOIN streams s ON s.id = h.stream_id WHERE s.name = ?1",
            (GATE, now_ms - 60_000),
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("oldest");
    assert_eq!(oldest, first_ms / 1000 * 1000, "times converted to UTC");
    assert_eq!(outages, 1, "one v1 outage");
    let (reason, message): (String, String) = conn
        .query_row(
            "SELECT reason, message FROM heartbeats h JOIN streams s ON s.id = h.stream_id
             WHERE s.name = ?1 AND ts_ms = ?2",
            (GATE, (first_ms + 415 * 60_000) / 1000 * 1000),
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .expect("a fail row");
    assert_eq!(reason, "refused");
    assert!(message.contains("Connect call failed"), "{message}");
    let rollup: i64 = conn
        .query_row(
            "SELECT sum(up_count + degraded_count + down_count) FROM heartbeat_hourly",
            [],
            |row| row.get(0),
        )
        .expect("rollups");
    let raw: i64 = conn
        .query_row("SELECT count(*) FROM heartbeats", [], |row| row.get(0))
        .expect("raw");
    assert_eq!(rollup, raw, "rollups agree with the raw heartbeats");
    drop(conn);

    // `status` shows the history (24 h uptime from the imported rows).
    let status = run(
        &["status", "--config", config_arg, "--json"],
        Duration::from_secs(30),
    );
    assert_eq!(status.code(), Some(0), "{}", status.all_output());
    let rows = status.json();
    let gate = rows
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == GATE))
        .expect("gate row");
    let uptime = gate["uptime_24h"].as_f64().expect("uptime");
    assert!(uptime > 0.9 && uptime < 1.0, "{gate}");

    // A second start imports nothing more; an explicit import-v1 of the moved file neither.
    let before = heartbeat_count(&db, LAB);
    let import = run(
        &[
            "import-v1",
            moved.to_str().expect("utf-8"),
            "--config",
            config_arg,
        ],
        Duration::from_secs(60),
    );
    assert_eq!(import.code(), Some(0), "{}", import.all_output());
    assert!(import.stdout.contains("was imported before"), "{}", import.stdout);
    assert!(import.stdout.contains("were not imported"), "{}", import.stdout);
    let mut again = RunningChild::spawn(&["monitor", "--config", config_arg]);
    std::thread::sleep(Duration::from_secs(3));
    again.signal(libc::SIGTERM);
    again
        .wait_timeout(Duration::from_secs(30))
        .expect("monitor stops");
    let (_, log) = again.output();
    assert!(!log.contains("upgraded a StreamPulse v1"), "{log}");
    assert!(
        heartbeat_count(&db, LAB) <= before + 1,
        "a second start adds at most its own probe"
    );
    assert!(!dir.path().join("streams.v1-2.db").exists());
    assert_eq!(hash(&moved), db_hash);
}

#[test]
fn import_v1_into_another_database_is_idempotent_and_shows_in_the_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let v1 = dir.path().join("old.db");
    let now_ms = common::system_now_ms();
    make_v1_database(&v1, now_ms);
    let v1_hash = hash(&v1);
    let config = dir.path().join("config.yaml");
    let text = config_text("new.db");
    std::fs::write(&config, &text).expect("config");
    let args = [
        "import-v1",
        v1.to_str().expect("utf-8"),
        "--config",
        config.to_str().expect("utf-8"),
    ];
    let first = run(&args, Duration::from_secs(60));
    assert_eq!(first.code(), Some(0), "{}", first.all_output());
    assert!(
        first
            .stdout
            .contains(&format!("imported {} new heartbeat", 4 * ROWS_PER_STREAM)),
        "{}",
        first.stdout
    );
    assert!(
        first.stdout.contains("1 for streams no longer configured"),
        "{}",
        first.stdout
    );
    let second = run(&args, Duration::from_secs(60));
    assert_eq!(second.code(), Some(0), "{}", second.all_output());
    assert!(second.stdout.contains("was imported before"), "{}", second.stdout);
    assert_eq!(hash(&v1), v1_hash);
    assert!(
        !dir.path().join("old.v1.db").exists(),
        "an explicit import moves nothing"
    );

    let db = dir.path().join("new.db");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let fixture = web_support::Fixture::with_options(&text, |options| options.db_path = Some(db.clone()));
        let token = fixture.token("v1");
        let path = format!(
            "/api/v1/streams/{}/heartbeats?from=0&limit=5000",
            streampulse::web::links::encode(GATE)
        );
        let response = fixture.get_with_token(&path, &token).await;
        assert_eq!(response.status(), 200, "{}", web_support::body(&response));
        let answer: serde_json::Value = serde_json::from_slice(response.body()).expect("json");
        let beats = answer["heartbeats"].as_array().expect("heartbeats");
        assert_eq!(beats.len() as i64, ROWS_PER_STREAM);
        assert!(beats
            .iter()
            .any(|b| b["reason"] == "not_found" && b["message"] == "HTTP 404"));

        let status = fixture.get_with_token("/api/status", &token).await;
        assert_eq!(status.status(), 200, "{}", web_support::body(&status));
        let v1: serde_json::Value = serde_json::from_slice(status.body()).expect("json");
        assert_eq!(v1[LAB]["status"], "ok", "{v1}");
        assert_eq!(v1[LAB]["message"], "RTSP 200", "{v1}");
        assert!(
            v1[LAB]["ts"].as_str().is_some_and(|ts| ts.ends_with("+05:30")),
            "{v1}"
        );
        let anonymous = fixture.get("/api/status", None).await;
        assert_eq!(anonymous.status(), 401);

        fixture.add_user("admin", web_support::PASSWORD);
        let session = fixture.login("admin", web_support::PASSWORD).await;
        let page = fixture
            .get(
                &format!("{}?range=7d", streampulse::web::links::stream_href(SOUTH)),
                Some(&session),
            )
            .await;
        assert_eq!(page.status(), 200);
        let html = web_support::body(&page);
        assert!(
            html.contains("id=\"outages\""),
            "the v1 outage is on the stream page"
        );
        assert!(html.contains("Connect call failed") || html.contains("connection refused"));
        assert!(
            html.contains("id=\"exports\"") && html.contains("/api/v1/heartbeats.csv?stream"),
            "export links"
        );
    });
}
